// Beta: log p = (α−1) ln x + (β−1) ln(1−x) − ln B(α, β), α = 10⁻³ + softplus(o₀),
// β = 10⁻³ + softplus(o₁), x inside (0, 1): the middle of the pixel's 8-bit bin, (k + ½)/256, or a
// dequantized (k + u)/256, both made by the gather. T = (ln x, ln(1−x)),
// η = (α − 1, β − 1), A = ln B(α, β). Needs special.wgsl. CPU twin: `family::likelihood::beta`.

// SHAPE_FLOOR is emitted by the Rust twin.

fn member_log_prob_grad(xv: f32, base: u32, stride: u32, free: f32, w: f32) -> vec2<f32> {
    let lx = log(xv);
    let l1x = log(1.0 - xv);
    let oa = outputs[base];
    let ob = outputs[base + stride];
    let a = softplus(oa) + SHAPE_FLOOR;
    let b = softplus(ob) + SHAPE_FLOOR;
    let lp_ = (a - 1.0) * lx + (b - 1.0) * l1x - lgamma(a) - lgamma(b) + lgamma(a + b);
    let psi_ab = digamma(a + b);
    d_outputs[base] = w * ((lx - digamma(a) + psi_ab) * sigmoid(oa));
    d_outputs[base + stride] = w * ((l1x - digamma(b) + psi_ab) * sigmoid(ob));
    return vec2<f32>(lp_, 0.0);
}

fn member_natural(base: u32, stride: u32, free: f32, e: u32, e_stride: u32) -> f32 {
    let a = softplus(outputs[base]) + SHAPE_FLOOR;
    let b = softplus(outputs[base + stride]) + SHAPE_FLOOR;
    eta[e] = a - 1.0;
    eta[e + e_stride] = b - 1.0;
    return lgamma(a) + lgamma(b) - lgamma(a + b);
}
