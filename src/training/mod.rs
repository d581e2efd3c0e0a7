//! The training loop shared by every device: epochs, evaluation, metrics lines, checkpoints,
//! divergence handling.
//!
//! Beside it: [`backend`] (what a device must do), [`optim`] (Adam, Adagrad), [`checkpoint`]
//! (safetensors I/O) and [`run_dir`] (one run per directory).

pub mod backend;
pub mod checkpoint;
pub mod optim;
pub mod run_dir;

use std::path::PathBuf;
use std::time::Instant;

use serde::Serialize;

use crate::data::batch::epoch_permutation;
use crate::data::Corpus;
use crate::error::{Error, Result};
use crate::training::backend::{Backend, EpochCounters, Split, Splits, TrainConfig};
use crate::training::run_dir::RunDir;
use checkpoint::Checkpoint;

/// Builds the splits: train = first `train_size` training rows, val = the next `val_size`,
/// test = first `test_size` test rows.
pub fn make_splits(
    data: Corpus,
    train_size: usize,
    val_size: usize,
    test_size: usize,
) -> Result<Splits> {
    let (nt, ns) = (data.train.len(), data.test.len());
    if train_size == 0 || train_size + val_size > nt {
        return Err(Error::Usage(format!(
            "a training split of {train_size} rows plus a validation split of {val_size} must be \
             between 1 and the {nt} training rows of the data set"
        )));
    }
    if test_size == 0 || test_size > ns {
        return Err(Error::Usage(format!(
            "a test split of {test_size} rows must be between 1 and the {ns} test rows of the data set"
        )));
    }
    let val = (val_size > 0).then(|| data.train.slice(train_size, val_size));
    Ok(Splits {
        train: data.train.slice(0, train_size),
        val,
        test: data.test.slice(0, test_size),
    })
}

/// One line of `metrics.jsonl`.
#[derive(Debug, Serialize)]
pub struct EpochMetrics {
    pub epoch: u32,
    /// Wall-clock seconds of the training pass alone (null in a line restored from a checkpoint,
    /// which stores only what is reproducible so that its bytes are).
    pub seconds: Option<f64>,
    pub eval_seconds: Option<f64>,
    /// Mean ELBO of the epoch's training batches (nats per image, running during the epoch).
    pub train_elbo: f64,
    /// With `--eval-train`: the ELBO of one full pass over the training split with the epoch's
    /// final parameters (absent otherwise, so older lines read the same).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub train_elbo_full: Option<f64>,
    pub val_elbo: Option<f64>,
    pub test_elbo: f64,
    pub steps: u64,
    pub device: Option<String>,
    /// The run this record belongs to (kept across `--resume`).
    pub run_id: String,
    /// GPU runs: dispatches per step, submits of the training pass and host seconds per step
    /// (flattened into the line; absent on the CPU path and, like `seconds`, in the line a
    /// checkpoint stores, since host time is not reproducible).
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub counters: Option<EpochCounters>,
}

/// `--early-stop PATIENCE --min-delta D`: stop once the validation ELBO has not risen by more
/// than `min_delta` for `patience` epochs.
#[derive(Clone, Copy, Debug)]
pub struct EarlyStop {
    pub patience: u32,
    pub min_delta: f64,
}

/// The best validation epoch so far and how many epochs have passed without an improvement.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Progress {
    pub best_epoch: u32,
    pub best_val: f64,
    pub epochs_since: u32,
}

impl Progress {
    /// The progress after validation ELBO `val` at `epoch`: an improvement when it beats the
    /// best so far by more than `min_delta` (the first epoch always does).
    pub fn after(prev: Option<Self>, epoch: u32, val: f64, min_delta: f64) -> Self {
        match prev {
            Some(p) if val <= p.best_val + min_delta => Self {
                epochs_since: p.epochs_since + 1,
                ..p
            },
            _ => Self {
                best_epoch: epoch,
                best_val: val,
                epochs_since: 0,
            },
        }
    }

    /// Replays a run's history of validation ELBOs (epoch, value); None without any.
    pub fn replay(history: &[(u32, f64)], min_delta: f64) -> Option<Self> {
        history
            .iter()
            .fold(None, |p, &(e, v)| Some(Self::after(p, e, v, min_delta)))
    }
}

/// Why training ended.
#[derive(Clone, Debug, PartialEq)]
pub enum Stop {
    /// All `--epochs` ran.
    Completed,
    /// The stopping rule fired after this epoch.
    Early { epoch: u32 },
}

pub struct RunOptions {
    pub epochs: u32,
    /// Epochs already done (from a resumed checkpoint).
    pub start_epoch: u32,
    pub show_progress: bool,
    pub early_stop: Option<EarlyStop>,
    /// Evaluate the full training split every epoch (`--eval-train`).
    pub eval_train: bool,
}

pub struct Summary {
    pub epochs_done: u32,
    /// One full pass over the training split with the final parameters (not the running mean
    /// printed per epoch).
    pub train_elbo: f64,
    pub test_elbo: f64,
    pub checkpoint: PathBuf,
    pub metrics: PathBuf,
    pub stop: Stop,
    /// The best validation epoch (written to `best.safetensors`), when there is a validation split.
    pub best: Option<Progress>,
}

/// The validation ELBOs of a resumed run's history (its metrics lines).
fn validation_history(lines: &[String]) -> Vec<(u32, f64)> {
    lines
        .iter()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| Some((v["epoch"].as_u64()? as u32, v["val_elbo"].as_f64()?)))
        .collect()
}

fn progress_bar(steps: usize, epoch: u32, show: bool) -> indicatif::ProgressBar {
    if !show {
        return indicatif::ProgressBar::hidden();
    }
    let pb = indicatif::ProgressBar::new(steps as u64);
    if let Ok(style) = indicatif::ProgressStyle::with_template(
        "epoch {prefix:>3} [{bar:40}] {pos}/{len} steps {per_sec} eta {eta}",
    ) {
        pb.set_style(style.progress_chars("=> "));
    }
    pb.set_prefix(epoch.to_string());
    pb
}

/// Trains `opts.epochs` epochs, writing after every epoch the checkpoint (atomically, carrying the
/// epoch's metrics line) and then the line itself into `run`'s `metrics.jsonl` (see `run_dir` for
/// why in that order). The run directory is prepared ([`RunDir::begin`]) only once the first
/// epoch has a checkpoint to write. On a NaN/inf loss it stops with `Error::Diverged`, leaving
/// the last good checkpoint in place (and, in its first epoch, the directory as it was).
pub fn train(
    backend: &mut dyn Backend,
    cfg: &TrainConfig,
    splits: &Splits,
    run: &mut RunDir,
    opts: &RunOptions,
) -> Result<Summary> {
    let ckpt_path = run.checkpoint.clone();
    let metrics_path = run.metrics.clone();
    let n_train = splits.train.len();
    let steps = n_train / cfg.batch_size;
    let device = backend.describe();
    let mut last_test = f64::NAN;
    let min_delta = opts.early_stop.map_or(0.0, |e| e.min_delta);
    let mut best = Progress::replay(&validation_history(run.history()), min_delta);
    if let (Some(rule), Some(b)) = (opts.early_stop, best) {
        if b.epochs_since >= rule.patience {
            return Err(Error::Usage(format!(
                "this run already met its stopping rule: the validation ELBO has not improved by \
                 more than {min_delta} for {} epochs since epoch {} ({:.3}); raise --early-stop \
                 above {} or drop it to train on",
                b.epochs_since, b.best_epoch, b.best_val, b.epochs_since
            )));
        }
    }
    let mut stop = Stop::Completed;
    let mut epochs_done = opts.start_epoch;
    for epoch in opts.start_epoch + 1..=opts.start_epoch + opts.epochs {
        let perm = epoch_permutation(n_train, cfg.seed, epoch);
        let pb = progress_bar(steps, epoch, opts.show_progress);
        let t0 = Instant::now();
        let train_elbo =
            backend.train_epoch(epoch, &perm, &mut |done| pb.set_position(done as u64))?;
        let seconds = t0.elapsed().as_secs_f64();
        let counters = backend.epoch_counters();
        pb.finish_and_clear();
        if !train_elbo.is_finite() {
            let kept = if ckpt_path.exists() {
                format!(
                    "the last good checkpoint is kept at {}",
                    ckpt_path.display()
                )
            } else {
                format!("no checkpoint was written to {}", run.dir.display())
            };
            return Err(Error::Diverged(format!(
                "the training ELBO of epoch {epoch} is {train_elbo}; {kept}. Try a smaller --lr{} or a different --seed",
                if cfg.vem.is_some() { " or --e-lr (the E-step's step size)" } else { "" }
            )));
        }
        let t1 = Instant::now();
        let train_elbo_full = if opts.eval_train {
            Some(backend.evaluate(Split::Train)?)
        } else {
            None
        };
        let val_elbo = if splits.val.is_some() {
            Some(backend.evaluate(Split::Val)?)
        } else {
            None
        };
        let test_elbo = backend.evaluate(Split::Test)?;
        let eval_seconds = t1.elapsed().as_secs_f64();
        let state = backend.state()?;
        if state.params.iter().any(|p| !p.is_finite()) {
            return Err(Error::Diverged(format!(
                "parameters became NaN/inf in epoch {epoch}; the previous checkpoint is kept"
            )));
        }
        let record = EpochMetrics {
            epoch,
            seconds: None,
            eval_seconds: None,
            train_elbo,
            train_elbo_full,
            val_elbo,
            test_elbo,
            steps: state.step as u64,
            device: None,
            run_id: run.run_id.clone(),
            counters: None,
        };
        let stored = serde_json::to_string(&record).map_err(|e| Error::Io(e.to_string()))?;
        let m = EpochMetrics {
            seconds: Some(seconds),
            eval_seconds: Some(eval_seconds),
            device: Some(device.clone()),
            counters,
            ..record
        };
        let line = serde_json::to_string(&m).map_err(|e| Error::Io(e.to_string()))?;
        let ck = Checkpoint {
            config: cfg.clone(),
            state,
            epoch,
            train_size: n_train,
            val_size: splits.val.as_ref().map_or(0, |v| v.len()),
            test_size: Some(splits.test.len()),
            run_id: Some(run.run_id.clone()),
            metrics: Some(stored),
        };
        for note in run.begin()? {
            eprintln!("note: {note}");
        }
        checkpoint::save(&ckpt_path, &ck)?;
        if let Some(v) = val_elbo {
            let now = Progress::after(best, epoch, v, min_delta);
            if now.best_epoch == epoch {
                checkpoint::save(&run.best, &ck)?;
            }
            best = Some(now);
        }
        run.append_metrics(&line)?;
        let full = train_elbo_full
            .map(|v| format!("  train (full pass) {v:.2}"))
            .unwrap_or_default();
        let val = val_elbo
            .map(|v| format!("  val {v:.2}"))
            .unwrap_or_default();
        eprintln!("epoch {epoch:>3}  {seconds:6.2}s  train ELBO (running mean) {train_elbo:.2}{full}{val}  test ELBO {test_elbo:.2}");
        last_test = test_elbo;
        epochs_done = epoch;
        if let (Some(rule), Some(b)) = (opts.early_stop, best) {
            if b.epochs_since >= rule.patience {
                stop = Stop::Early { epoch };
                break;
            }
        }
    }
    let train_elbo = backend.evaluate(Split::Train)?;
    if !last_test.is_finite() {
        last_test = backend.evaluate(Split::Test)?;
    }
    Ok(Summary {
        epochs_done,
        train_elbo,
        test_elbo: last_test,
        checkpoint: ckpt_path,
        metrics: metrics_path,
        stop,
        best,
    })
}

#[cfg(test)]
mod tests {
    use super::Progress;

    #[test]
    fn progress_counts_epochs_since_a_real_improvement() {
        let h = [
            (1, -200.0),
            (2, -190.0),
            (3, -189.95),
            (4, -191.0),
            (5, -189.0),
        ];
        let p = Progress::replay(&h, 0.0).unwrap();
        assert_eq!((p.best_epoch, p.epochs_since), (5, 0));
        let p = Progress::replay(&h[..4], 0.0).unwrap();
        assert_eq!((p.best_epoch, p.best_val, p.epochs_since), (3, -189.95, 1));
        // With min_delta 0.1, epoch 3's 0.05 nats is no improvement.
        let p = Progress::replay(&h[..4], 0.1).unwrap();
        assert_eq!((p.best_epoch, p.epochs_since), (2, 2));
        assert_eq!(Progress::replay(&[], 0.0), None);
    }
}
