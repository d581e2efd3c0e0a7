// Discretized logistic (PixelCNN++): P(byte k) is the mass of a logistic with mean μ = o₀ and
// log-scale s = max(o₁, LOG_SCALE_MIN) over bin k of width 2·HALF_BIN, the edge bins taking the
// tails. The interior mass in log space, exactly: log(σ(a) − σ(b)) = log(e^δ − 1) − softplus(−b)
// − softplus(a), a, b = (centre ± HALF_BIN − μ)·e^(−s), δ = 2·HALF_BIN·e^(−s); e^δ − 1 by its
// series below SERIES_BELOW. T = one-hot(byte), η_k = log P(k), A = 0. The constants are emitted
// by the CPU twin, `family::likelihood::discretized_logistic`.

fn dl_expm1(d: f32) -> f32 {
    if (d < SERIES_BELOW) {
        var t = 1.0;
        for (var n = 13u; n >= 2u; n = n - 1u) {
            t = 1.0 + d / f32(n) * t;
        }
        return d * t;
    }
    return exp(d) - 1.0;
}

// (log P(byte | μ, s), ∂/∂μ, ∂/∂s)
fn dl_log_mass(byte: u32, mu: f32, s: f32) -> vec3<f32> {
    let inv = exp(-s);
    let c = (f32(byte) + 0.5) / 256.0 - mu;
    let a = inv * (c + HALF_BIN);
    let b = inv * (c - HALF_BIN);
    if (byte == 0u) {
        let g = sigmoid(-a);
        return vec3<f32>(-softplus(-a), -inv * g, -a * g);
    }
    if (byte == 255u) {
        let g = sigmoid(b);
        return vec3<f32>(-softplus(b), inv * g, b * g);
    }
    let d = inv * (2.0 * HALF_BIN);
    let em = dl_expm1(d);
    let sa = sigmoid(a);
    let snb = sigmoid(-b);
    return vec3<f32>(log(em) - softplus(-b) - softplus(a), inv * (sa - snb), a * sa - b * snb - (d + d / em));
}

fn member_log_prob_grad(xv: f32, base: u32, stride: u32, free: f32, w: f32) -> vec2<f32> {
    let byte = u32(clamp(floor(xv * 255.0 + 0.5), 0.0, 255.0));
    let raw = outputs[base + stride];
    let r = dl_log_mass(byte, outputs[base], max(raw, LOG_SCALE_MIN));
    d_outputs[base] = w * r.y;
    d_outputs[base + stride] = w * select(0.0, r.z, raw > LOG_SCALE_MIN);
    return vec2<f32>(r.x, 0.0);
}

// All 256 log masses from the shared bin edges e_j = (j/256 − μ)·e^(−s), one softplus each
// (softplus(−e) = softplus(e) − e), as the CPU twin's `natural`.
fn member_natural(base: u32, stride: u32, free: f32, e: u32, e_stride: u32) -> f32 {
    let mu = outputs[base];
    let s = max(outputs[base + stride], LOG_SCALE_MIN);
    let inv = exp(-s);
    let log_em = log(dl_expm1(inv * (2.0 * HALF_BIN)));
    var lower = inv * (1.0 / 256.0 - mu);
    var sp_lower = softplus(lower);
    eta[e] = -(sp_lower - lower);
    for (var k = 1u; k < 255u; k = k + 1u) {
        let upper = inv * (f32(k + 1u) / 256.0 - mu);
        let sp_upper = softplus(upper);
        eta[e + k * e_stride] = log_em - (sp_lower - lower) - sp_upper;
        lower = upper;
        sp_lower = sp_upper;
    }
    eta[e + 255u * e_stride] = -sp_lower;
    return 0.0;
}
