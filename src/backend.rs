//! What a training device must do, so the training loop, the CLI and the tests drive the CPU
//! reference and the GPU path through one interface.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::batch::Binarize;
use crate::data::ImageSet;
use crate::error::Result;
use crate::model::ModelConfig;
use crate::optim::AdamConfig;

/// Everything that determines a training run's arithmetic; stored in checkpoints.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    pub model: ModelConfig,
    pub batch_size: usize,
    /// Monte Carlo samples of z per image (L).
    pub samples: usize,
    pub adam: AdamConfig,
    pub seed: u64,
    pub binarize: Binarize,
}

impl TrainConfig {
    pub fn rows(&self) -> usize {
        self.batch_size * self.samples
    }
}

/// The data splits a run uses, all from the MNIST files: train = the first `--train-size`
/// training images, val = the next `--val-size`, test = the first `--test-size` test images.
#[derive(Clone, Debug)]
pub struct Splits {
    pub train: ImageSet,
    pub val: Option<ImageSet>,
    pub test: ImageSet,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Split {
    Train,
    Val,
    Test,
}

impl Splits {
    pub fn get(&self, s: Split) -> Option<&ImageSet> {
        match s {
            Split::Train => Some(&self.train),
            Split::Val => self.val.as_ref(),
            Split::Test => Some(&self.test),
        }
    }
}

/// Parameters plus Adam state: what a checkpoint holds and `--resume` restores.
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
