//! vae-gpu: variational autoencoders — the Kingma & Welling model and the family the courses use
//! (`spec`, `family`) — trained with hand-written WGSL compute kernels (`gpu`), checked against a
//! plain-Rust reference path (`cpu`).

pub mod analysis;
pub mod backend;
pub mod batch;
pub mod checkpoint;
pub mod cli;
pub mod cpu;
pub mod data;
pub mod error;
pub mod experiments;
pub mod explore;
pub mod family;
pub mod figures;
pub mod gpu;
pub mod inference;
pub mod optim;
pub mod plots;
pub mod report;
pub mod rng;
pub mod run_dir;
pub mod spec;
pub mod svi;
pub mod train;
