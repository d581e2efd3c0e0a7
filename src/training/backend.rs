//! What a training device must do, so the training loop, the CLI and the tests drive the CPU
//! reference and the GPU path through one interface.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::data::representation::Representation;
use crate::data::{DataSet, DataSource};
use crate::error::Result;
use crate::spec::{Likelihood, ModelSpec};
use crate::training::optim::{deserialize_config, OptimizerConfig};

/// What training maximises over each image's L = `samples` draws z ~ q(z|x).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Objective {
    /// The ELBO: the mean of the L log-weights log p(x, z) − log q(z|x).
    #[default]
    Elbo,
    /// The importance-weighted bound (Burda et al. 2015): log (1/K) Σ_k w_k with K = L, whose
    /// gradient weighs each draw by its normalised weight. K = 1 is the ELBO.
    Iwae,
}

/// Everything that determines a training run's arithmetic; stored in checkpoints.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    pub model: ModelSpec,
    pub batch_size: usize,
    /// Monte Carlo samples of z per image (L).
    pub samples: usize,
    /// Adam or Adagrad and its hyper-parameters (stored as `adam` before Adagrad existed).
    #[serde(alias = "adam", deserialize_with = "deserialize_config")]
    pub optimizer: OptimizerConfig,
    pub seed: u64,
    /// How pixels become data values (`--pixels`; stored as `binarize` before it had that name,
    /// and still written so, for the tools that read checkpoints).
    #[serde(rename = "binarize")]
    pub pixels: Representation,
    /// The data set (MNIST in checkpoints from before there was a choice).
    #[serde(default)]
    pub data: DataSource,
    /// ELBO or IWAE (the ELBO in checkpoints from before there was a choice).
    #[serde(default)]
    pub objective: Objective,
    /// `--inference vem`: non-amortized variational EM with a λ_n per training image (absent:
    /// amortized inference with the encoder, and absent from the stored config so amortized runs'
    /// checkpoints keep their bytes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vem: Option<VemConfig>,
}

/// Variational EM as Algorithm 7 of the lecture notes (`004`) writes it, with minibatches: every
/// training image n has its own λ_n = (μ_n, log σ²_n) of a diagonal Gaussian q(z_n; λ_n); each
/// minibatch takes `e_steps` plain-SGD ascent steps on its λ's (the E-step, reparameterized ELBO
/// gradient) and then one step of the run's optimizer on θ, the decoder (the M-step). The encoder's
/// weights stay in the model at their initialization, never read nor updated: the checkpoint
/// stores them so its layout is the model's, and `vem.mean`, `vem.logvar` hold the λ table.
///
/// The E-step's step size decays per epoch as the notes' α_i: α_i = `e_lr` / (1 + `step_decay`·(i − 1))
/// in epoch i = 1, 2, …. At test time λ is fitted by the E-step alone: from the prior (μ = 0,
/// log σ² = 0), `test_e_steps` steps at the step size of the last training epoch. (The training
/// split's ELBO is measured at the table's λ's.)
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct VemConfig {
    /// E-step SGD steps on each minibatch's λ's before its θ step (S ≥ 1).
    pub e_steps: u32,
    /// The E-step's initial step size α₁ (plain SGD on the per-image ELBO, ascent).
    pub e_lr: f32,
    /// α_i = e_lr / (1 + step_decay·(i − 1)); 0 keeps it constant.
    pub step_decay: f32,
    /// E-steps from the prior that fit a held-out image's λ before its ELBO is measured.
    pub test_e_steps: u32,
}

impl VemConfig {
    /// The E-step's step size in the epoch that θ step `t` (0-based) belongs to, with
    /// `steps_per_epoch` minibatches an epoch: α_i for i = ⌊t / steps_per_epoch⌋ + 1.
    pub fn step_size(&self, t: u32, steps_per_epoch: usize) -> f32 {
        let done = (t as usize / steps_per_epoch.max(1)) as f32;
        self.e_lr / (1.0 + self.step_decay * done)
    }

    /// The step size of the test-time E-step once `t` θ steps are done: that of the last
    /// training step (the first epoch's before any).
    pub fn test_step_size(&self, t: u32, steps_per_epoch: usize) -> f32 {
        self.step_size(t.saturating_sub(1), steps_per_epoch)
    }

    pub fn describe(&self) -> String {
        format!(
            "variational EM: {} SGD E-step(s) per minibatch at α = {}/(1 + {}·(epoch − 1)), {} from the prior at test time",
            self.e_steps, self.e_lr, self.step_decay, self.test_e_steps
        )
    }

    pub fn check(&self) -> std::result::Result<(), String> {
        if !(1..=1000).contains(&self.e_steps) {
            return Err(format!(
                "--e-steps {} must be between 1 and 1000 (each minibatch takes that many λ steps)",
                self.e_steps
            ));
        }
        // The GPU records each test-time E-step as its own dispatches (about 8 per step per split).
        if !(1..=2_000).contains(&self.test_e_steps) {
            return Err(format!(
                "--test-e-steps {} must be between 1 and 2000 (a held-out image's λ is fitted by that many E-steps)",
                self.test_e_steps
            ));
        }
        if !(self.e_lr.is_finite() && self.e_lr > 0.0 && self.e_lr < 10.0) {
            return Err(format!(
                "--e-lr {} must be a positive number below 10",
                self.e_lr
            ));
        }
        if !(self.step_decay.is_finite() && self.step_decay >= 0.0) {
            return Err(format!(
                "--step-decay {} must be a finite number ≥ 0",
                self.step_decay
            ));
        }
        Ok(())
    }
}

/// Largest `batch_size × samples`: one decoder row per (image, sample), and the likelihood kernel
/// dispatches a workgroup per row.
pub const MAX_ROWS: usize = 65_535;

impl TrainConfig {
    pub fn rows(&self) -> usize {
        self.batch_size * self.samples
    }

    /// A log-likelihood bound `nats` per image in bits per dimension of the 8-bit data, where the
    /// member gives one for this representation (`Member::bits_offset`). Other runs measure
    /// something else (see `units_note`).
    pub fn bits_per_dim(&self, nats: f64) -> Option<f64> {
        if !self.data.is_mnist() {
            return None;
        }
        let d = self.model.input as f64;
        let per_dim_offset = self.model.likelihood.bits_offset(self.pixels)?;
        Some((-nats / d + per_dim_offset) / std::f64::consts::LN_2)
    }

    /// Why this run's numbers have no bits/dim of the 8-bit data, for the summaries.
    pub fn units_note(&self) -> Option<String> {
        if !self.data.is_mnist() || self.bits_per_dim(0.0).is_some() {
            return None;
        }
        Some(if self.pixels.binary() {
            "nats of binarized MNIST: not comparable with models of the 8-bit pixels".into()
        } else {
            format!(
                "a density of {}, not of the 8-bit data; for bits/dim that rank models on one \
                 scale train with --likelihood {}",
                self.pixels.describe(),
                Likelihood::with_bits_per_dim().join(", or ")
            )
        })
    }

    /// Checks every value a run's arithmetic depends on, naming the setting: the one validation of
    /// a run's configuration, for flags and for what a checkpoint file brings in alike (a
    /// hand-edited `"batch_size": 0` is an error, not a division by zero).
    pub fn check(&self) -> std::result::Result<(), String> {
        self.model.check()?;
        if self.objective == Objective::Iwae && self.model.kl == crate::spec::KlMode::Analytic {
            return Err(
                "--objective iwae weighs each draw's log p(z) − log q(z|x); the analytic KL has \
                 no per-draw term: use --kl mc"
                    .into(),
            );
        }
        self.model
            .likelihood
            .check_representation(self.pixels, !self.data.is_mnist())?;
        let ranges = [
            ("batch_size", self.batch_size, 1, 60_000),
            ("samples", self.samples, 1, 10_000),
        ];
        for (name, v, lo, hi) in ranges {
            if v < lo || v > hi {
                return Err(format!("{name} is {v}, outside {lo}..={hi}"));
            }
        }
        if self.rows() > MAX_ROWS {
            return Err(format!(
                "batch_size × samples is {}, above {MAX_ROWS}",
                self.rows()
            ));
        }
        self.optimizer.check()?;
        if let Some(v) = &self.vem {
            v.check()?;
            self.check_vem()?;
        }
        Ok(())
    }

    /// What `--inference vem` supports: the ELBO of a diagonal-Gaussian q on an MLP.
    fn check_vem(&self) -> std::result::Result<(), String> {
        if self.objective != Objective::Elbo {
            return Err(
                "--inference vem maximizes the ELBO (Algorithm 7 of the notes); --objective iwae \
                 is not supported with it: drop --objective or use --inference amortized"
                    .into(),
            );
        }
        if self.model.posterior != crate::spec::LatentFamily::Gaussian {
            return Err(
                "--inference vem fits λ_n = (μ_n, log σ²_n) of a Gaussian q: use --posterior gaussian"
                    .into(),
            );
        }
        if self.model.is_convolutional() {
            return Err(
                "--inference vem is implemented for the MLP decoder only: use --arch mlp".into(),
            );
        }
        Ok(())
    }
}

/// The data splits a run uses: train = the first `--train-size` training rows, val = the next
/// `--val-size`, test = the first `--test-size` test rows.
#[derive(Clone, Debug)]
pub struct Splits {
    pub train: DataSet,
    pub val: Option<DataSet>,
    pub test: DataSet,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Split {
    Train,
    Val,
    Test,
}

impl Splits {
    pub fn get(&self, s: Split) -> Option<&DataSet> {
        match s {
            Split::Train => Some(&self.train),
            Split::Val => self.val.as_ref(),
            Split::Test => Some(&self.test),
        }
    }
}

/// Parameters plus optimizer state: what a checkpoint holds and `--resume` restores.
#[derive(Clone, Debug, PartialEq)]
pub struct TrainState {
    pub params: Vec<f32>,
    pub m: Vec<f32>,
    pub v: Vec<f32>,
    /// Optimizer steps taken.
    pub step: u32,
    /// `--inference vem`: the λ table `[N_train, 2·Dz]`, row n = [μ_n | log σ²_n] (empty for
    /// amortized runs).
    pub lambda: Vec<f32>,
}

impl TrainState {
    /// A state restored into a model must have exactly its parameter count.
    pub fn check_len(&self, n: usize) -> Result<()> {
        if self.params.len() != n || self.m.len() != n || self.v.len() != n {
            return Err(crate::error::Error::Checkpoint(format!(
                "state has {} parameters, the model needs {n}",
                self.params.len()
            )));
        }
        Ok(())
    }

    /// Finite parameters and moments, and non-negative second moments (both optimizers divide by √v).
    pub fn check_values(&self) -> std::result::Result<(), String> {
        let first_bad = |v: &[f32], ok: fn(f32) -> bool| v.iter().position(|&x| !ok(x));
        if let Some(i) = first_bad(&self.params, f32::is_finite) {
            return Err(format!(
                "parameter {i} is {} (NaN or infinite)",
                self.params[i]
            ));
        }
        if let Some(i) = first_bad(&self.m, f32::is_finite) {
            return Err(format!("optimizer first moment {i} is {}", self.m[i]));
        }
        if let Some(i) = first_bad(&self.lambda, f32::is_finite) {
            return Err(format!(
                "variational parameter {i} of the λ table is {}",
                self.lambda[i]
            ));
        }
        if let Some(i) = first_bad(&self.v, |x| x.is_finite() && x >= 0.0) {
            return Err(format!(
                "optimizer second moment (or Adagrad sum) {i} is {} (must be finite and ≥ 0)",
                self.v[i]
            ));
        }
        Ok(())
    }
}

/// How a device drove its last training pass, beyond its wall time: what a GPU benchmark needs to
/// tell launch- or host-bound steps from arithmetic-bound ones (tools/gpu_bench.sh reads these
/// from `metrics.jsonl`). Counting costs nothing on the device: no query, no extra read-back.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct EpochCounters {
    /// Compute dispatches recorded for one training step (the optimizer update included).
    pub dispatches_per_step: u64,
    /// Queue submits of the training pass: the command buffers of the steps plus the one
    /// read-back of the epoch's ELBO sums.
    pub submits: u64,
    /// Host seconds per step not spent blocked on the device: recording command buffers,
    /// submitting them, uploads (and, with `--optimizer-on host`, the host's optimizer step).
    /// Against `seconds / steps` it says how much of a step the CPU side costs.
    pub host_seconds_per_step: f64,
}

pub trait Backend {
    /// e.g. "cpu (2 threads)" or "NVIDIA H100 (Vulkan)".
    fn describe(&self) -> String;

    /// Trains on all full batches of the training split in the order `perm` (a permutation of its
    /// indices), calling `progress(steps_done)` now and then. Returns the mean training ELBO over the
    /// epoch's images (nats per image, each averaged over its L samples). Partial last batch is
    /// dropped.
    fn train_epoch(
        &mut self,
        epoch: u32,
        perm: &[u32],
        progress: &mut dyn FnMut(usize),
    ) -> Result<f64>;

    /// Mean ELBO over every image of `split` (no parameter change; fixed evaluation noise).
    fn evaluate(&mut self, split: Split) -> Result<f64>;

    fn state(&mut self) -> Result<TrainState>;

    fn set_state(&mut self, state: &TrainState) -> Result<()>;

    /// The counters of the last `train_epoch`, for devices that drive a queue (None on the CPU
    /// path, where the wall time is the whole story).
    fn epoch_counters(&self) -> Option<EpochCounters> {
        None
    }
}

/// Shared data between the caller and a backend that keeps it on the host.
pub type SharedSplits = Arc<Splits>;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::{GaussianMean, Variance};

    fn config(likelihood: Likelihood, pixels: Representation) -> TrainConfig {
        TrainConfig {
            model: ModelSpec {
                likelihood,
                ..ModelSpec::mnist(10, 2)
            },
            batch_size: 10,
            samples: 1,
            optimizer: OptimizerConfig::default(),
            seed: 0,
            pixels,
            data: DataSource::Mnist,
            objective: Objective::Elbo,
            vem: None,
        }
    }

    /// The uniform density on [0, 1]⁷⁸⁴ (log p = 0) is exactly 8 bits per dimension of the 8-bit
    /// data once dequantized; a categorical with 256 bins converts nats directly, one with 4 bins
    /// adds the 6 bits of its uniform spread inside each bin.
    #[test]
    fn bits_per_dim_of_known_models() {
        let gauss = Likelihood::Gaussian {
            mean: GaussianMean::Identity,
            variance: Variance::Decoder,
        };
        assert!(config(Likelihood::Beta, Representation::Midpoint)
            .check()
            .is_ok());
        assert!(config(Likelihood::Beta, Representation::Grayscale)
            .check()
            .is_err());
        assert!(config(gauss, Representation::Midpoint).check().is_err());
        let beta = config(Likelihood::Beta, Representation::Dequantize);
        assert!(beta.check().is_ok() && beta.bits_per_dim(0.0).is_some());
        let c = config(gauss, Representation::Dequantize);
        assert!(c.check().is_ok());
        assert!((c.bits_per_dim(0.0).unwrap() - 8.0).abs() < 1e-12);
        let d = 784.0 * std::f64::consts::LN_2;
        let cat = config(
            Likelihood::Categorical { bins: 256 },
            Representation::Grayscale,
        );
        assert!((cat.bits_per_dim(-2.0 * d).unwrap() - 2.0).abs() < 1e-12);
        let cat4 = config(
            Likelihood::Categorical { bins: 4 },
            Representation::Grayscale,
        );
        assert!((cat4.bits_per_dim(-d).unwrap() - 7.0).abs() < 1e-12);
        assert_eq!(
            config(gauss, Representation::Grayscale).bits_per_dim(0.0),
            None
        );
        assert!(config(gauss, Representation::Grayscale)
            .units_note()
            .is_some());
        let bern = config(Likelihood::Bernoulli, Representation::Threshold);
        assert!(bern.units_note().unwrap().contains("binarized MNIST"));
    }
}
