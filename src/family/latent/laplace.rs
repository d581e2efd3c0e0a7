//! The Laplace latent family: standard member with density e^(−|u|)/2, scale b = exp(head) from
//! the encoder's `logscale` head. Twin of `shaders/latent/laplace.wgsl`; its noise is
//! `rng::laplace4` (inverse CDF of a Philox uniform).

use crate::cpu::Scalar;

/// (b, db/dhead) for head = log b.
pub fn scale<T: Scalar>(head: T) -> (T, T) {
    let b = head.exp();
    (b, b)
}

/// The head that gives scale `b`.
pub fn head_of_scale<T: Scalar>(b: T) -> T {
    b.ln()
}

/// (log f(u), d log f / du) for f(u) = e^(−|u|)/2. At u = 0 the derivative is taken as 0 (a set
/// of measure zero for a sampled u).
pub fn log_standard<T: Scalar>(u: T) -> (T, T) {
    let sign = if u > T::zero() {
        T::one()
    } else if u < T::zero() {
        -T::one()
    } else {
        T::zero()
    };
    (-u.abs() - T::from_f64(std::f64::consts::LN_2), -sign)
}
