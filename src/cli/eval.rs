//! `eval`: the train (and validation) and test ELBO of a checkpoint, and with `--iwae K` the
//! importance-weighted estimate of log p(x).

use std::path::PathBuf;
use std::sync::Arc;

use clap::Args;

use super::{check_range, load_data, print_paths, print_units, session, DataArgs, ModelArgs};
use crate::device::{make_backend, resolve_device};
use crate::error::Result;
use crate::gpu::trainer::OptimizerOn;
use crate::report::experiments;
use crate::training::backend::Split;
use crate::training::checkpoint;
use crate::training::make_splits;

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
    /// Semi-amortized inference (Kim et al. 2018): K steps of SVI (Adam, 10 samples a step, lr 0.05) from the encoder's q on each test row, and the ELBO before and after
    #[arg(long, value_name = "K", value_parser = super::whole_usize)]
    pub refine: Option<usize>,
    /// Draws of each ELBO estimate of --refine (the same draws before and after)
    #[arg(long, default_value_t = 100, value_parser = super::whole_usize)]
    pub refine_samples: usize,
    /// Rows of the test split (the first N) in the --iwae and --refine estimates [default: all of the run's]
    #[arg(long)]
    pub images: Option<usize>,
    /// Output directory for the --iwae and --refine per-row CSV and JSON
    #[arg(long, default_value = "figures")]
    pub out: PathBuf,
    /// Seed of the --iwae draws
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

pub(super) fn cmd_eval(a: &EvalArgs) -> Result<()> {
    if let Some(k) = a.iwae {
        check_range("--iwae", k, 1, 1_000_000)?;
    }
    if let Some(k) = a.refine {
        check_range("--refine", k, 1, 100_000)?;
        check_range("--refine-samples", a.refine_samples, 2, 1_000_000)?;
    }
    if a.images.is_some() && a.iwae.is_none() && a.refine.is_none() {
        return Err(crate::error::Error::Usage(
            "--images sets the rows of --iwae or --refine; add one of them or drop --images".into(),
        ));
    }
    let ck = checkpoint::load(&a.checkpoint)?;
    if ck.config.vem.is_some() && (a.iwae.is_some() || a.refine.is_some()) {
        // Refused before the ELBOs are printed: both start from the encoder's q, which a
        // variational-EM run never trained.
        return Err(crate::error::Error::Usage(format!(
            "{} was trained with --inference vem: --iwae and --refine draw from the encoder's q,              which it never trained. Drop them (eval reports the ELBO of q fitted by the E-step),              or use grid-posterior for log p(x)",
            a.checkpoint.display()
        )));
    }
    let data = load_data(&ck.config.data, &a.data.data)?;
    // The run's test split unless --test-size says otherwise, so the ELBO is the one `train`
    // printed; checkpoints that do not record it are scored on every test row.
    let (test_size, which) = match (a.data.test_size, ck.test_size) {
        (Some(n), _) => (n, "--test-size"),
        (None, Some(n)) => (n, "the run's test split"),
        (None, None) => (data.test.len(), "all: the checkpoint records no test split"),
    };
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
    if let Some(v) = &ck.config.vem {
        println!(
            "q: {} (the ELBOs below are of q fitted by {} E-steps from the prior on each image)",
            v.describe(),
            v.test_e_steps
        );
    }
    println!(
        "train ELBO: {train:.3} nats/{unit} ({} {unit}s)",
        splits.train.len()
    );
    if splits.val.is_some() {
        println!("val ELBO: {:.3} nats/{unit}", backend.evaluate(Split::Val)?);
    }
    println!(
        "test ELBO: {test:.3} nats/{unit} (the first {} test {unit}s; {which})",
        splits.test.len()
    );
    print_units(&ck.config, test);
    if a.iwae.is_none() && a.refine.is_none() {
        return Ok(());
    }
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
    let mut files = Vec::new();
    if let Some(steps) = a.refine {
        let svi = crate::inference::svi::SviOptions {
            seed: a.seed,
            ..Default::default()
        };
        let pb = indicatif::ProgressBar::new(rows as u64);
        let (r, f) = crate::report::gaps::refine(
            &mut s,
            &a.out,
            steps,
            rows,
            &svi,
            a.refine_samples,
            &mut |i| pb.set_position(i as u64),
        )?;
        pb.finish_and_clear();
        println!(
            "refined ELBO, {steps} SVI steps from q(z|x) per {unit} (semi-amortized): before \
             {} → after {} nats/{unit}, gain {} (mean ± s.e. over the first {rows} test \
             {unit}s, {} draws each; {:.1} s on {})",
            r.elbo_before.pm(),
            r.elbo_after.pm(),
            r.gain.pm(),
            a.refine_samples,
            r.seconds,
            s.ops.describe()
        );
        files.extend(f);
    }
    let Some(k) = a.iwae else {
        return print_paths(&files);
    };
    let pb = indicatif::ProgressBar::new(rows as u64);
    let r = experiments::iwae(&mut s, &a.out, k, rows, &mut |i| pb.set_position(i as u64))?;
    pb.finish_and_clear();
    println!(
        "IWAE log p(x), K = {k}: {} nats/{unit} over the first {rows} test {unit}s \
         (the same draws' ELBO {:.3}; {:.1} s on {})",
        r.log_px.pm(3),
        r.elbo.mean,
        r.seconds,
        s.ops.describe()
    );
    if let Some(bpd) = ck.config.bits_per_dim(r.log_px.mean) {
        println!("IWAE log p(x) in bits/dim of the 8-bit data: {bpd:.4}");
    }
    files.push(r.csv);
    print_paths(&files)
}
