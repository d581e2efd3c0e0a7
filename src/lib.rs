//! vae-gpu: the Kingma & Welling variational autoencoder trained with hand-written WGSL compute
//! kernels (`gpu`), checked against a plain-Rust reference path (`cpu`).

pub mod backend;
pub mod batch;
pub mod checkpoint;
pub mod cli;
pub mod cpu;
pub mod data;
pub mod error;
pub mod gpu;
pub mod model;
pub mod optim;
pub mod rng;
pub mod train;
