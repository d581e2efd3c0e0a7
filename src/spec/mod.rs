//! The model specification: one serde value that says which member of the VAE family a run trains.
//! Everything else is derived from it — the flat parameter layout and checkpoint names
//! ([`layout`]), the CPU reference pass, the GPU dispatch list, and the words the report uses.
//!
//! A spec is stored in every checkpoint's `config` (as `model`). Checkpoints written before the
//! family existed stored `{"input": 784, "hidden": 500, "latent": 2}`; they deserialize to the
//! same model (one tanh hidden layer of 500 on both sides, Bernoulli likelihood, PyTorch init).

pub mod flags;
pub mod layers;
pub mod layout;

use serde::{Deserialize, Serialize};

use crate::data::PIXELS;
pub use crate::family::likelihood::{GaussianMean, Likelihood, Variance};
pub use layers::{linear, ConvSpec, LayerSpec};
pub use layout::{init_params, Layer, LayerKind, Layout};

/// Nonlinearity after every hidden layer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Activation {
    /// tanh (Kingma & Welling's choice)
    #[default]
    Tanh,
    /// max(0, x)
    Relu,
    /// 1 / (1 + e^-x)
    Sigmoid,
}

impl Activation {
    /// The code of this activation in the matmul epilogue (`shaders/matmul.wgsl`).
    pub fn code(self) -> u32 {
        match self {
            Activation::Tanh => 1,
            Activation::Relu => 2,
            Activation::Sigmoid => 3,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Activation::Tanh => "tanh",
            Activation::Relu => "ReLU",
            Activation::Sigmoid => "sigmoid",
        }
    }
}

/// How the networks' parameters start.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Init {
    /// PyTorch's `nn.Linear` default: weights and biases uniform in ±1/√fan_in.
    #[default]
    Pytorch,
    /// Weights N(0, std²), biases 0 (STATS271 HW6 uses std = 0.01).
    Normal { std: f32 },
}

/// A family of latent distributions, as the posterior q(z|x) or the prior p(z). Each is a
/// location-scale family: z = μ + s·ε with ε from its standard member.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LatentFamily {
    /// Gaussian: q = N(μ, σ²), the encoder gives log σ²
    #[default]
    Gaussian,
    /// Laplace: q = Laplace(μ, b), density e^(−|z−μ|/b)/(2b), the encoder gives log b
    Laplace,
}

impl LatentFamily {
    /// The code the WGSL kernels switch on.
    pub fn code(self) -> u32 {
        match self {
            LatentFamily::Gaussian => 0,
            LatentFamily::Laplace => 1,
        }
    }

    /// The name of the encoder's scale head in checkpoints.
    pub fn scale_head(self) -> &'static str {
        match self {
            LatentFamily::Gaussian => "logvar",
            LatentFamily::Laplace => "logscale",
        }
    }
}

/// The prior p(z): a centred member of a latent family, N(0, scale²·I) or Laplace(0, scale)
/// per dimension.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Prior {
    pub family: LatentFamily,
    pub scale: f32,
}

impl Default for Prior {
    fn default() -> Self {
        Self {
            family: LatentFamily::Gaussian,
            scale: 1.0,
        }
    }
}

impl Prior {
    pub fn describe(&self) -> String {
        match (self.family, self.scale) {
            (LatentFamily::Gaussian, 1.0) => "N(0, I) prior".into(),
            (LatentFamily::Gaussian, s) => format!("N(0, {s}²·I) prior"),
            (LatentFamily::Laplace, s) => format!("Laplace(0, {s}) prior"),
        }
    }
}

/// How the ELBO's KL(q(z|x) ‖ p(z)) term is computed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum KlMode {
    /// log p(z) − log q(z|x) at the sampled z (Kingma & Welling's estimator B is the analytic one)
    #[default]
    Mc,
    /// the closed form, where one exists (Gaussian‖Normal, Laplace‖Normal, Laplace‖Laplace)
    Analytic,
}

/// Which member of the family: shapes, layers, likelihood and initialisation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(from = "SpecRepr")]
pub struct ModelSpec {
    /// Input dimension D (784 for MNIST).
    pub input: usize,
    /// The input's `[channels, height, width]`, for encoders that start with a convolution;
    /// `None`: rows are flat vectors.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<[usize; 3]>,
    /// The encoder's hidden layers, input side first (a number is a linear layer's width).
    pub encoder: Vec<LayerSpec>,
    /// The decoder's hidden layers, latent side first.
    pub decoder: Vec<LayerSpec>,
    pub activation: Activation,
    /// Latent dimension Dz.
    pub latent: usize,
    /// q(z|x).
    pub posterior: LatentFamily,
    pub prior: Prior,
    pub kl: KlMode,
    pub likelihood: Likelihood,
    pub init: Init,
}

/// What a stored spec may look like: the family's fields, or the single `hidden` width of the
/// checkpoints written before it. A spec file (`train --model-file`) may leave out any field:
/// `input` 784, `latent` 2, `encoder` [500] and the decoder mirroring the encoder, and the
/// defaults of the rest. Unknown fields are errors, so a misspelt one is not silently ignored.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SpecRepr {
    #[serde(default = "default_input")]
    input: usize,
    #[serde(default)]
    image: Option<[usize; 3]>,
    #[serde(default)]
    hidden: Option<usize>,
    #[serde(default)]
    encoder: Option<Vec<LayerSpec>>,
    #[serde(default)]
    decoder: Option<Vec<LayerSpec>>,
    #[serde(default)]
    activation: Activation,
    #[serde(default = "default_latent")]
    latent: usize,
    #[serde(default)]
    posterior: LatentFamily,
    #[serde(default)]
    prior: Prior,
    #[serde(default)]
    kl: KlMode,
    #[serde(default)]
    likelihood: Likelihood,
    #[serde(default)]
    init: Init,
}

fn default_input() -> usize {
    PIXELS
}

fn default_latent() -> usize {
    2
}

impl From<SpecRepr> for ModelSpec {
    fn from(r: SpecRepr) -> Self {
        let hidden = r.hidden.map(|h| vec![LayerSpec::Linear(h)]);
        let encoder = r
            .encoder
            .or(hidden.clone())
            .unwrap_or_else(|| vec![LayerSpec::Linear(500)]);
        let decoder = r
            .decoder
            .or(hidden)
            .unwrap_or_else(|| encoder.iter().rev().copied().collect());
        Self {
            input: r.input,
            image: r.image,
            encoder,
            decoder,
            activation: r.activation,
            latent: r.latent,
            posterior: r.posterior,
            prior: r.prior,
            kl: r.kl,
            likelihood: r.likelihood,
            init: r.init,
        }
    }
}

/// One of each member of the family, for the tests that must cover them all (and for examples).
pub mod members {
    use super::{KlMode, LatentFamily, Likelihood, Prior};

    /// Every likelihood configuration the members list as covering their code paths (each
    /// Gaussian mean and variance source once, …): derived from `family::likelihood::MEMBERS`.
    pub fn likelihoods() -> Vec<Likelihood> {
        crate::family::likelihood::all_examples()
    }

    /// Every latent combination the spec allows: posterior × prior (with scales other than 1) ×
    /// KL mode, the default (Gaussian q, N(0, 1), Monte Carlo) first.
    pub fn latents() -> Vec<(LatentFamily, Prior, KlMode)> {
        let prior = |family, scale| Prior { family, scale };
        let (g, l) = (LatentFamily::Gaussian, LatentFamily::Laplace);
        vec![
            (g, prior(g, 1.0), KlMode::Mc),
            (g, prior(l, 0.7), KlMode::Mc),
            (l, prior(g, 1.0), KlMode::Mc),
            (l, prior(l, 1.5), KlMode::Mc),
            (g, prior(g, 2.0), KlMode::Analytic),
            (l, prior(g, 1.3), KlMode::Analytic),
            (l, prior(l, 0.8), KlMode::Analytic),
        ]
    }
}

/// Largest hidden width and latent dimension a spec may ask for.
pub const MAX_WIDTH: usize = 16_384;
/// Most channels a convolution may have, and its largest kernel.
pub const MAX_CHANNELS: usize = 1024;
pub const MAX_KERNEL: usize = 15;
/// Most values one row may have between layers (64 channels of a 128×128 image).
pub const MAX_FEATURES: usize = 1 << 20;
/// Most hidden layers (reshapes included) on each side.
pub const MAX_DEPTH: usize = 12;
pub const MAX_LATENT: usize = 1024;
/// Largest data dimension (a 256×256 image).
pub const MAX_INPUT: usize = 65_536;

impl ModelSpec {
    /// The Appendix C model: one tanh hidden layer of `hidden` units on both sides, Bernoulli.
    pub fn mnist(hidden: usize, latent: usize) -> Self {
        Self {
            input: PIXELS,
            image: None,
            encoder: vec![LayerSpec::Linear(hidden)],
            decoder: vec![LayerSpec::Linear(hidden)],
            activation: Activation::Tanh,
            latent,
            posterior: LatentFamily::Gaussian,
            prior: Prior::default(),
            kl: KlMode::Mc,
            likelihood: Likelihood::Bernoulli,
            init: Init::Pytorch,
        }
    }

    pub fn layout(&self) -> Layout {
        Layout::new(self)
    }

    /// A spec from a JSON file (`train --model-file`), checked; errors name the file and say what
    /// was wrong in it.
    pub fn from_file(path: &std::path::Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("--model-file {}: {e}", path.display()))?;
        let spec: Self = serde_json::from_str(&text)
            .map_err(|e| format!("--model-file {}: {e}", path.display()))?;
        spec.check()
            .map_err(|e| format!("--model-file {}: {e}", path.display()))?;
        Ok(spec)
    }

    /// Rejects what cannot be trained, naming the field: impossible combinations and values a
    /// hand-edited checkpoint could bring in.
    pub fn check(&self) -> Result<(), String> {
        if !(1..=MAX_INPUT).contains(&self.input) {
            return Err(format!(
                "model.input is {}, outside 1..={MAX_INPUT}",
                self.input
            ));
        }
        if !(1..=MAX_LATENT).contains(&self.latent) {
            return Err(format!(
                "model.latent is {}, outside 1..={MAX_LATENT}",
                self.latent
            ));
        }
        if let Some(shape) = self.image {
            // Saturating: a shape too large to count is as wrong as any other mismatch.
            let n = shape.iter().fold(1usize, |n, &d| n.saturating_mul(d));
            if n != self.input {
                return Err(format!(
                    "model.image {}×{}×{} has {n} values but model.input is {}",
                    shape[0], shape[1], shape[2], self.input
                ));
            }
        }
        for (side, layers) in [("encoder", &self.encoder), ("decoder", &self.decoder)] {
            if layers.len() > MAX_DEPTH {
                return Err(format!(
                    "model.{side} has {} hidden layers, at most {MAX_DEPTH}",
                    layers.len()
                ));
            }
            for (i, layer) in layers.iter().enumerate() {
                check_layer(layer).map_err(|e| format!("model.{side}[{i}]: {e}"))?;
            }
        }
        let layout = layout::Layout::try_new(self)?;
        if let Some(l) = layout.layers().find(|l| l.out > MAX_FEATURES) {
            return Err(format!(
                "a layer gives {} values per row, more than {MAX_FEATURES}",
                l.out
            ));
        }
        self.likelihood.check()?;
        if !(self.prior.scale.is_finite() && self.prior.scale > 0.0) {
            return Err(format!(
                "the prior's scale is {}; it must be a positive number",
                self.prior.scale
            ));
        }
        if self.kl == KlMode::Analytic
            && (self.posterior, self.prior.family)
                == (LatentFamily::Gaussian, LatentFamily::Laplace)
        {
            return Err(
                "--kl analytic: KL(Gaussian q ‖ Laplace prior) has no elementary closed form \
                 (E|z| under a Gaussian needs erf); use --kl mc, or a Laplace posterior"
                    .into(),
            );
        }
        if let Init::Normal { std } = self.init {
            if !(std.is_finite() && std > 0.0) {
                return Err(format!(
                    "init normal:{std}: the standard deviation must be positive"
                ));
            }
        }
        Ok(())
    }

    /// The architecture in words, e.g. "MLP encoder 784-500-4 / decoder 2-500-784, tanh hidden
    /// units; …" or, with convolutions, "encoder 1×28×28 → conv 32×14×14 → … → 4 / decoder …".
    pub fn describe(&self) -> String {
        let init = match self.init {
            Init::Pytorch => "PyTorch default init".to_string(),
            Init::Normal { std } => format!("weights N(0, {std}²), biases 0"),
        };
        format!(
            "{}, {} hidden units; {} q(z|x), {}, {} KL; {}; {init}",
            self.describe_layers(),
            self.activation.name(),
            match self.posterior {
                LatentFamily::Gaussian => "Gaussian",
                LatentFamily::Laplace => "Laplace",
            },
            self.prior.describe(),
            match self.kl {
                KlMode::Mc => "Monte Carlo",
                KlMode::Analytic => "analytic",
            },
            self.likelihood.describe()
        )
    }

    /// Whether any layer is a convolution.
    pub fn is_convolutional(&self) -> bool {
        self.encoder
            .iter()
            .chain(&self.decoder)
            .any(|l| !matches!(l, LayerSpec::Linear(_)))
    }

    /// Each side's layers with the shapes between them.
    fn describe_layers(&self) -> String {
        if !self.is_convolutional() {
            let widths = |w: Vec<usize>| {
                w.iter()
                    .map(|v| v.to_string())
                    .collect::<Vec<_>>()
                    .join("-")
            };
            let linear = |side: &[LayerSpec]| {
                side.iter()
                    .filter_map(|l| match l {
                        LayerSpec::Linear(n) => Some(*n),
                        _ => None,
                    })
                    .collect::<Vec<_>>()
            };
            let enc = [vec![self.input], linear(&self.encoder), vec![self.latent]].concat();
            let dec = [vec![self.latent], linear(&self.decoder), vec![self.input]].concat();
            return format!("MLP encoder {} / decoder {}", widths(enc), widths(dec));
        }
        let layout = self.layout();
        let side = |start: String, layers: &[Layer]| {
            let mut parts = vec![start];
            for l in layers {
                parts.push(match l.kind {
                    LayerKind::Linear => l.out.to_string(),
                    LayerKind::Conv2d(g) => format!(
                        "conv{} s{} p{} {}×{}×{}",
                        g.kernel, g.stride, g.padding, g.result[0], g.result[1], g.result[2]
                    ),
                    LayerKind::ConvTranspose2d(g) => format!(
                        "convT{} s{} p{} {}×{}×{}",
                        g.kernel, g.stride, g.padding, g.image[0], g.image[1], g.image[2]
                    ),
                });
            }
            parts.join(" → ")
        };
        let input = match self.image {
            Some([c, h, w]) => format!("{c}×{h}×{w}"),
            None => self.input.to_string(),
        };
        format!(
            "encoder {} / decoder {}",
            side(input, &layout.encoder),
            side(self.latent.to_string(), &layout.decoder)
        )
    }
}

/// The limits on one layer's own numbers (the shapes are checked by the layout).
fn check_layer(layer: &LayerSpec) -> Result<(), String> {
    match *layer {
        LayerSpec::Linear(w) if !(1..=MAX_WIDTH).contains(&w) => Err(format!(
            "a hidden layer of width {w}, outside 1..={MAX_WIDTH}"
        )),
        LayerSpec::Conv2d(c) | LayerSpec::ConvTranspose2d(c) => {
            if let Some(out) = c.out.filter(|o| !(1..=MAX_CHANNELS).contains(o)) {
                return Err(format!("{out} output channels, outside 1..={MAX_CHANNELS}"));
            }
            if !(1..=MAX_KERNEL).contains(&c.kernel) || !(1..=MAX_KERNEL).contains(&c.stride) {
                return Err(format!(
                    "kernel {} stride {}: both must be 1..={MAX_KERNEL}",
                    c.kernel, c.stride
                ));
            }
            if c.padding >= c.kernel {
                return Err(format!(
                    "padding {} is not smaller than the kernel {}",
                    c.padding, c.kernel
                ));
            }
            Ok(())
        }
        LayerSpec::Reshape(s) if s.contains(&0) => Err("a reshape to an empty shape".into()),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_old_stored_form_is_the_appendix_c_model() {
        let old: ModelSpec =
            serde_json::from_str(r#"{"input":784,"hidden":500,"latent":2}"#).unwrap();
        assert_eq!(old, ModelSpec::mnist(500, 2));
        let round: ModelSpec = serde_json::from_str(&serde_json::to_string(&old).unwrap()).unwrap();
        assert_eq!(round, old);
    }

    #[test]
    fn every_likelihood_round_trips_through_json() {
        for lik in members::likelihoods() {
            let s = ModelSpec {
                likelihood: lik,
                ..ModelSpec::mnist(20, 3)
            };
            let back: ModelSpec =
                serde_json::from_str(&serde_json::to_string(&s).unwrap()).unwrap();
            assert_eq!(back, s);
        }
    }

    #[test]
    fn impossible_specs_are_rejected_with_the_field_named() {
        let bad = |f: &dyn Fn(&mut ModelSpec)| {
            let mut s = ModelSpec::mnist(20, 2);
            f(&mut s);
            s.check().unwrap_err()
        };
        assert!(
            bad(&|s| s.encoder = vec![LayerSpec::Linear(20), LayerSpec::Linear(0)])
                .contains("width 0")
        );
        assert!(bad(&|s| s.likelihood = Likelihood::Categorical { bins: 1 }).contains("--bins 1"));
        assert!(bad(&|s| {
            s.likelihood = Likelihood::Gaussian {
                mean: GaussianMean::Identity,
                variance: Variance::Fixed { sigma: 0.0 },
            }
        })
        .contains("fixed σ"));
        assert!(bad(&|s| s.init = Init::Normal { std: -1.0 }).contains("standard deviation"));
        assert!(bad(&|s| {
            s.kl = KlMode::Analytic;
            s.prior.family = LatentFamily::Laplace;
        })
        .contains("no elementary closed form"));
        assert!(bad(&|s| s.prior.scale = 0.0).contains("prior's scale"));
    }
}
