//! The Gaussian latent family: standard member N(0, 1), scale σ = exp(½·log σ²) from the
//! encoder's `logvar` head. Twin of `shaders/latent/gaussian.wgsl`; its noise is `rng::normal4`.

use crate::cpu::Scalar;

/// ½·ln(2π).
pub const HALF_LOG_TWO_PI: f64 = 0.918_938_533_204_672_8;

/// (σ, dσ/dhead) for head = log σ².
pub fn scale<T: Scalar>(head: T) -> (T, T) {
    let s = (T::from_f64(0.5) * head).exp();
    (s, T::from_f64(0.5) * s)
}

/// The head that gives scale `s`.
pub fn head_of_scale<T: Scalar>(s: T) -> T {
    T::from_f64(2.0) * s.ln()
}

/// (log φ(u), d log φ / du) for the standard normal density φ.
pub fn log_standard<T: Scalar>(u: T) -> (T, T) {
    (-T::from_f64(HALF_LOG_TWO_PI) - T::from_f64(0.5) * u * u, -u)
}
