// Bernoulli log-likelihood log p(x|z) from logits and its gradient, fused: one workgroup per sample
// row reads each logit once, writes dLoss/dlogit = scale·(σ(l) - x) and reduces the row's
// log-likelihood. Stable forms: log p = x·l - softplus(l) with softplus(l) = max(l, 0) + log(1 + e^-|l|)
// (never exponentiates a positive number), and σ(l) evaluated on the side that cannot overflow.
// CPU twin: `cpu::reference::bernoulli_rows`.

struct BernoulliParams {
    rows: u32,
    batch: u32,
    dim: u32,
    _pad0: u32,
    scale: f32,
    _pad1: u32,
    _pad2: u32,
    _pad3: u32,
}

@group(0) @binding(0) var<uniform> p: BernoulliParams;
@group(0) @binding(1) var<storage, read> x: array<f32>;               // [B, D] binary pixels
@group(0) @binding(2) var<storage, read> logits: array<f32>;          // [B·L, D]
@group(0) @binding(3) var<storage, read_write> dlogits: array<f32>;   // [B·L, D]
@group(0) @binding(4) var<storage, read_write> loglik: array<f32>;    // [B·L]

var<workgroup> partial: array<f32, 256>;

fn softplus(l: f32) -> f32 {
    return max(l, 0.0) + log(1.0 + exp(-abs(l)));
}

fn sigmoid(l: f32) -> f32 {
    let e = exp(-abs(l));
    return select(e / (1.0 + e), 1.0 / (1.0 + e), l >= 0.0);
}

@compute @workgroup_size(256)
fn bernoulli_loglik(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    // One workgroup per row; rows past 65,535 spill into y (`grid_1d(rows, 1)`).
    let r = wid.x + wid.y * nwg.x;
    if (r >= p.rows) {
        return; // workgroup-uniform: the whole group leaves before any barrier
    }
    let b = r % p.batch;
    var s = 0.0;
    for (var i = lid.x; i < p.dim; i = i + 256u) {
        let l = logits[r * p.dim + i];
        let xv = x[b * p.dim + i];
        s = s + xv * l - softplus(l);
        dlogits[r * p.dim + i] = p.scale * (sigmoid(l) - xv);
    }
    partial[lid.x] = s;
    workgroupBarrier();
    for (var w = 128u; w > 0u; w = w >> 1u) {
        if (lid.x < w) {
            partial[lid.x] = partial[lid.x] + partial[lid.x + w];
        }
        workgroupBarrier();
    }
    if (lid.x == 0u) {
        loglik[r] = partial[0];
    }
}

// Elementwise softplus, for log-likelihood matrices: Σ_p m_p·log p(x_p|z) = (x∘m)·l - m·softplus(l)
// turns the likelihood of many images under many latents into two matmuls (see gpu/inference.rs).
// Bindings 5..7 so both entry points can share this module.

struct SoftplusParams {
    n: u32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(5) var<uniform> sp: SoftplusParams;
@group(0) @binding(6) var<storage, read> sp_in: array<f32>;
@group(0) @binding(7) var<storage, read_write> sp_out: array<f32>;

@compute @workgroup_size(256)
fn softplus_elementwise(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * 256u;
    if (i < sp.n) {
        sp_out[i] = softplus(sp_in[i]);
    }
}

// Masked log-likelihood of observed pixels and its gradient dll/dlogit = m·(x − σ(l)), one x row per
// logit row: the decoder part of stochastic variational inference without the encoder, where each
// row is one (image, sample) pair and only the observed pixels count. Bindings 8..13.

struct MaskedParams {
    rows: u32,
    dim: u32,
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(8) var<uniform> mp: MaskedParams;
@group(0) @binding(9) var<storage, read> m_x: array<f32>;        // [R, D]
@group(0) @binding(10) var<storage, read> m_mask: array<f32>;    // [R, D]
@group(0) @binding(11) var<storage, read> m_logits: array<f32>;  // [R, D]
@group(0) @binding(12) var<storage, read_write> m_grad: array<f32>;   // [R, D]
@group(0) @binding(13) var<storage, read_write> m_loglik: array<f32>; // [R]

@compute @workgroup_size(256)
fn bernoulli_masked(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    // One workgroup per row; rows past 65,535 spill into y (`grid_1d(rows, 1)`).
    let r = wid.x + wid.y * nwg.x;
    if (r >= mp.rows) {
        return; // workgroup-uniform: the whole group leaves before any barrier
    }
    var s = 0.0;
    for (var i = lid.x; i < mp.dim; i = i + 256u) {
        let k = r * mp.dim + i;
        let l = m_logits[k];
        let xv = m_x[k];
        let m = m_mask[k];
        s = s + m * (xv * l - softplus(l));
        m_grad[k] = m * (xv - sigmoid(l));
    }
    partial[lid.x] = s;
    workgroupBarrier();
    for (var w = 128u; w > 0u; w = w >> 1u) {
        if (lid.x < w) {
            partial[lid.x] = partial[lid.x] + partial[lid.x + w];
        }
        workgroupBarrier();
    }
    if (lid.x == 0u) {
        m_loglik[r] = partial[0];
    }
}
