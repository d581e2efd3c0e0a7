//! The discretized logistic (Salimans et al. 2017, PixelCNN++): per pixel a logistic with mean
//! μ(z) and log-scale s(z) from the decoder, and P(byte k) its mass over the k-th of 256 bins of
//! width 1/256 on [0, 1], the bins 0 and 255 taking the tails (−∞, 1/256] and [255/256, ∞). A
//! distribution over the 8-bit values themselves, so its nats are log P of the data and its
//! bits/dim are on the scale of the categorical's and the dequantized densities'.
//!
//! As in PixelCNN++ the log-scale is floored at −7 (s = max(o₁, −7)). Stability in f32: with
//! a, b = (centre ± ½ bin − μ)/scale, the mass σ(a) − σ(b) is taken in log space exactly,
//! log(σ(a) − σ(b)) = log(e^δ − 1) − softplus(−b) − softplus(a) with δ = a − b = e^(−s)/256,
//! so a bin far in a tail (where σ(a) − σ(b) underflows, and PixelCNN++ falls back to the
//! midpoint density) keeps its exact log mass, and log(e^δ − 1) uses a series for small δ.
//! T = one-hot(byte) (256 statistics), η_k = log P(k), A = 0. Twin of
//! `shaders/likelihood/discretized_logistic.wgsl`.

use super::{byte_of, Likelihood, Member, Outputs};
use crate::cpu::Scalar;
use crate::data::representation::Representation;
use crate::family::activation::{sigmoid, softplus};

/// Half the width of a pixel's bin.
pub const HALF_BIN: f64 = 1.0 / 512.0;
/// PixelCNN++'s floor on the log-scale.
pub const LOG_SCALE_MIN: f64 = -7.0;
/// Below this δ, e^δ − 1 is summed as a series (the subtraction would lose digits).
const SERIES_BELOW: f64 = 0.5;
const BYTES: usize = 256;

pub struct DiscretizedLogistic;

/// e^d − 1 for d ≥ 0, accurate to rounding also for small d (the series to d¹³/13! below ½:
/// the first omitted term is under 2·10⁻¹⁵ of the value).
pub fn expm1<T: Scalar>(d: T) -> T {
    if d < T::from_f64(SERIES_BELOW) {
        let mut t = T::one();
        for n in (2..=13).rev() {
            t = T::one() + d / T::from_f64(n as f64) * t;
        }
        d * t
    } else {
        d.exp() - T::one()
    }
}

/// (log P(byte | μ, s), ∂/∂μ, ∂/∂s) for a log-scale s already floored.
pub fn log_mass<T: Scalar>(byte: u32, mu: T, s: T) -> (T, T, T) {
    let inv = (-s).exp();
    let c = T::from_f64((byte as f64 + 0.5) / BYTES as f64) - mu;
    let h = T::from_f64(HALF_BIN);
    let (a, b) = (inv * (c + h), inv * (c - h));
    if byte == 0 {
        // log σ(a)
        let g = sigmoid(-a);
        return (-softplus(-a), -inv * g, -a * g);
    }
    if byte as usize == BYTES - 1 {
        // log(1 − σ(b))
        let g = sigmoid(b);
        return (-softplus(b), inv * g, b * g);
    }
    let d = inv * T::from_f64(2.0 * HALF_BIN);
    let em = expm1(d);
    let lp = em.ln() - softplus(-b) - softplus(a);
    let (sa, snb) = (sigmoid(a), sigmoid(-b));
    // d/dδ log(e^δ − 1) = 1 + 1/(e^δ − 1), and ∂δ/∂s = −δ.
    (lp, inv * (sa - snb), a * sa - b * snb - (d + d / em))
}

impl DiscretizedLogistic {
    /// (μ, s, whether s is above its floor).
    fn location_scale<T: Scalar>(o: &Outputs<T>) -> (T, T, bool) {
        let raw = o.get(1);
        let floor = T::from_f64(LOG_SCALE_MIN);
        (o.get(0), raw.max(floor), raw > floor)
    }

    fn probabilities(o: &Outputs<f64>) -> Vec<f64> {
        let (mu, s, _) = Self::location_scale(o);
        (0..BYTES as u32)
            .map(|k| log_mass(k, mu, s).0.exp())
            .collect()
    }
}

impl Member for DiscretizedLogistic {
    fn spec(&self) -> Likelihood {
        Likelihood::DiscretizedLogistic
    }

    fn name(&self) -> &'static str {
        "discretized-logistic"
    }

    fn help(&self) -> &'static str {
        "Discretized logistic over the 256 pixel values (PixelCNN++), μ(z) and log-scale s(z) from the decoder"
    }

    fn describe(&self) -> String {
        "discretized logistic p(x|z) over the 8-bit values, μ(z), log-scale s(z) from the decoder"
            .into()
    }

    fn models(&self) -> &'static str {
        "the 8-bit values themselves (a distribution over the bytes: its bits/dim need no dequantization)"
    }

    fn channels(&self) -> usize {
        2
    }

    fn head_names(&self) -> Vec<&'static str> {
        vec!["mean", "log_scale"]
    }

    fn representations(&self) -> &'static [Representation] {
        &[Representation::Grayscale]
    }

    /// Its nats are already log P of the bytes.
    fn bits_offset(&self, r: Representation) -> Option<f64> {
        (r == Representation::Grayscale).then_some(0.0)
    }

    fn wgsl(&self) -> &'static str {
        include_str!("../../../shaders/likelihood/discretized_logistic.wgsl")
    }

    fn wgsl_constants(&self) -> String {
        format!(
            "const HALF_BIN: f32 = {:?};\nconst LOG_SCALE_MIN: f32 = {:?};\nconst SERIES_BELOW: f32 = {:?};\n",
            HALF_BIN as f32, LOG_SCALE_MIN as f32, SERIES_BELOW as f32
        )
    }

    fn stats(&self) -> usize {
        BYTES
    }

    fn log_prob_grad<T: Scalar>(
        &self,
        x: T,
        o: Outputs<T>,
        _free: T,
        mut grad: impl FnMut(usize, T),
    ) -> (T, T) {
        let (mu, s, above) = Self::location_scale(&o);
        let (lp, dmu, ds) = log_mass(byte_of(x), mu, s);
        grad(0, dmu);
        grad(1, if above { ds } else { T::zero() });
        (lp, T::zero())
    }

    fn sufficient<T: Scalar>(&self, x: T, t: &mut [T]) {
        let k = byte_of(x) as usize;
        for (c, v) in t.iter_mut().enumerate() {
            *v = if c == k { T::one() } else { T::zero() };
        }
    }

    /// All 256 log masses of one pixel share its bin edges e_j = (j/256 − μ)·e^(−s) and δ:
    /// log P(k) = log(e^δ − 1) − softplus(−e_k) − softplus(e_(k+1)), softplus(−e) =
    /// softplus(e) − e, so one softplus per edge instead of the per-byte [`log_mass`] (the grid
    /// posterior evaluates this for every grid point and pixel).
    fn natural<T: Scalar>(&self, o: Outputs<T>, _free: T, eta: &mut [T]) -> T {
        let (mu, s, _) = Self::location_scale(&o);
        let inv = (-s).exp();
        let edge = |j: usize| inv * (T::from_f64(j as f64 / BYTES as f64) - mu);
        let log_em = expm1(inv * T::from_f64(2.0 * HALF_BIN)).ln();
        let mut lower = edge(1);
        let mut sp_lower = softplus(lower);
        eta[0] = -(sp_lower - lower);
        for (k, e) in eta.iter_mut().enumerate().take(BYTES - 1).skip(1) {
            let upper = edge(k + 1);
            let sp_upper = softplus(upper);
            *e = log_em - (sp_lower - lower) - sp_upper;
            (lower, sp_lower) = (upper, sp_upper);
        }
        eta[BYTES - 1] = -sp_lower;
        T::zero()
    }

    /// E[x] with byte k at k/255, the grayscale value the data have.
    fn mean(&self, o: Outputs<f64>, _free: f64) -> f64 {
        Self::probabilities(&o)
            .iter()
            .enumerate()
            .map(|(k, p)| p * k as f64 / 255.0)
            .sum()
    }

    /// A logistic draw μ + scale·logit(u), put into its bin.
    fn sample(&self, o: Outputs<f64>, _free: f64, u: f64, _n: f64) -> f64 {
        let (mu, s, _) = Self::location_scale(&o);
        let v = mu + s.exp() * (u / (1.0 - u)).ln();
        (v * BYTES as f64).floor().clamp(0.0, 255.0) / 255.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outputs(v: &[f64; 2]) -> Outputs<'_, f64> {
        Outputs { data: v, stride: 1 }
    }

    /// The 256 masses sum to 1 wherever the logistic sits, however narrow or wide.
    #[test]
    fn the_masses_are_a_distribution_over_the_bytes() {
        for mu in [-3.0, -0.01, 0.0, 0.3, 0.5001, 1.0, 4.0] {
            for s in [-7.0, -5.0, -2.0, 0.0, 3.0] {
                let p = DiscretizedLogistic::probabilities(&outputs(&[mu, s]));
                let total: f64 = p.iter().sum();
                assert!((total - 1.0).abs() < 1e-9, "μ {mu} s {s}: {total}");
            }
        }
    }

    /// The log-space mass equals the definition log(σ(a) − σ(b)) in f64 where that is accurate,
    /// and, far in a tail where σ(a) − σ(b) underflows even in f64, PixelCNN++'s midpoint
    /// density: log pdf(centre) + log(bin width).
    #[test]
    fn the_log_mass_is_its_definition_and_exact_in_the_tails() {
        let sig = |t: f64| 1.0 / (1.0 + (-t).exp());
        for (k, mu, s) in [
            (37u32, 0.2, -2.0),
            (128, 0.5, -6.9),
            (200, 0.1, 0.5),
            (1, 0.9, -4.0),
        ] {
            let inv = (-s).exp();
            let c = (k as f64 + 0.5) / 256.0 - mu;
            let direct = (sig(inv * (c + HALF_BIN)) - sig(inv * (c - HALF_BIN))).ln();
            let (lp, _, _) = log_mass(k, mu, s);
            assert!(
                (lp - direct).abs() < 1e-9 * direct.abs().max(1.0),
                "{k}: {lp} vs {direct}"
            );
        }
        // μ = 0.9, scale e⁻⁷: byte 10 is 900 scales away; its mass ≈ e^-900 underflows f64.
        let (k, mu, s) = (10u32, 0.9f64, -7.0f64);
        let inv = (-s).exp();
        let m = inv * ((k as f64 + 0.5) / 256.0 - mu);
        let midpoint = m - s - 2.0 * softplus(m) + (2.0 * HALF_BIN).ln();
        let (lp, _, _) = log_mass(k, mu, s);
        assert!(lp.is_finite() && lp < -700.0, "{lp}");
        assert!(
            (lp - midpoint).abs() < 1e-3 * lp.abs(),
            "{lp} vs {midpoint}"
        );
        // The same in f32: finite, and within f32 rounding of the f64 value.
        let (lp32, dmu32, ds32) = log_mass(k, mu as f32, s as f32);
        assert!(lp32.is_finite() && dmu32.is_finite() && ds32.is_finite());
        assert!(
            ((lp32 as f64) - lp).abs() < 1e-5 * lp.abs(),
            "{lp32} vs {lp}"
        );
    }

    /// f64 central differences of log P in μ and s, in the middle, at both edge bins, in a far
    /// tail and for a wide logistic (δ inside the series band and outside it).
    #[test]
    fn gradients_match_central_differences() {
        let h = 1e-6;
        for (k, mu, s) in [
            (0u32, 0.3, -1.0),
            (255, 0.6, -3.0),
            (100, 0.39, -6.5),
            (100, 0.9, -6.0),
            (17, 0.05, 2.0),
            (240, 0.5, -5.2),
        ] {
            let (_, dmu, ds) = log_mass(k, mu, s);
            let f = |m: f64, t: f64| log_mass(k, m, t).0;
            let num_mu = (f(mu + h, s) - f(mu - h, s)) / (2.0 * h);
            let num_s = (f(mu, s + h) - f(mu, s - h)) / (2.0 * h);
            let close = |a: f64, b: f64| (a - b).abs() <= 1e-5 + 1e-6 * b.abs();
            assert!(close(dmu, num_mu), "{k} {mu} {s}: dμ {dmu} vs {num_mu}");
            assert!(close(ds, num_s), "{k} {mu} {s}: ds {ds} vs {num_s}");
        }
    }

    /// The shared-edge natural parameters are the per-byte log masses.
    #[test]
    fn natural_parameters_are_the_log_masses() {
        for (mu, s) in [(0.3, -6.0), (-0.2, -1.0), (0.95, -7.5), (0.5, 2.0)] {
            let o = [mu, s];
            let mut eta = vec![0.0; BYTES];
            DiscretizedLogistic.natural(outputs(&o), 0.0, &mut eta);
            let s = s.max(LOG_SCALE_MIN);
            for (k, e) in eta.iter().enumerate() {
                let want = log_mass(k as u32, mu, s).0;
                assert!(
                    (e - want).abs() <= 1e-9 * (1.0 + want.abs()),
                    "{k}: {e} vs {want}"
                );
            }
        }
    }

    #[test]
    fn expm1_is_accurate_on_both_sides_of_the_series_band() {
        for d in [1e-8, 1e-4, 0.1, 0.49, 0.5, 2.0, 30.0] {
            let want = f64::exp_m1(d);
            assert!((expm1(d) - want).abs() <= 1e-14 * want, "{d}");
            let got32 = expm1(d as f32) as f64;
            assert!(
                (got32 - want).abs() <= 4e-7 * want,
                "{d}: {got32} vs {want}"
            );
        }
    }
}
