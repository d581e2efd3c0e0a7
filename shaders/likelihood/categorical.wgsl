// Categorical over k = BINS bins (emitted by the Rust twin) of the 8-bit value (byte v in bin ⌊v·k/256⌋):
// log p = o_bin − logsumexp(o), d/do_c = [c = bin] − softmax_c. T = one-hot(bin), η = o, A = lse.
// CPU twin: `family::likelihood::categorical`.

fn cat_log_sum_exp(base: u32, stride: u32) -> f32 {
    var top = outputs[base];
    for (var c = 1u; c < BINS; c = c + 1u) {
        top = max(top, outputs[base + c * stride]);
    }
    var s = 0.0;
    for (var c = 0u; c < BINS; c = c + 1u) {
        s = s + exp(outputs[base + c * stride] - top);
    }
    return top + log(s);
}

fn member_log_prob_grad(xv: f32, base: u32, stride: u32, free: f32, w: f32) -> vec2<f32> {
    let byte = u32(clamp(floor(xv * 255.0 + 0.5), 0.0, 255.0));
    let bin = (byte * BINS) >> 8u;
    let lse = cat_log_sum_exp(base, stride);
    for (var c = 0u; c < BINS; c = c + 1u) {
        let hit = select(0.0, 1.0, c == bin);
        d_outputs[base + c * stride] = w * (hit - exp(outputs[base + c * stride] - lse));
    }
    return vec2<f32>(outputs[base + bin * stride] - lse, 0.0);
}

fn member_natural(base: u32, stride: u32, free: f32, e: u32, e_stride: u32) -> f32 {
    for (var c = 0u; c < BINS; c = c + 1u) {
        eta[e + c * e_stride] = outputs[base + c * stride];
    }
    return cat_log_sum_exp(base, stride);
}
