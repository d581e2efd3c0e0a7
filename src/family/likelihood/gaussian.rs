//! Gaussian p(x|z) = N(x; μ, σ²) per pixel. μ is the decoder's first output (identity) or its
//! sigmoid; σ² is fixed, a free parameter s per pixel, or the decoder's second output, the last
//! two as σ² = 10⁻⁴ + softplus(s). The floor (σ ≥ 0.01) is what keeps a pixel that is 0 in every
//! image (MNIST's border) from driving σ² → 0 and log p → +∞; softplus keeps the gradient smooth
//! where a clamp would stall it. Twin of `shaders/likelihood/gaussian.wgsl`.

use super::{positive, Member, Outputs};
use crate::cpu::Scalar;
use crate::family::activation::sigmoid;
use crate::spec::{GaussianMean, Variance};

/// The smallest variance a learned or decoded σ² can reach.
pub const VARIANCE_FLOOR: f64 = 1e-4;
const LOG_TWO_PI: f64 = 1.837_877_066_409_345_5;

pub struct Gaussian {
    mean: GaussianMean,
    variance: Variance,
}

impl Gaussian {
    pub fn new(mean: GaussianMean, variance: Variance) -> Self {
        Self { mean, variance }
    }

    /// (μ, dμ/do₀).
    fn mu<T: Scalar>(&self, o: &Outputs<T>) -> (T, T) {
        match self.mean {
            GaussianMean::Identity => (o.get(0), T::one()),
            GaussianMean::Sigmoid => {
                let m = sigmoid(o.get(0));
                (m, m * (T::one() - m))
            }
        }
    }

    /// (σ², dσ²/d raw) where raw is the free parameter or the decoder's second output.
    fn var<T: Scalar>(&self, o: &Outputs<T>, free: T) -> (T, T) {
        match self.variance {
            Variance::Fixed { sigma } => (T::from_f64((sigma as f64).powi(2)), T::zero()),
            Variance::Learned | Variance::Shared => positive(free, VARIANCE_FLOOR),
            Variance::Decoder => positive(o.get(1), VARIANCE_FLOOR),
        }
    }
}

impl Member for Gaussian {
    fn stats(&self) -> usize {
        2
    }

    fn log_prob_grad<T: Scalar>(
        &self,
        x: T,
        o: Outputs<T>,
        free: T,
        mut grad: impl FnMut(usize, T),
    ) -> (T, T) {
        let (mu, dmu) = self.mu(&o);
        let (var, dvar) = self.var(&o, free);
        let half = T::from_f64(0.5);
        let diff = x - mu;
        let inv = T::one() / var;
        let lp = -half * (T::from_f64(LOG_TWO_PI) + var.ln()) - half * diff * diff * inv;
        grad(0, diff * inv * dmu);
        let dlp_dvar = half * inv * (diff * diff * inv - T::one());
        match self.variance {
            Variance::Decoder => {
                grad(1, dlp_dvar * dvar);
                (lp, T::zero())
            }
            Variance::Learned | Variance::Shared => (lp, dlp_dvar * dvar),
            Variance::Fixed { .. } => (lp, T::zero()),
        }
    }

    fn sufficient<T: Scalar>(&self, x: T, t: &mut [T]) {
        t[0] = x;
        t[1] = x * x;
    }

    /// η = (μ/σ², −1/(2σ²)), A = μ²/(2σ²) + ½·ln(2πσ²).
    fn natural<T: Scalar>(&self, o: Outputs<T>, free: T, eta: &mut [T]) -> T {
        let (mu, _) = self.mu(&o);
        let (var, _) = self.var(&o, free);
        let half = T::from_f64(0.5);
        eta[0] = mu / var;
        eta[1] = -half / var;
        half * mu * mu / var + half * (T::from_f64(LOG_TWO_PI) + var.ln())
    }

    fn mean(&self, o: Outputs<f64>, _free: f64) -> f64 {
        self.mu(&o).0
    }

    fn sample(&self, o: Outputs<f64>, free: f64, _u: f64, n: f64) -> f64 {
        self.mu(&o).0 + self.var(&o, free).0.sqrt() * n
    }
}
