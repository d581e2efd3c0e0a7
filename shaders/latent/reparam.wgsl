// The latent layer of the ELBO: reparameterized sample z = μ + s·ε (ε from Philox, standard
// variates of the posterior family), per row log p(z) − log q(z|x) (Monte Carlo KL) or −KL(q ‖ p)
// (analytic), and in `latent_backward` their gradient together with the decoder's gradient through
// z, giving dLoss/d[μ, head]. The families are gaussian.wgsl and laplace.wgsl (code 0 and 1), the
// closed forms kl.wgsl; the formulas are derived in src/family/latent/mod.rs, the CPU twin
// (`sample_latent`, `latent_backward`).
//
// Rows are samples: row r = s·B + b holds sample s of image b, so L samples share one encoder pass.
// The loss is -Σ_r weight_r·[log p(x|z_r) + log p(z_r) - log q(z_r|x)]: weight_r = `scale` =
// 1/(B·L) for the ELBO, or `row_weights[r]` (IWAE's ŵ_r/B from iwae.wgsl) when `per_row` is 1.

struct LatentParams {
    rows: u32,
    batch: u32,
    dz: u32,
    // rng::stream: 0 = training noise (counter uses the optimizer step), 1 = evaluation (batch).
    stream: u32,
    seed_lo: u32,
    seed_hi: u32,
    scale: f32,
    // LatentFamily codes of q(z|x) and p(z); the prior's scale c; 1 = analytic KL.
    posterior: u32,
    prior: u32,
    prior_scale: f32,
    analytic: u32,
    // 1: weight row r by row_weights[r] (the IWAE objective); 0: every row by `scale`
    per_row: u32,
    // Added to the row word of the noise counter: E-step s of --inference vem draws at row
    // r + s·B·L, so its S steps of one batch never share noise (0 otherwise).
    row_offset: u32,
    // 1: the counter's third word is state.batch (evaluation), 0: state.step (training).
    by_batch: u32,
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<uniform> p: LatentParams;
@group(0) @binding(1) var<storage, read> state: StepState;
@group(0) @binding(2) var<storage, read> enc: array<f32>;        // [B, 2·Dz] = [μ | head]
@group(0) @binding(3) var<storage, read_write> z: array<f32>;    // [B·L, Dz]
@group(0) @binding(4) var<storage, read_write> eps: array<f32>;  // [B·L, Dz]
@group(0) @binding(5) var<storage, read_write> prior_minus_q: array<f32>; // [B·L]

fn family_scale(family: u32, head: f32) -> vec2<f32> {
    if (family == 1u) {
        return laplace_scale(head);
    }
    return gaussian_scale(head);
}

fn family_log_standard(family: u32, u: f32) -> vec2<f32> {
    if (family == 1u) {
        return laplace_log_standard(u);
    }
    return gaussian_log_standard(u);
}

fn standard4(family: u32, counter: vec4<u32>, key: vec2<u32>) -> vec4<f32> {
    if (family == 1u) {
        return laplace4(counter, key);
    }
    return normal4(counter, key);
}

// (log p(z), d log p/dz) of the centred prior.
fn prior_log_density(zv: f32) -> vec2<f32> {
    let c = p.prior_scale;
    let l = family_log_standard(p.prior, zv / c);
    return vec2<f32>(l.x - log(c), l.y / c);
}

@compute @workgroup_size(64)
fn latent_forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let r = flat_thread(gid, nwg, 64u);
    if (r >= p.rows) {
        return;
    }
    let b = r % p.batch;
    var counter_step = state.step;
    if (p.by_batch != 0u) {
        counter_step = state.batch;
    }
    let key = vec2<u32>(p.seed_lo, p.seed_hi);
    var acc = 0.0;
    let blocks = (p.dz + 3u) / 4u;
    for (var blk = 0u; blk < blocks; blk = blk + 1u) {
        let n = standard4(p.posterior, vec4<u32>(r + p.row_offset, blk, counter_step, p.stream), key);
        for (var j = 0u; j < 4u; j = j + 1u) {
            let d = blk * 4u + j;
            if (d < p.dz) {
                let mu = enc[b * 2u * p.dz + d];
                let s = family_scale(p.posterior, enc[b * 2u * p.dz + p.dz + d]).x;
                let e = n[j];
                let zv = mu + s * e;
                z[r * p.dz + d] = zv;
                eps[r * p.dz + d] = e;
                if (p.analytic != 0u) {
                    acc = acc - analytic_kl(p.posterior, p.prior, mu, s, p.prior_scale).x;
                } else {
                    acc = acc + prior_log_density(zv).x - (family_log_standard(p.posterior, e).x - log(s));
                }
            }
        }
    }
    prior_minus_q[r] = acc;
}

@group(0) @binding(6) var<storage, read> dz_dec: array<f32>;      // dLoss/dz through the decoder
@group(0) @binding(7) var<storage, read_write> denc: array<f32>;  // [B, 2·Dz]
// [B·L] IWAE row weights; bound to any [B·L] buffer and unread for the ELBO
@group(0) @binding(8) var<storage, read> row_weights: array<f32>;

fn row_weight(r: u32) -> f32 {
    if (p.per_row == 1u) {
        return row_weights[r];
    }
    return p.scale;
}

// One thread per (image, latent dimension); sums over the L samples of that image.
@compute @workgroup_size(64)
fn latent_backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let t = flat_thread(gid, nwg, 64u);
    if (t >= p.batch * p.dz) {
        return;
    }
    let b = t / p.dz;
    let d = t % p.dz;
    let mu = enc[b * 2u * p.dz + d];
    let sc = family_scale(p.posterior, enc[b * 2u * p.dz + p.dz + d]);
    let s = sc.x;
    let ds = sc.y;
    let samples = p.rows / p.batch;
    var dmu = 0.0;
    var dhead = 0.0;
    var weight_sum = 0.0;
    for (var smp = 0u; smp < samples; smp = smp + 1u) {
        let i = (smp * p.batch + b) * p.dz + d;
        let e = eps[i];
        var gz = dz_dec[i];
        let w = row_weight(smp * p.batch + b);
        weight_sum = weight_sum + w;
        if (p.analytic == 0u) {
            let dlogp = prior_log_density(z[i]).y;
            let dlogf = family_log_standard(p.posterior, e).y;
            gz = gz + w * (dlogf / s - dlogp);
            dmu = dmu - w * dlogf / s;
            dhead = dhead - w * (dlogf * e + 1.0) * ds / s;
        }
        dmu = dmu + gz;
        dhead = dhead + gz * e * ds;
    }
    if (p.analytic != 0u) {
        let k = analytic_kl(p.posterior, p.prior, mu, s, p.prior_scale);
        var weight = p.scale * f32(samples);
        if (p.per_row == 1u) {
            weight = weight_sum;
        }
        dmu = dmu + weight * k.y;
        dhead = dhead + weight * k.z * ds;
    }
    denc[b * 2u * p.dz + d] = dmu;
    denc[b * 2u * p.dz + p.dz + d] = dhead;
}
