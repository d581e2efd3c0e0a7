//! The continuous Bernoulli (Loaiza-Ganem & Cunningham 2019): p(x|λ) = C(λ)·λ^x (1−λ)^(1−x) on
//! [0, 1], λ = σ(l). Its normaliser in terms of the logit is C = l / tanh(l/2), so
//! log C(l) = ln|l| + ln(1 + e^−|l|) − ln(1 − e^−|l|), which cancels catastrophically near l = 0
//! (λ = ½). There the Taylor series log C = ln 2 + l²/12 − 7l⁴/1440 + 31l⁶/90720 is used, and its
//! derivative l/6 − 7l³/360 + 31l⁵/15120 for d log C / dl = 1/l − 1/sinh l. At the band edge
//! |l| = ¼ the first omitted terms are below 10⁻⁸ of the value, and the closed form has lost at
//! most ~4/0.04·ε. Twin of `shaders/likelihood/continuous_bernoulli.wgsl`.

use super::{Likelihood, Member, Outputs};
use crate::cpu::Scalar;
use crate::data::representation::Representation;
use crate::family::activation::softplus;

pub struct ContinuousBernoulli;

/// Below this |l| the Taylor branch is used.
pub const TAYLOR_BAND: f64 = 0.25;

/// (log C(l), d log C / dl).
pub fn log_normaliser<T: Scalar>(l: T) -> (T, T) {
    let a = l.abs();
    if a < T::from_f64(TAYLOR_BAND) {
        let l2 = l * l;
        let value = T::from_f64(std::f64::consts::LN_2)
            + l2 * (T::from_f64(1.0 / 12.0)
                - l2 * (T::from_f64(7.0 / 1440.0) - l2 * T::from_f64(31.0 / 90720.0)));
        let slope = l
            * (T::from_f64(1.0 / 6.0)
                - l2 * (T::from_f64(7.0 / 360.0) - l2 * T::from_f64(31.0 / 15120.0)));
        (value, slope)
    } else {
        let t = (-a).exp();
        let value = a.ln() + (T::one() + t).ln() - (T::one() - t).ln();
        // 1/|l| − 1/sinh|l|, 1/sinh|l| = 2t/(1 − t²); odd in l.
        let slope_abs = T::one() / a - T::from_f64(2.0) * t / (T::one() - t * t);
        (
            value,
            if l >= T::zero() {
                slope_abs
            } else {
                -slope_abs
            },
        )
    }
}

impl Member for ContinuousBernoulli {
    fn spec(&self) -> Likelihood {
        Likelihood::ContinuousBernoulli
    }

    fn name(&self) -> &'static str {
        "continuous-bernoulli"
    }

    fn help(&self) -> &'static str {
        "Continuous Bernoulli on grayscale pixels (the normalised version of bernoulli-ce)"
    }

    fn describe(&self) -> String {
        "continuous Bernoulli p(x|z) on grayscale pixels".into()
    }

    fn models(&self) -> &'static str {
        "values in [0, 1] with a normalised density"
    }

    fn representations(&self) -> &'static [Representation] {
        &[Representation::Grayscale, Representation::Dequantize]
    }

    /// A density of dequantized pixels bounds log P of the bytes: log P(k) ≥ E_u log p − D·ln 256.
    fn bits_offset(&self, r: Representation) -> Option<f64> {
        (r == Representation::Dequantize).then(|| 256f64.ln())
    }

    fn wgsl(&self) -> &'static str {
        include_str!("../../../shaders/likelihood/continuous_bernoulli.wgsl")
    }

    fn wgsl_constants(&self) -> String {
        format!("const TAYLOR_BAND: f32 = {TAYLOR_BAND:?};\n")
    }

    fn stats(&self) -> usize {
        1
    }

    fn log_prob_grad<T: Scalar>(
        &self,
        x: T,
        o: Outputs<T>,
        _free: T,
        mut grad: impl FnMut(usize, T),
    ) -> (T, T) {
        let l = o.get(0);
        let (log_c, dlog_c) = log_normaliser(l);
        let e = (-l.abs()).exp();
        let sig = if l >= T::zero() {
            T::one() / (T::one() + e)
        } else {
            e / (T::one() + e)
        };
        grad(0, x - sig + dlog_c);
        (x * l - softplus(l) + log_c, T::zero())
    }

    fn sufficient<T: Scalar>(&self, x: T, t: &mut [T]) {
        t[0] = x;
    }

    fn natural<T: Scalar>(&self, o: Outputs<T>, _free: T, eta: &mut [T]) -> T {
        let l = o.get(0);
        eta[0] = l;
        softplus(l) - log_normaliser(l).0
    }

    /// E[x] = 1/(1 − e^−l) − 1/l, → ½ + l/12 at l = 0.
    fn mean(&self, o: Outputs<f64>, _free: f64) -> f64 {
        let l = o.get(0);
        if l.abs() < 1e-4 {
            0.5 + l / 12.0
        } else {
            1.0 / (-(-l).exp_m1()) - 1.0 / l
        }
    }

    /// Inverse CDF: x = ln(1 + u·(e^l − 1)) / l.
    fn sample(&self, o: Outputs<f64>, _free: f64, u: f64, _n: f64) -> f64 {
        let l = o.get(0);
        if l.abs() < 1e-6 {
            u
        } else {
            (u * l.exp_m1()).ln_1p() / l
        }
    }
}
