// Hidden-layer activations (codes as `spec::Activation::code`: 1 tanh, 2 ReLU, 3 sigmoid; 0 none),
// their derivatives through the output (the backward pass keeps only a layer's output), and the
// stable softplus / sigmoid the likelihoods share. CPU twins: `family::activation`.

// tanh written so that it cannot overflow: exp(-2|x|) is in (0, 1] for every finite x, whereas a
// naive (e^x - e^-x)/(e^x + e^-x) gives inf/inf = NaN for |x| > 44. Near 0, where 1 - e^(-2|x|)
// cancels, the Taylor series to x⁷ (the same algorithm as the CPU twin).
fn tanh_stable(x: f32) -> f32 {
    let a = abs(x);
    var y: f32;
    if (a < 0.03) {
        let a2 = a * a;
        y = a * (1.0 - a2 * (1.0 / 3.0 - a2 * (2.0 / 15.0 - a2 * (17.0 / 315.0))));
    } else {
        let t = exp(-2.0 * a);
        y = (1.0 - t) / (1.0 + t);
    }
    return select(-y, y, x >= 0.0);
}

// The logistic sigmoid on the side that cannot overflow.
fn sigmoid(l: f32) -> f32 {
    let e = exp(-abs(l));
    return select(e / (1.0 + e), 1.0 / (1.0 + e), l >= 0.0);
}

// log(1 + e^l) = max(l, 0) + log(1 + e^-|l|): never exponentiates a positive number.
fn softplus(l: f32) -> f32 {
    return max(l, 0.0) + log(1.0 + exp(-abs(l)));
}

fn activate(code: u32, v: f32) -> f32 {
    switch code {
        case 1u: { return tanh_stable(v); }
        case 2u: { return max(v, 0.0); }
        case 3u: { return sigmoid(v); }
        default: { return v; }
    }
}

fn activation_grad_from_output(code: u32, h: f32) -> f32 {
    switch code {
        case 1u: { return 1.0 - h * h; }
        case 2u: { return select(0.0, 1.0, h > 0.0); }
        case 3u: { return h * (1.0 - h); }
        default: { return 1.0; }
    }
}
