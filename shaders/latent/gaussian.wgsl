// The Gaussian latent family: standard member N(0, 1), scale σ = exp(½·log σ²) from the encoder's
// `logvar` head; its noise is `normal4` in philox.wgsl. CPU twin: src/family/latent/gaussian.rs.

const HALF_LOG_TWO_PI: f32 = 0.918938533204673;

// (σ, dσ/dhead).
fn gaussian_scale(head: f32) -> vec2<f32> {
    let s = exp(0.5 * head);
    return vec2<f32>(s, 0.5 * s);
}

// (log φ(u), d log φ/du).
fn gaussian_log_standard(u: f32) -> vec2<f32> {
    return vec2<f32>(-HALF_LOG_TWO_PI - 0.5 * u * u, -u);
}
