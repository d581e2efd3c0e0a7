// Convolutions. The gather and the weight gradient are implicit GEMMs: tile.wgsl's tiled product,
// with the im2col windows gathered while the tiles load instead of being stored. The scatter is a
// direct loop (entry `conv_scatter`): as a GEMM its contraction would run over every tap of every
// window although only ⌈k/s⌉² of the k² land on a given pixel (a quarter for k4 s2), and its N (the
// full side's channels: 1 or 2 at a decoder's output) would fill 2 of 64 tile columns.
// A Conv2d maps its full side [C_f, H, W] (read in k×k windows) to its reduced side
// [C_r, OH, OW] (one value per window) with weights [C_r, C_f, k, k]; a ConvTranspose2d maps the
// reduced side back to the full side, and its [in, out, k, k] weight lies in memory the same way,
// so three modes serve both layers (spec::layers::ConvGeometry says which side is which):
//   mode 0, gather:  reduced[n, j, o]  = Σ_(c,ky,kx) W[j, c, ky, kx] · full[n, c, o·s − p + k]
//                    M = rows·OH·OW, N = C_r, K = C_f·k·k   (conv2d forward, convT input grad)
//   mode 1, scatter: full[n, j, y, x] = Σ_(c,ky,kx) W[c, j, ky, kx] · reduced[n, c, (y + p − ky)/s, …]
//                    over the taps that land on a whole output position; one thread per value
//                    of the full side                       (conv2d input grad, convT forward)
//   mode 2, weight:  dW[i, j=(c,ky,kx)] = Σ_(n,o) reduced_grad[n, i, o] · full[n, c, o·s − p + k]
//                    M = C_r, N = C_f·k·k, K = rows·OH·OW; binding 1 holds the full side, binding 2
//                    the reduced-side gradient, and dW is written at w_off of binding 4.
// Modes 0 and 1 read weights (at w_off) and bias (at bias_off) from binding 2 and share tile.wgsl's
// epilogue: bit 0 adds the bias of channel j, bits 1-2 apply an activation, bits 3-4 multiply by
// an activation's derivative at the output held in aux (same index as the output).
// Tiles are indexed linearly over (x, y) workgroups, so a large batch of images can spill past
// 65,535 workgroups in x. CPU twins: cpu::layers::conv::{conv_gather, conv_scatter, conv_weight_grad}.

struct ConvParams {
    mode: u32,
    rows: u32,
    flags: u32,
    kernel: u32,
    stride: u32,
    padding: u32,
    full_c: u32,
    full_h: u32,
    full_w: u32,
    reduced_c: u32,
    reduced_h: u32,
    reduced_w: u32,
    w_off: u32,
    bias_off: u32,
    m: u32,
    n: u32,
    k: u32,
    tiles_n: u32,
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<uniform> p: ConvParams;
@group(0) @binding(1) var<storage, read> source: array<f32>;
@group(0) @binding(2) var<storage, read> other: array<f32>;
@group(0) @binding(3) var<storage, read> aux: array<f32>;
@group(0) @binding(4) var<storage, read_write> dest: array<f32>;

// full[n, c, oy·s − p + ky, ox·s − p + kx] for output position o of row n, or 0 in the padding.
fn full_tap(n: u32, o: u32, c: u32, ky: u32, kx: u32) -> f32 {
    let oy = o / p.reduced_w;
    let ox = o % p.reduced_w;
    let y = i32(oy * p.stride + ky) - i32(p.padding);
    let x = i32(ox * p.stride + kx) - i32(p.padding);
    if (y < 0 || x < 0 || y >= i32(p.full_h) || x >= i32(p.full_w)) {
        return 0.0;
    }
    return source[((n * p.full_c + c) * p.full_h + u32(y)) * p.full_w + u32(x)];
}

// A(i, kk) of the current mode.
fn tile_a(i: u32, kk: u32) -> f32 {
    let area = p.kernel * p.kernel;
    let reduced_hw = p.reduced_h * p.reduced_w;
    if (p.mode == 0u) {
        let r = kk % area;
        return full_tap(i / reduced_hw, i % reduced_hw, kk / area, r / p.kernel, r % p.kernel);
    }
    // mode 2: reduced_grad[n, i, o] with kk = n·OH·OW + o
    let n = kk / reduced_hw;
    return other[(n * p.reduced_c + i) * reduced_hw + kk % reduced_hw];
}

// B(kk, j) of the current mode.
fn tile_b(kk: u32, j: u32) -> f32 {
    let area = p.kernel * p.kernel;
    if (p.mode == 0u) {
        return other[p.w_off + j * p.k + kk];
    }
    let reduced_hw = p.reduced_h * p.reduced_w;
    let r = j % area;
    return full_tap(kk / reduced_hw, kk % reduced_hw, j / area, r / p.kernel, r % p.kernel);
}

// Where C(i, j) goes in `dest`.
fn out_index(i: u32, j: u32) -> u32 {
    if (p.mode == 0u) {
        let reduced_hw = p.reduced_h * p.reduced_w;
        return ((i / reduced_hw) * p.reduced_c + j) * reduced_hw + i % reduced_hw;
    }
    return p.w_off + i * p.n + j;
}

// C(i, j) of modes 0 and 2 into `dest`; the weight gradient has no epilogue.
fn tile_store(i: u32, j: u32, sum: f32) {
    let oi = out_index(i, j);
    if (p.mode == 2u) {
        dest[oi] = sum;
    } else {
        dest[oi] = epilogue(sum, p.flags, j, oi);
    }
}

// The bias of channel j (modes 0 and 1), and the activation's output at the output index.
fn epilogue_bias(j: u32) -> f32 {
    return other[p.bias_off + j];
}

fn epilogue_aux(at: u32) -> f32 {
    return aux[at];
}

@compute @workgroup_size(16, 16)
fn conv(
    @builtin(local_invocation_id) lid: vec3<u32>,
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
) {
    let tile = flat_group(wid, nwg);
    if (tile >= p.tiles_n * ((p.m + TILE - 1u) / TILE)) {
        return;
    }
    // Neighbouring threads load neighbouring addresses: along i in mode 0 (output positions),
    // along the contraction in mode 2 (positions of one channel) and in B.
    let row0 = (tile / p.tiles_n) * TILE;
    let col0 = (tile % p.tiles_n) * TILE;
    tile_gemm(lid, row0, col0, p.m, p.n, p.k, p.mode == 2u, false);
}

// Mode 1: full[n, j, y, x] = Σ_c Σ over the taps (ky, kx) whose window lands on (y, x) of
// W[c, j, ky, kx] · reduced[n, c, oy, ox], with oy·s = y + p − ky. Those taps are ky ≡ y + p
// (mod s), so the loop steps by s from (y + p) mod s.
@compute @workgroup_size(64)
fn conv_scatter(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let oi = flat_thread(gid, nwg, 64u);
    let full_hw = p.full_h * p.full_w;
    if (oi >= p.rows * p.full_c * full_hw) {
        return;
    }
    let n = oi / (p.full_c * full_hw);
    let j = (oi / full_hw) % p.full_c;
    // Coordinates shifted by the padding, so that oy·s = y − ky.
    let y = (oi % full_hw) / p.full_w + p.padding;
    let x = oi % p.full_w + p.padding;
    let s = p.stride;
    let area = p.kernel * p.kernel;
    let reduced_hw = p.reduced_h * p.reduced_w;
    var sum = 0.0;
    for (var ky = y % s; ky < p.kernel && ky <= y; ky = ky + s) {
        let oy = (y - ky) / s;
        if (oy >= p.reduced_h) {
            continue;
        }
        for (var kx = x % s; kx < p.kernel && kx <= x; kx = kx + s) {
            let ox = (x - kx) / s;
            if (ox >= p.reduced_w) {
                continue;
            }
            let at = n * p.reduced_c * reduced_hw + oy * p.reduced_w + ox;
            let w = p.w_off + j * area + ky * p.kernel + kx;
            for (var c = 0u; c < p.reduced_c; c = c + 1u) {
                sum = fma(other[w + c * p.full_c * area], source[at + c * reduced_hw], sum);
            }
        }
    }
    dest[oi] = epilogue(sum, p.flags, j, oi);
}
