//! What a training device must do, so the training loop, the CLI and the tests drive the CPU
//! reference and the GPU path through one interface.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::data::batch::Binarize;
use crate::data::{DataSet, DataSource};
use crate::error::Result;
use crate::spec::ModelSpec;
use crate::training::optim::{deserialize_config, OptimizerConfig};

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
    pub binarize: Binarize,
    /// The data set (MNIST in checkpoints from before there was a choice).
    #[serde(default)]
    pub data: DataSource,
}

/// Largest `batch_size × samples`: one decoder row per (image, sample), and the likelihood kernel
/// dispatches a workgroup per row.
pub const MAX_ROWS: usize = 65_535;

impl TrainConfig {
    pub fn rows(&self) -> usize {
        self.batch_size * self.samples
    }

    /// Checks every value a run's arithmetic depends on, naming the stored field. Flags are checked
    /// (with flag names) before a config is built; this catches what a checkpoint file brings in,
    /// so that a hand-edited `"batch_size": 0` is an error, not a division by zero.
    pub fn check(&self) -> std::result::Result<(), String> {
        self.model.check()?;
        if !self.data.is_mnist() && self.binarize != Binarize::Grayscale {
            return Err(format!(
                "binarize is {:?} but {} is real-valued data: the {} likelihood needs binarized MNIST pixels",
                self.binarize,
                self.data.describe(),
                self.model.likelihood.name()
            ));
        }
        let binary = self.binarize != Binarize::Grayscale;
        if binary != self.model.likelihood.binary_data() {
            return Err(format!(
                "binarize is {:?} but the {} likelihood models {} pixels",
                self.binarize,
                self.model.likelihood.name(),
                if binary { "grayscale" } else { "binarized" }
            ));
        }
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
        if let Some(i) = first_bad(&self.v, |x| x.is_finite() && x >= 0.0) {
            return Err(format!(
                "optimizer second moment (or Adagrad sum) {i} is {} (must be finite and ≥ 0)",
                self.v[i]
            ));
        }
        Ok(())
    }
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
}

/// Shared data between the caller and a backend that keeps it on the host.
pub type SharedSplits = Arc<Splits>;
