//! Command-line interface: `train`, `eval`, `devices`.

use std::path::PathBuf;
use std::sync::Arc;

use clap::{Args, Parser, Subcommand};

use crate::data::batch::Representation;
use crate::data::{circle, Corpus, DataSource};
use crate::device::{list_adapters, make_backend, model_ops, resolve_device, DeviceKind};
use crate::error::{Error, Result};
use crate::gpu::describe_adapter;
use crate::gpu::trainer::OptimizerOn;
use crate::inference::analysis::LatentGrid;
use crate::inference::svi::{SviInit, SviOptions};
use crate::report::experiments::{self, Observe, SviRun};
use crate::report::figures::{self, GridOptions};
use crate::report::session::Session;
use crate::report::{write_report, ReportInputs};
use crate::spec::flags::ModelFlags;
use crate::spec::ModelSpec;
use crate::training::backend::{Objective, Split, TrainConfig, MAX_ROWS};
use crate::training::checkpoint;
use crate::training::optim::{OptimizerConfig, OptimizerKind};
use crate::training::run_dir::{RunDir, Start};
use crate::training::{make_splits, train, EarlyStop, RunOptions, Stop};

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
}

/// `pca` and `ppca`: fitted on the first --train-size training rows (MNIST: pixels/255),
/// evaluated on the test rows.
#[derive(Args, Debug)]
pub struct LinearArgs {
    /// Directory with the four MNIST IDX files (.gz or raw) [default: the copy compiled into the binary]
    #[arg(long)]
    pub data: Option<PathBuf>,
    #[command(flatten)]
    pub dataset: DataSetArgs,
    /// Principal components k (1 to D − 1)
    #[arg(long, default_value_t = 2)]
    pub components: usize,
    /// Fit on the first N training images [default: all]
    #[arg(long)]
    pub train_size: Option<usize>,
    /// Evaluate on the first N test images [default: all]
    #[arg(long)]
    pub test_size: Option<usize>,
    /// Output directory for figures and tables
    #[arg(long, default_value = "figures")]
    pub out: PathBuf,
    /// Seed of the samples
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

#[derive(Args, Debug)]
pub struct SviArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// Number of test images (the first N), fitted together
    #[arg(long, default_value_t = 5)]
    pub images: usize,
    /// Observed pixels: all, top (top 14 rows), left (left 14 columns), or a 28×28 PNG mask (white = observed)
    #[arg(long, default_value = "top")]
    pub observe: String,
    /// Starting point of q: the prior N(0, I) or the encoder's q for the observed pixels
    #[arg(long, value_enum, default_value_t = SviInit::Prior)]
    pub init: SviInit,
    /// Reparameterized samples per image per step (M)
    #[arg(long, default_value_t = 10)]
    pub samples: usize,
    /// Adam learning rate for μ and log σ
    #[arg(long, default_value_t = 0.05)]
    pub lr: f32,
    /// Stop after this many steps at most
    #[arg(long, default_value_t = 3000)]
    pub max_steps: usize,
    /// Stop when the mean ELBO of the last W steps beats the W before by less than --tol nats (W ≥ 20: a mean of fewer noisy steps stops on noise)
    #[arg(long, default_value_t = 100)]
    pub window: usize,
    /// Convergence threshold of the window rule, in nats
    #[arg(long, default_value_t = 0.02)]
    pub tol: f64,
    /// Times the window rule divides --lr by 10 before it stops an image (Adam's steps are ~lr, so a narrow posterior needs a smaller one)
    #[arg(long, default_value_t = 2)]
    pub lr_drops: usize,
    /// Samples in the final ELBO estimates
    #[arg(long, default_value_t = 1000)]
    pub elbo_samples: usize,
    #[arg(long)]
    pub quiet: bool,
}

#[derive(Args, Debug)]
pub struct EstimatorArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// Test image index
    #[arg(long, default_value_t = 0)]
    pub image: usize,
    /// Samples per gradient estimate (M)
    #[arg(long, default_value_t = 10)]
    pub samples: usize,
    /// Independent estimates (R)
    #[arg(long, default_value_t = 1000)]
    pub reps: usize,
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
pub struct GridOptionArgs {
    /// Number of test images (the first N) in the table
    #[arg(long, default_value_t = 10)]
    pub images: usize,
    /// Lower bound of the grid on both axes
    #[arg(long, default_value_t = -4.0, allow_hyphen_values = true)]
    pub lower: f64,
    /// Upper bound of the grid on both axes
    #[arg(long, default_value_t = 4.0, allow_hyphen_values = true)]
    pub upper: f64,
    /// Grid spacing [default: 0.1 for a 2-D latent; 0.01 for a 1-D one, where points are cheap and
    /// posteriors of a few tenths would span too few cells of 0.1]
    #[arg(long)]
    pub spacing: Option<f64>,
    /// Centre each image's grid on the mean of its q(z|x) (same extent as --lower/--upper)
    #[arg(long)]
    pub centre_on_q: bool,
    /// Samples of q(z|x) in each ELBO estimate
    #[arg(long, default_value_t = 1000)]
    pub elbo_samples: usize,
    /// Images drawn in the contour figures
    #[arg(long, default_value_t = 6)]
    pub plot_images: usize,
}

#[derive(Args, Debug)]
pub struct GridArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    #[command(flatten)]
    pub grid: GridOptionArgs,
}

#[derive(Args, Debug)]
pub struct ScatterArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// Number of test images (the first N)
    #[arg(long, default_value_t = 10_000)]
    pub n: usize,
}

#[derive(Args, Debug)]
pub struct LatticeArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// Points per side
    #[arg(long, default_value_t = 20)]
    pub size: usize,
    /// z₁_min z₁_max z₂_min z₂_max [default: 1st–99th percentile of the test set's embedding]
    #[arg(long, num_args = 4, allow_hyphen_values = true)]
    pub bounds: Option<Vec<f64>>,
}

#[derive(Args, Debug)]
pub struct InterpolateArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// Decoded points along each line
    #[arg(long, default_value_t = 10)]
    pub steps: usize,
    /// Interpolate between sampled z ~ q(z|x) instead of the means
    #[arg(long)]
    pub sampled: bool,
}

#[derive(Args, Debug)]
pub struct CurvesArgs {
    /// metrics.jsonl written by `vae-gpu train`
    #[arg(long)]
    pub metrics: PathBuf,
    #[arg(long, default_value = "figures")]
    pub out: PathBuf,
}

#[derive(Args, Debug)]
pub struct ReportArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    #[command(flatten)]
    pub grid: GridOptionArgs,
    /// metrics.jsonl for the training curves [default: next to the checkpoint]
    #[arg(long)]
    pub metrics: Option<PathBuf>,
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

#[derive(Args, Debug)]
pub struct TrainArgs {
    #[command(flatten)]
    pub data: DataArgs,
    #[command(flatten)]
    pub dataset: DataSetArgs,
    /// Train on the first N training images [default: all but the validation split]
    #[arg(long)]
    pub train_size: Option<usize>,
    /// Hold out the N training images after the training split for validation
    #[arg(long)]
    pub val_size: Option<usize>,
    /// How pixels become data values: threshold or stochastic binarization, grayscale (pixel/255), midpoint ((pixel + ½)/256), or dequantize ((pixel + u)/256, u uniform; densities of it report bits/dim of the 8-bit data). Each likelihood takes some of them [default: the likelihood's own]
    #[arg(long, value_enum, visible_alias = "representation", alias = "binarize")]
    pub pixels: Option<Representation>,
    /// A model specification file (JSON, the `model` object of a checkpoint's config); the
    /// family flags below override its fields
    #[arg(long, value_name = "FILE")]
    pub model_file: Option<PathBuf>,
    #[command(flatten)]
    pub model: ModelFlags,
    /// Images per minibatch [default: 100]
    #[arg(long)]
    pub batch_size: Option<usize>,
    /// Monte Carlo samples of z per image: L of the ELBO, K of the IWAE bound (`--k` is the same flag) [default: 1]
    #[arg(long, visible_alias = "k")]
    pub samples: Option<usize>,
    /// Training objective: elbo, or iwae (the importance-weighted bound over the --k samples; needs --kl mc) [default: elbo]
    #[arg(long, value_enum)]
    pub objective: Option<Objective>,
    /// Optimizer [default: adam]
    #[arg(long, value_enum)]
    pub optimizer: Option<OptimizerKind>,
    /// Learning rate [default: 0.001 for adam, 0.01 for adagrad (PyTorch's defaults)]
    #[arg(long)]
    pub lr: Option<f32>,
    /// Epochs to run (after the checkpoint's, with --resume)
    #[arg(long, default_value_t = 10)]
    pub epochs: u32,
    /// Stop once the validation ELBO has not improved (by more than --min-delta) for PATIENCE epochs; needs --val-size. best.safetensors holds the best epoch (written whenever there is a validation split)
    #[arg(long, value_name = "PATIENCE")]
    pub early_stop: Option<u32>,
    /// Smallest rise of the validation ELBO (nats) that counts as an improvement for --early-stop
    #[arg(long, default_value_t = 0.0, requires = "early_stop")]
    pub min_delta: f64,
    /// Also evaluate the ELBO over the whole training split every epoch (one extra pass), beside the running mean
    #[arg(long)]
    pub eval_train: bool,
    /// Seed for initialization, shuffling and noise [default: 0]
    #[arg(long)]
    pub seed: Option<u64>,
    /// Where the optimizer runs during GPU training [default: gpu]
    #[arg(long, value_enum)]
    pub optimizer_on: Option<OptimizerOn>,
    /// Output directory for checkpoint.safetensors and metrics.jsonl (one run per directory)
    #[arg(long, default_value = "runs/latest")]
    pub out: PathBuf,
    /// Continue from this checkpoint (parameters, optimizer state, epoch count, every setting)
    #[arg(long)]
    pub resume: Option<PathBuf>,
    /// Replace the run already in --out (its checkpoint and metrics are deleted first)
    #[arg(long)]
    pub force: bool,
    /// No progress bar
    #[arg(long)]
    pub quiet: bool,
}

#[derive(Args, Debug)]
pub struct EvalArgs {
    #[command(flatten)]
    pub data: DataArgs,
    /// The checkpoint to evaluate
    #[arg(long)]
    pub checkpoint: PathBuf,
    /// Also estimate log p(x) by importance weighting with K samples of q(z|x) per test row (Burda et al.: K = 5000); any latent size and likelihood
    #[arg(long, value_name = "K")]
    pub iwae: Option<usize>,
    /// Rows of the test split (the first N) in the --iwae estimate [default: all of the run's]
    #[arg(long, requires = "iwae")]
    pub images: Option<usize>,
    /// Output directory for the --iwae per-row CSV
    #[arg(long, default_value = "figures")]
    pub out: PathBuf,
    /// Seed of the --iwae draws
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
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

/// The data of `source`, with `--data DIR` standing in for MNIST's directory.
fn load_data(source: &DataSource, mnist_dir: &Option<PathBuf>) -> Result<Corpus> {
    if mnist_dir.is_some() && !source.is_mnist() {
        return Err(Error::Usage(format!(
            "--data DIR is an MNIST directory, but the data set is {}; drop --data",
            source.describe()
        )));
    }
    Ok(source.load(mnist_dir.as_deref())?)
}

fn check_range(name: &str, v: usize, lo: usize, hi: usize) -> Result<()> {
    if v < lo || v > hi {
        return Err(Error::Usage(format!(
            "{name} {v} is out of range {lo}..={hi}"
        )));
    }
    Ok(())
}

/// On `--resume` every setting comes from the checkpoint: a flag that repeats it is fine, a flag
/// that changes it is an error (a changed batch size, seed or test set would silently make the
/// metrics of one run incomparable across epochs).
fn check_resume_flags(
    a: &TrainArgs,
    ck: &checkpoint::Checkpoint,
    path: &std::path::Path,
) -> Result<()> {
    let c = &ck.config;
    let mut differs: Vec<String> = Vec::new();
    let base = match &a.model_file {
        Some(path) => ModelSpec::from_file(path).map_err(Error::Usage)?,
        None => c.model.clone(),
    };
    match a.model.apply(&base) {
        Ok(spec) => differs.extend(crate::spec::flags::differences(&c.model, &spec)),
        Err(e) => return Err(Error::Usage(e)),
    }
    if a.dataset.given() {
        let given = a.dataset.source()?;
        if given != c.data {
            differs.push(format!(
                "the data set {} (the run has {})",
                given.describe(),
                c.data.describe()
            ));
        }
    }
    let mut cmp = |flag: &str, given: Option<String>, stored: String| {
        if let Some(g) = given.filter(|g| *g != stored) {
            differs.push(format!("{flag} {g} (the run has {stored})"));
        }
    };
    let s = |v: Option<usize>| v.map(|x| x.to_string());
    cmp("--batch-size", s(a.batch_size), c.batch_size.to_string());
    cmp("--samples", s(a.samples), c.samples.to_string());
    cmp(
        "--objective",
        a.objective.map(|o| format!("{o:?}").to_lowercase()),
        format!("{:?}", c.objective).to_lowercase(),
    );
    cmp(
        "--optimizer",
        a.optimizer
            .map(|k| OptimizerConfig::new(k, None).name().to_string()),
        c.optimizer.name().to_string(),
    );
    cmp(
        "--lr",
        a.lr.map(|x| x.to_string()),
        c.optimizer.lr().to_string(),
    );
    cmp("--seed", a.seed.map(|x| x.to_string()), c.seed.to_string());
    cmp(
        "--pixels",
        a.pixels.map(|p| p.name().to_string()),
        c.pixels.name().to_string(),
    );
    cmp("--train-size", s(a.train_size), ck.train_size.to_string());
    cmp("--val-size", s(a.val_size), ck.val_size.to_string());
    if let Some(t) = ck.test_size {
        cmp("--test-size", s(a.data.test_size), t.to_string());
    }
    if differs.is_empty() {
        return Ok(());
    }
    Err(Error::Usage(format!(
        "{} differ(s) from the run being resumed ({}); a resumed run keeps its settings. \
         Drop the flag(s), or start a new run with another --out",
        differs.join(", "),
        path.display()
    )))
}

/// Builds a fresh run's configuration from the flags and the built-in defaults, for `data` with
/// `dim` values per row (the model's input size is the data's).
fn train_config(a: &TrainArgs, data: DataSource, dim: usize) -> Result<TrainConfig> {
    let base = match &a.model_file {
        Some(path) => ModelSpec::from_file(path).map_err(Error::Usage)?,
        None => ModelSpec::mnist(500, 2),
    };
    let mut model = a.model.apply(&base).map_err(Error::Usage)?;
    if model.image.is_some() && !data.is_mnist() {
        return Err(Error::Usage(format!(
            "--arch conv convolves images; {} has rows of {dim} values with no image shape; \
             use --arch mlp",
            data.describe()
        )));
    }
    model.input = dim;
    let pixels = model
        .likelihood
        .representation(a.pixels, !data.is_mnist())
        .map_err(Error::Usage)?;
    let batch_size = a.batch_size.unwrap_or(100);
    let samples = a.samples.unwrap_or(1);
    check_range("--batch-size", batch_size, 1, 60_000)?;
    check_range("--samples (--k)", samples, 1, 10_000)?;
    check_range(
        "--batch-size × --samples",
        batch_size * samples,
        1,
        MAX_ROWS,
    )?;
    if let Some(lr) =
        a.lr.filter(|lr| !(lr.is_finite() && *lr > 0.0 && *lr < 10.0))
    {
        return Err(Error::Usage(format!(
            "--lr {lr} must be a positive number below 10"
        )));
    }
    let cfg = TrainConfig {
        model,
        batch_size,
        samples,
        optimizer: OptimizerConfig::new(a.optimizer.unwrap_or(OptimizerKind::Adam), a.lr),
        seed: a.seed.unwrap_or(0),
        pixels,
        data,
        objective: a.objective.unwrap_or_default(),
    };
    cfg.check().map_err(Error::Usage)?;
    Ok(cfg)
}

/// The split sizes of a run: from the checkpoint on resume, else from the flags, defaulting to
/// every image of the data set.
struct SplitSizes {
    train: usize,
    val: usize,
    test: usize,
}

fn split_sizes(
    a: &TrainArgs,
    resumed: Option<&checkpoint::Checkpoint>,
    data: &Corpus,
) -> SplitSizes {
    let (n_train, n_test) = (data.train.len(), data.test.len());
    match resumed {
        Some(ck) => SplitSizes {
            train: ck.train_size,
            val: ck.val_size,
            // Checkpoints older than the run records did not store it; the flag or all.
            test: ck.test_size.or(a.data.test_size).unwrap_or(n_test),
        },
        None => {
            let val = a.val_size.unwrap_or(0);
            SplitSizes {
                train: a.train_size.unwrap_or(n_train.saturating_sub(val)),
                val,
                test: a.data.test_size.unwrap_or(n_test),
            }
        }
    }
}

fn cmd_train(a: &TrainArgs) -> Result<()> {
    if a.epochs == 0 {
        return Err(Error::Usage("--epochs must be at least 1".into()));
    }
    if a.early_stop == Some(0) {
        return Err(Error::Usage(
            "--early-stop 0 would stop before any epoch counts; give a patience of at least 1"
                .into(),
        ));
    }
    if !(a.min_delta.is_finite() && a.min_delta >= 0.0) {
        return Err(Error::Usage(format!(
            "--min-delta {} must be a finite number ≥ 0",
            a.min_delta
        )));
    }
    let resumed = match a.resume.as_deref() {
        Some(p) => {
            let ck = checkpoint::load(p)?;
            check_resume_flags(a, &ck, p)?;
            Some(ck)
        }
        None => None,
    };
    let source = match &resumed {
        Some(ck) => ck.config.data.clone(),
        None => a.dataset.source()?,
    };
    let data = load_data(&source, &a.data.data)?;
    let cfg = match &resumed {
        Some(ck) => ck.config.clone(),
        None => train_config(a, source, data.train.dim)?,
    };
    if a.data.device == DeviceKind::Cpu && a.optimizer_on == Some(OptimizerOn::Gpu) {
        return Err(Error::Usage(
            "--optimizer-on gpu needs a GPU device; --device cpu always runs the optimizer on the host".into(),
        ));
    }
    // The output directory is claimed before anything is trained or written, so an unwritable
    // --out or a clash with another run costs nothing.
    let start = match (&resumed, a.resume.as_deref()) {
        (Some(ck), Some(path)) => Start::Resume { path, ck },
        _ => Start::Fresh,
    };
    let mut run = RunDir::open(&a.out, start, a.force)?;
    for note in &run.notes {
        eprintln!("note: {note}");
    }
    let sizes = split_sizes(a, resumed.as_ref(), &data);
    let splits = make_splits(data, sizes.train, sizes.val, sizes.test).map_err(|e| match e {
        Error::Usage(m) if resumed.is_none() => {
            Error::Usage(format!("{m}; set --train-size, --val-size and --test-size to fit"))
        }
        Error::Usage(m) => Error::Usage(format!("{m}; the sizes are those stored in the resumed checkpoint, so pass --data with the data set it was trained on")),
        e => e,
    })?;
    if a.early_stop.is_some() && sizes.val == 0 {
        return Err(Error::Usage(
            "--early-stop watches the validation ELBO, and this run has no validation split; \
             add --val-size N (e.g. --train-size 50000 --val-size 10000)"
                .into(),
        ));
    }
    if sizes.train < cfg.batch_size {
        return Err(Error::Usage(format!(
            "the training split of {} images is smaller than one batch of {}",
            sizes.train, cfg.batch_size
        )));
    }
    let splits = Arc::new(splits);
    let settings = serde_json::to_string(&cfg).map_err(|e| Error::Io(e.to_string()))?;
    run.identify(&format!(
        "{settings} train {} val {} test {}",
        sizes.train, sizes.val, sizes.test
    ));
    let device = resolve_device(a.data.device);
    let mut backend = make_backend(
        device,
        a.optimizer_on.unwrap_or(OptimizerOn::Gpu),
        &cfg,
        splits.clone(),
    )?;
    let start_epoch = match &resumed {
        Some(ck) => {
            backend.set_state(&ck.state)?;
            ck.epoch
        }
        None => 0,
    };
    let objective = match cfg.objective {
        Objective::Elbo => format!("ELBO, L={}", cfg.samples),
        Objective::Iwae => format!("IWAE bound, K={}", cfg.samples),
    };
    eprintln!(
        "training {}\n  on {}, batch={} {} {} ({} train / {} val / {} test rows) on {}",
        cfg.model.describe(),
        cfg.data.describe(),
        cfg.batch_size,
        objective,
        cfg.optimizer.describe(),
        splits.train.len(),
        sizes.val,
        splits.test.len(),
        backend.describe()
    );
    let opts = RunOptions {
        epochs: a.epochs,
        start_epoch,
        show_progress: !a.quiet,
        early_stop: a.early_stop.map(|patience| EarlyStop {
            patience,
            min_delta: a.min_delta,
        }),
        eval_train: a.eval_train,
    };
    let s = train(backend.as_mut(), &cfg, &splits, &run, &opts)?;
    println!("epochs: {}", s.epochs_done);
    if let Stop::Early { epoch } = s.stop {
        println!(
            "stopped early after epoch {epoch}: the validation ELBO has not improved by more than \
             {} for {} epochs",
            a.min_delta,
            a.early_stop.unwrap_or(0)
        );
    }
    if let Some(b) = s.best {
        println!(
            "best validation ELBO: {:.3} nats/{} at epoch {} ({})",
            b.best_val,
            cfg.data.row_name(),
            b.best_epoch,
            run.best.display()
        );
    }
    println!(
        "train ELBO (full pass, final parameters): {:.3} nats/{}",
        s.train_elbo,
        cfg.data.row_name()
    );
    println!("test ELBO: {:.3} nats/{}", s.test_elbo, cfg.data.row_name());
    print_units(&cfg, s.test_elbo);
    println!("checkpoint: {}", s.checkpoint.display());
    println!("metrics: {}", s.metrics.display());
    Ok(())
}

fn cmd_eval(a: &EvalArgs) -> Result<()> {
    if let Some(k) = a.iwae {
        check_range("--iwae", k, 1, 1_000_000)?;
    }
    let ck = checkpoint::load(&a.checkpoint)?;
    let data = load_data(&ck.config.data, &a.data.data)?;
    let test_size = a.data.test_size.unwrap_or(data.test.len());
    let splits = Arc::new(make_splits(data, ck.train_size, ck.val_size, test_size)?);
    let device = resolve_device(a.data.device);
    let mut backend = make_backend(device, OptimizerOn::Gpu, &ck.config, splits.clone())?;
    backend.set_state(&ck.state)?;
    let train = backend.evaluate(Split::Train)?;
    let test = backend.evaluate(Split::Test)?;
    let unit = ck.config.data.row_name();
    println!(
        "checkpoint: {} (epoch {}, {} steps)",
        a.checkpoint.display(),
        ck.epoch,
        ck.state.step
    );
    println!("device: {}", backend.describe());
    println!(
        "train ELBO: {train:.3} nats/{unit} ({} {unit}s)",
        splits.train.len()
    );
    if splits.val.is_some() {
        println!("val ELBO: {:.3} nats/{unit}", backend.evaluate(Split::Val)?);
    }
    println!(
        "test ELBO: {test:.3} nats/{unit} ({} {unit}s)",
        splits.test.len()
    );
    print_units(&ck.config, test);
    let Some(k) = a.iwae else {
        return Ok(());
    };
    drop(backend);
    let rows = a.images.unwrap_or(splits.test.len());
    check_range("--images", rows, 1, splits.test.len())?;
    let mut s = session(&ModelArgs {
        checkpoint: a.checkpoint.clone(),
        data: a.data.data.clone(),
        device: a.data.device,
        out: a.out.clone(),
        seed: a.seed,
    })?;
    let pb = indicatif::ProgressBar::new(rows as u64);
    let r = experiments::iwae(&mut s, &a.out, k, rows, &mut |i| pb.set_position(i as u64))?;
    pb.finish_and_clear();
    println!(
        "IWAE log p(x), K = {k}: {:.3} ± {:.3} nats/{unit} over the first {rows} test {unit}s \
         (the same draws' ELBO {:.3}; {:.1} s on {})",
        r.log_px.mean,
        r.log_px.std_err,
        r.elbo.mean,
        r.seconds,
        s.ops.describe()
    );
    if let Some(bpd) = ck.config.bits_per_dim(r.log_px.mean) {
        println!("IWAE log p(x) in bits/dim of the 8-bit data: {bpd:.4}");
    }
    print_paths(&[r.csv])
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

fn cmd_devices() -> Result<()> {
    let adapters = list_adapters();
    if adapters.is_empty() {
        println!("no GPU adapters found; `--device cpu` works everywhere, or install a Vulkan driver (e.g. mesa-vulkan-drivers)");
    }
    for a in adapters {
        println!("{}", describe_adapter(&a));
    }
    Ok(())
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

/// The grid options for a model with a `latent`-dimensional latent space (a line for Dz = 1).
fn grid_options(g: &GridOptionArgs, latent: usize) -> Result<GridOptions> {
    check_range("--images", g.images, 1, 10_000)?;
    check_range("--elbo-samples", g.elbo_samples, 2, 1_000_000)?;
    check_range("--plot-images", g.plot_images, 1, 30)?;
    let grid = if latent == 1 {
        LatentGrid::line(g.lower, g.upper, g.spacing.unwrap_or(0.01))?
    } else {
        LatentGrid::square(g.lower, g.upper, g.spacing.unwrap_or(0.1))?
    };
    Ok(GridOptions {
        images: g.images,
        grid,
        centre_on_q: g.centre_on_q,
        elbo_samples: g.elbo_samples,
        plot_images: g.plot_images,
    })
}

/// `pca` (`probabilistic` false) or `ppca`.
fn cmd_linear(a: &LinearArgs, probabilistic: bool) -> Result<()> {
    use crate::report::linear_models::{pca_report, ppca_report};
    let source = a.dataset.source()?;
    let data = load_data(&source, &a.data)?;
    let (n_train, n_test, d) = (data.train.len(), data.test.len(), data.train.dim);
    let train_size = a.train_size.unwrap_or(n_train);
    let test_size = a.test_size.unwrap_or(n_test);
    check_range("--train-size", train_size, 2, n_train)?;
    check_range("--test-size", test_size, 1, n_test)?;
    if d < 2 {
        return Err(Error::Usage(format!(
            "{} has 1 value per row: there is no lower-dimensional subspace to find",
            source.describe()
        )));
    }
    check_range("--components", a.components, 1, d - 1)?;
    let (train, test) = (
        data.train.slice(0, train_size),
        data.test.slice(0, test_size),
    );
    let rows = if source.is_mnist() {
        format!("{train_size} training images (pixels/255)")
    } else {
        format!("{train_size} training rows of {}", source.describe())
    };
    std::fs::create_dir_all(&a.out).map_err(|e| crate::error::io_err(&a.out, e))?;
    if probabilistic {
        let r = ppca_report(&train, &test, a.components, a.seed, &a.out)?;
        let ll = r.test_log_likelihood;
        println!(
            "probabilistic PCA, {} components, fitted on {rows}",
            a.components
        );
        println!("σ² = {:.6}", r.sigma2);
        println!(
            "test log-likelihood: {:.3} ± {:.3} nats/row over {test_size} rows ({:.4} bits/dim{})",
            ll.mean,
            ll.std_err,
            -ll.mean / (d as f64 * std::f64::consts::LN_2),
            if source.is_mnist() {
                ": a density of [0, 1] pixels, not of 8-bit values"
            } else {
                ""
            }
        );
        print_paths(&r.files)
    } else {
        let r = pca_report(&train, &test, a.components, &a.out)?;
        println!(
            "PCA fitted on {rows}: {} components explain {:.2}% of the variance; test \
             reconstruction MSE {:.5} per value",
            r.components,
            100.0 * r.explained,
            r.test_mse
        );
        print_paths(&r.files)
    }
}

fn print_paths(paths: &[PathBuf]) -> Result<()> {
    for p in paths {
        println!("wrote {}", p.display());
    }
    Ok(())
}

fn cmd_grid_posterior(a: &GridArgs) -> Result<()> {
    let mut s = session(&a.model)?;
    let opts = grid_options(&a.grid, s.latent())?;
    let r = figures::grid_posterior(&mut s, &a.model.out, &opts)?;
    print!("{}", figures::format_grid_table(&r.rows));
    let grid = opts.grid.for_latent(s.latent())?;
    let points = if grid.dims == 2 {
        format!("{}×{}", grid.nx, grid.ny)
    } else {
        grid.nx.to_string()
    };
    println!(
        "grid of {points} points, spacing {}; {} rows in {:.2} s on {}",
        grid.dx,
        r.rows.len(),
        r.seconds,
        s.ops.describe()
    );
    if r.rows.iter().any(|row| row.edge_mass > 1e-3) {
        eprintln!("warning: more than 0.1% of some posterior's mass lies on the grid's edge; widen --lower/--upper or use --centre-on-q");
    }
    // A Gaussian-like posterior of width σ spans about 4π(σ/h)² cells at spacing h, and the
    // Riemann sum's relative error is about exp(−2π²σ²/h²): below 5 cells (h > 1.6σ) that passes
    // 1e-3 and grows fast, so the grid is too coarse for this posterior.
    if let Some(row) = r.rows.iter().find(|row| row.cells_spanned < 3.0) {
        let finer = opts.grid.dx / 10.0;
        eprintln!(
            "warning: the posterior of image {} spans only about {:.1} grid cells: spacing {} is \
             wider than the posterior, so log p(x) is unreliable; integrate on a finer grid, e.g. \
             --centre-on-q --lower {} --upper {} --spacing {finer}",
            row.image,
            row.cells_spanned,
            opts.grid.dx,
            -40.0 * finer,
            40.0 * finer
        );
    }
    if r.rows.iter().any(|row| !row.bound_holds()) {
        eprintln!("warning: log p(x) < ELBO beyond 3 standard errors for some image: the grid misses posterior mass");
    }
    print_paths(&[vec![r.csv], r.figures].concat())
}

/// Smallest SVI convergence window: the mean of 20 single-step ELBO estimates has about a fifth
/// of their spread, enough to compare with --tol.
const MIN_SVI_WINDOW: usize = 20;

fn cmd_svi(a: &SviArgs) -> Result<()> {
    check_range("--images", a.images, 1, 1000)?;
    check_range("--samples", a.samples, 1, 10_000)?;
    check_range("--max-steps", a.max_steps, 1, 1_000_000)?;
    check_range("--elbo-samples", a.elbo_samples, 2, 1_000_000)?;
    // Two windows must fit in the run, and each must average enough steps that the comparison
    // is not decided by Monte Carlo noise (a window of 1 "converged" after 3 steps).
    check_range("--window", a.window, MIN_SVI_WINDOW, 1_000_000)?;
    if 2 * a.window > a.max_steps {
        return Err(Error::Usage(format!(
            "--window {} needs at least {} steps to compare two windows; raise --max-steps {}",
            a.window,
            2 * a.window,
            a.max_steps
        )));
    }
    if !(a.lr.is_finite() && a.lr > 0.0 && a.tol.is_finite() && a.tol >= 0.0) {
        return Err(Error::Usage(
            "--lr must be positive and --tol non-negative".into(),
        ));
    }
    let run = SviRun {
        images: a.images,
        observe: Observe::parse(&a.observe),
        init: a.init,
        opts: SviOptions {
            samples: a.samples,
            lr: a.lr,
            max_steps: a.max_steps,
            window: a.window,
            tol: a.tol,
            lr_drops: a.lr_drops,
            seed: a.model.seed,
        },
        elbo_samples: a.elbo_samples,
    };
    let mut s = session(&a.model)?;
    run.observe.mask(s.dim())?;
    let pb = if a.quiet {
        indicatif::ProgressBar::hidden()
    } else {
        indicatif::ProgressBar::new(a.max_steps as u64)
    };
    let r = experiments::svi(&mut s, &a.model.out, &run, &mut |step| {
        pb.set_position(step as u64)
    })?;
    pb.finish_and_clear();
    println!(
        "image  digit  steps  conv   SVI ELBO ± s.e.    encoder ELBO   KL(q‖p_grid)   log p(x_obs)"
    );
    for row in &r.rows {
        let opt = |v: Option<f64>| v.map_or("-".to_string(), |x| format!("{x:.3}"));
        println!(
            "{:>5}  {:>5}  {:>5}  {:>4}  {:>9.3} ± {:<6.3}  {:>12.3}  {:>13}  {:>13}",
            row.image,
            row.label.map_or("-".into(), |l| l.to_string()),
            row.steps,
            row.converged,
            row.elbo,
            row.elbo_std_err,
            row.encoder_elbo,
            opt(row.kl_to_grid_posterior),
            opt(row.log_px_obs_grid)
        );
    }
    println!(
        "fitted {} {} ({} {} observed) in {:.2} s on {}",
        r.rows.len(),
        if s.is_image() { "images" } else { "rows" },
        run.observe.name(),
        if s.is_image() { "pixels" } else { "values" },
        r.seconds,
        s.ops.describe()
    );
    let far = r
        .rows
        .iter()
        .filter(|row| row.kl_to_grid_posterior.is_some_and(|kl| kl > 1.0))
        .count();
    if far > 0 {
        eprintln!(
            "note: for {far} image(s) the fitted q is more than 1 nat of KL from the grid \
             posterior: the window rule stopped while the noisy ELBO still improved (narrow \
             posteriors, e.g. of a Gaussian likelihood, do this); a larger --window (e.g. 400, \
             with --max-steps 8000) lets SVI settle further"
        );
    }
    print_paths(&r.files)
}

fn cmd_report(a: &ReportArgs) -> Result<()> {
    let ck = checkpoint::load(&a.model.checkpoint)?;
    let opts = grid_options(&a.grid, ck.config.model.latent)?;
    let data = load_data(&ck.config.data, &a.model.data)?;
    let test_size = data.test.len();
    let splits = Arc::new(make_splits(data, ck.train_size, ck.val_size, test_size)?);
    let mut backend = make_backend(
        resolve_device(a.model.device),
        OptimizerOn::Gpu,
        &ck.config,
        splits,
    )?;
    backend.set_state(&ck.state)?;
    let (train_elbo, test_elbo) = (
        backend.evaluate(Split::Train)?,
        backend.evaluate(Split::Test)?,
    );
    let device = backend.describe();
    drop(backend);
    let mut s = session(&a.model)?;
    let metrics = a
        .metrics
        .clone()
        .or_else(|| a.model.checkpoint.parent().map(|d| d.join("metrics.jsonl")));
    let inputs = ReportInputs {
        metrics,
        train_elbo,
        test_elbo,
        device,
        grid: opts,
    };
    let html = write_report(&mut s, &a.model.out, &inputs)?;
    println!("train ELBO {train_elbo:.3}, test ELBO {test_elbo:.3}");
    println!("wrote {}", html.display());
    Ok(())
}

pub fn run(cli: Cli) -> Result<()> {
    match &cli.command {
        Command::Train(a) => cmd_train(a),
        Command::Eval(a) => cmd_eval(a),
        Command::Devices => cmd_devices(),
        Command::GridPosterior(a) => cmd_grid_posterior(a),
        Command::Samples(a) => print_paths(&figures::prior_samples(&mut session(a)?, &a.out)?),
        Command::Reconstructions(a) => {
            print_paths(&figures::reconstructions(&mut session(a)?, &a.out)?)
        }
        Command::LatentScatter(a) => {
            check_range("--n", a.n, 1, 10_000)?;
            let (p, _) = figures::latent_scatter(&mut session(&a.model)?, &a.model.out, a.n)?;
            print_paths(&[p])
        }
        Command::Lattice(a) => {
            check_range("--size", a.size, 2, 100)?;
            let mut s = session(&a.model)?;
            let bounds = match &a.bounds {
                Some(b)
                    if b.len() == 4
                        && b.iter().all(|v| v.is_finite())
                        && b[0] < b[1]
                        && b[2] < b[3] =>
                {
                    [b[0], b[1], b[2], b[3]]
                }
                Some(b) => {
                    return Err(Error::Usage(format!(
                        "--bounds {b:?} must be z1_min z1_max z2_min z2_max with min < max"
                    )))
                }
                None => figures::latent_scatter(&mut s, &a.model.out, 10_000)?.1,
            };
            print_paths(&[figures::lattice(&mut s, &a.model.out, a.size, bounds)?])
        }
        Command::Interpolate(a) => {
            check_range("--steps", a.steps, 2, 50)?;
            print_paths(&[figures::interpolation(
                &mut session(&a.model)?,
                &a.model.out,
                a.steps,
                a.sampled,
            )?])
        }
        Command::Curves(a) => {
            std::fs::create_dir_all(&a.out).map_err(|e| crate::error::io_err(&a.out, e))?;
            print_paths(&[figures::training_curves(&a.metrics, &a.out)?])
        }
        Command::Report(a) => cmd_report(a),
        Command::Svi(a) => cmd_svi(a),
        Command::Pca(a) => cmd_linear(a, false),
        Command::Ppca(a) => cmd_linear(a, true),
        Command::Estimators(a) => {
            check_range("--samples", a.samples, 2, 100_000)?;
            check_range("--reps", a.reps, 2, 1_000_000)?;
            check_range("--samples × --reps", a.samples * a.reps, 4, 2_000_000)?;
            let mut s = session(&a.model)?;
            let t0 = std::time::Instant::now();
            let (studies, files) =
                experiments::estimators(&mut s, &a.model.out, a.image, a.samples, a.reps)?;
            print!("{}", experiments::format_estimators(&studies));
            println!(
                "{:.2} s on {}",
                t0.elapsed().as_secs_f64(),
                s.ops.describe()
            );
            print_paths(&files)
        }
    }
}
