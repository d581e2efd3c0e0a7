//! `train`: a fresh run from the flags, or `--resume` of a checkpoint with every setting kept.

use std::path::PathBuf;
use std::sync::Arc;

use clap::Args;

use super::{check_range, load_data, print_units, read_data, DataArgs, DataSetArgs};
use crate::data::batch::Representation;
use crate::data::{Corpus, DataSource};
use crate::device::DeviceKind;
use crate::device::{make_backend, resolve_device};
use crate::error::{Error, Result};
use crate::gpu::trainer::OptimizerOn;
use crate::spec::flags::ModelFlags;
use crate::spec::ModelSpec;
use crate::training::backend::{Objective, TrainConfig, VemConfig, MAX_ROWS};
use crate::training::checkpoint;
use crate::training::optim::{OptimizerConfig, OptimizerKind};
use crate::training::run_dir::{RunDir, Start};
use crate::training::{make_splits, train, EarlyStop, RunOptions, Stop};

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
    #[arg(long, value_parser = super::positive_f32)]
    pub lr: Option<f32>,
    /// Epochs to run (after the checkpoint's, with --resume)
    #[arg(long, default_value_t = 10, value_parser = super::whole_u32)]
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
    #[arg(long, value_parser = super::whole_u64)]
    pub seed: Option<u64>,
    /// How q(z|x) is found: amortized (the encoder, Algorithm 8 of the lecture notes) or vem (variational EM, Algorithm 7: a free λ_n = (μ_n, log σ²_n) per training image, --e-steps SGD steps on a minibatch's λ's before each decoder step; held-out images fitted by --test-e-steps E-steps from the prior) [default: amortized]
    #[arg(long, value_enum)]
    pub inference: Option<Inference>,
    /// --inference vem: SGD steps on each minibatch's λ's before its decoder step [default: 5]
    #[arg(long, value_name = "S")]
    pub e_steps: Option<u32>,
    /// --inference vem: the E-step's step size α₁ (plain SGD, ascent on each image's ELBO; 0.001 leaves λ at the prior and the decoder ignoring z, 0.05 diverges: see docs/variational-em.md) [default: 0.005]
    #[arg(long, value_parser = super::positive_f32)]
    pub e_lr: Option<f32>,
    /// --inference vem: the E-step's step size in epoch i is α_i = e_lr / (1 + step_decay·(i − 1)) [default: 0, constant]
    #[arg(long)]
    pub step_decay: Option<f32>,
    /// --inference vem: E-steps from the prior that fit a held-out image's λ before its ELBO [default: 100]
    #[arg(long, value_name = "T")]
    pub test_e_steps: Option<u32>,
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

/// `--inference`: how the variational parameters of each image are found.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Inference {
    /// The encoder maps x to λ (the VAE; Algorithm 8 of the lecture notes).
    Amortized,
    /// Variational EM: a free λ_n per training image (Algorithm 7).
    Vem,
}

impl Inference {
    fn name(self) -> &'static str {
        match self {
            Inference::Amortized => "amortized",
            Inference::Vem => "vem",
        }
    }
}

/// The variational-EM settings of the flags (None for amortized inference), or why the flags
/// do not make one: the vem flags without `--inference vem` are an error, not ignored.
fn vem_config(a: &TrainArgs) -> Result<Option<VemConfig>> {
    let given = [
        ("--e-steps", a.e_steps.is_some()),
        ("--e-lr", a.e_lr.is_some()),
        ("--step-decay", a.step_decay.is_some()),
        ("--test-e-steps", a.test_e_steps.is_some()),
    ];
    if a.inference != Some(Inference::Vem) {
        if let Some((flag, _)) = given.iter().find(|(_, g)| *g) {
            return Err(Error::Usage(format!(
                "{flag} sets the E-step of variational EM; add --inference vem"
            )));
        }
        return Ok(None);
    }
    let c = VemConfig {
        e_steps: a.e_steps.unwrap_or(5),
        e_lr: a.e_lr.unwrap_or(5e-3),
        step_decay: a.step_decay.unwrap_or(0.0),
        test_e_steps: a.test_e_steps.unwrap_or(100),
    };
    c.check().map_err(Error::Usage)?;
    Ok(Some(c))
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
        Some(path) => ModelSpec::from_file_for(path, c.model.input).map_err(Error::Usage)?,
        None => c.model.clone(),
    };
    match a.model.apply(&base) {
        Ok(spec) => differs.extend(crate::spec::flags::differences(&c.model, &spec)),
        Err(e) => return Err(Error::Usage(e)),
    }
    if a.dataset.given() {
        let given = a.dataset.source()?;
        if given != c.data.unchecked() {
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
    let stored = if c.vem.is_some() {
        Inference::Vem
    } else {
        Inference::Amortized
    };
    cmp(
        "--inference",
        a.inference.map(|i| i.name().to_string()),
        stored.name().to_string(),
    );
    let vem = c.vem.as_ref();
    cmp(
        "--e-steps",
        a.e_steps.map(|x| x.to_string()),
        vem.map_or("none (amortized)".into(), |v| v.e_steps.to_string()),
    );
    cmp(
        "--e-lr",
        a.e_lr.map(|x| x.to_string()),
        vem.map_or("none (amortized)".into(), |v| v.e_lr.to_string()),
    );
    cmp(
        "--step-decay",
        a.step_decay.map(|x| x.to_string()),
        vem.map_or("none (amortized)".into(), |v| v.step_decay.to_string()),
    );
    cmp(
        "--test-e-steps",
        a.test_e_steps.map(|x| x.to_string()),
        vem.map_or("none (amortized)".into(), |v| v.test_e_steps.to_string()),
    );
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
        Some(path) => ModelSpec::from_file_for(path, dim).map_err(Error::Usage)?,
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
        vem: vem_config(a)?,
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

/// The checks of train's own flags that need no data.
pub(super) fn check_flags(a: &TrainArgs) -> Result<()> {
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
    Ok(())
}

/// Whether a fresh run of these flags has a configuration `train` accepts (what `sweep` checks
/// for every point before running any). MNIST's row size is known without loading it.
pub(super) fn check_config(a: &TrainArgs) -> Result<()> {
    let source = a.dataset.source()?;
    let dim = if source.is_mnist() && a.data.data.is_none() {
        crate::data::PIXELS
    } else {
        load_data(&source, &a.data.data)?.train.dim
    };
    train_config(a, source, dim)?;
    if a.early_stop.is_some() && a.val_size.unwrap_or(0) == 0 {
        return Err(Error::Usage(
            "--early-stop watches the validation ELBO; add --val-size N".into(),
        ));
    }
    Ok(())
}

pub(super) fn cmd_train(a: &TrainArgs) -> Result<()> {
    check_flags(a)?;
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
    // What was read, with its content hash, is what the checkpoints record; a resumed run's data
    // must be what it was trained on (a checkpoint older than the hashes gains one here).
    let (data, read) = read_data(&source, &a.data.data)?;
    let cfg = match &resumed {
        Some(ck) => TrainConfig {
            data: read,
            ..ck.config.clone()
        },
        None => train_config(a, read, data.train.dim)?,
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
    // Nothing in --out changes until the first epoch is written (the notes say what then
    // changed), so a run refused below or diverging at once leaves it as it was.
    let mut run = RunDir::open(&a.out, start, a.force)?;
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
    let mut objective = match cfg.objective {
        Objective::Elbo => format!("ELBO, L={}", cfg.samples),
        Objective::Iwae => format!("IWAE bound, K={}", cfg.samples),
    };
    if let Some(v) = &cfg.vem {
        objective = format!("{objective}; {}", v.describe());
    }
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
    let s = train(backend.as_mut(), &cfg, &splits, &mut run, &opts)?;
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
