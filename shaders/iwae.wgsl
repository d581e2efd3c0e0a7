// The importance-weighted objective's row weights. Training on log (1/L) Σ_s w_s per image weighs
// each draw's gradient by its normalised weight ŵ_s = w_s / Σ w: `iwae_weights` computes ŵ/B per
// row from the rows' log-weights, and `scale_rows` applies it to the likelihood's per-row
// gradients, which `log_prob_rows` wrote with weight −1 (the weights need every row's
// log-likelihood first). CPU twins: `cpu::reference::{iwae_weights, scale_rows}`.

struct IwaeParams {
    batch: u32,
    samples: u32,
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<uniform> ip: IwaeParams;
@group(0) @binding(1) var<storage, read> loglik: array<f32>;        // [B·L], row s·B + b
@group(0) @binding(2) var<storage, read> prior_minus_q: array<f32>; // [B·L]
@group(0) @binding(3) var<storage, read_write> weights: array<f32>; // [B·L] ŵ/B

// One thread per image: a stable softmax over its L log-weights.
@compute @workgroup_size(64)
fn iwae_weights(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let b = flat_thread(gid, nwg, 64u);
    if (b >= ip.batch) {
        return;
    }
    var m = loglik[b] + prior_minus_q[b];
    for (var s = 1u; s < ip.samples; s = s + 1u) {
        let r = s * ip.batch + b;
        m = max(m, loglik[r] + prior_minus_q[r]);
    }
    var sum = 0.0;
    for (var s = 0u; s < ip.samples; s = s + 1u) {
        let r = s * ip.batch + b;
        sum = sum + exp(loglik[r] + prior_minus_q[r] - m);
    }
    for (var s = 0u; s < ip.samples; s = s + 1u) {
        let r = s * ip.batch + b;
        weights[r] = exp(loglik[r] + prior_minus_q[r] - m) / sum / f32(ip.batch);
    }
}

struct ScaleRowsParams {
    rows: u32,
    width: u32,
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(4) var<uniform> sp: ScaleRowsParams;
@group(0) @binding(5) var<storage, read> row_weights: array<f32>; // [rows]
@group(0) @binding(6) var<storage, read_write> scaled: array<f32>; // [rows, width]

@compute @workgroup_size(64)
fn scale_rows(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let t = flat_thread(gid, nwg, 64u);
    if (t >= sp.rows * sp.width) {
        return;
    }
    scaled[t] = scaled[t] * row_weights[t / sp.width];
}
