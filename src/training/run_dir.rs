//! A training run's output directory: `checkpoint.safetensors`, `metrics.jsonl` and, with a
//! validation split, `best.safetensors` (the best validation epoch), kept consistent with each
//! other and with one run.
//!
//! The rules, in the order `train` applies them before any data is loaded:
//! - the directory is created and locked (`.vae-gpu.lock` holding the owner's pid), so an
//!   unwritable `--out` or a second run into the same directory fails at once;
//! - a fresh run refuses a directory that already holds a run, unless `--force` (which deletes
//!   that run's files first);
//! - a resumed run rewrites `metrics.jsonl` to hold exactly the checkpoint's epochs `1..=E`: later
//!   lines are dropped, and the line of epoch `E` is restored from the checkpoint (each checkpoint
//!   carries its epoch's line) when a crash came between the two writes; a `best.safetensors` of a
//!   later epoch is removed. Resuming into another directory carries the source run's history
//!   (and best checkpoint) over.
//!
//! Each epoch writes the checkpoint first (atomically), then appends the metrics line in a single
//! `write` with an fsync, so after any crash the metrics lag the checkpoint by at most the one line
//! the checkpoint itself carries.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::data::input::{self, InputError};
use crate::error::{io_err, Error, Result};
use crate::training::checkpoint::{self, Checkpoint};

pub const CHECKPOINT: &str = "checkpoint.safetensors";
/// The epoch with the best validation ELBO so far (runs with a validation split).
pub const BEST: &str = "best.safetensors";
pub const METRICS: &str = "metrics.jsonl";
const LOCK: &str = ".vae-gpu.lock";
/// Largest `metrics.jsonl` read (a line is a few hundred bytes: a million epochs).
pub const MAX_METRICS_BYTES: u64 = 256 << 20;

/// How a run begins.
pub enum Start<'a> {
    Fresh,
    /// Continue from `ck`, read from `path`.
    Resume {
        path: &'a Path,
        ck: &'a Checkpoint,
    },
}

/// A locked run directory; the lock is released when this is dropped.
pub struct RunDir {
    pub dir: PathBuf,
    pub checkpoint: PathBuf,
    pub metrics: PathBuf,
    pub best: PathBuf,
    lock: PathBuf,
    /// Every metrics line carries it; kept across resumes. Empty until [`RunDir::identify`] for a
    /// fresh run (its settings are final only once the data set is loaded).
    pub run_id: String,
    /// What reconciliation changed, for the user (empty when nothing did).
    pub notes: Vec<String>,
}

impl Drop for RunDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.lock);
    }
}

/// The id of a run: a hash (FNV-1a) of everything that fixes its arithmetic — configuration and
/// split sizes — so two runs with the same settings get the same id and the same checkpoint
/// bytes, and runs with different settings never share one.
pub fn run_id_for(settings: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in settings.bytes() {
        h = (h ^ b as u64).wrapping_mul(0x0100_0000_01b3);
    }
    format!("{h:016x}")
}

/// Whether process `pid` is running. Only Linux can tell (through /proc); elsewhere a lock is
/// assumed live and the message says how to remove it.
fn process_alive(pid: u32) -> bool {
    if cfg!(target_os = "linux") {
        Path::new("/proc").join(pid.to_string()).exists()
    } else {
        true
    }
}

fn take_lock(dir: &Path) -> Result<PathBuf> {
    let lock = dir.join(LOCK);
    for _ in 0..2 {
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&lock)
        {
            Ok(mut f) => {
                f.write_all(std::process::id().to_string().as_bytes())
                    .map_err(|e| io_err(&lock, e))?;
                return Ok(lock);
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                let owner = std::fs::read_to_string(&lock).unwrap_or_default();
                match owner.trim().parse::<u32>() {
                    Ok(pid) if pid != std::process::id() && process_alive(pid) => {
                        return Err(Error::Usage(format!(
                            "another vae-gpu run (pid {pid}) is writing to {}; wait for it to finish or choose another --out \
                             (if no such process is running, delete {})",
                            dir.display(),
                            lock.display()
                        )))
                    }
                    // Left behind by a run that was killed: take it over.
                    _ => std::fs::remove_file(&lock).map_err(|e| io_err(&lock, e))?,
                }
            }
            Err(e) => {
                return Err(Error::Io(format!(
                    "output directory {} is not writable ({e}); choose another --out",
                    dir.display()
                )))
            }
        }
    }
    Err(Error::Io(format!(
        "could not take the lock {}; another run may be starting there",
        lock.display()
    )))
}

/// The epoch of one metrics line, if it is a complete JSON object with one.
fn line_epoch(line: &str) -> Option<u32> {
    let v: serde_json::Value = serde_json::from_str(line).ok()?;
    v.get("epoch")?.as_u64().map(|e| e as u32)
}

/// The text of a metrics file: a regular file of at most [`MAX_METRICS_BYTES`].
fn read_metrics_text(path: &Path) -> Result<String> {
    input::read_text(path, MAX_METRICS_BYTES).map_err(|e| match e {
        InputError::Io(e) => io_err(path, e),
        e => Error::Data(format!("{}: {e}", path.display())),
    })
}

fn read_lines(path: &Path) -> Result<Vec<String>> {
    if std::fs::symlink_metadata(path).is_err() {
        return Ok(Vec::new());
    }
    Ok(read_metrics_text(path)?
        .lines()
        .map(str::to_string)
        .collect())
}

fn same_file(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(x), Ok(y)) => x == y,
        _ => false,
    }
}

impl RunDir {
    /// Creates and locks `dir` and prepares it for `start`; `force` allows replacing a run that is
    /// already there. Nothing is trained yet, so every refusal costs the user no work.
    pub fn open(dir: &Path, start: Start, force: bool) -> Result<RunDir> {
        std::fs::create_dir_all(dir).map_err(|e| {
            Error::Io(format!(
                "cannot create output directory {} ({e}); choose another --out",
                dir.display()
            ))
        })?;
        let lock = take_lock(dir)?;
        let mut run = RunDir {
            dir: dir.to_path_buf(),
            checkpoint: dir.join(CHECKPOINT),
            metrics: dir.join(METRICS),
            best: dir.join(BEST),
            lock,
            run_id: String::new(),
            notes: Vec::new(),
        };
        match start {
            Start::Fresh => {
                run.refuse_existing(force, "a fresh run")?;
            }
            Start::Resume { path, ck } => {
                let here = same_file(path, &run.checkpoint);
                let source_metrics = path
                    .parent()
                    .map(|p| p.join(METRICS))
                    .unwrap_or_else(|| PathBuf::from(METRICS));
                let history = read_lines(&source_metrics)?;
                if !here {
                    run.refuse_existing(force, &format!("resuming {}", path.display()))?;
                }
                if let Some(id) = &ck.run_id {
                    run.run_id = id.clone();
                }
                run.reconcile(history, ck)?;
                let source_best = path.parent().map_or(PathBuf::from(BEST), |p| p.join(BEST));
                run.keep_best(&source_best, ck.epoch)?;
            }
        }
        Ok(run)
    }

    /// A directory holding another run is only reused with `--force`, which removes that run.
    fn refuse_existing(&self, force: bool, what: &str) -> Result<()> {
        let present: Vec<&Path> = [&self.checkpoint, &self.metrics, &self.best]
            .into_iter()
            .filter(|p| p.exists())
            .map(PathBuf::as_path)
            .collect();
        if present.is_empty() {
            return Ok(());
        }
        if !force {
            let ckpt = self.checkpoint.display();
            return Err(Error::Usage(format!(
                "{} already holds a training run ({}); {what} would mix with it. \
                 Continue that run with `--resume {ckpt}`, replace it with --force, or choose another --out",
                self.dir.display(),
                present
                    .iter()
                    .map(|p| p.file_name().unwrap_or_default().to_string_lossy())
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
        for p in present {
            std::fs::remove_file(p).map_err(|e| io_err(p, e))?;
        }
        Ok(())
    }

    /// Rewrites `metrics.jsonl` as the history of the checkpoint: its epochs `1..=E`, each once.
    fn reconcile(&mut self, history: Vec<String>, ck: &Checkpoint) -> Result<()> {
        let mut kept: Vec<(u32, String)> = Vec::new();
        let (mut dropped, mut broken) = (0, 0);
        for line in history {
            match line_epoch(&line) {
                // A later record for an epoch already kept (an older run's) replaces nothing:
                // only the first record of each epoch, in order, is part of this history.
                Some(e) if e <= ck.epoch && kept.last().is_none_or(|(k, _)| e > *k) => {
                    kept.push((e, line))
                }
                Some(_) => dropped += 1,
                None => broken += 1,
            }
        }
        if kept.last().map(|(e, _)| *e) != Some(ck.epoch) {
            if let Some(line) = &ck.metrics {
                kept.push((ck.epoch, line.clone()));
                self.notes.push(format!(
                    "restored the metrics line of epoch {} from the checkpoint (the run stopped between the two writes)",
                    ck.epoch
                ));
            } else {
                self.notes.push(format!(
                    "no metrics line for the checkpoint's epoch {} (an older checkpoint); the history has a gap",
                    ck.epoch
                ));
            }
        }
        if dropped > 0 {
            self.notes.push(format!(
                "dropped {dropped} metrics line(s) for epochs after the checkpoint's epoch {} or out of order",
                ck.epoch
            ));
        }
        if broken > 0 {
            self.notes
                .push(format!("dropped {broken} incomplete metrics line(s)"));
        }
        let mut text = String::new();
        for (_, l) in &kept {
            text.push_str(l);
            text.push('\n');
        }
        checkpoint::write_atomic(&self.metrics, text.as_bytes())
    }

    /// The best checkpoint of a resumed run: carried over from `source` (this directory's own or
    /// the resumed run's) when it is among the checkpoint's epochs `1..=epoch`, removed when it
    /// is from later epochs that the resume discards.
    fn keep_best(&mut self, source: &Path, epoch: u32) -> Result<()> {
        if !source.exists() {
            return Ok(());
        }
        let best = checkpoint::load(source)?;
        let here = same_file(source, &self.best);
        if best.epoch > epoch {
            if here {
                std::fs::remove_file(&self.best).map_err(|e| io_err(&self.best, e))?;
                self.notes.push(format!(
                    "removed {BEST} of epoch {} (after the resumed epoch {epoch})",
                    best.epoch
                ));
            }
            return Ok(());
        }
        if !here {
            checkpoint::save(&self.best, &best)?;
        }
        Ok(())
    }

    /// Sets the run id from the run's settings unless a resumed checkpoint already gave one.
    pub fn identify(&mut self, settings: &str) {
        if self.run_id.is_empty() {
            self.run_id = run_id_for(settings);
        }
    }

    /// Appends one metrics line in a single write, then fsyncs.
    pub fn append_metrics(&self, line: &str) -> Result<()> {
        let path = &self.metrics;
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|e| io_err(path, e))?;
        f.write_all(format!("{line}\n").as_bytes())
            .and_then(|_| f.sync_data())
            .map_err(|e| io_err(path, e))
    }
}

/// Reads a `metrics.jsonl` and checks that it is one run's history: epochs strictly increasing
/// and a single run id. Figures drawn from a file that mixes runs would be silently wrong.
pub fn read_history(path: &Path) -> Result<Vec<serde_json::Value>> {
    let text = read_metrics_text(path)?;
    let mut out: Vec<serde_json::Value> = Vec::new();
    for (i, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let v: serde_json::Value = serde_json::from_str(line).map_err(|e| {
            Error::Data(format!(
                "{}: line {} is not JSON ({e})",
                path.display(),
                i + 1
            ))
        })?;
        let epoch = v.get("epoch").and_then(|e| e.as_u64()).ok_or_else(|| {
            Error::Data(format!("{}: line {} has no epoch", path.display(), i + 1))
        })?;
        if let Some(prev) = out.last() {
            let prev_epoch = prev.get("epoch").and_then(|e| e.as_u64()).unwrap_or(0);
            let (a, b) = (prev.get("run_id"), v.get("run_id"));
            if epoch <= prev_epoch || (a.is_some() && b.is_some() && a != b) {
                return Err(Error::Data(format!(
                    "{}: line {} (epoch {epoch}) does not continue the run of the lines before it (epoch {prev_epoch}); \
                     the file mixes records of more than one run. Keep one run per directory (`vae-gpu train --force` replaces a run)",
                    path.display(),
                    i + 1
                )));
            }
        }
        out.push(v);
    }
    Ok(out)
}
