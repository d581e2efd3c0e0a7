//! The command-line flags that choose a member of the family, and how they turn into a
//! [`ModelSpec`]: `train` builds a spec from them (on `--resume`, it checks them against the
//! stored one).

use clap::Args;

use super::layers::{conv_arch, linear};
use super::{
    Activation, GaussianMean, Init, KlMode, LatentFamily, LayerSpec, Likelihood, ModelSpec, Prior,
    Variance,
};
use crate::family::likelihood::{with_member, Options, MEMBERS};

/// `--arch`: the networks' kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Arch {
    /// fully connected layers of --hidden widths (Kingma & Welling's)
    Mlp,
    /// two stride-2 convolutions, then --hidden linear layers; the decoder mirrors it with
    /// transposed convolutions (ReLU unless --activation says otherwise)
    Conv,
}

/// `--likelihood NAME`: the member with its default options; the names and their help come from
/// the one list of members.
fn likelihood_parser() -> impl clap::builder::TypedValueParser<Value = Likelihood> {
    use clap::builder::{PossibleValue, PossibleValuesParser, TypedValueParser};
    PossibleValuesParser::new(
        MEMBERS
            .iter()
            .map(|l| PossibleValue::new(l.name()).help(with_member!(l, m => m.help()))),
    )
    .map(|name| Likelihood::named(&name).expect("a listed member"))
}

#[derive(Args, Debug, Clone, Default)]
pub struct ModelFlags {
    /// Network kind: mlp, or conv (Conv(1→C1, k4, s2, p1) → Conv(C1→C2) → --hidden [default: 256] and the mirror decoder, for 28×28 images) [default: mlp]
    #[arg(long, value_enum)]
    pub arch: Option<Arch>,
    /// Channels of the two convolutions of --arch conv [default: 32,64]
    #[arg(long, value_parser = parse_widths)]
    pub channels: Option<Widths>,
    /// Hidden layer widths, input side first, e.g. 500 or 20,20, or none (linear maps: the notes' linear autoencoder); the decoder mirrors them [default: 500]
    #[arg(long, value_parser = parse_widths)]
    pub hidden: Option<Widths>,
    /// Decoder hidden widths, latent side first, when they differ from the mirrored --hidden
    #[arg(long, value_parser = parse_widths)]
    pub decoder_hidden: Option<Widths>,
    /// Hidden-layer nonlinearity [default: tanh]
    #[arg(long, value_enum)]
    pub activation: Option<Activation>,
    /// Latent dimension (Dz) [default: 2]
    #[arg(long)]
    pub latent_dim: Option<usize>,
    /// q(z|x): gaussian (encoder gives μ, log σ²) or laplace (μ, log b) [default: gaussian]
    #[arg(long, value_enum)]
    pub posterior: Option<LatentFamily>,
    /// p(z): normal, normal:SCALE (N(0, SCALE²)), laplace or laplace:SCALE (Laplace(0, SCALE)) [default: normal]
    #[arg(long, value_parser = parse_prior)]
    pub prior: Option<Prior>,
    /// KL term: mc (log p(z) − log q(z|x) at the sample) or analytic (closed form) [default: mc]
    #[arg(long, value_enum)]
    pub kl: Option<KlMode>,
    /// p(x|z) [default: bernoulli]
    #[arg(long, value_parser = likelihood_parser())]
    pub likelihood: Option<Likelihood>,
    /// Gaussian means: identity | sigmoid [default: identity]
    #[arg(long, value_enum)]
    pub mean: Option<GaussianMean>,
    /// Gaussian variance: fixed:SIGMA (one σ), learned (a parameter per pixel), shared (one learned σ² for all pixels, as in PPCA) or decoder (σ²(z)) [default: decoder]
    #[arg(long, value_parser = parse_variance)]
    pub variance: Option<Variance>,
    /// Categorical bins, 2..=256 [default: 4]. The decoder's output layer has hidden × 784 × bins weights: 256 bins after 500 hidden units are 100 M parameters, a 1.2 GB checkpoint (with Adam's two moments) and about 4 GB of memory while training, whatever the number of images
    #[arg(long)]
    pub bins: Option<u32>,
    /// Initialisation: pytorch (uniform ±1/√fan_in) or normal:STD (weights N(0, STD²), biases 0) [default: pytorch]
    #[arg(long, value_parser = parse_init)]
    pub init: Option<Init>,
}

/// A comma-separated list of layer widths (a newtype so clap does not read it as repeated values).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Widths(pub Vec<usize>);

fn parse_widths(s: &str) -> Result<Widths, String> {
    if s.trim() == "none" {
        return Ok(Widths(Vec::new()));
    }
    let v = s
        .split(',')
        .map(|w| {
            let n: usize = w.trim().parse().map_err(|_| {
                format!("`{w}` is not a layer width (a list like 500 or 20,20, or none)")
            })?;
            if !(1..=super::MAX_WIDTH).contains(&n) {
                return Err(format!(
                    "a hidden layer of width {n}: widths must be 1..={}",
                    super::MAX_WIDTH
                ));
            }
            Ok(n)
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Widths(v))
}

fn parse_variance(s: &str) -> Result<Variance, String> {
    match s {
        "learned" => Ok(Variance::Learned),
        "shared" => Ok(Variance::Shared),
        "decoder" => Ok(Variance::Decoder),
        _ => {
            let sigma = s.strip_prefix("fixed:").ok_or_else(|| {
                format!("`{s}`: expected fixed:SIGMA, learned, shared or decoder")
            })?;
            let sigma: f32 = sigma
                .parse()
                .map_err(|_| format!("`{sigma}` in fixed:SIGMA is not a number"))?;
            if !(sigma.is_finite() && sigma > 0.0) {
                return Err(format!("fixed:{sigma}: σ must be a positive number"));
            }
            Ok(Variance::Fixed { sigma })
        }
    }
}

fn parse_prior(s: &str) -> Result<Prior, String> {
    let (name, scale) = match s.split_once(':') {
        Some((n, v)) => (
            n,
            v.parse::<f32>()
                .map_err(|_| format!("`{v}` in {n}:SCALE is not a number"))?,
        ),
        None => (s, 1.0),
    };
    let family = match name {
        "normal" => LatentFamily::Gaussian,
        "laplace" => LatentFamily::Laplace,
        _ => {
            return Err(format!(
                "`{s}`: expected normal, normal:SCALE, laplace or laplace:SCALE"
            ))
        }
    };
    if !(scale.is_finite() && scale > 0.0) {
        return Err(format!("{s}: the prior's scale must be a positive number"));
    }
    Ok(Prior { family, scale })
}

fn parse_init(s: &str) -> Result<Init, String> {
    if s == "pytorch" {
        return Ok(Init::Pytorch);
    }
    let std = s
        .strip_prefix("normal:")
        .ok_or_else(|| format!("`{s}`: expected pytorch or normal:STD"))?;
    let std: f32 = std
        .parse()
        .map_err(|_| format!("`{std}` in normal:STD is not a number"))?;
    if !(std.is_finite() && std > 0.0) {
        return Err(format!(
            "normal:{std}: the standard deviation must be positive"
        ));
    }
    Ok(Init::Normal { std })
}

impl ModelFlags {
    /// `base` with every given flag applied; options of a likelihood the spec does not use are
    /// errors (`--bins` without `--likelihood categorical`, …).
    pub fn apply(&self, base: &ModelSpec) -> Result<ModelSpec, String> {
        let mut s = base.clone();
        self.apply_arch(&mut s)?;
        if let Some(a) = self.activation {
            s.activation = a;
        }
        if let Some(z) = self.latent_dim {
            if !(1..=super::MAX_LATENT).contains(&z) {
                return Err(format!(
                    "--latent-dim {z} is out of range 1..={}",
                    super::MAX_LATENT
                ));
            }
            s.latent = z;
        }
        if let Some(init) = self.init {
            s.init = init;
        }
        if let Some(q) = self.posterior {
            s.posterior = q;
        }
        if let Some(p) = self.prior {
            s.prior = p;
        }
        if let Some(kl) = self.kl {
            s.kl = kl;
        }
        if let Some(named) = self.likelihood {
            // The same member keeps its stored options (a resumed Gaussian keeps its variance).
            if named.name() != s.likelihood.name() {
                s.likelihood = named;
            }
        }
        let options = Options {
            mean: self.mean,
            variance: self.variance,
            bins: self.bins,
        };
        s.likelihood = s.likelihood.with_options(&options)?;
        s.check()?;
        Ok(s)
    }

    /// `--arch`, `--channels`, `--hidden` and `--decoder-hidden`: the layers. Without `--arch`
    /// the base's kind stays (a stored conv model keeps its convolutions).
    fn apply_arch(&self, s: &mut ModelSpec) -> Result<(), String> {
        let conv = match self.arch {
            Some(a) => a == Arch::Conv,
            None => s.is_convolutional(),
        };
        if !conv {
            if self.channels.is_some() {
                return Err("--channels applies to --arch conv".into());
            }
            if self.arch.is_some() && s.is_convolutional() {
                s.image = None;
                s.encoder = linear(&[500]);
                s.decoder = linear(&[500]);
            }
            if let Some(Widths(w)) = &self.hidden {
                s.encoder = linear(w);
                s.decoder = linear(&w.iter().rev().copied().collect::<Vec<_>>());
            }
            if let Some(Widths(w)) = &self.decoder_hidden {
                s.decoder = linear(w);
            }
            return Ok(());
        }
        if self.decoder_hidden.is_some() {
            return Err(
                "--decoder-hidden applies to --arch mlp; --arch conv mirrors --hidden".into(),
            );
        }
        if self.arch.is_none() && self.hidden.is_none() && self.channels.is_none() {
            return Ok(());
        }
        let stored = conv_settings(s);
        let channels = match &self.channels {
            Some(Widths(c)) if c.len() == 2 => [c[0], c[1]],
            Some(Widths(c)) => {
                return Err(format!(
                    "--channels takes two numbers (the two convolutions), not {}",
                    c.len()
                ))
            }
            None => stored.as_ref().map_or([32, 64], |(c, _)| *c),
        };
        let hidden = match &self.hidden {
            Some(Widths(w)) => w.clone(),
            None => stored.map_or(vec![256], |(_, h)| h),
        };
        let image = match s.image {
            Some(i) => i,
            None => {
                let side = (s.input as f64).sqrt().round() as usize;
                if side * side != s.input {
                    return Err(format!(
                        "--arch conv needs square images; {} values per row is not one",
                        s.input
                    ));
                }
                [1, side, side]
            }
        };
        if image[1] % 4 != 0 || image[2] % 4 != 0 {
            return Err(format!(
                "--arch conv halves the image twice, so its sides must be multiples of 4, not {}×{}",
                image[1], image[2]
            ));
        }
        if self.arch.is_some() && !s.is_convolutional() && self.activation.is_none() {
            s.activation = Activation::Relu;
        }
        s.image = Some(image);
        (s.encoder, s.decoder) = conv_arch(image, channels, &hidden);
        Ok(())
    }
}

/// `--flag value` for each flag whose value differs between two specs, with the value in
/// `stored`: "--hidden 25 (the run has 24)". For messages on `--resume`.
pub fn differences(stored: &ModelSpec, given: &ModelSpec) -> Vec<String> {
    flag_values(given)
        .into_iter()
        .zip(flag_values(stored))
        .filter(|(g, s)| g != s)
        .map(|((flag, g), (_, s))| format!("{flag} {g} (the run has {s})"))
        .collect()
}

/// A spec written back as the flags that build it.
fn flag_values(s: &ModelSpec) -> Vec<(&'static str, String)> {
    let list = |w: &[usize]| {
        let v: Vec<String> = w.iter().map(|x| x.to_string()).collect();
        if v.is_empty() {
            "none".into()
        } else {
            v.join(",")
        }
    };
    let widths = |side: &[LayerSpec]| {
        let w: Vec<usize> = side
            .iter()
            .filter_map(|l| match l {
                LayerSpec::Linear(n) => Some(*n),
                _ => None,
            })
            .collect();
        list(&w)
    };
    let (arch, channels, hidden, decoder_hidden) = match conv_settings(s) {
        Some((c, h)) => ("conv", list(&c), list(&h), "-".to_string()),
        None if s.is_convolutional() => (
            "custom (--model-file)",
            "-".into(),
            widths(&s.encoder),
            widths(&s.decoder),
        ),
        None => ("mlp", "-".into(), widths(&s.encoder), widths(&s.decoder)),
    };
    let init = match s.init {
        Init::Pytorch => "pytorch".to_string(),
        Init::Normal { std } => format!("normal:{std}"),
    };
    let mut v = vec![
        ("--arch", arch.to_string()),
        ("--channels", channels),
        ("--hidden", hidden),
        ("--decoder-hidden", decoder_hidden),
        ("--activation", format!("{:?}", s.activation).to_lowercase()),
        ("--latent-dim", s.latent.to_string()),
        ("--likelihood", s.likelihood.name().to_string()),
        ("--init", init),
        ("--posterior", format!("{:?}", s.posterior).to_lowercase()),
        (
            "--prior",
            match s.prior.family {
                LatentFamily::Gaussian => format!("normal:{}", s.prior.scale),
                LatentFamily::Laplace => format!("laplace:{}", s.prior.scale),
            },
        ),
        ("--kl", format!("{:?}", s.kl).to_lowercase()),
    ];
    v.extend(s.likelihood.option_values());
    v
}

/// The `--channels` and `--hidden` of a spec that is exactly the `--arch conv` network, if it is.
fn conv_settings(s: &ModelSpec) -> Option<([usize; 2], Vec<usize>)> {
    let image = s.image?;
    let (c1, c2) = match s.encoder.as_slice() {
        [LayerSpec::Conv2d(a), LayerSpec::Conv2d(b), ..] => (a.out?, b.out?),
        _ => return None,
    };
    let hidden: Vec<usize> = s.encoder[2..]
        .iter()
        .map(|l| match l {
            LayerSpec::Linear(n) => Some(*n),
            _ => None,
        })
        .collect::<Option<_>>()?;
    let rebuilt = conv_arch(image, [c1, c2], &hidden);
    (rebuilt == (s.encoder.clone(), s.decoder.clone())).then_some(([c1, c2], hidden))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_build_the_course_models() {
        let stats271 = ModelFlags {
            hidden: Some(Widths(vec![512])),
            activation: Some(Activation::Relu),
            likelihood: Likelihood::named("gaussian"),
            mean: Some(GaussianMean::Sigmoid),
            variance: Some(Variance::Learned),
            init: Some(Init::Normal { std: 0.01 }),
            ..Default::default()
        };
        let s = stats271.apply(&ModelSpec::mnist(500, 2)).unwrap();
        assert_eq!(s.encoder, vec![LayerSpec::Linear(512)]);
        assert_eq!(
            s.likelihood,
            Likelihood::Gaussian {
                mean: GaussianMean::Sigmoid,
                variance: Variance::Learned
            }
        );
        let two = ModelFlags {
            hidden: Some(Widths(vec![20, 30])),
            ..Default::default()
        };
        let s = two.apply(&ModelSpec::mnist(500, 2)).unwrap();
        let l = LayerSpec::Linear;
        assert_eq!(
            (s.encoder, s.decoder),
            (vec![l(20), l(30)], vec![l(30), l(20)])
        );
    }

    #[test]
    fn arch_conv_builds_the_issue_s_network_and_round_trips_as_flags() {
        let conv = ModelFlags {
            arch: Some(Arch::Conv),
            likelihood: Likelihood::named("gaussian"),
            ..Default::default()
        };
        let s = conv.apply(&ModelSpec::mnist(500, 2)).unwrap();
        assert_eq!(s.activation, Activation::Relu);
        assert_eq!(s.image, Some([1, 28, 28]));
        assert_eq!(conv_settings(&s), Some(([32, 64], vec![256])));
        let d = s.describe();
        assert!(
            d.contains("1×28×28 → conv4 s2 p1 32×14×14 → conv4 s2 p1 64×7×7 → 256 → 4"),
            "{d}"
        );
        assert!(
            d.contains("3136 → convT4 s2 p1 32×14×14 → convT4 s2 p1 2×28×28"),
            "{d}"
        );
        // Resuming with the same flags finds no difference; other channels are named.
        assert!(differences(&s, &conv.apply(&s).unwrap()).is_empty());
        let wider = ModelFlags {
            channels: Some(Widths(vec![16, 32])),
            ..Default::default()
        };
        let diff = differences(&s, &wider.apply(&s).unwrap());
        assert_eq!(diff, ["--channels 16,32 (the run has 32,64)"]);
        let odd = ModelSpec {
            input: 30 * 30,
            ..ModelSpec::mnist(5, 2)
        };
        assert!(conv.apply(&odd).unwrap_err().contains("multiples of 4"));
        let mlp_channels = ModelFlags {
            channels: Some(Widths(vec![4, 4])),
            ..Default::default()
        };
        assert!(mlp_channels
            .apply(&ModelSpec::mnist(5, 2))
            .unwrap_err()
            .contains("--arch conv"));
    }

    #[test]
    fn options_of_another_likelihood_and_bad_values_are_errors() {
        let base = ModelSpec::mnist(500, 2);
        let bins_on_beta = ModelFlags {
            likelihood: Likelihood::named("beta"),
            bins: Some(4),
            ..Default::default()
        };
        assert!(bins_on_beta
            .apply(&base)
            .unwrap_err()
            .contains("--bins applies"));
        let one_bin = ModelFlags {
            likelihood: Likelihood::named("categorical"),
            bins: Some(1),
            ..Default::default()
        };
        assert!(one_bin.apply(&base).unwrap_err().contains("2..=256"));
        assert!(parse_variance("fixed:0").unwrap_err().contains("positive"));
        assert!(parse_widths("20,0").unwrap_err().contains("width 0"));
        assert!(parse_init("normal:x").is_err());
        assert_eq!(
            parse_prior("laplace:0.5").unwrap(),
            Prior {
                family: LatentFamily::Laplace,
                scale: 0.5
            }
        );
        assert!(parse_prior("laplace:0").unwrap_err().contains("positive"));
        assert!(parse_prior("cauchy").is_err());
        let analytic_laplace = ModelFlags {
            prior: Some(parse_prior("laplace").unwrap()),
            kl: Some(KlMode::Analytic),
            ..Default::default()
        };
        assert!(analytic_laplace
            .apply(&base)
            .unwrap_err()
            .contains("no elementary closed form"));
    }
}
