//! Command-line interface: a thin layer over the library. This file holds the parser (`Cli`,
//! `Command`), the dispatch in [`run`], and the argument groups and helpers several commands
//! share; each command's own flags and body live in a file of their own (as cargo's
//! `src/bin/cargo/commands/`):
//!
//! - `train.rs`, `eval.rs`: training runs, and the ELBO (and IWAE estimate) of a checkpoint;
//! - `devices.rs`: the GPU adapters wgpu can see;
//! - `figures.rs`: `samples`, `reconstructions`, `latent-scatter`, `lattice`, `interpolate`,
//!   `curves`;
//! - `grid.rs`: `grid-posterior` and the grid options `report.rs` shares;
//! - `svi.rs`: `svi` and `estimators`; `linear.rs`: `pca` and `ppca`;
//! - `sweep.rs`: `sweep`, grids of train runs; `compare.rs`: their table and figures.

mod compare;
mod devices;
mod eval;
mod figures;
mod grid;
mod linear;
mod report;
mod svi;
mod sweep;
mod train;

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::data::{circle, Corpus, DataSource};
use crate::device::model_ops;
use crate::device::DeviceKind;
use crate::error::{Error, Result};
use crate::report::session::Session;
use crate::training::backend::TrainConfig;
use crate::training::checkpoint;

pub use compare::CompareArgs;
pub use eval::EvalArgs;
pub use figures::{CurvesArgs, InterpolateArgs, LatticeArgs, ScatterArgs};
pub use grid::{GridArgs, GridOptionArgs};
pub use linear::LinearArgs;
pub use report::ReportArgs;
pub use svi::{EstimatorArgs, SviArgs};
pub use sweep::SweepArgs;
pub use train::TrainArgs;

#[derive(Parser, Debug)]
#[command(
    name = "vae-gpu",
    version,
    about = "Variational autoencoders on MNIST with hand-written WGSL kernels (and a CPU reference path)"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

// Parsed once per process: the size of the largest variant (train's flags) costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Train a VAE of the family on MNIST (default: Kingma & Welling's Appendix C model).
    Train(TrainArgs),
    /// Print the train and test ELBO of a checkpoint.
    Eval(EvalArgs),
    /// List the GPU adapters wgpu can see.
    Devices,
    /// log p(x) by numerical integration over a 2-D latent grid vs the ELBO, with posterior contours.
    GridPosterior(GridArgs),
    /// Ancestral samples: p(x|z) means and samples for z ~ p(z), beside real digits.
    Samples(ModelArgs),
    /// Inputs, reconstruction means and samples through q(z|x).
    Reconstructions(ModelArgs),
    /// Scatter of the means of q(z|x) for test images, coloured by digit.
    LatentScatter(ScatterArgs),
    /// Decoder means on a lattice of latent points (Fig. 4b of the paper).
    Lattice(LatticeArgs),
    /// Decoder along straight lines between the encodings of pairs of test digits.
    Interpolate(InterpolateArgs),
    /// Train / validation / test ELBO per epoch from a metrics.jsonl file.
    Curves(CurvesArgs),
    /// Every figure and the integration table of one checkpoint, with an index.html.
    Report(ReportArgs),
    /// Stochastic variational inference without the encoder: fit q(z) to the observed pixels and complete the image.
    Svi(SviArgs),
    /// Variance of reparameterization vs score-function (± baseline) gradient estimators of the ELBO.
    Estimators(EstimatorArgs),
    /// PCA of grayscale MNIST: eigenvalues, the test set on two components, k-component reconstructions.
    Pca(LinearArgs),
    /// Probabilistic PCA of grayscale MNIST (closed-form maximum likelihood): exact test log-likelihood, samples.
    Ppca(LinearArgs),
    /// A grid of train runs (--grid KEY=V1,V2, --config NAME=FLAGS) into one directory: resumable, --jobs, --shard, --list.
    Sweep(SweepArgs),
    /// One table (CSV, Markdown, HTML) of runs or sweeps: test ELBO ± s.e. over seeds, bits/dim and a ranking on them, with curves, samples and reconstructions side by side.
    Compare(CompareArgs),
}

pub fn run(cli: Cli) -> Result<()> {
    match &cli.command {
        Command::Train(a) => train::cmd_train(a),
        Command::Eval(a) => eval::cmd_eval(a),
        Command::Devices => devices::cmd_devices(),
        Command::GridPosterior(a) => grid::cmd_grid_posterior(a),
        Command::Samples(a) => figures::cmd_samples(a),
        Command::Reconstructions(a) => figures::cmd_reconstructions(a),
        Command::LatentScatter(a) => figures::cmd_latent_scatter(a),
        Command::Lattice(a) => figures::cmd_lattice(a),
        Command::Interpolate(a) => figures::cmd_interpolate(a),
        Command::Curves(a) => figures::cmd_curves(a),
        Command::Report(a) => report::cmd_report(a),
        Command::Svi(a) => svi::cmd_svi(a),
        Command::Pca(a) => linear::cmd_linear(a, false),
        Command::Ppca(a) => linear::cmd_linear(a, true),
        Command::Estimators(a) => svi::cmd_estimators(a),
        Command::Sweep(a) => sweep::cmd_sweep(a),
        Command::Compare(a) => compare::cmd_compare(a),
    }
}

/// What every analysis command needs: a trained model, the data and a device.
#[derive(Args, Debug, Clone)]
pub struct ModelArgs {
    /// The trained model (checkpoint.safetensors from `vae-gpu train`)
    #[arg(long)]
    pub checkpoint: PathBuf,
    /// Directory with the MNIST IDX files [default: the copy compiled into the binary]
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Where the network runs: a GPU backend, `auto` (a hardware adapter if there is one, else cpu; never a software one), or `cpu`
    #[arg(long, value_enum, default_value_t = DeviceKind::Auto)]
    pub device: DeviceKind,
    /// Output directory for figures and tables
    #[arg(long, default_value = "figures")]
    pub out: PathBuf,
    /// Seed of the Monte Carlo draws (prior samples, z ~ q, ELBO estimates)
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

#[derive(Args, Debug, Clone)]
pub struct DataArgs {
    /// Directory with the four MNIST IDX files (.gz or raw) [default: the copy compiled into the binary]
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Use the first N test images for the test ELBO [default: all of them; train --resume: the run's]
    #[arg(long)]
    pub test_size: Option<usize>,
    /// Where to run: a GPU backend, `auto` (a hardware adapter if there is one, else cpu; never a software one), or `cpu`
    #[arg(long, value_enum, default_value_t = DeviceKind::Auto)]
    pub device: DeviceKind,
}

/// Which data set: MNIST, the lecture notes' circle, or a file of real-valued rows.
#[derive(Args, Debug, Clone, Default)]
pub struct DataSetArgs {
    /// The data set: mnist (28×28 digits) or circle (the lecture notes' 2-D circle, z ~ N(0, 1), x = (cos z, sin z) + noise) [default: mnist]
    #[arg(long, value_enum)]
    pub dataset: Option<DataSetName>,
    /// Circle: rows generated, the first ¾ for training [default: 20000]
    #[arg(long)]
    pub n: Option<usize>,
    /// Circle: standard deviation of the Gaussian noise on each coordinate [default: 0.1]
    #[arg(long)]
    pub noise: Option<f32>,
    /// Circle: seed of the generated data (independent of --seed) [default: 0]
    #[arg(long)]
    pub data_seed: Option<u64>,
    /// Your own real-valued rows: a CSV file (comma-separated numbers, optional header) or a NumPy .npy array [rows, D]; the first ¾ of the rows train, the rest test
    #[arg(long, value_name = "FILE", conflicts_with = "dataset")]
    pub data_file: Option<PathBuf>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum DataSetName {
    Mnist,
    Circle,
}

impl DataSetArgs {
    /// Whether any data set flag was given.
    fn given(&self) -> bool {
        self.dataset.is_some()
            || self.n.is_some()
            || self.noise.is_some()
            || self.data_seed.is_some()
            || self.data_file.is_some()
    }

    /// The data source the flags name; circle-only flags without the circle are errors rather
    /// than silently ignored.
    fn source(&self) -> Result<DataSource> {
        let circle = self.dataset == Some(DataSetName::Circle);
        if !circle {
            for (flag, given) in [
                ("--n", self.n.is_some()),
                ("--noise", self.noise.is_some()),
                ("--data-seed", self.data_seed.is_some()),
            ] {
                if given {
                    return Err(Error::Usage(format!(
                        "{flag} sets up the circle data set; add --dataset circle or drop it"
                    )));
                }
            }
        }
        let source = if circle {
            let n = self.n.unwrap_or(20_000);
            check_range("--n", n, 2, circle::MAX_ROWS)?;
            let noise = self.noise.unwrap_or(0.1);
            if !(noise.is_finite() && noise >= 0.0) {
                return Err(Error::Usage(format!(
                    "--noise {noise} must be a finite number ≥ 0"
                )));
            }
            DataSource::Circle {
                n,
                seed: self.data_seed.unwrap_or(0),
                noise,
            }
        } else if let Some(path) = &self.data_file {
            // Absolute, so analysis commands run from another directory find it again.
            let path = std::fs::canonicalize(path)
                .map_err(|e| Error::Usage(format!("--data-file {}: {e}", path.display())))?;
            DataSource::File { path }
        } else {
            DataSource::Mnist
        };
        Ok(source)
    }
}

fn session(a: &ModelArgs) -> Result<Session> {
    let ck = checkpoint::load(&a.checkpoint)?;
    let data = load_data(&ck.config.data, &a.data)?;
    std::fs::create_dir_all(&a.out).map_err(|e| crate::error::io_err(&a.out, e))?;
    let ops = model_ops(a.device, &ck.config.model, &ck.state.params)?;
    Ok(Session {
        ck,
        test: data.test,
        ops,
        seed: a.seed,
    })
}

/// The data of `source`, with `--data DIR` standing in for MNIST's directory. A run's recorded
/// source must read back the content it was trained on (see `DataSource::read`).
fn load_data(source: &DataSource, mnist_dir: &Option<PathBuf>) -> Result<Corpus> {
    read_data(source, mnist_dir).map(|(corpus, _)| corpus)
}

/// [`load_data`], with what was read (the source and its content hash) for a checkpoint.
fn read_data(source: &DataSource, mnist_dir: &Option<PathBuf>) -> Result<(Corpus, DataSource)> {
    if mnist_dir.is_some() && !source.is_mnist() {
        return Err(Error::Usage(format!(
            "--data DIR is an MNIST directory, but the data set is {}; drop --data",
            source.describe()
        )));
    }
    Ok(source.read(mnist_dir.as_deref())?)
}

fn check_range(name: &str, v: usize, lo: usize, hi: usize) -> Result<()> {
    if v < lo || v > hi {
        return Err(Error::Usage(format!(
            "{name} {v} is out of range {lo}..={hi}"
        )));
    }
    Ok(())
}

fn print_paths(paths: &[PathBuf]) -> Result<()> {
    for p in paths {
        println!("wrote {}", p.display());
    }
    Ok(())
}

/// Under the ELBO figures: what they measure. Bits per dimension of the 8-bit data where the
/// run's representation gives them (a bound, so comparable across likelihoods), else why not.
fn print_units(cfg: &TrainConfig, test_elbo: f64) {
    if !cfg.model.likelihood.normalised() {
        println!(
            "note: {} is a cross-entropy objective on grayscale targets, not a normalised \
             log-likelihood: these \"ELBOs\" bound no log p(x)",
            cfg.model.likelihood.name()
        );
    } else if let Some(bpd) = cfg.bits_per_dim(test_elbo) {
        println!("test ELBO in bits/dim of the 8-bit data: {bpd:.4} (an upper bound)");
    } else if let Some(note) = cfg.units_note() {
        println!("note: {note}");
    }
}
