//! The Appendix C VAE of Kingma & Welling: shapes, the flat parameter layout and initialization.
//!
//! All parameters live in one flat `f32` vector so that one Adam dispatch (or one host loop)
//! updates the whole model and one buffer holds it on the GPU. Each linear layer stores its weight
//! row-major as `[out, in]` (PyTorch `nn.Linear` convention) followed by its bias `[out]`.
//! The encoder's output layer produces `[μ, log σ²]` as one `[2·Dz, Dh]` matrix whose first Dz rows
//! are the mean head and last Dz rows the log-variance head; checkpoints split it into the two
//! named heads.

use rand::{RngExt, SeedableRng};
use serde::{Deserialize, Serialize};

use crate::data::PIXELS;

/// Everything that fixes the shapes of a model and a training step.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ModelConfig {
    /// Input dimension (784 for MNIST).
    pub input: usize,
    /// Hidden units of both MLPs (Dh).
    pub hidden: usize,
    /// Latent dimension (Dz).
    pub latent: usize,
}

impl ModelConfig {
    pub fn mnist(hidden: usize, latent: usize) -> Self {
        Self {
            input: PIXELS,
            hidden,
            latent,
        }
    }

    pub fn layout(&self) -> ParamLayout {
        ParamLayout::new(self)
    }
}

/// One linear layer inside the flat parameter vector.
#[derive(Clone, Copy, Debug)]
pub struct Linear {
    pub out: usize,
    pub inp: usize,
    /// Offset of the `[out, in]` weight.
    pub w: usize,
    /// Offset of the `[out]` bias.
    pub b: usize,
}

/// Offsets of the four layers in the flat parameter vector.
#[derive(Clone, Copy, Debug)]
pub struct ParamLayout {
    /// x → h1 (tanh).
    pub enc_hidden: Linear,
    /// h1 → [μ, log σ²].
    pub enc_out: Linear,
    /// z → h2 (tanh).
    pub dec_hidden: Linear,
    /// h2 → Bernoulli logits.
    pub dec_out: Linear,
    pub total: usize,
}

impl ParamLayout {
    fn new(c: &ModelConfig) -> Self {
        let mut next = 0;
        let mut linear = |out: usize, inp: usize| {
            let l = Linear {
                out,
                inp,
                w: next,
                b: next + out * inp,
            };
            next += out * inp + out;
            l
        };
        let enc_hidden = linear(c.hidden, c.input);
        let enc_out = linear(2 * c.latent, c.hidden);
        let dec_hidden = linear(c.hidden, c.latent);
        let dec_out = linear(c.input, c.hidden);
        Self {
            enc_hidden,
            enc_out,
            dec_hidden,
            dec_out,
            total: next,
        }
    }

    pub fn layers(&self) -> [Linear; 4] {
        [self.enc_hidden, self.enc_out, self.dec_hidden, self.dec_out]
    }

    /// The named tensors of a checkpoint: (name, shape, offset, length), in PyTorch `nn.Linear`
    /// convention. The encoder output layer is split into its mean and log-variance heads.
    pub fn named_tensors(&self) -> Vec<(String, Vec<usize>, usize, usize)> {
        let mut v = Vec::new();
        let mut push = |name: &str, shape: Vec<usize>, off: usize| {
            let len = shape.iter().product();
            v.push((name.to_string(), shape, off, len));
        };
        let (e1, e2, d1, d2) = (self.enc_hidden, self.enc_out, self.dec_hidden, self.dec_out);
        let dz = e2.out / 2;
        push("encoder.fc1.weight", vec![e1.out, e1.inp], e1.w);
        push("encoder.fc1.bias", vec![e1.out], e1.b);
        push("encoder.mean.weight", vec![dz, e2.inp], e2.w);
        push("encoder.mean.bias", vec![dz], e2.b);
        push(
            "encoder.logvar.weight",
            vec![dz, e2.inp],
            e2.w + dz * e2.inp,
        );
        push("encoder.logvar.bias", vec![dz], e2.b + dz);
        push("decoder.fc1.weight", vec![d1.out, d1.inp], d1.w);
        push("decoder.fc1.bias", vec![d1.out], d1.b);
        push("decoder.logits.weight", vec![d2.out, d2.inp], d2.w);
        push("decoder.logits.bias", vec![d2.out], d2.b);
        v
    }
}

/// PyTorch's default `nn.Linear` initialization: weights and biases uniform in ±1/√fan_in.
/// Drawn on the host from `seed` so the CPU and GPU paths start from identical parameters.
pub fn init_params(cfg: &ModelConfig, seed: u64) -> Vec<f32> {
    let layout = cfg.layout();
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed ^ 0x5eed_1417_a11c_e5e5);
    let mut p = vec![0.0f32; layout.total];
    for l in layout.layers() {
        let bound = 1.0 / (l.inp as f32).sqrt();
        for v in &mut p[l.w..l.b + l.out] {
            *v = rng.random_range(-bound..bound);
        }
    }
    p
}
