// Continuous Bernoulli: log p = x·l − softplus(l) + log C(l), C(l) = l / tanh(l/2). Inside
// |l| < 1/4 the Taylor series (the closed form cancels at l = 0); a real branch, so the closed form
// (ln(1 − e^-|l|) → −∞ at l = 0) is never evaluated there. CPU twin:
// `family::likelihood::continuous_bernoulli`.

// (log C(l), d log C / dl)
fn cb_log_normaliser(l: f32) -> vec2<f32> {
    let a = abs(l);
    if (a < TAYLOR_BAND) { // TAYLOR_BAND is emitted by the Rust twin
        let l2 = l * l;
        let value = 0.6931471805599453 + l2 * (1.0 / 12.0 - l2 * (7.0 / 1440.0 - l2 * (31.0 / 90720.0)));
        let slope = l * (1.0 / 6.0 - l2 * (7.0 / 360.0 - l2 * (31.0 / 15120.0)));
        return vec2<f32>(value, slope);
    }
    let t = exp(-a);
    let value = log(a) + log(1.0 + t) - log(1.0 - t);
    let slope_abs = 1.0 / a - 2.0 * t / (1.0 - t * t);
    return vec2<f32>(value, select(-slope_abs, slope_abs, l >= 0.0));
}

fn member_log_prob_grad(xv: f32, base: u32, stride: u32, free: f32, w: f32) -> vec2<f32> {
    let l = outputs[base];
    let c = cb_log_normaliser(l);
    let e = exp(-abs(l));
    let sig = select(e / (1.0 + e), 1.0 / (1.0 + e), l >= 0.0);
    d_outputs[base] = w * (xv - sig + c.y);
    return vec2<f32>(xv * l - softplus(l) + c.x, 0.0);
}

fn member_natural(base: u32, stride: u32, free: f32, e: u32, e_stride: u32) -> f32 {
    let l = outputs[base];
    eta[e] = l;
    return softplus(l) - cb_log_normaliser(l).x;
}
