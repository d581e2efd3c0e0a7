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
//! - `svi.rs`: `svi` and `estimators`; `gaps.rs`: `gaps`; `linear.rs`: `pca` and `ppca`;
//! - `sweep.rs`: `sweep`, grids of train runs; `compare.rs`: their table and figures.

mod compare;
mod devices;
mod eval;
mod figures;
mod gaps;
mod grid;
mod linear;
mod markdown;
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
pub use gaps::GapsArgs;
pub use grid::{GridArgs, GridOptionArgs};
pub use linear::LinearArgs;
pub use markdown::reference as markdown_reference;
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
// Every command with values takes negative numbers as values (`--epochs -1` is "not a whole
// number" of --epochs, not "unexpected argument '-1'"), as `--lower -4` already was.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Train a VAE of the family on MNIST (default: Kingma & Welling's Appendix C model).
    #[command(allow_negative_numbers = true)]
    Train(TrainArgs),
    /// Print the train and test ELBO of a checkpoint.
    #[command(allow_negative_numbers = true)]
    Eval(EvalArgs),
    /// List the GPU adapters wgpu can see.
    Devices,
    /// log p(x) by numerical integration over a 1-D or 2-D latent grid vs the ELBO, with the posteriors drawn.
    #[command(allow_negative_numbers = true)]
    GridPosterior(GridArgs),
    /// Ancestral samples: p(x|z) means and samples for z ~ p(z), beside real digits.
    #[command(allow_negative_numbers = true)]
    Samples(ModelArgs),
    /// Inputs, reconstruction means and samples through q(z|x).
    #[command(allow_negative_numbers = true)]
    Reconstructions(ModelArgs),
    /// Scatter of the means of q(z|x) for test images, coloured by digit.
    #[command(allow_negative_numbers = true)]
    LatentScatter(ScatterArgs),
    /// Decoder means on a lattice of latent points (Fig. 4b of the paper).
    #[command(allow_negative_numbers = true)]
    Lattice(LatticeArgs),
    /// Decoder along straight lines between the encodings of pairs of test digits.
    #[command(allow_negative_numbers = true)]
    Interpolate(InterpolateArgs),
    /// Train / validation / test ELBO per epoch from a metrics.jsonl file.
    #[command(allow_negative_numbers = true)]
    Curves(CurvesArgs),
    /// Every figure and the integration table of one checkpoint, with an index.html.
    #[command(allow_negative_numbers = true)]
    Report(ReportArgs),
    /// Approximation and amortization gaps (Cremer et al. 2018): log p(x), ELBO of the best q* of the family by SVI, ELBO of the encoder's q, per test image.
    #[command(allow_negative_numbers = true)]
    Gaps(GapsArgs),
    /// Stochastic variational inference without the encoder: fit q(z) to the observed pixels and complete the image.
    #[command(allow_negative_numbers = true)]
    Svi(SviArgs),
    /// Variance of reparameterization vs score-function (± baseline) gradient estimators of the ELBO.
    #[command(allow_negative_numbers = true)]
    Estimators(EstimatorArgs),
    /// PCA of grayscale MNIST: eigenvalues, the test set on two components, k-component reconstructions.
    #[command(allow_negative_numbers = true)]
    Pca(LinearArgs),
    /// Probabilistic PCA of grayscale MNIST (closed-form maximum likelihood): exact test log-likelihood, samples.
    #[command(allow_negative_numbers = true)]
    Ppca(LinearArgs),
    /// A grid of train runs (--grid KEY=V1,V2, --config NAME=FLAGS) into one directory: resumable, --jobs, --shard, --list.
    Sweep(SweepArgs),
    /// One table (CSV, Markdown, HTML) of runs or sweeps: test ELBO ± s.e. over seeds, bits/dim and a ranking on them, with curves, samples and reconstructions side by side.
    Compare(CompareArgs),
    /// The command-line reference in Markdown, generated from these definitions (docs/reference/cli.md).
    #[command(hide = true)]
    MarkdownHelp(markdown::MarkdownArgs),
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
        Command::Gaps(a) => gaps::cmd_gaps(a),
        Command::Pca(a) => linear::cmd_linear(a, false),
        Command::Ppca(a) => linear::cmd_linear(a, true),
        Command::Estimators(a) => svi::cmd_estimators(a),
        Command::Sweep(a) => sweep::cmd_sweep(a),
        Command::Compare(a) => compare::cmd_compare(a),
        Command::MarkdownHelp(a) => markdown::cmd_markdown_help(a),
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
    #[arg(long, default_value_t = 0, value_parser = whole_u64)]
    pub seed: u64,
}

#[derive(Args, Debug, Clone)]
pub struct DataArgs {
    /// Directory with the four MNIST IDX files (.gz or raw) [default: the copy compiled into the binary]
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Use the first N test images for the test ELBO [default: train: all of them; eval and train --resume: the run's test split]
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
    let s = decoder_session(a)?;
    if s.ck.config.vem.is_some() {
        return Err(Error::Usage(format!(
            "{} was trained with --inference vem: it has no trained encoder (its weights stay at \
             their initialization), and this command reads q(z|x) from the encoder. Use `eval` \
             (the ELBO of q fitted by the E-step from the prior) or `grid-posterior` (log p(x) by \
             the grid, which needs only the decoder)",
            a.checkpoint.display()
        )));
    }
    Ok(s)
}

/// [`session`] for commands whose numbers need only the decoder (a `--inference vem` checkpoint
/// is accepted).
fn decoder_session(a: &ModelArgs) -> Result<Session> {
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

/// A whole number from 0 to `max`, or a message saying so (clap's own says "invalid digit
/// found in string" for `-1`).
fn whole(s: &str, max: u128) -> std::result::Result<u128, String> {
    match s.trim().parse::<u128>() {
        Ok(v) if v <= max => Ok(v),
        _ => Err(format!("`{s}` is not a whole number from 0 to {max}")),
    }
}

/// Value parsers of counts and seeds: whole numbers, the range in the message.
pub(crate) fn whole_u32(s: &str) -> std::result::Result<u32, String> {
    whole(s, u32::MAX.into()).map(|v| v as u32)
}

pub(crate) fn whole_u64(s: &str) -> std::result::Result<u64, String> {
    whole(s, u64::MAX.into()).map(|v| v as u64)
}

pub(crate) fn whole_usize(s: &str) -> std::result::Result<usize, String> {
    whole(s, usize::MAX as u128).map(|v| v as usize)
}

/// A learning rate: a positive number that stays positive and finite as an f32 (`1e-300`
/// parsed to 0 and was then reported as "--lr 0").
pub(crate) fn positive_f32(s: &str) -> std::result::Result<f32, String> {
    let v: f64 = s
        .trim()
        .parse()
        .map_err(|_| format!("`{s}` is not a number"))?;
    if !(v.is_finite() && v > 0.0) {
        return Err(format!("`{s}` must be a positive number"));
    }
    let f = v as f32;
    if !(f.is_finite() && f >= f32::MIN_POSITIVE) {
        return Err(format!(
            "`{s}` is outside the f32 range the optimizer computes in ({:e} to {:e})",
            f32::MIN_POSITIVE,
            f32::MAX
        ));
    }
    Ok(f)
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
