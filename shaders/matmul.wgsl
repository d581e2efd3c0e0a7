// C = op(A) · op(B) with a fused epilogue, for every product of the forward and backward pass.
//
// Transposes are strides: A(i, k) = a[a_off + i*a_rs + k*a_cs] and B(k, j) = b[b_off + k*b_rs + j*b_cs],
// so one kernel covers Y = X·Wᵀ (forward), dX = dY·W and dW = dYᵀ·X (backward) on weights stored
// [out, in] inside the flat parameter buffer. Offsets are in elements, so no binding needs 256-byte
// alignment. Tiles are 64x64 with a 16-deep K slice; each of the 16x16 threads owns a 4x4 block
// strided by 16 (rows ty + 16r, cols tx + 16c) to keep shared-memory reads conflict-free.
// Epilogue flags: bit 0 adds bias[bias_off + j]; bits 1-2 apply an activation (code as in
// activations.wgsl); bits 3-4 multiply by an activation's derivative at h = aux(i, j), the layer
// output that the gradient flows back through (the activation's backward); bit 5 accumulates into C.
// CPU twin: `cpu::gemm` plus the loops in `cpu::reference`.

struct MatmulParams {
    m: u32,
    n: u32,
    k: u32,
    flags: u32,
    a_off: u32,
    a_rs: u32,
    a_cs: u32,
    b_off: u32,
    b_rs: u32,
    b_cs: u32,
    c_off: u32,
    c_rs: u32,
    bias_off: u32,
    aux_off: u32,
    aux_rs: u32,
    _pad: u32,
}

@group(0) @binding(0) var<uniform> p: MatmulParams;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read> aux: array<f32>;
@group(0) @binding(5) var<storage, read_write> c: array<f32>;

const TILE: u32 = 64u;
const BK: u32 = 16u;

var<workgroup> a_tile: array<f32, 1024>; // [BK][TILE]
var<workgroup> b_tile: array<f32, 1024>; // [BK][TILE]

@compute @workgroup_size(16, 16)
fn matmul(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
    let tx = lid.x;
    let ty = lid.y;
    let tid = ty * 16u + tx;
    let row0 = wid.y * TILE;
    let col0 = wid.x * TILE;
    var acc: array<f32, 16>;
    for (var q = 0u; q < 16u; q = q + 1u) {
        acc[q] = 0.0;
    }
    // Load order follows the unit stride so global reads coalesce for every transpose variant.
    let a_k_fast = p.a_cs == 1u;
    let b_j_fast = p.b_cs == 1u;
    for (var k0 = 0u; k0 < p.k; k0 = k0 + BK) {
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
            let gi = row0 + i;
            let gk = k0 + kk;
            var va = 0.0;
            if (gi < p.m && gk < p.k) {
                va = a[p.a_off + gi * p.a_rs + gk * p.a_cs];
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
            let gj = col0 + j;
            let gkb = k0 + kb;
            var vb = 0.0;
            if (gj < p.n && gkb < p.k) {
                vb = b[p.b_off + gkb * p.b_rs + gj * p.b_cs];
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
                    acc[r * 4u + s] = fma(af[r], bf[s], acc[r * 4u + s]);
                }
            }
        }
        workgroupBarrier();
    }
    let act = (p.flags >> 1u) & 3u;
    let act_backward = (p.flags >> 3u) & 3u;
    for (var r = 0u; r < 4u; r = r + 1u) {
        let gi = row0 + ty + 16u * r;
        for (var s = 0u; s < 4u; s = s + 1u) {
            let gj = col0 + tx + 16u * s;
            if (gi < p.m && gj < p.n) {
                var v = acc[r * 4u + s];
                if ((p.flags & 1u) != 0u) {
                    v = v + bias[p.bias_off + gj];
                }
                if (act != 0u) {
                    v = activate(act, v);
                }
                if (act_backward != 0u) {
                    v = v * activation_grad_from_output(act_backward, aux[p.aux_off + gi * p.aux_rs + gj]);
                }
                let ci = p.c_off + gi * p.c_rs + gj;
                if ((p.flags & 32u) != 0u) {
                    v = v + c[ci];
                }
                c[ci] = v;
            }
        }
    }
}
