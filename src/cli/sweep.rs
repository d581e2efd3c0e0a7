//! `sweep`: a grid of `train` runs into one directory, resumable, on one machine (`--jobs`) or
//! many (`--shard`, Slurm job arrays); `--list` for any other scheduler.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::process::Command as Process;
use std::sync::Mutex;

use clap::{Args, Parser};

use super::{train, Cli, Command};
use crate::error::{io_err, Error, Result};
use crate::sweep::{parse_shard, slurm_shard, status, Grid, Point, Status};
use crate::training::checkpoint::write_atomic;
use crate::training::run_dir::CHECKPOINT;

#[derive(Args, Debug)]
pub struct SweepArgs {
    /// An axis over one train flag, KEY=V1,V2 (e.g. likelihood=gaussian,beta or seed=0,1,2; values are split on `;` instead when one holds a comma: hidden=500;20,20); repeatable, the first varies slowest
    #[arg(long = "grid", value_name = "KEY=V1,V2")]
    pub grid: Vec<String>,
    /// One value of the `config` axis: a name and the train flags it stands for, NAME="--likelihood beta --pixels dequantize"; repeatable (the axis comes first)
    #[arg(long = "config", value_name = "NAME=FLAGS")]
    pub config: Vec<String>,
    /// The directory holding one ordinary run directory per point, named from its settings
    #[arg(long)]
    pub out: PathBuf,
    /// Print each point's `vae-gpu train …` line (what it needs now: a fresh run or a resume; finished points as `#` comments) and run nothing
    #[arg(long)]
    pub list: bool,
    /// Points trained at once; on the CPU path the cores are split between them (MATMUL_NUM_THREADS)
    #[arg(long, default_value_t = 1)]
    pub jobs: usize,
    /// Take only shard I of N (the points whose index is I mod N, I from 0) [default: from SLURM_ARRAY_TASK_ID, SLURM_ARRAY_TASK_MIN and SLURM_ARRAY_TASK_COUNT when set]
    #[arg(long, value_name = "I/N")]
    pub shard: Option<String>,
    /// The train flags every point shares, after `--` (e.g. -- --epochs 20 --train-size 50000)
    #[arg(last = true, value_name = "TRAIN FLAGS")]
    pub train: Vec<String>,
}

/// A point with its parsed train flags.
struct Planned {
    point: Point,
    args: train::TrainArgs,
}

/// Checks every point as `train` would before any runs: flags clap accepts, values `train`
/// takes (a `--bins 1` or a flag of another likelihood is refused here, naming the point).
fn plan(grid: &Grid) -> Result<Vec<Planned>> {
    let mut planned = Vec::new();
    for point in grid.points() {
        let mut argv = vec!["vae-gpu".to_string(), "train".to_string()];
        argv.extend(point.flags.iter().cloned());
        argv.extend(["--out".to_string(), point.dir.display().to_string()]);
        let cli = Cli::try_parse_from(&argv).map_err(|e| {
            let msg = e.to_string();
            let first = msg
                .lines()
                .next()
                .unwrap_or("")
                .trim_start_matches("error: ");
            Error::Usage(format!("point {}: {first}", point.name))
        })?;
        let Command::Train(args) = cli.command else {
            unreachable!("parsed as train")
        };
        train::check_flags(&args)
            .and_then(|_| train::check_config(&args))
            .map_err(|e| {
                let msg = match e {
                    Error::Usage(m) => m,
                    e => e.to_string(),
                };
                Error::Usage(format!("point {}: {msg}", point.name))
            })?;
        planned.push(Planned { point, args });
    }
    Ok(planned)
}

/// The train command a point needs now, or None when it is finished.
fn next_command(p: &Planned) -> Result<Option<(Vec<String>, String)>> {
    let early = p.args.early_stop.map(|pat| (pat, p.args.min_delta));
    let st = status(&p.point.dir, p.args.epochs, early)
        .map_err(|e| Error::Usage(format!("point {}: {e}", p.point.name)))?;
    let mut flags = vec!["train".to_string()];
    let what = match st {
        Status::Finished { .. } => return Ok(None),
        Status::Todo => {
            flags.extend(p.point.flags.iter().cloned());
            "trained".to_string()
        }
        Status::Partial { done } => {
            // The same flags (a resumed run accepts its own settings), the remaining epochs.
            flags.extend(without_epochs(&p.point.flags));
            flags.extend([
                "--epochs".to_string(),
                (p.args.epochs - done).to_string(),
                "--resume".to_string(),
                p.point.dir.join(CHECKPOINT).display().to_string(),
            ]);
            format!("resumed after epoch {done}")
        }
    };
    flags.extend(["--out".to_string(), p.point.dir.display().to_string()]);
    Ok(Some((flags, what)))
}

/// Flags with `--epochs N` taken out.
fn without_epochs(flags: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    let mut skip = false;
    for f in flags {
        if std::mem::take(&mut skip) {
            continue;
        }
        if f == "--epochs" {
            skip = true;
        } else if !f.starts_with("--epochs=") {
            out.push(f.clone());
        }
    }
    out
}

/// A word as a POSIX shell reads it back.
fn quote(w: &str) -> String {
    if !w.is_empty()
        && w.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:=,+@%".contains(c))
    {
        w.to_string()
    } else {
        format!("'{}'", w.replace('\'', "'\\''"))
    }
}

pub(super) fn cmd_sweep(a: &SweepArgs) -> Result<()> {
    if a.jobs == 0 || a.jobs > 256 {
        return Err(Error::Usage(format!("--jobs {} must be 1..=256", a.jobs)));
    }
    let shard = match &a.shard {
        Some(s) => Some(parse_shard(s).map_err(Error::Usage)?),
        None => slurm_shard(|k| std::env::var(k).ok())
            .transpose()
            .map_err(Error::Usage)?,
    };
    let grid = Grid::parse(&a.grid, &a.config, &a.train, &a.out).map_err(Error::Usage)?;
    let planned = plan(&grid)?;
    let total = planned.len();
    let mine: Vec<Planned> = planned
        .into_iter()
        .filter(|p| shard.is_none_or(|(i, n)| p.point.index % n == i))
        .collect();
    if a.list {
        for p in &mine {
            match next_command(p)? {
                None => println!("# finished: {}", p.point.name),
                Some((flags, _)) => {
                    let words: Vec<String> = flags.iter().map(|w| quote(w)).collect();
                    println!("vae-gpu {}", words.join(" "));
                }
            }
        }
        return Ok(());
    }
    std::fs::create_dir_all(&a.out).map_err(|e| io_err(&a.out, e))?;
    if let Some(old) = Grid::load(&a.out) {
        // More epochs extend the same runs (their points resume); any other shared flag would
        // make a point's resumed epochs differ from its first ones.
        if without_epochs(&old.base) != without_epochs(&grid.base) {
            return Err(Error::Usage(format!(
                "{} holds a sweep with other shared flags ({}); its points would mix two settings. \
                 Use another --out, or the same flags",
                a.out.display(),
                old.base.join(" ")
            )));
        }
    }
    let manifest = serde_json::to_vec_pretty(&grid).map_err(|e| Error::Io(e.to_string()))?;
    write_atomic(&Grid::manifest(&a.out), &manifest)?;
    let logs = a.out.join(".sweep-logs");
    std::fs::create_dir_all(&logs).map_err(|e| io_err(&logs, e))?;
    let shard_note = shard.map_or(String::new(), |(i, n)| format!(", shard {i}/{n}"));
    eprintln!(
        "sweep: {total} points{shard_note}: {} here, {} at a time, into {}",
        mine.len(),
        a.jobs,
        a.out.display()
    );
    let exe = std::env::current_exe().map_err(|e| Error::Io(e.to_string()))?;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let threads = (cores / a.jobs).max(1).to_string();
    let queue = Mutex::new(mine.into_iter().collect::<VecDeque<_>>());
    let report = Mutex::new(Vec::<(String, std::result::Result<String, String>)>::new());
    std::thread::scope(|scope| {
        for _ in 0..a.jobs {
            scope.spawn(|| loop {
                let Some(p) = queue.lock().expect("queue").pop_front() else {
                    break;
                };
                let outcome = run_point(&p, &exe, &threads, &logs);
                let (Ok(what) | Err(what)) = &outcome;
                eprintln!("  {}: {what}", p.point.name);
                report
                    .lock()
                    .expect("report")
                    .push((p.point.name.clone(), outcome));
            });
        }
    });
    let report = report.into_inner().expect("report");
    let count = |f: &dyn Fn(&str) -> bool| {
        report
            .iter()
            .filter(|(_, r)| r.as_ref().is_ok_and(|w| f(w)))
            .count()
    };
    let failed: Vec<&String> = report
        .iter()
        .filter(|(_, r)| r.is_err())
        .map(|(n, _)| n)
        .collect();
    println!(
        "sweep: {} trained, {} resumed, {} already finished, {} failed",
        count(&|w| w == "trained"),
        count(&|w| w.starts_with("resumed")),
        count(&|w| w == "already finished"),
        failed.len()
    );
    if !failed.is_empty() {
        return Err(Error::Usage(format!(
            "{} point(s) failed: {} (their output is in {}); re-run the sweep to retry them",
            failed.len(),
            failed
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            logs.display()
        )));
    }
    Ok(())
}

/// A killed sweep (kill -9, a lost node) takes its child runs with it, so none is left holding a
/// point's lock or writing after the sweep is gone; the re-run resumes them from their last
/// checkpoint. Linux only (prctl); elsewhere a child finishes its point on its own.
fn die_with_parent(child: &mut Process) {
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::process::CommandExt;
        // SAFETY: prctl is async-signal-safe and touches only this (forked) process.
        unsafe {
            child.pre_exec(|| {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = child;
}

/// Runs what a point needs as a child `vae-gpu train`, its output into `logs/NAME.log`.
fn run_point(
    p: &Planned,
    exe: &Path,
    threads: &str,
    logs: &Path,
) -> std::result::Result<String, String> {
    let Some((flags, what)) = next_command(p).map_err(|e| e.to_string())? else {
        return Ok("already finished".into());
    };
    let log = logs.join(format!("{}.log", p.point.name));
    let mut child = Process::new(exe);
    child
        .args(&flags)
        .arg("--quiet")
        .env("MATMUL_NUM_THREADS", threads);
    die_with_parent(&mut child);
    let out = child
        .output()
        .map_err(|e| format!("cannot start {}: {e}", exe.display()))?;
    let mut text = out.stdout.clone();
    text.extend_from_slice(&out.stderr);
    let _ = std::fs::write(&log, &text);
    if out.status.success() {
        Ok(what)
    } else {
        let msg = String::from_utf8_lossy(&out.stderr);
        let last = msg
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("");
        Err(format!("failed ({last}); see {}", log.display()))
    }
}
