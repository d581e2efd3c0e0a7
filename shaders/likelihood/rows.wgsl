// The likelihood driver: one member file (bernoulli.wgsl, gaussian.wgsl, …) is appended to this
// one to make that member's module. The member defines, for one pixel whose C decoder outputs are
// `outputs[base + c·stride]`:
//   member_log_prob_grad(x, base, stride, free, w) -> vec2(log p, d log p / d free), writing
//       d_outputs[base + c·stride] = w · d log p / d o_c;
//   member_natural(base, stride, free, e, e_stride) -> A, writing η_s to eta[e + s·e_stride]
//       (the exponential-family form log p = Σ_s T_s(x)·η_s − A).
// `log_prob_rows` reduces a row's log-likelihood (training: rows are (sample, image) pairs with
// x row r % batch; SVI / grid: one x row per output row, masked) and writes the scaled gradient;
// `natural_params` evaluates η and A for log-likelihood matrices. CPU twin:
// `family::likelihood::{log_prob_rows, natural_rows}`.

// A member's options are WGSL constants emitted by its Rust twin (`Member::wgsl_constants`)
// before its file; the flag bits HAS_MASK and HAS_FREE are emitted by `gpu::kernels`. Needs
// workgroup.wgsl.

struct LikelihoodParams {
    rows: u32,
    batch: u32,
    dim: u32,
    channels: u32,
    // gradient weight: −1/(B·L) for the training loss, 1 for the gradient of the log-likelihood
    scale: f32,
    // HAS_MASK: a mask is bound; HAS_FREE: free parameters at params[free_off..]
    flags: u32,
    free_off: u32,
    // free parameters: D (per pixel) or 1 (shared by every pixel)
    free_len: u32,
}

@group(0) @binding(0) var<uniform> lp: LikelihoodParams;
@group(0) @binding(1) var<storage, read> x: array<f32>;              // [batch, D]
@group(0) @binding(2) var<storage, read> mask: array<f32>;           // [batch, D]
@group(0) @binding(3) var<storage, read> outputs: array<f32>;        // [rows, C·D]
@group(0) @binding(4) var<storage, read> params: array<f32>;         // flat parameters
@group(0) @binding(5) var<storage, read_write> d_outputs: array<f32>; // [rows, C·D]
@group(0) @binding(6) var<storage, read_write> d_free: array<f32>;   // [rows, D]
@group(0) @binding(7) var<storage, read_write> loglik: array<f32>;   // [rows]
@group(0) @binding(8) var<storage, read_write> eta: array<f32>;      // [S, rows·D]
@group(0) @binding(9) var<storage, read_write> log_normaliser: array<f32>; // [rows·D]

fn free_param(i: u32) -> f32 {
    if ((lp.flags & HAS_FREE) != 0u) {
        return params[lp.free_off + i % lp.free_len];
    }
    return 0.0;
}

@compute @workgroup_size(256)
fn log_prob_rows(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    // One workgroup per row; rows past 65,535 spill into y (`grid_1d(rows, 1)`).
    let r = flat_group(wid, nwg);
    if (r >= lp.rows) {
        return; // workgroup-uniform: the whole group leaves before any barrier
    }
    let b = r % lp.batch;
    let width = lp.channels * lp.dim;
    var s = 0.0;
    for (var i = lid.x; i < lp.dim; i = i + 256u) {
        var m = 1.0;
        if ((lp.flags & HAS_MASK) != 0u) {
            m = mask[b * lp.dim + i];
        }
        let w = lp.scale * m;
        let res = member_log_prob_grad(x[b * lp.dim + i], r * width + i, lp.dim, free_param(i), w);
        if ((lp.flags & HAS_FREE) != 0u) {
            d_free[r * lp.dim + i] = w * res.y;
        }
        s = s + m * res.x;
    }
    let total = workgroup_sum(lid.x, s);
    if (lid.x == 0u) {
        loglik[r] = total;
    }
}

@compute @workgroup_size(64)
fn natural_params(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let t = flat_thread(gid, nwg, 64u);
    if (t >= lp.rows * lp.dim) {
        return;
    }
    let r = t / lp.dim;
    let i = t % lp.dim;
    let base = r * lp.channels * lp.dim + i;
    log_normaliser[t] = member_natural(base, lp.dim, free_param(i), t, lp.rows * lp.dim);
}
