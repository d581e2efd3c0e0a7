// Closed-form KL(q ‖ p) per latent dimension, q = family(μ, s), p centred with scale c, and its
// derivatives in μ and s: returns (KL, ∂KL/∂μ, ∂KL/∂s). The formulas and why Gaussian ‖ Laplace is
// absent are in the CPU twin, src/family/latent/kl.rs. Needs HALF_LOG_TWO_PI and LN_2.

fn analytic_kl(q: u32, p: u32, mu: f32, s: f32, c: f32) -> vec3<f32> {
    let inv_c2 = 1.0 / (c * c);
    if (q == 0u) {
        // Gaussian ‖ Normal
        return vec3<f32>(log(c / s) + 0.5 * (s * s + mu * mu) * inv_c2 - 0.5, mu * inv_c2, s * inv_c2 - 1.0 / s);
    }
    if (p == 0u) {
        // Laplace ‖ Normal
        let kl = log(c) + (HALF_LOG_TWO_PI - LN_2 - 1.0) - log(s) + 0.5 * (mu * mu + 2.0 * s * s) * inv_c2;
        return vec3<f32>(kl, mu * inv_c2, 2.0 * s * inv_c2 - 1.0 / s);
    }
    // Laplace ‖ Laplace
    let a = abs(mu);
    let e = exp(-a / s);
    return vec3<f32>(log(c / s) + a / c + s / c * e - 1.0, sign(mu) * (1.0 - e) / c, -1.0 / s + e * (1.0 + a / s) / c);
}
