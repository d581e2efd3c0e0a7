// The Laplace latent family: standard member e^(−|u|)/2, scale b = exp(head) from the encoder's
// `logscale` head; its noise is `laplace4` in philox.wgsl. CPU twin: src/family/latent/laplace.rs.

const LN_2: f32 = 0.693147180559945;

// (b, db/dhead).
fn laplace_scale(head: f32) -> vec2<f32> {
    let b = exp(head);
    return vec2<f32>(b, b);
}

// (log f(u), d log f/du); the derivative is 0 at u = 0.
fn laplace_log_standard(u: f32) -> vec2<f32> {
    return vec2<f32>(-abs(u) - LN_2, -sign(u));
}
