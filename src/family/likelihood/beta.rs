//! Beta p(x|z) = x^(α−1) (1−x)^(β−1) / B(α, β) per pixel, with α = 10⁻³ + softplus(o₀) and
//! β = 10⁻³ + softplus(o₁) from the decoder, of values strictly inside (0, 1). MNIST pixels are
//! often exactly 0 or 1, where the density is 0 or ∞, so the Beta models the `midpoint` data
//! representation, each 8-bit value k as the middle of its bin, x = (k + ½)/256 ∈ [0.002, 0.998],
//! or the `dequantize` one, (k + u)/256 (the gather makes both). log Γ and ψ come from
//! `family::special`. Twin of `shaders/likelihood/beta.wgsl`.

use super::{positive, Likelihood, Member, Outputs};
use crate::cpu::Scalar;
use crate::data::representation::Representation;
use crate::family::special::{digamma, lgamma};

/// The smallest α or β.
pub const SHAPE_FLOOR: f64 = 1e-3;

pub struct Beta;

impl Member for Beta {
    fn spec(&self) -> Likelihood {
        Likelihood::Beta
    }

    fn name(&self) -> &'static str {
        "beta"
    }

    fn help(&self) -> &'static str {
        "Beta on pixels inside (0, 1), α(z) and β(z) from the decoder"
    }

    fn describe(&self) -> String {
        "Beta p(x|z), α(z), β(z) from the decoder".into()
    }

    fn models(&self) -> &'static str {
        "values inside (0, 1), where its density is finite (MNIST's exact 0s and 1s are not)"
    }

    fn channels(&self) -> usize {
        2
    }

    fn head_names(&self) -> Vec<&'static str> {
        vec!["alpha", "beta"]
    }

    fn representations(&self) -> &'static [Representation] {
        &[Representation::Midpoint, Representation::Dequantize]
    }

    /// A density of dequantized pixels bounds log P of the bytes: log P(k) ≥ E_u log p − D·ln 256.
    fn bits_offset(&self, r: Representation) -> Option<f64> {
        (r == Representation::Dequantize).then(|| 256f64.ln())
    }

    fn wgsl(&self) -> &'static str {
        include_str!("../../../shaders/likelihood/beta.wgsl")
    }

    fn wgsl_constants(&self) -> String {
        format!("const SHAPE_FLOOR: f32 = {SHAPE_FLOOR:?};\n")
    }

    fn stats(&self) -> usize {
        2
    }

    fn log_prob_grad<T: Scalar>(
        &self,
        x: T,
        o: Outputs<T>,
        _free: T,
        mut grad: impl FnMut(usize, T),
    ) -> (T, T) {
        let (lx, l1x) = (x.ln(), (T::one() - x).ln());
        let (a, da) = positive(o.get(0), SHAPE_FLOOR);
        let (b, db) = positive(o.get(1), SHAPE_FLOOR);
        let lp = (a - T::one()) * lx + (b - T::one()) * l1x - lgamma(a) - lgamma(b) + lgamma(a + b);
        let psi_ab = digamma(a + b);
        grad(0, (lx - digamma(a) + psi_ab) * da);
        grad(1, (l1x - digamma(b) + psi_ab) * db);
        (lp, T::zero())
    }

    fn sufficient<T: Scalar>(&self, x: T, t: &mut [T]) {
        t[0] = x.ln();
        t[1] = (T::one() - x).ln();
    }

    /// η = (α − 1, β − 1), A = log B(α, β).
    fn natural<T: Scalar>(&self, o: Outputs<T>, _free: T, eta: &mut [T]) -> T {
        let (a, _) = positive(o.get(0), SHAPE_FLOOR);
        let (b, _) = positive(o.get(1), SHAPE_FLOOR);
        eta[0] = a - T::one();
        eta[1] = b - T::one();
        lgamma(a) + lgamma(b) - lgamma(a + b)
    }

    fn mean(&self, o: Outputs<f64>, _free: f64) -> f64 {
        let (a, _) = positive(o.get(0), SHAPE_FLOOR);
        let (b, _) = positive(o.get(1), SHAPE_FLOOR);
        a / (a + b)
    }

    /// By the inverse of a tabulated CDF ([`beta_quantile`]).
    fn sample(&self, o: Outputs<f64>, _free: f64, u: f64, _n: f64) -> f64 {
        let (a, _) = positive(o.get(0), SHAPE_FLOOR);
        let (b, _) = positive(o.get(1), SHAPE_FLOOR);
        beta_quantile(a, b, u)
    }
}

/// The u-quantile of Beta(a, b) from its density tabulated at 2,048 bin midpoints of (0, 1):
/// exact to the table's resolution, which is what a figure needs (draws for spiky α, β < 1 land in
/// the outermost cells).
pub fn beta_quantile(a: f64, b: f64, u: f64) -> f64 {
    const N: usize = 2048;
    let logpdf = |x: f64| (a - 1.0) * x.ln() + (b - 1.0) * (1.0 - x).ln();
    let xs: Vec<f64> = (0..N).map(|i| (i as f64 + 0.5) / N as f64).collect();
    let top = xs
        .iter()
        .map(|&x| logpdf(x))
        .fold(f64::NEG_INFINITY, f64::max);
    let w: Vec<f64> = xs.iter().map(|&x| (logpdf(x) - top).exp()).collect();
    let total: f64 = w.iter().sum();
    let mut acc = 0.0;
    for (x, wi) in xs.iter().zip(&w) {
        acc += wi / total;
        if acc >= u {
            return *x;
        }
    }
    xs[N - 1]
}
