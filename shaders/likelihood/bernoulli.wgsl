// Bernoulli: log p = x·l − softplus(l), d/dl = x − σ(l); one exp serves both. T = x, η = l,
// A = softplus(l). Also the cross-entropy objective on grayscale targets. CPU twin:
// `family::likelihood::bernoulli`.

fn member_log_prob_grad(xv: f32, base: u32, stride: u32, free: f32, w: f32) -> vec2<f32> {
    let l = outputs[base];
    let e = exp(-abs(l));
    let one_plus = 1.0 + e;
    let sig = select(e / one_plus, 1.0 / one_plus, l >= 0.0);
    d_outputs[base] = w * (xv - sig);
    return vec2<f32>(xv * l - (max(l, 0.0) + log(one_plus)), 0.0);
}

fn member_natural(base: u32, stride: u32, free: f32, e: u32, e_stride: u32) -> f32 {
    let l = outputs[base];
    eta[e] = l;
    return softplus(l);
}
