// The fused Gaussian layer of the ELBO: reparameterized sample z = μ + σ·ε (ε from Philox), the
// log-densities log q(z|x) and log p(z) and, in `gaussian_backward`, their gradient together with
// the decoder's gradient through z, giving dLoss/d[μ, log σ²].
//
// Rows are samples: row r = s·B + b holds sample s of image b, so L samples share one encoder pass.
// The loss is -(1/(B·L)) Σ_r [log p(x|z_r) + log p(z_r) - log q(z_r|x)] and `scale` = 1/(B·L).
// CPU twin: `cpu::reference::{sample_latent, latent_backward}`.

struct GaussParams {
    rows: u32,
    batch: u32,
    dz: u32,
    // rng::stream: 0 = training noise (counter uses the optimizer step), 1 = evaluation (batch).
    stream: u32,
    seed_lo: u32,
    seed_hi: u32,
    scale: f32,
    _pad: u32,
}

const HALF_LOG_TWO_PI: f32 = 0.918938533204673;

@group(0) @binding(0) var<uniform> p: GaussParams;
@group(0) @binding(1) var<storage, read> state: StepState;
@group(0) @binding(2) var<storage, read> enc: array<f32>;        // [B, 2·Dz] = [μ | log σ²]
@group(0) @binding(3) var<storage, read_write> z: array<f32>;    // [B·L, Dz]
@group(0) @binding(4) var<storage, read_write> eps: array<f32>;  // [B·L, Dz]
@group(0) @binding(5) var<storage, read_write> prior_minus_q: array<f32>; // [B·L]

fn log_normal(x: f32, mu: f32, logvar: f32) -> f32 {
    let d = x - mu;
    return -HALF_LOG_TWO_PI - 0.5 * logvar - 0.5 * d * d * exp(-logvar);
}

@compute @workgroup_size(64)
fn gaussian_forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let r = gid.x + gid.y * nwg.x * 64u;
    if (r >= p.rows) {
        return;
    }
    let b = r % p.batch;
    var counter_step = state.step;
    if (p.stream != 0u) {
        counter_step = state.batch;
    }
    let key = vec2<u32>(p.seed_lo, p.seed_hi);
    var acc = 0.0;
    let blocks = (p.dz + 3u) / 4u;
    for (var blk = 0u; blk < blocks; blk = blk + 1u) {
        let n = normal4(vec4<u32>(r, blk, counter_step, p.stream), key);
        for (var j = 0u; j < 4u; j = j + 1u) {
            let d = blk * 4u + j;
            if (d < p.dz) {
                let mu = enc[b * 2u * p.dz + d];
                let lv = enc[b * 2u * p.dz + p.dz + d];
                let e = n[j];
                let zv = mu + exp(0.5 * lv) * e;
                z[r * p.dz + d] = zv;
                eps[r * p.dz + d] = e;
                acc = acc + log_normal(zv, 0.0, 0.0) - log_normal(zv, mu, lv);
            }
        }
    }
    prior_minus_q[r] = acc;
}

@group(0) @binding(6) var<storage, read> dz_dec: array<f32>;      // dLoss/dz through the decoder
@group(0) @binding(7) var<storage, read_write> denc: array<f32>;  // [B, 2·Dz]

// One thread per (image, latent dimension); sums over the L samples of that image.
@compute @workgroup_size(64)
fn gaussian_backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let t = gid.x + gid.y * nwg.x * 64u;
    if (t >= p.batch * p.dz) {
        return;
    }
    let b = t / p.dz;
    let d = t % p.dz;
    let mu = enc[b * 2u * p.dz + d];
    let lv = enc[b * 2u * p.dz + p.dz + d];
    let sigma = exp(0.5 * lv);
    let inv_var = exp(-lv);
    let samples = p.rows / p.batch;
    var dmu = 0.0;
    var dlv = 0.0;
    for (var s = 0u; s < samples; s = s + 1u) {
        let i = (s * p.batch + b) * p.dz + d;
        let zv = z[i];
        let e = eps[i];
        let diff = zv - mu;
        // Explicit dependence of -log p(z) + log q(z|x) on z, plus the decoder's gradient.
        let gz = dz_dec[i] + p.scale * (zv - diff * inv_var);
        dmu = dmu + gz + p.scale * diff * inv_var;
        dlv = dlv + gz * 0.5 * sigma * e + p.scale * (-0.5 + 0.5 * diff * diff * inv_var);
    }
    denc[b * 2u * p.dz + d] = dmu;
    denc[b * 2u * p.dz + p.dz + d] = dlv;
}
