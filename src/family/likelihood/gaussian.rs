//! Gaussian p(x|z) = N(x; μ, σ²) per pixel. μ is the decoder's first output (identity) or its
//! sigmoid; σ² is fixed, a free parameter s per pixel, or the decoder's second output, the last
//! two as σ² = 10⁻⁴ + softplus(s). The floor (σ ≥ 0.01) is what keeps a pixel that is 0 in every
//! image (MNIST's border) from driving σ² → 0 and log p → +∞; softplus keeps the gradient smooth
//! where a clamp would stall it. Twin of `shaders/likelihood/gaussian.wgsl`.

use serde::{Deserialize, Serialize};

use super::{positive, Likelihood, Member, Options, Outputs};
use crate::cpu::Scalar;
use crate::data::representation::Representation;
use crate::family::activation::sigmoid;

/// How a Gaussian likelihood maps the decoder's mean output to μ.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum GaussianMean {
    /// μ = decoder output
    #[default]
    Identity,
    /// μ = sigmoid(decoder output), inside (0, 1) like the pixels
    Sigmoid,
}

/// Where a Gaussian likelihood's per-pixel variance comes from.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Variance {
    /// One fixed σ for every pixel.
    Fixed { sigma: f32 },
    /// A free parameter per pixel (the same for every image), σ² = floor + softplus(s).
    Learned,
    /// One free parameter shared by every pixel, σ² = floor + softplus(s): probabilistic PCA's
    /// isotropic noise, which makes a VAE without hidden layers the notes' "stochastic linear
    /// autoencoder".
    Shared,
    /// A second decoder output per pixel, σ²(z) = floor + softplus(output).
    Decoder,
}

impl Variance {
    /// The `--variance` value.
    pub fn flag_value(self) -> String {
        match self {
            Variance::Fixed { sigma } => format!("fixed:{sigma}"),
            Variance::Learned => "learned".into(),
            Variance::Shared => "shared".into(),
            Variance::Decoder => "decoder".into(),
        }
    }

    /// The code `shaders/likelihood/gaussian.wgsl` switches on (emitted as `VARIANCE_SOURCE`).
    fn code(self) -> u32 {
        match self {
            Variance::Fixed { .. } => 0,
            Variance::Learned | Variance::Shared => 1,
            Variance::Decoder => 2,
        }
    }
}

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
    fn spec(&self) -> Likelihood {
        Likelihood::Gaussian {
            mean: self.mean,
            variance: self.variance,
        }
    }

    fn name(&self) -> &'static str {
        "gaussian"
    }

    fn help(&self) -> &'static str {
        "Gaussian on grayscale pixels or real values; see --mean and --variance"
    }

    fn describe(&self) -> String {
        let var = match self.variance {
            Variance::Fixed { sigma } => format!("fixed σ = {sigma}"),
            Variance::Learned => "a learned variance per pixel".into(),
            Variance::Shared => "one learned variance for every pixel".into(),
            Variance::Decoder => "σ²(z) from the decoder".into(),
        };
        let mean = match self.mean {
            GaussianMean::Identity => "identity means",
            GaussianMean::Sigmoid => "sigmoid means",
        };
        format!("Gaussian p(x|z), {var}, {mean}")
    }

    fn models(&self) -> &'static str {
        "real values (pixel/255, dequantized pixels, or real-valued rows)"
    }

    fn channels(&self) -> usize {
        if self.variance == Variance::Decoder {
            2
        } else {
            1
        }
    }

    fn head_names(&self) -> Vec<&'static str> {
        if self.variance == Variance::Decoder {
            vec!["mean", "variance"]
        } else {
            vec!["mean"]
        }
    }

    fn free_parameters(&self, input: usize) -> usize {
        match self.variance {
            Variance::Learned => input,
            Variance::Shared => 1,
            _ => 0,
        }
    }

    fn free_parameter_name(&self, _input: usize) -> &'static str {
        match self.variance {
            Variance::Shared => "decoder.shared_variance",
            _ => "decoder.pixel_variance",
        }
    }

    fn check(&self) -> Result<(), String> {
        match self.variance {
            Variance::Fixed { sigma } if !(sigma.is_finite() && sigma > 0.0) => Err(format!(
                "--variance fixed:{sigma}: the fixed σ must be a positive number"
            )),
            _ => Ok(()),
        }
    }

    fn representations(&self) -> &'static [Representation] {
        &[Representation::Grayscale, Representation::Dequantize]
    }

    fn real_values(&self) -> bool {
        true
    }

    /// A density of dequantized pixels bounds log P of the bytes: log P(k) ≥ E_u log p − D·ln 256.
    fn bits_offset(&self, r: Representation) -> Option<f64> {
        (r == Representation::Dequantize).then(|| 256f64.ln())
    }

    fn options(&self) -> &'static [&'static str] {
        &["--mean", "--variance"]
    }

    fn with_options(&self, o: &Options) -> Likelihood {
        Likelihood::Gaussian {
            mean: o.mean.unwrap_or(self.mean),
            variance: o.variance.unwrap_or(self.variance),
        }
    }

    fn option_values(&self) -> Vec<(&'static str, String)> {
        vec![
            ("--mean", format!("{:?}", self.mean).to_lowercase()),
            ("--variance", self.variance.flag_value()),
        ]
    }

    /// Each mean and each variance source once.
    fn examples(&self) -> Vec<Likelihood> {
        let g = |mean, variance| Likelihood::Gaussian { mean, variance };
        vec![
            g(GaussianMean::Identity, Variance::Fixed { sigma: 0.3 }),
            g(GaussianMean::Sigmoid, Variance::Learned),
            g(GaussianMean::Identity, Variance::Decoder),
            g(GaussianMean::Identity, Variance::Shared),
        ]
    }

    fn wgsl(&self) -> &'static str {
        include_str!("../../../shaders/likelihood/gaussian.wgsl")
    }

    fn wgsl_constants(&self) -> String {
        let fixed = match self.variance {
            Variance::Fixed { sigma } => sigma * sigma,
            _ => 0.0,
        };
        format!(
            "const SIGMOID_MEAN: bool = {};\nconst VARIANCE_SOURCE: u32 = {}u;\n\
             const FIXED_VARIANCE: f32 = {fixed:?};\nconst VARIANCE_FLOOR: f32 = {:?};\n",
            self.mean == GaussianMean::Sigmoid,
            self.variance.code(),
            VARIANCE_FLOOR as f32
        )
    }

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
