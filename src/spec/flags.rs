//! The command-line flags that choose a member of the family, and how they turn into a
//! [`ModelSpec`]: `train` builds a spec from them (on `--resume`, it checks them against the
//! stored one).

use clap::Args;

use super::{
    Activation, GaussianMean, Init, KlMode, LatentFamily, Likelihood, ModelSpec, Prior, Variance,
};

/// Which likelihood `--likelihood` names; its options come from the flags below it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum LikelihoodName {
    /// Bernoulli on binarized pixels (Kingma & Welling)
    Bernoulli,
    /// Bernoulli cross-entropy on grayscale targets (an objective, not a normalised likelihood)
    BernoulliCe,
    /// Continuous Bernoulli on grayscale pixels (the normalised version of bernoulli-ce)
    ContinuousBernoulli,
    /// Gaussian on grayscale pixels; see --mean and --variance
    Gaussian,
    /// Beta on grayscale pixels, α(z) and β(z) from the decoder
    Beta,
    /// Categorical over --bins equal-width pixel-value bins
    Categorical,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum MeanFlag {
    /// μ = decoder output
    Identity,
    /// μ = sigmoid(decoder output), inside (0, 1)
    Sigmoid,
}

#[derive(Args, Debug, Clone, Default)]
pub struct ModelFlags {
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
    #[arg(long, value_enum)]
    pub likelihood: Option<LikelihoodName>,
    /// Gaussian means: identity | sigmoid [default: identity]
    #[arg(long, value_enum)]
    pub mean: Option<MeanFlag>,
    /// Gaussian variance: fixed:SIGMA (one σ), learned (a parameter per pixel), shared (one learned σ² for all pixels, as in PPCA) or decoder (σ²(z)) [default: decoder]
    #[arg(long, value_parser = parse_variance)]
    pub variance: Option<Variance>,
    /// Categorical bins, 2..=256 [default: 4]
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
        if let Some(Widths(w)) = &self.hidden {
            s.encoder = w.clone();
            s.decoder = w.iter().rev().copied().collect();
        }
        if let Some(Widths(w)) = &self.decoder_hidden {
            s.decoder = w.clone();
        }
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
        if let Some(name) = self.likelihood {
            s.likelihood = self.likelihood_named(name, &base.likelihood);
        }
        let (is_gauss, is_cat) = (
            matches!(s.likelihood, Likelihood::Gaussian { .. }),
            matches!(s.likelihood, Likelihood::Categorical { .. }),
        );
        if !is_gauss && (self.mean.is_some() || self.variance.is_some()) {
            return Err(format!(
                "--mean and --variance apply to --likelihood gaussian, not {}",
                s.likelihood.name()
            ));
        }
        if !is_cat && self.bins.is_some() {
            return Err(format!(
                "--bins applies to --likelihood categorical, not {}",
                s.likelihood.name()
            ));
        }
        if let Likelihood::Gaussian { mean, variance } = &mut s.likelihood {
            if let Some(m) = self.mean {
                *mean = match m {
                    MeanFlag::Identity => GaussianMean::Identity,
                    MeanFlag::Sigmoid => GaussianMean::Sigmoid,
                };
            }
            if let Some(v) = self.variance {
                *variance = v;
            }
        }
        if let (Likelihood::Categorical { bins }, Some(b)) = (&mut s.likelihood, self.bins) {
            if !(2..=256).contains(&b) {
                return Err(format!(
                    "--bins {b}: the categorical likelihood needs 2..=256 bins"
                ));
            }
            *bins = b;
        }
        s.check()?;
        Ok(s)
    }

    /// The likelihood `name` with its defaults, or `current` when it is already that member.
    fn likelihood_named(&self, name: LikelihoodName, current: &Likelihood) -> Likelihood {
        match (name, current) {
            (LikelihoodName::Gaussian, g @ Likelihood::Gaussian { .. }) => *g,
            (LikelihoodName::Categorical, c @ Likelihood::Categorical { .. }) => *c,
            (LikelihoodName::Bernoulli, _) => Likelihood::Bernoulli,
            (LikelihoodName::BernoulliCe, _) => Likelihood::BernoulliCe,
            (LikelihoodName::ContinuousBernoulli, _) => Likelihood::ContinuousBernoulli,
            (LikelihoodName::Gaussian, _) => Likelihood::Gaussian {
                mean: GaussianMean::Identity,
                variance: Variance::Decoder,
            },
            (LikelihoodName::Beta, _) => Likelihood::Beta,
            (LikelihoodName::Categorical, _) => Likelihood::Categorical { bins: 4 },
        }
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
    let (mean, variance) = match s.likelihood {
        Likelihood::Gaussian { mean, variance } => (
            format!("{mean:?}").to_lowercase(),
            match variance {
                Variance::Fixed { sigma } => format!("fixed:{sigma}"),
                v => format!("{v:?}").to_lowercase(),
            },
        ),
        _ => ("-".into(), "-".into()),
    };
    let bins = match s.likelihood {
        Likelihood::Categorical { bins } => bins.to_string(),
        _ => "-".into(),
    };
    let init = match s.init {
        Init::Pytorch => "pytorch".to_string(),
        Init::Normal { std } => format!("normal:{std}"),
    };
    vec![
        ("--hidden", list(&s.encoder)),
        ("--decoder-hidden", list(&s.decoder)),
        ("--activation", format!("{:?}", s.activation).to_lowercase()),
        ("--latent-dim", s.latent.to_string()),
        ("--likelihood", s.likelihood.name().to_string()),
        ("--mean", mean),
        ("--variance", variance),
        ("--bins", bins),
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
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_build_the_course_models() {
        let stats271 = ModelFlags {
            hidden: Some(Widths(vec![512])),
            activation: Some(Activation::Relu),
            likelihood: Some(LikelihoodName::Gaussian),
            mean: Some(MeanFlag::Sigmoid),
            variance: Some(Variance::Learned),
            init: Some(Init::Normal { std: 0.01 }),
            ..Default::default()
        };
        let s = stats271.apply(&ModelSpec::mnist(500, 2)).unwrap();
        assert_eq!(s.encoder, vec![512]);
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
        assert_eq!((s.encoder, s.decoder), (vec![20, 30], vec![30, 20]));
    }

    #[test]
    fn options_of_another_likelihood_and_bad_values_are_errors() {
        let base = ModelSpec::mnist(500, 2);
        let bins_on_beta = ModelFlags {
            likelihood: Some(LikelihoodName::Beta),
            bins: Some(4),
            ..Default::default()
        };
        assert!(bins_on_beta
            .apply(&base)
            .unwrap_err()
            .contains("--bins applies"));
        let one_bin = ModelFlags {
            likelihood: Some(LikelihoodName::Categorical),
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
