//! log Γ and digamma (ψ) for the Beta likelihood, written so that f32 gives a stated accuracy and
//! the same algorithm runs in WGSL (`shaders/likelihood/special.wgsl`), which has neither.
//!
//! Both shift the argument up to z ≥ 8 with the recurrences Γ(x+1) = x·Γ(x) and
//! ψ(x+1) = ψ(x) + 1/x, then use the asymptotic (Stirling) series, whose truncation error at z ≥ 8
//! is below 1/(1680·8⁷) ≈ 3·10⁻¹⁰ for log Γ and 1/(240·8⁸) ≈ 2·10⁻¹⁰ for ψ. In f32 the error is
//! then rounding: a few ulps of the largest term, i.e. |error| ≲ 4·ε·(|log Γ(x)| + 1) for log Γ,
//! which the tests check against f64 over the range the Beta parameters reach.

use crate::cpu::Scalar;

const SHIFT_TO: f64 = 8.0;
const HALF_LOG_TWO_PI: f64 = 0.918_938_533_204_672_8;

/// log Γ(x) for x > 0.
pub fn lgamma<T: Scalar>(x: T) -> T {
    let mut z = x;
    let mut product = T::one();
    while z < T::from_f64(SHIFT_TO) {
        product = product * z;
        z += T::one();
    }
    let inv = T::one() / z;
    let inv2 = inv * inv;
    let series = inv
        * (T::from_f64(1.0 / 12.0)
            - inv2 * (T::from_f64(1.0 / 360.0) - inv2 * T::from_f64(1.0 / 1260.0)));
    (z - T::from_f64(0.5)) * z.ln() - z + T::from_f64(HALF_LOG_TWO_PI) + series - product.ln()
}

/// ψ(x) = d log Γ(x) / dx for x > 0.
pub fn digamma<T: Scalar>(x: T) -> T {
    let mut z = x;
    let mut shift = T::zero();
    while z < T::from_f64(SHIFT_TO) {
        shift += T::one() / z;
        z += T::one();
    }
    let inv = T::one() / z;
    let inv2 = inv * inv;
    let series = inv2
        * (T::from_f64(1.0 / 12.0)
            - inv2 * (T::from_f64(1.0 / 120.0) - inv2 * T::from_f64(1.0 / 252.0)));
    z.ln() - T::from_f64(0.5) * inv - series - shift
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_values() {
        // Γ(1) = Γ(2) = 1, Γ(½) = √π, ψ(1) = −γ, ψ(½) = −γ − 2 ln 2. In f64 the error is the
        // series truncation stated above (≤ 3·10⁻¹⁰), plus rounding far below it.
        let gamma = 0.577_215_664_901_532_9;
        let tol = 5e-10;
        assert!(lgamma(1.0f64).abs() < tol);
        assert!(lgamma(2.0f64).abs() < tol);
        assert!((lgamma(0.5f64) - 0.5 * std::f64::consts::PI.ln()).abs() < tol);
        assert!((digamma(1.0f64) + gamma).abs() < tol);
        assert!((digamma(0.5f64) + gamma + 2.0 * 2f64.ln()).abs() < tol);
        // log Γ(100) = ln(99!)
        let ln99: f64 = (1..100).map(|k| (k as f64).ln()).sum();
        assert!((lgamma(100.0f64) - ln99).abs() < 1e-9);
    }

    #[test]
    fn f32_is_within_its_stated_accuracy_of_f64() {
        let eps = f32::EPSILON as f64;
        let mut x = 1e-3f64;
        while x < 5e3 {
            // The result is a sum of terms as large as (z − ½)·ln z and z with z ≤ x + 8: the
            // rounding error scales with them, not with |log Γ(x)|, which cancels to 0 at 1 and 2.
            // Rounding x itself to f32 adds |ψ(x)|·x·ε.
            let terms = (x + 8.0) * (x + 8.0).ln();
            let (l64, l32) = (lgamma(x), lgamma(x as f32) as f64);
            let tol = 4.0 * eps * (l64.abs() + terms) + digamma(x).abs() * x * eps;
            assert!((l32 - l64).abs() <= tol, "lgamma({x}): {l32} vs {l64}");
            // ψ: terms up to 1/x (the shift) and ln z; rounding x adds ψ'(x)·x·ε ≈ ε/x.
            let (d64, d32) = (digamma(x), digamma(x as f32) as f64);
            let dtol = 16.0 * eps * (d64.abs() + 1.0 / x + (x + 8.0).ln());
            assert!((d32 - d64).abs() <= dtol, "digamma({x}): {d32} vs {d64}");
            x *= 1.37;
        }
    }
}
