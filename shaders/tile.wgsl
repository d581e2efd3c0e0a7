// The tiled GEMM core matmul.wgsl and conv.wgsl share, concatenated before each by `gpu::kernels`
// (after activations.wgsl): C(i, j) = Σ_kk A(i, kk)·B(kk, j) for one 64×64 tile, then the fused
// epilogue. The module supplies the operands and the destination:
//   tile_a(i, kk), tile_b(kk, j): the operands, called only inside the m × k and k × n bounds;
//   tile_store(i, j, sum): what happens to C(i, j), called only inside m × n;
//   epilogue_bias(j), epilogue_aux(at): the epilogue's reads, made only when its flags ask.
// Tiles are 64x64 with a 16-deep K slice; each of the 16x16 threads owns a 4x4 block strided by 16
// (rows ty + 16r, cols tx + 16c) to keep shared-memory reads conflict-free. Each C(i, j) is summed
// by one thread, one fma per kk in increasing kk, so a product's value depends only on its
// operands and not on which module computes it.

const TILE: u32 = 64u;
const BK: u32 = 16u;

var<workgroup> a_tile: array<f32, 1024>; // [BK][TILE]
var<workgroup> b_tile: array<f32, 1024>; // [BK][TILE]

// The tile whose C(0, 0) is (row0, col0) of an m × n product over k, by the 16×16 threads of a
// workgroup (`lid`); every thread of the workgroup must call it. `a_k_fast` (`b_j_fast`):
// neighbouring threads load neighbouring kk of A (j of B), so global reads coalesce when that is
// the operand's unit stride.
fn tile_gemm(lid: vec3<u32>, row0: u32, col0: u32, m: u32, n: u32, k: u32, a_k_fast: bool, b_j_fast: bool) {
    let tx = lid.x;
    let ty = lid.y;
    let tid = ty * 16u + tx;
    var sums: array<f32, 16>;
    for (var q = 0u; q < 16u; q = q + 1u) {
        sums[q] = 0.0;
    }
    for (var k0 = 0u; k0 < k; k0 = k0 + BK) {
        for (var e = 0u; e < 4u; e = e + 1u) {
            let idx = tid + e * 256u;
            var i: u32;
            var kk: u32;
            if (a_k_fast) {
                kk = idx % BK;
                i = idx / BK;
            } else {
                i = idx % TILE;
                kk = idx / TILE;
            }
            var va = 0.0;
            if (row0 + i < m && k0 + kk < k) {
                va = tile_a(row0 + i, k0 + kk);
            }
            a_tile[kk * TILE + i] = va;

            var j: u32;
            var kb: u32;
            if (b_j_fast) {
                j = idx % TILE;
                kb = idx / TILE;
            } else {
                kb = idx % BK;
                j = idx / BK;
            }
            var vb = 0.0;
            if (col0 + j < n && k0 + kb < k) {
                vb = tile_b(k0 + kb, col0 + j);
            }
            b_tile[kb * TILE + j] = vb;
        }
        workgroupBarrier();
        for (var kk = 0u; kk < BK; kk = kk + 1u) {
            var af: array<f32, 4>;
            var bf: array<f32, 4>;
            for (var r = 0u; r < 4u; r = r + 1u) {
                af[r] = a_tile[kk * TILE + ty + 16u * r];
                bf[r] = b_tile[kk * TILE + tx + 16u * r];
            }
            for (var r = 0u; r < 4u; r = r + 1u) {
                for (var s = 0u; s < 4u; s = s + 1u) {
                    sums[r * 4u + s] = fma(af[r], bf[s], sums[r * 4u + s]);
                }
            }
        }
        workgroupBarrier();
    }
    for (var r = 0u; r < 4u; r = r + 1u) {
        let gi = row0 + ty + 16u * r;
        for (var s = 0u; s < 4u; s = s + 1u) {
            let gj = col0 + tx + 16u * s;
            if (gi < m && gj < n) {
                tile_store(gi, gj, sums[r * 4u + s]);
            }
        }
    }
}

// The epilogue flags of `sum`, a value of output column (channel) j: bit 0 adds
// epilogue_bias(j); bits 1-2 apply an activation (code as in activations.wgsl); bits 3-4 multiply
// by an activation's derivative at h = epilogue_aux(at), the layer output the gradient flows back
// through.
fn epilogue(sum: f32, flags: u32, j: u32, at: u32) -> f32 {
    var v = sum;
    if ((flags & 1u) != 0u) {
        v = v + epilogue_bias(j);
    }
    let act = (flags >> 1u) & 3u;
    if (act != 0u) {
        v = activate(act, v);
    }
    let act_backward = (flags >> 3u) & 3u;
    if (act_backward != 0u) {
        v = v * activation_grad_from_output(act_backward, epilogue_aux(at));
    }
    return v;
}
