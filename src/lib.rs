//! vae-gpu: variational autoencoders — the Kingma & Welling model and the family the courses use —
//! trained with hand-written WGSL compute kernels, checked against a plain-Rust reference path.
//!
//! - [`spec`]: the model specification every other part is derived from (layout, flags, names);
//! - [`family`]: the members on the CPU side, one file per likelihood and latent family;
//! - [`cpu`] and [`gpu`]: the reference step and the device-resident WGSL step, twins;
//! - [`device`]: `--device`, adapter choice, and the factories that pick a path;
//! - [`training`]: the epoch loop, optimizers, checkpoints and run directories;
//! - [`inference`]: what a trained model is asked (grid integration, ELBO estimates, SVI), and the
//!   linear baselines (PCA, probabilistic PCA);
//! - [`report`]: figures, the assignments' experiments and the HTML report;
//! - [`sweep`]: grids of training runs (`vae-gpu sweep`) and what each point needs next;
//! - [`data`], [`rng`]: MNIST and batches, and the Philox stream both devices share.

pub mod cli;
pub mod cpu;
pub mod data;
pub mod device;
pub mod error;
pub mod family;
pub mod gpu;
pub mod inference;
pub mod report;
pub mod rng;
pub mod spec;
pub mod sweep;
pub mod training;
