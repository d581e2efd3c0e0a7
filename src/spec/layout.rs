//! The flat parameter vector of a spec: where each layer's weight and bias live, their checkpoint
//! names, and their initial values.
//!
//! All parameters live in one flat `f32` vector so that one optimizer dispatch (or one host loop)
//! updates the whole model and one buffer holds it on the GPU. Each linear layer stores its weight
//! row-major as `[out, in]` (PyTorch `nn.Linear`) followed by its bias `[out]`. The encoder's last
//! layer produces `[μ | log σ²]` as one `[2·Dz, h]` matrix; the decoder's last layer produces the
//! likelihood's C channels per pixel as one `[C·D, h]` matrix, channel-major (row c·D + p). The
//! checkpoint splits both into named heads (`encoder.mean`, `encoder.logvar` — `encoder.logscale` for a Laplace q; `decoder.logits`,
//! or `decoder.mean` + `decoder.variance`, or `decoder.alpha` + `decoder.beta`).

use rand::{RngExt, SeedableRng};

use super::{Init, ModelSpec};

/// One linear layer inside the flat parameter vector.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Linear {
    pub out: usize,
    pub inp: usize,
    /// Offset of the `[out, in]` weight.
    pub w: usize,
    /// Offset of the `[out]` bias.
    pub b: usize,
}

/// A named tensor of the checkpoint: a contiguous range of the flat vector.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NamedTensor {
    pub name: String,
    pub shape: Vec<usize>,
    pub offset: usize,
}

impl NamedTensor {
    pub fn len(&self) -> usize {
        self.shape.iter().product()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Layout {
    /// x → hidden layers → [μ | log σ²]; every layer but the last is followed by the activation.
    pub encoder: Vec<Linear>,
    /// z → hidden layers → C·D likelihood outputs; every layer but the last is activated.
    pub decoder: Vec<Linear>,
    /// Offset of the likelihood's free parameters (a learned Gaussian variance), if the spec has
    /// them: `free_len` of them, one per pixel or one shared by all.
    pub pixel_params: Option<usize>,
    pub free_len: usize,
    pub total: usize,
    heads: Vec<&'static str>,
    /// The encoder's scale head: `logvar` (Gaussian q) or `logscale` (Laplace q).
    scale_head: &'static str,
}

impl Layout {
    pub fn new(s: &ModelSpec) -> Self {
        let mut next = 0;
        let mut stack = |widths: Vec<usize>| {
            widths
                .windows(2)
                .map(|w| {
                    let l = Linear {
                        out: w[1],
                        inp: w[0],
                        w: next,
                        b: next + w[0] * w[1],
                    };
                    next += w[0] * w[1] + w[1];
                    l
                })
                .collect::<Vec<_>>()
        };
        let encoder = stack([vec![s.input], s.encoder.clone(), vec![2 * s.latent]].concat());
        let decoder = stack(
            [
                vec![s.latent],
                s.decoder.clone(),
                vec![s.likelihood.channels() * s.input],
            ]
            .concat(),
        );
        let free_len = s.likelihood.free_parameters(s.input);
        let pixel_params = (free_len > 0).then(|| {
            next += free_len;
            next - free_len
        });
        Self {
            encoder,
            decoder,
            pixel_params,
            free_len,
            total: next,
            heads: s.likelihood.head_names(),
            scale_head: s.posterior.scale_head(),
        }
    }

    pub fn layers(&self) -> impl Iterator<Item = &Linear> {
        self.encoder.iter().chain(&self.decoder)
    }

    pub fn encoder_out(&self) -> &Linear {
        self.encoder
            .last()
            .expect("the encoder has an output layer")
    }

    pub fn decoder_out(&self) -> &Linear {
        self.decoder
            .last()
            .expect("the decoder has an output layer")
    }

    /// The checkpoint's tensors in PyTorch naming: hidden layers `fc1, fc2, …`, the encoder's
    /// output split into `mean` / `logvar` (or `logscale`) heads, the decoder's into the likelihood's heads.
    pub fn named_tensors(&self) -> Vec<NamedTensor> {
        let mut v = Vec::new();
        let mut push = |name: String, shape: Vec<usize>, offset: usize| {
            v.push(NamedTensor {
                name,
                shape,
                offset,
            })
        };
        for (side, layers, heads) in [
            ("encoder", &self.encoder, vec!["mean", self.scale_head]),
            ("decoder", &self.decoder, self.heads.clone()),
        ] {
            let (last, hidden) = layers.split_last().expect("output layer");
            for (i, l) in hidden.iter().enumerate() {
                push(
                    format!("{side}.fc{}.weight", i + 1),
                    vec![l.out, l.inp],
                    l.w,
                );
                push(format!("{side}.fc{}.bias", i + 1), vec![l.out], l.b);
            }
            // A head of `rows` output rows; the last head takes what is left (categorical: C·D).
            let rows = last.out / heads.len();
            for (h, name) in heads.iter().enumerate() {
                let r = if h + 1 == heads.len() {
                    last.out - h * rows
                } else {
                    rows
                };
                push(
                    format!("{side}.{name}.weight"),
                    vec![r, last.inp],
                    last.w + h * rows * last.inp,
                );
                push(format!("{side}.{name}.bias"), vec![r], last.b + h * rows);
            }
        }
        if let Some(off) = self.pixel_params {
            let name = if self.free_len == 1 {
                "decoder.shared_variance"
            } else {
                "decoder.pixel_variance"
            };
            push(name.into(), vec![self.free_len], off);
        }
        v
    }
}

/// Initial parameters, drawn on the host from `seed` so that the CPU and GPU paths start from
/// identical values. `pytorch`: `nn.Linear`'s default, weights and biases uniform in ±1/√fan_in;
/// `normal:STD`: weights N(0, STD²), biases 0. Per-pixel variance parameters start at 0.
pub fn init_params(spec: &ModelSpec, seed: u64) -> Vec<f32> {
    let layout = spec.layout();
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed ^ 0x5eed_1417_a11c_e5e5);
    let mut p = vec![0.0f32; layout.total];
    for l in layout.layers() {
        match spec.init {
            Init::Pytorch => {
                let bound = 1.0 / (l.inp as f32).sqrt();
                for v in &mut p[l.w..l.b + l.out] {
                    *v = rng.random_range(-bound..bound);
                }
            }
            Init::Normal { std } => {
                for v in &mut p[l.w..l.b] {
                    *v = std * standard_normal(&mut rng);
                }
            }
        }
    }
    p
}

/// One N(0, 1) draw by Box–Muller (the host-side initialiser only; training noise is Philox).
fn standard_normal(rng: &mut rand::rngs::StdRng) -> f32 {
    let u1: f64 = rng.random_range(f64::MIN_POSITIVE..1.0);
    let u2: f64 = rng.random_range(0.0..1.0);
    ((-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()) as f32
}

#[cfg(test)]
mod tests {
    use super::*;

    fn members() -> Vec<ModelSpec> {
        let liks = super::super::members::likelihoods();
        let mut v = Vec::new();
        for lik in liks {
            for (enc, dec) in [(vec![7], vec![7]), (vec![9, 4], vec![3]), (vec![], vec![])] {
                v.push(ModelSpec {
                    encoder: enc,
                    decoder: dec,
                    likelihood: lik,
                    latent: 3,
                    ..ModelSpec::mnist(1, 1)
                });
            }
        }
        v
    }

    #[test]
    fn named_tensors_tile_the_flat_vector_exactly_once() {
        for spec in members() {
            let layout = spec.layout();
            let mut covered = vec![0u8; layout.total];
            for t in layout.named_tensors() {
                for c in &mut covered[t.offset..t.offset + t.len()] {
                    *c += 1;
                }
            }
            assert!(
                covered.iter().all(|&c| c == 1),
                "{spec:?}: a parameter is named {} times",
                covered.iter().find(|&&c| c != 1).unwrap()
            );
        }
    }

    #[test]
    fn the_appendix_c_names_are_unchanged() {
        let names: Vec<String> = ModelSpec::mnist(500, 2)
            .layout()
            .named_tensors()
            .into_iter()
            .map(|t| format!("{} {:?}", t.name, t.shape))
            .collect();
        assert_eq!(
            names,
            [
                "encoder.fc1.weight [500, 784]",
                "encoder.fc1.bias [500]",
                "encoder.mean.weight [2, 500]",
                "encoder.mean.bias [2]",
                "encoder.logvar.weight [2, 500]",
                "encoder.logvar.bias [2]",
                "decoder.fc1.weight [500, 2]",
                "decoder.fc1.bias [500]",
                "decoder.logits.weight [784, 500]",
                "decoder.logits.bias [784]",
            ]
        );
    }

    #[test]
    fn normal_init_has_the_asked_spread_and_zero_biases() {
        let spec = ModelSpec {
            init: Init::Normal { std: 0.01 },
            ..ModelSpec::mnist(512, 2)
        };
        let p = init_params(&spec, 3);
        let l = spec.layout().encoder[0];
        let w = &p[l.w..l.b];
        let var = w.iter().map(|v| (*v as f64).powi(2)).sum::<f64>() / w.len() as f64;
        assert!((var.sqrt() - 0.01).abs() < 2e-4, "std {}", var.sqrt());
        assert!(p[l.b..l.b + l.out].iter().all(|&b| b == 0.0));
    }
}
