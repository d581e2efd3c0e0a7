//! A training run's output directory: `checkpoint.safetensors`, `metrics.jsonl` and, with a
//! validation split, `best.safetensors` (the best validation epoch), kept consistent with each
//! other and with one run.
//!
//! The rules, in the order `train` applies them:
//! - the directory is created and locked (an advisory `flock` on `.vae-gpu.lock`, which holds the
//!   owner's pid for messages; the kernel releases it when the process ends, however it ends), so
//!   an unwritable `--out` or a second run into the same directory fails at once;
//! - a fresh run refuses a directory that already holds a run, unless `--force` (which replaces
//!   that run's files);
//! - a resumed run rewrites `metrics.jsonl` to hold exactly the checkpoint's epochs `1..=E`: later
//!   lines are dropped, and the line of epoch `E` is restored from the checkpoint (each checkpoint
//!   carries its epoch's line) when a crash came between the two writes; a `best.safetensors` of a
//!   later epoch is removed. Resuming into another directory carries the source run's history
//!   (and best checkpoint) over. Records of another run (another `run_id`: a checkpoint copied
//!   from one run's directory into another's) are never mixed in: in the directory being written
//!   they are refused unless `--force`, elsewhere they are left behind;
//! - nothing in the directory changes until the first epoch is about to be written
//!   ([`RunDir::begin`]): a run refused after `open` (a bad split, an unmet stopping rule) or one
//!   that diverges in its first epoch leaves the directory as it was, and removes the
//!   directories it created.
//!
//! Each epoch writes the checkpoint first (atomically), then appends the metrics line in a single
//! `write` with an fsync, so after any crash the metrics lag the checkpoint by at most the one line
//! the checkpoint itself carries.

use std::fs::File;
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

/// What [`RunDir::begin`] does to the directory before the first epoch is written.
#[derive(Default)]
struct Pending {
    /// Files of a replaced run (`--force`) or of later epochs.
    remove: Vec<PathBuf>,
    /// The resumed run's history, rewritten as `metrics.jsonl`.
    metrics: Option<String>,
    /// The resumed run's best checkpoint, carried over from its own directory.
    best: Option<Checkpoint>,
}

/// The lock on a run directory: an exclusive advisory lock on the lock file, released by the
/// kernel when the file is closed — at the end of the run or when the process dies.
struct Lock {
    path: PathBuf,
    _file: File,
}

impl Drop for Lock {
    fn drop(&mut self) {
        // Removed while still held: a run that opened it in between finds, once it has the lock,
        // that the path no longer names its file, and tries again (see `take_lock`).
        let _ = std::fs::remove_file(&self.path);
    }
}

/// A locked run directory; the lock is released when this is dropped.
pub struct RunDir {
    pub dir: PathBuf,
    pub checkpoint: PathBuf,
    pub metrics: PathBuf,
    pub best: PathBuf,
    lock: Option<Lock>,
    /// Every metrics line carries it; kept across resumes. Empty until [`RunDir::identify`] for a
    /// fresh run (its settings are final only once the data set is loaded).
    pub run_id: String,
    /// What [`RunDir::begin`] repairs or replaces, for the user (empty when nothing does).
    pub notes: Vec<String>,
    /// The directories `open` created, deepest first: removed again (if still empty) when the run
    /// ends before writing anything.
    created: Vec<PathBuf>,
    pending: Option<Pending>,
    /// The metrics lines of the run's history so far (`1..=E` of a resumed run), as `begin`
    /// writes them.
    history: Vec<String>,
}

impl Drop for RunDir {
    fn drop(&mut self) {
        drop(self.lock.take());
        if self.pending.is_some() {
            for d in &self.created {
                if std::fs::remove_dir(d).is_err() {
                    break;
                }
            }
        }
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

/// Opens a file of the run directory for writing without following a symbolic link at its name
/// (one planted there would send the writes outside the directory) and without blocking on a
/// FIFO; `append` opens it for appending, else for reading and writing.
fn open_in_dir(path: &Path, append: bool) -> std::io::Result<File> {
    let mut o = std::fs::OpenOptions::new();
    if append {
        o.append(true);
    } else {
        o.read(true).write(true);
    }
    o.create(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK);
    }
    let f = o.open(path)?;
    if !f.metadata()?.is_file() {
        return Err(std::io::Error::other("not a regular file"));
    }
    Ok(f)
}

/// Whether `path` names a symbolic link (the reason `open_in_dir` refused it).
fn is_link(path: &Path) -> bool {
    std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink())
}

/// Whether the open file `f` is the one `path` names now.
fn names(path: &Path, f: &File) -> bool {
    match (std::fs::symlink_metadata(path), f.metadata()) {
        (Ok(a), Ok(b)) => same_inode(&a, &b),
        _ => false,
    }
}

#[cfg(unix)]
fn same_inode(a: &std::fs::Metadata, b: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::MetadataExt;
    a.dev() == b.dev() && a.ino() == b.ino()
}

#[cfg(not(unix))]
fn same_inode(a: &std::fs::Metadata, b: &std::fs::Metadata) -> bool {
    a.len() == b.len() && a.modified().ok() == b.modified().ok()
}

fn take_lock(dir: &Path) -> Result<Lock> {
    let path = dir.join(LOCK);
    for _ in 0..16 {
        let mut file = open_in_dir(&path, false).map_err(|e| {
            if is_link(&path) {
                Error::Usage(format!(
                    "{} is a symbolic link; a run directory's lock must be a plain file. \
                     Remove it, or choose another --out",
                    path.display()
                ))
            } else {
                Error::Io(format!(
                    "output directory {} is not writable ({e}); choose another --out",
                    dir.display()
                ))
            }
        })?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                let pid = input::read_text(&path, 64)
                    .ok()
                    .and_then(|t| t.trim().parse::<u32>().ok())
                    .map(|p| format!(" (pid {p})"))
                    .unwrap_or_default();
                return Err(Error::Usage(format!(
                    "another vae-gpu run{pid} is writing to {}; wait for it to finish or choose \
                     another --out",
                    dir.display()
                )));
            }
            Err(std::fs::TryLockError::Error(e)) => {
                return Err(Error::Io(format!(
                    "cannot lock {} ({e}); choose an --out on a file system with file locks",
                    path.display()
                )))
            }
        }
        // The run that held it may have removed the file between our open and our lock: then
        // this lock guards nothing, and the file now at the path (if any) is the one to take.
        if !names(&path, &file) {
            continue;
        }
        // The pid is only for the message above; a file left by a killed run is simply reused.
        file.set_len(0)
            .and_then(|_| file.write_all(std::process::id().to_string().as_bytes()))
            .map_err(|e| io_err(&path, e))?;
        return Ok(Lock { path, _file: file });
    }
    Err(Error::Io(format!(
        "could not take the lock {}; other runs keep starting there",
        path.display()
    )))
}

/// The epoch of one metrics line, if it is a complete JSON object with one.
fn line_epoch(line: &str) -> Option<u32> {
    let v: serde_json::Value = serde_json::from_str(line).ok()?;
    v.get("epoch")?.as_u64().map(|e| e as u32)
}

/// The run id of one metrics line, if it has one.
fn line_run_id(line: &str) -> Option<String> {
    let v: serde_json::Value = serde_json::from_str(line).ok()?;
    v.get("run_id")?.as_str().map(str::to_string)
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

/// Whether `a` and `b` name the same file (or directory).
fn same_file(a: &Path, b: &Path) -> bool {
    match (std::fs::metadata(a), std::fs::metadata(b)) {
        (Ok(x), Ok(y)) => same_inode(&x, &y),
        _ => false,
    }
}

/// Whether anything (a file, or a link, even a dangling one) is at `p`.
fn present(p: &Path) -> bool {
    std::fs::symlink_metadata(p).is_ok()
}

/// `dir` and those of its ancestors that do not exist yet, deepest first.
fn missing_dirs(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut p = Some(dir);
    while let Some(d) = p {
        if d.as_os_str().is_empty() || present(d) {
            break;
        }
        out.push(d.to_path_buf());
        p = d.parent();
    }
    out
}

impl RunDir {
    /// Creates and locks `dir` and plans what `start` does to it; `force` allows replacing a run
    /// that is already there. Nothing but the lock is written yet (see [`RunDir::begin`]), so
    /// every refusal costs the user no work and no files.
    pub fn open(dir: &Path, start: Start, force: bool) -> Result<RunDir> {
        let created = missing_dirs(dir);
        let remove_created = |created: &[PathBuf]| {
            for d in created {
                if std::fs::remove_dir(d).is_err() {
                    break;
                }
            }
        };
        std::fs::create_dir_all(dir).map_err(|e| {
            remove_created(&created);
            Error::Io(format!(
                "cannot create output directory {} ({e}); choose another --out",
                dir.display()
            ))
        })?;
        let lock = take_lock(dir).inspect_err(|_| remove_created(&created))?;
        // From here on an error drops `run`, which releases the lock and removes what it created.
        let mut run = RunDir {
            dir: dir.to_path_buf(),
            checkpoint: dir.join(CHECKPOINT),
            metrics: dir.join(METRICS),
            best: dir.join(BEST),
            lock: Some(lock),
            run_id: String::new(),
            notes: Vec::new(),
            created,
            pending: Some(Pending::default()),
            history: Vec::new(),
        };
        match start {
            Start::Fresh => {
                let remove = run.refuse_existing(force, "a fresh run", None)?;
                run.plan().remove = remove;
            }
            Start::Resume { path, ck } => {
                let here = same_file(path, &run.checkpoint);
                let source_dir = match path.parent() {
                    Some(p) if !p.as_os_str().is_empty() => p,
                    _ => Path::new("."),
                };
                let in_dir = same_file(source_dir, &run.dir);
                let history = read_lines(&source_dir.join(METRICS))?;
                if !here {
                    let what = format!("resuming {}", path.display());
                    let remove = run.refuse_existing(force, &what, Some(path))?;
                    run.plan().remove = remove;
                }
                if let Some(id) = &ck.run_id {
                    run.run_id = id.clone();
                }
                run.reconcile(history, ck, path, in_dir, force)?;
                run.keep_best(&source_dir.join(BEST), ck, force)?;
            }
        }
        Ok(run)
    }

    fn plan(&mut self) -> &mut Pending {
        self.pending.get_or_insert_with(Pending::default)
    }

    /// A directory holding another run is only reused with `--force`, which removes that run's
    /// files (all but `keep`, the checkpoint being resumed when it is one of them); returns them.
    fn refuse_existing(
        &self,
        force: bool,
        what: &str,
        keep: Option<&Path>,
    ) -> Result<Vec<PathBuf>> {
        let present: Vec<&Path> = [&self.checkpoint, &self.metrics, &self.best]
            .into_iter()
            .filter(|p| present(p))
            .map(PathBuf::as_path)
            .collect();
        if present.is_empty() {
            return Ok(Vec::new());
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
        Ok(present
            .into_iter()
            .filter(|p| keep.is_none_or(|k| !same_file(p, k)))
            .map(Path::to_path_buf)
            .collect())
    }

    /// Plans `metrics.jsonl` as the history of the checkpoint: its epochs `1..=E`, each once, of
    /// its run only. `in_dir`: the history is this directory's own file, so records of another run
    /// in it are refused unless `force` (elsewhere they are only left behind).
    fn reconcile(
        &mut self,
        history: Vec<String>,
        ck: &Checkpoint,
        path: &Path,
        in_dir: bool,
        force: bool,
    ) -> Result<()> {
        let foreign: Vec<String> = match &ck.run_id {
            Some(id) => history
                .iter()
                .filter_map(|l| line_run_id(l).filter(|r| r != id))
                .collect(),
            None => Vec::new(),
        };
        if let (Some(other), Some(id)) = (foreign.first(), &ck.run_id) {
            if in_dir && !force {
                return Err(Error::Usage(format!(
                    "{} holds {} metrics line(s) of run {other}, but {} is of run {id} (copied \
                     from another run's directory?); resuming it here would mix the two runs' \
                     records. Resume it from its own run's directory or into a new --out, or pass \
                     --force to replace this directory's records with its own",
                    self.metrics.display(),
                    foreign.len(),
                    path.display()
                )));
            }
            self.notes.push(format!(
                "left out {} metrics line(s) of another run (run {other})",
                foreign.len()
            ));
        }
        let mut kept: Vec<(u32, String)> = Vec::new();
        let (mut dropped, mut broken) = (0, 0);
        for line in history {
            if let (Some(id), Some(r)) = (&ck.run_id, line_run_id(&line)) {
                if r != *id {
                    continue;
                }
            }
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
        if kept.len() < ck.epoch as usize {
            let first = kept.first().map_or(ck.epoch, |(e, _)| *e);
            if first > 1 && !foreign.is_empty() {
                self.notes.push(format!(
                    "the history of epochs before {first} is not here (it is in the directory the \
                     checkpoint was copied from)"
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
        self.history = kept.into_iter().map(|(_, l)| l).collect();
        self.plan().metrics = Some(text);
        Ok(())
    }

    /// The best checkpoint of a resumed run: carried over from `source` (this directory's own or
    /// the resumed run's) when it is of the same run and among the checkpoint's epochs `1..=E`,
    /// removed from this directory when it is from later epochs that the resume discards. One of
    /// another run here is refused unless `force` (which removes it); elsewhere it stays behind.
    fn keep_best(&mut self, source: &Path, ck: &Checkpoint, force: bool) -> Result<()> {
        if !source.exists() {
            return Ok(());
        }
        let here = same_file(source, &self.best);
        if here && self.plan().remove.iter().any(|p| same_file(p, source)) {
            return Ok(()); // the replaced run's, removed with it
        }
        let best = checkpoint::load(source)?;
        if let (Some(other), Some(id)) = (&best.run_id, &ck.run_id) {
            if other != id {
                if here && !force {
                    return Err(Error::Usage(format!(
                        "{} is of run {other}, but the checkpoint being resumed is of run {id}; \
                         resuming it here would mix the two runs. Resume it into a new --out, or \
                         pass --force to remove that best checkpoint",
                        self.best.display()
                    )));
                }
                if here {
                    let p = self.best.clone();
                    self.plan().remove.push(p);
                    self.notes
                        .push(format!("removed {BEST} of another run (run {other})"));
                }
                return Ok(());
            }
        }
        if best.epoch > ck.epoch {
            if here {
                let p = self.best.clone();
                self.plan().remove.push(p);
                self.notes.push(format!(
                    "removed {BEST} of epoch {} (after the resumed epoch {})",
                    best.epoch, ck.epoch
                ));
            }
            return Ok(());
        }
        if !here {
            self.plan().best = Some(best);
        }
        Ok(())
    }

    /// Sets the run id from the run's settings unless a resumed checkpoint already gave one.
    pub fn identify(&mut self, settings: &str) {
        if self.run_id.is_empty() {
            self.run_id = run_id_for(settings);
        }
    }

    /// The metrics lines of the run so far (a resumed run's epochs `1..=E`), as they will be
    /// written: what early stopping replays.
    pub fn history(&self) -> &[String] {
        &self.history
    }

    /// Makes the planned changes — removes a replaced run's files, writes the resumed history
    /// and the carried-over best checkpoint — once, right before the first epoch is written;
    /// returns the notes saying what was repaired or replaced.
    pub fn begin(&mut self) -> Result<Vec<String>> {
        let Some(plan) = self.pending.take() else {
            return Ok(Vec::new());
        };
        for p in &plan.remove {
            match std::fs::remove_file(p) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(io_err(p, e)),
                _ => {}
            }
        }
        if let Some(text) = &plan.metrics {
            checkpoint::write_atomic(&self.metrics, text.as_bytes())?;
        }
        if let Some(best) = &plan.best {
            checkpoint::save(&self.best, best)?;
        }
        Ok(std::mem::take(&mut self.notes))
    }

    /// Appends one metrics line in a single write, then fsyncs. A symbolic link planted at the
    /// file's name is refused, not followed.
    pub fn append_metrics(&self, line: &str) -> Result<()> {
        let path = &self.metrics;
        let mut f = open_in_dir(path, true).map_err(|e| {
            if is_link(path) {
                Error::Io(format!(
                    "{} is a symbolic link; refusing to write through it",
                    path.display()
                ))
            } else {
                io_err(path, e)
            }
        })?;
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
