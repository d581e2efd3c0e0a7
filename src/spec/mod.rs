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
pub use crate::family::activation::Activation;
pub use crate::family::likelihood::{GaussianMean, Likelihood, Variance};
pub use layers::{linear, ConvSpec, LayerSpec};
pub use layout::{init_params, Layer, LayerKind, Layout};

/// How the networks' parameters start.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Init {
    /// PyTorch's `nn.Linear` default: weights and biases uniform in ±1/√fan_in.
    #[default]
    Pytorch,
    /// Weights N(0, std²), biases 0 (STATS271 HW6 uses std = 0.01, the default in a file).
    Normal {
        #[serde(default = "default_init_std")]
        std: f32,
    },
}

fn default_init_std() -> f32 {
    0.01
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
#[serde(default, deny_unknown_fields)]
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
    #[serde(default, deserialize_with = "likelihood_with_defaults")]
    likelihood: Likelihood,
    #[serde(default)]
    init: Init,
}

/// A likelihood object of a spec: its `kind`, and any of the member's options, the rest taken
/// from the member's defaults (those of `--likelihood NAME`, from [`MEMBERS`]). A field the
/// member does not have is an error naming it and the member's fields, so a misspelt
/// `varience` is not reported as a missing `mean`.
///
/// [`MEMBERS`]: crate::family::likelihood::MEMBERS
fn likelihood_with_defaults<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Likelihood, D::Error> {
    use serde::de::Error as _;
    use serde_json::Value;
    let value = Value::deserialize(d)?;
    let Value::Object(mut given) = value else {
        return Likelihood::deserialize(value).map_err(D::Error::custom);
    };
    let members: Vec<serde_json::Map<String, Value>> = crate::family::likelihood::MEMBERS
        .iter()
        .filter_map(|m| match serde_json::to_value(m) {
            Ok(Value::Object(o)) => Some(o),
            _ => None,
        })
        .collect();
    let kinds: Vec<&str> = members
        .iter()
        .filter_map(|m| m.get("kind").and_then(Value::as_str))
        .collect();
    let Some(kind) = given.get("kind").and_then(Value::as_str).map(str::to_owned) else {
        return Err(D::Error::custom(format!(
            "the likelihood needs a \"kind\": one of {}",
            kinds.join(", ")
        )));
    };
    let Some(defaults) = members
        .iter()
        .find(|m| m.get("kind").and_then(Value::as_str) == Some(kind.as_str()))
    else {
        return Err(D::Error::custom(format!(
            "the likelihood kind `{kind}` is not one of {}",
            kinds.join(", ")
        )));
    };
    if let Some(bad) = given.keys().find(|k| !defaults.contains_key(*k)) {
        let fields: Vec<&str> = defaults
            .keys()
            .map(String::as_str)
            .filter(|k| *k != "kind")
            .collect();
        return Err(D::Error::custom(format!(
            "the {kind} likelihood has no field `{bad}`; {}",
            if fields.is_empty() {
                "it takes no options".to_string()
            } else {
                format!("its fields are {}", fields.join(", "))
            }
        )));
    }
    for (k, v) in defaults {
        given.entry(k.clone()).or_insert_with(|| v.clone());
    }
    Likelihood::deserialize(Value::Object(given)).map_err(D::Error::custom)
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
        // A specification is a few hundred bytes; only a regular file of at most 1 MiB is read
        // (not /dev/zero, a FIFO or a huge file).
        let text = crate::data::input::read_text(path, 1 << 20)
            .map_err(|e| format!("--model-file {}: {e}", path.display()))?;
        let spec: Self = serde_json::from_str(&text)
            .map_err(|e| format!("--model-file {}: {e}", path.display()))?;
        spec.check()
            .map_err(|e| format!("--model-file {}: {e}", path.display()))?;
        Ok(spec)
    }

    /// [`from_file`](Self::from_file) for data with `dim` values per row: the input size is the
    /// data's, so an `input` the file gives must be that (it was silently replaced).
    pub fn from_file_for(path: &std::path::Path, dim: usize) -> Result<Self, String> {
        let spec = Self::from_file(path)?;
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("--model-file {}: {e}", path.display()))?;
        let given = serde_json::from_str::<serde_json::Value>(&text)
            .ok()
            .and_then(|v| v.get("input").cloned());
        if given.is_some() && spec.input != dim {
            return Err(format!(
                "--model-file {}: \"input\": {} but the data have {dim} values per row; the \
                 input size is the data's, so drop the field or make it {dim}",
                path.display(),
                spec.input
            ));
        }
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
            let n = shape
                .iter()
                .try_fold(1usize, |a, &b| a.checked_mul(b))
                .unwrap_or(usize::MAX);
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
        // Without hidden layers no activation is applied: the maps are linear.
        let units = if self.encoder.is_empty() && self.decoder.is_empty() {
            "no hidden layers (linear maps)".to_string()
        } else {
            format!("{} hidden units", self.activation.name())
        };
        format!(
            "{}, {units}; {} q(z|x), {}, {} KL; {}; {init}",
            self.describe_layers(),
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
            parts.extend(layers.iter().map(Layer::describe));
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
        // Before the layout multiplies them: 2³²×2³²×1 wrapped to "= 0" in its message.
        LayerSpec::Reshape(s)
            if s.iter()
                .try_fold(1usize, |a, &b| a.checked_mul(b))
                .is_none_or(|n| n > MAX_FEATURES) =>
        {
            Err(format!(
                "a reshape to {}×{}×{} has more values than the {MAX_FEATURES} a layer may give",
                s[0], s[1], s[2]
            ))
        }
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

    /// "Any field may be left out": a Gaussian with only its variance, a prior with only its
    /// family; a field the member does not have is named (`varience` read as "missing `mean`").
    #[test]
    fn spec_files_may_leave_out_options_and_name_a_misspelt_one() {
        let fixed: ModelSpec = serde_json::from_str(
            r#"{"likelihood": {"kind": "gaussian", "variance": {"kind": "fixed", "sigma": 0.1}}}"#,
        )
        .unwrap();
        assert_eq!(
            fixed.likelihood,
            Likelihood::Gaussian {
                mean: GaussianMean::Identity,
                variance: Variance::Fixed { sigma: 0.1 }
            }
        );
        let bare: ModelSpec =
            serde_json::from_str(r#"{"likelihood": {"kind": "categorical"}}"#).unwrap();
        assert_eq!(bare.likelihood, Likelihood::Categorical { bins: 4 });
        let prior: ModelSpec = serde_json::from_str(r#"{"prior": {"family": "laplace"}}"#).unwrap();
        assert_eq!(prior.prior.scale, 1.0);
        let init: ModelSpec = serde_json::from_str(r#"{"init": {"kind": "normal"}}"#).unwrap();
        assert_eq!(init.init, Init::Normal { std: 0.01 });
        let typo = serde_json::from_str::<ModelSpec>(
            r#"{"likelihood": {"kind": "gaussian", "varience": {"kind": "learned"}}}"#,
        )
        .unwrap_err()
        .to_string();
        assert!(
            typo.contains("no field `varience`") && typo.contains("its fields are mean, variance"),
            "{typo}"
        );
        let beta =
            serde_json::from_str::<ModelSpec>(r#"{"likelihood": {"kind": "beta", "bins": 4}}"#)
                .unwrap_err()
                .to_string();
        assert!(beta.contains("takes no options"), "{beta}");
        let kind = serde_json::from_str::<ModelSpec>(r#"{"likelihood": {"kind": "poisson"}}"#)
            .unwrap_err()
            .to_string();
        assert!(kind.contains("`poisson` is not one of bernoulli"), "{kind}");
        assert!(serde_json::from_str::<ModelSpec>(r#"{"prior": {"famly": "laplace"}}"#).is_err());
    }

    #[test]
    fn a_model_file_s_input_must_be_the_data_s() {
        let dir = std::env::temp_dir().join(format!("vae-spec-input-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("m.json");
        std::fs::write(&path, r#"{"input": 100}"#).unwrap();
        let e = ModelSpec::from_file_for(&path, 784).unwrap_err();
        assert!(e.contains("\"input\": 100") && e.contains("784"), "{e}");
        assert_eq!(ModelSpec::from_file_for(&path, 100).unwrap().input, 100);
        std::fs::write(&path, r#"{"latent": 3}"#).unwrap();
        assert_eq!(ModelSpec::from_file_for(&path, 2).unwrap().latent, 3);
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn linear_maps_are_not_described_as_tanh_units() {
        let linear = ModelSpec {
            encoder: vec![],
            decoder: vec![],
            ..ModelSpec::mnist(500, 2)
        };
        let d = linear.describe();
        assert!(
            d.contains("no hidden layers (linear maps)") && !d.contains("tanh"),
            "{d}"
        );
        assert!(ModelSpec::mnist(500, 2)
            .describe()
            .contains("tanh hidden units"));
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
        // A reshape whose size overflows usize: named with its numbers, not "= 0".
        let huge = bad(&|s| s.decoder = vec![LayerSpec::Reshape([1 << 32, 1 << 32, 1])]);
        assert!(
            huge.contains("model.decoder[0]") && huge.contains("4294967296×4294967296×1 has more"),
            "{huge}"
        );
        assert!(bad(&|s| {
            s.image = Some([1 << 32, 1 << 32, 1]);
        })
        .contains("model.image"));
    }
}
