// Gaussian: log p = −½(ln 2π + ln σ²) − (x − μ)²/(2σ²). μ = o₀ or σ(o₀) (SIGMOID_MEAN); σ² is
// FIXED_VARIANCE (VARIANCE_SOURCE 0), or VARIANCE_FLOOR + softplus(s) of the free parameter (1) or
// of the decoder's second output (2). The constants are emitted by the Rust twin.
// T = (x, x²), η = (μ/σ², −1/(2σ²)), A = μ²/(2σ²) + ½ ln(2πσ²). CPU twin:
// `family::likelihood::gaussian`.

const LOG_TWO_PI: f32 = 1.8378770664093453;

fn gauss_mean(base: u32) -> vec2<f32> {
    let o = outputs[base];
    if (SIGMOID_MEAN) {
        let m = sigmoid(o);
        return vec2<f32>(m, m * (1.0 - m));
    }
    return vec2<f32>(o, 1.0);
}

// (σ², dσ²/d raw)
fn gauss_var(base: u32, stride: u32, free: f32) -> vec2<f32> {
    let kind = VARIANCE_SOURCE;
    if (kind == 0u) {
        return vec2<f32>(FIXED_VARIANCE, 0.0);
    }
    var raw = free;
    if (kind == 2u) {
        raw = outputs[base + stride];
    }
    return vec2<f32>(softplus(raw) + VARIANCE_FLOOR, sigmoid(raw));
}

fn member_log_prob_grad(xv: f32, base: u32, stride: u32, free: f32, w: f32) -> vec2<f32> {
    let mu = gauss_mean(base);
    let var_ = gauss_var(base, stride, free);
    let diff = xv - mu.x;
    let inv = 1.0 / var_.x;
    let lp_ = -0.5 * (LOG_TWO_PI + log(var_.x)) - 0.5 * diff * diff * inv;
    d_outputs[base] = w * (diff * inv * mu.y);
    let dvar = 0.5 * inv * (diff * diff * inv - 1.0);
    let kind = VARIANCE_SOURCE;
    if (kind == 2u) {
        d_outputs[base + stride] = w * (dvar * var_.y);
    }
    if (kind == 1u) {
        return vec2<f32>(lp_, dvar * var_.y);
    }
    return vec2<f32>(lp_, 0.0);
}

fn member_natural(base: u32, stride: u32, free: f32, e: u32, e_stride: u32) -> f32 {
    let mu = gauss_mean(base).x;
    let v = gauss_var(base, stride, free).x;
    eta[e] = mu / v;
    eta[e + e_stride] = -0.5 / v;
    return 0.5 * mu * mu / v + 0.5 * (LOG_TWO_PI + log(v));
}
