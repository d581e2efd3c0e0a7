//! Closed-form KL(q ‖ p) per latent dimension for q = family(μ, s) and a centred prior of scale c,
//! with its derivatives in μ and s. Twin of `shaders/latent/kl.wgsl`.
//!
//! - Gaussian ‖ Normal: ln(c/s) + (s² + μ²)/(2c²) − ½.
//! - Laplace ‖ Normal: E_q[z²] = μ² + 2s², E_q[log q] = −ln(2s) − 1, so
//!   KL = ln c + ½ln 2π − ln 2 − ln s − 1 + (μ² + 2s²)/(2c²).
//! - Laplace ‖ Laplace: ln(c/s) + |μ|/c + (s/c)·e^(−|μ|/s) − 1.
//! - Gaussian ‖ Laplace needs E|z| under a Gaussian (erf): not offered; the spec rejects it.

use super::gaussian::HALF_LOG_TWO_PI;
use crate::cpu::Scalar;
use crate::spec::LatentFamily;

/// (KL, ∂KL/∂μ, ∂KL/∂s).
pub fn analytic_kl<T: Scalar>(q: LatentFamily, p: LatentFamily, mu: T, s: T, c: T) -> (T, T, T) {
    let inv_c2 = T::one() / (c * c);
    match (q, p) {
        (LatentFamily::Gaussian, LatentFamily::Gaussian) => (
            (c / s).ln() + T::from_f64(0.5) * (s * s + mu * mu) * inv_c2 - T::from_f64(0.5),
            mu * inv_c2,
            s * inv_c2 - T::one() / s,
        ),
        (LatentFamily::Laplace, LatentFamily::Gaussian) => (
            c.ln() + T::from_f64(HALF_LOG_TWO_PI - std::f64::consts::LN_2 - 1.0) - s.ln()
                + T::from_f64(0.5) * (mu * mu + T::from_f64(2.0) * s * s) * inv_c2,
            mu * inv_c2,
            T::from_f64(2.0) * s * inv_c2 - T::one() / s,
        ),
        (LatentFamily::Laplace, LatentFamily::Laplace) => {
            let a = mu.abs();
            let e = (-a / s).exp();
            let sign = if mu > T::zero() {
                T::one()
            } else if mu < T::zero() {
                -T::one()
            } else {
                T::zero()
            };
            (
                (c / s).ln() + a / c + s / c * e - T::one(),
                sign * (T::one() - e) / c,
                -T::one() / s + e * (T::one() + a / s) / c,
            )
        }
        (LatentFamily::Gaussian, LatentFamily::Laplace) => {
            unreachable!(
                "ModelSpec::check rejects an analytic KL from a Gaussian q to a Laplace prior"
            )
        }
    }
}
