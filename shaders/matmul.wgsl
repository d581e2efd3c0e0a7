// C = op(A) · op(B) with a fused epilogue, for every product of the forward and backward pass.
//
// Transposes are strides: A(i, k) = a[a_off + i*a_rs + k*a_cs] and B(k, j) = b[b_off + k*b_rs + j*b_cs],
// so one kernel covers Y = X·Wᵀ (forward), dX = dY·W and dW = dYᵀ·X (backward) on weights stored
// [out, in] inside the flat parameter buffer. Offsets are in elements, so no binding needs 256-byte
// alignment. The tiles, the product and the epilogue are tile.wgsl's: bit 0 adds bias[bias_off + j];
// bits 1-2 apply an activation; bits 3-4 multiply by an activation's derivative at
// h = aux[aux_off + i*aux_rs + j]; and here bit 5 accumulates into C.
// CPU twin: `cpu::gemm` plus the loops in `cpu::layers`.

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

fn tile_a(i: u32, kk: u32) -> f32 {
    return a[p.a_off + i * p.a_rs + kk * p.a_cs];
}

fn tile_b(kk: u32, j: u32) -> f32 {
    return b[p.b_off + kk * p.b_rs + j * p.b_cs];
}

fn epilogue_bias(j: u32) -> f32 {
    return bias[p.bias_off + j];
}

fn epilogue_aux(at: u32) -> f32 {
    return aux[at];
}

fn tile_store(i: u32, j: u32, sum: f32) {
    var v = epilogue(sum, p.flags, j, p.aux_off + i * p.aux_rs + j);
    let ci = p.c_off + i * p.c_rs + j;
    if ((p.flags & 32u) != 0u) {
        v = v + c[ci];
    }
    c[ci] = v;
}

@compute @workgroup_size(16, 16)
fn matmul(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
    // Load order follows the unit stride so global reads coalesce for every transpose variant.
    tile_gemm(lid, wid.y * TILE, wid.x * TILE, p.m, p.n, p.k, p.a_cs == 1u, p.b_cs == 1u);
}
