//! Grids of training runs: the comparisons the course documents ask for (likelihoods ranked on one
//! scale, seeds for error bars) as one `sweep`, each point an ordinary run directory that every
//! other command takes.
//!
//! A grid is the Cartesian product of its axes, in the order given: `--grid KEY=V1,V2` is an axis
//! over one `train` flag (`--KEY V`), `--config NAME=FLAGS` (repeated) one axis of named flag sets
//! (`gauss="--likelihood gaussian --pixels dequantize"`). Every point adds the flags after `--`.
//! A point's directory is named from its settings (`gauss_seed-0`, `likelihood-beta_seed-1`), so the same grid
//! always maps to the same directories; what a point needs next is read from its directory
//! ([`status`]), so re-running a sweep trains only what is missing and resumes what was cut off.
//! Points run as child `vae-gpu train` processes: a kill leaves each run directory as `train`
//! leaves it, and the run-directory lock keeps two sweeps (or shards) off one point.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::training::run_dir::{self, CHECKPOINT, METRICS};
use crate::training::{checkpoint, Progress};

/// Most points a grid may have (a typo in a value list should not launch thousands of runs).
pub const MAX_POINTS: usize = 1000;

/// Train flags a sweep owns: each point's directory, and its resumption.
const RESERVED: [&str; 4] = ["out", "resume", "force", "quiet"];

/// One value of an axis: its label in directory names and the flags it adds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Value {
    pub label: String,
    pub flags: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Axis {
    /// The flag name without `--`, or `config` for named flag sets.
    pub key: String,
    pub values: Vec<Value>,
}

/// A grid: its axes, the flags every point shares, and the directory holding the points.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Grid {
    pub axes: Vec<Axis>,
    pub base: Vec<String>,
    pub out: PathBuf,
}

/// One point of a grid.
#[derive(Clone, Debug, PartialEq)]
pub struct Point {
    /// Its position in the grid's order (what `--shard` divides).
    pub index: usize,
    /// `key-label` per axis joined by `_`: the directory name.
    pub name: String,
    /// (axis key, value label) per axis.
    pub settings: Vec<(String, String)>,
    /// The `train` flags of this point (without `--out`).
    pub flags: Vec<String>,
    pub dir: PathBuf,
}

impl Point {
    /// The configuration this point belongs to: its settings but the seed, for `compare`.
    pub fn configuration(&self) -> String {
        let parts: Vec<String> = self
            .settings
            .iter()
            .filter(|(k, _)| k != "seed")
            .map(|(k, v)| setting_name(k, v))
            .collect();
        if parts.is_empty() {
            "all".into()
        } else {
            parts.join("_")
        }
    }
}

/// A setting in a directory name: `key-label`, or a named config's name alone.
fn setting_name(key: &str, label: &str) -> String {
    if key == "config" {
        label.to_string()
    } else {
        format!("{key}-{label}")
    }
}

/// A label safe in a directory name: letters, digits, `.` and `-`; anything else becomes `-`.
fn label_of(value: &str) -> String {
    let s: String = value
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect();
    s.trim_matches('-').to_string()
}

/// Splits a flag string as a shell would for the simple cases a config needs: whitespace, and
/// single or double quotes around a word.
fn split_words(s: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut quote: Option<char> = None;
    let mut started = false;
    for c in s.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => cur.push(c),
            (None, '\'' | '"') => {
                quote = Some(c);
                started = true;
            }
            (None, c) if c.is_whitespace() => {
                if started || !cur.is_empty() {
                    words.push(std::mem::take(&mut cur));
                    started = false;
                }
            }
            (None, c) => cur.push(c),
        }
    }
    if quote.is_some() {
        return Err(format!("unbalanced quote in `{s}`"));
    }
    if started || !cur.is_empty() {
        words.push(cur);
    }
    Ok(words)
}

/// The long flags `train` takes (names and aliases, without `--`).
pub fn train_flags() -> Vec<String> {
    use clap::CommandFactory;
    let cli = crate::cli::Cli::command();
    let Some(train) = cli.find_subcommand("train") else {
        return Vec::new();
    };
    let mut v = Vec::new();
    for a in train.get_arguments() {
        if let Some(l) = a.get_long() {
            v.push(l.to_string());
        }
        if let Some(aliases) = a.get_all_aliases() {
            v.extend(aliases.iter().map(|s| s.to_string()));
        }
    }
    v
}

impl Grid {
    /// A grid from `--grid KEY=V1,V2` axes (values split on `;` instead when any contains a
    /// comma, as `hidden=500;20,20`), `--config NAME=FLAGS` entries (one axis, first) and the
    /// shared flags. Errors name what was wrong and what is allowed.
    pub fn parse(
        grid: &[String],
        configs: &[String],
        base: &[String],
        out: &Path,
    ) -> Result<Grid, String> {
        let known = train_flags();
        let check_flags = |flags: &[String], whose: &str| -> Result<(), String> {
            for f in flags.iter().filter_map(|f| f.strip_prefix("--")) {
                let name = f.split('=').next().unwrap_or(f);
                if RESERVED.contains(&name) {
                    return Err(format!(
                        "{whose}: --{name} is set by the sweep for each point (its directory under --out, and resumption); drop it"
                    ));
                }
            }
            Ok(())
        };
        check_flags(base, "the flags after --")?;
        let mut axes = Vec::new();
        if !configs.is_empty() {
            let mut values = Vec::new();
            for c in configs {
                let (name, flags) = c
                    .split_once('=')
                    .ok_or_else(|| format!("--config {c}: expected NAME=\"--flag value …\""))?;
                let label = label_of(name);
                if label.is_empty() || label != name {
                    return Err(format!(
                        "--config {c}: the name `{name}` must be letters, digits, `.` or `-` (it names directories)"
                    ));
                }
                let flags = split_words(flags).map_err(|e| format!("--config {c}: {e}"))?;
                check_flags(&flags, &format!("--config {name}"))?;
                values.push(Value { label, flags });
            }
            axes.push(Axis {
                key: "config".into(),
                values,
            });
        }
        for g in grid {
            let (key, list) = g.split_once('=').ok_or_else(|| {
                format!("--grid {g}: expected KEY=V1,V2 (a train flag without --)")
            })?;
            let key = key.trim_start_matches("--");
            if RESERVED.contains(&key) {
                return Err(format!(
                    "--grid {g}: --{key} is set by the sweep for each point"
                ));
            }
            if !known.iter().any(|k| k == key) {
                return Err(format!(
                    "--grid {g}: `{key}` is not a train flag (see `vae-gpu train --help`; e.g. likelihood, seed, latent-dim, lr)"
                ));
            }
            if axes.iter().any(|a: &Axis| a.key == key) {
                return Err(format!("--grid {key}=… is given twice"));
            }
            let sep = if list.contains(';') { ';' } else { ',' };
            let mut values = Vec::new();
            for v in list.split(sep) {
                let v = v.trim();
                let label = label_of(v);
                if label.is_empty() {
                    return Err(format!("--grid {g}: an empty value"));
                }
                if values.iter().any(|x: &Value| x.label == label) {
                    return Err(format!("--grid {g}: `{v}` is given twice (or two values share the directory label {label})"));
                }
                values.push(Value {
                    label,
                    flags: vec![format!("--{key}"), v.to_string()],
                });
            }
            axes.push(Axis {
                key: key.to_string(),
                values,
            });
        }
        if axes.is_empty() {
            return Err(
                "a sweep needs at least one --grid KEY=V1,V2 or --config NAME=FLAGS".into(),
            );
        }
        let count = axes
            .iter()
            .try_fold(1usize, |n, a| n.checked_mul(a.values.len()))
            .unwrap_or(usize::MAX);
        if count > MAX_POINTS {
            return Err(format!(
                "the grid has {count} points, more than {MAX_POINTS}; split it into several sweeps"
            ));
        }
        Ok(Grid {
            axes,
            base: base.to_vec(),
            out: out.to_path_buf(),
        })
    }

    /// Every point, the first axis varying slowest.
    pub fn points(&self) -> Vec<Point> {
        let mut out = vec![(Vec::<(String, String)>::new(), Vec::<String>::new())];
        for axis in &self.axes {
            out = out
                .into_iter()
                .flat_map(|(settings, flags)| {
                    axis.values.iter().map(move |v| {
                        let mut s = settings.clone();
                        s.push((axis.key.clone(), v.label.clone()));
                        let mut f = flags.clone();
                        f.extend(v.flags.iter().cloned());
                        (s, f)
                    })
                })
                .collect();
        }
        out.into_iter()
            .enumerate()
            .map(|(index, (settings, mut flags))| {
                flags.extend(self.base.iter().cloned());
                let name: Vec<String> = settings.iter().map(|(k, v)| setting_name(k, v)).collect();
                let name = name.join("_");
                Point {
                    index,
                    dir: self.out.join(&name),
                    name,
                    settings,
                    flags,
                }
            })
            .collect()
    }

    /// Where the grid's description is kept (`compare` reads it).
    pub fn manifest(out: &Path) -> PathBuf {
        out.join("sweep.json")
    }

    /// The grid stored in `out`, if a sweep wrote one there.
    pub fn load(out: &Path) -> Option<Grid> {
        let text = std::fs::read_to_string(Self::manifest(out)).ok()?;
        serde_json::from_str(&text).ok()
    }
}

/// `--shard I/N`: this process takes the points whose index is I mod N (I counted from 0).
pub fn parse_shard(s: &str) -> Result<(usize, usize), String> {
    let (i, n) = s
        .split_once('/')
        .ok_or_else(|| format!("--shard {s}: expected I/N, e.g. 0/4 (shards 0..N−1)"))?;
    let (i, n): (usize, usize) = (
        i.trim()
            .parse()
            .map_err(|_| format!("--shard {s}: `{i}` is not a shard number"))?,
        n.trim()
            .parse()
            .map_err(|_| format!("--shard {s}: `{n}` is not a shard count"))?,
    );
    if n == 0 || i >= n {
        return Err(format!(
            "--shard {s}: shard I of N needs 0 ≤ I < N (the shards of 4 are 0/4, 1/4, 2/4, 3/4)"
        ));
    }
    Ok((i, n))
}

/// The shard of a Slurm job array task (`SLURM_ARRAY_TASK_ID` from `SLURM_ARRAY_TASK_MIN`, of
/// `SLURM_ARRAY_TASK_COUNT`), when those are set.
pub fn slurm_shard(env: impl Fn(&str) -> Option<String>) -> Option<Result<(usize, usize), String>> {
    let id = env("SLURM_ARRAY_TASK_ID")?;
    let count = env("SLURM_ARRAY_TASK_COUNT")?;
    let min = env("SLURM_ARRAY_TASK_MIN").unwrap_or_else(|| "0".into());
    let parse = |name: &str, v: &str| {
        v.trim()
            .parse::<usize>()
            .map_err(|_| format!("{name}={v} is not a number"))
    };
    Some((|| {
        let (id, count, min) = (
            parse("SLURM_ARRAY_TASK_ID", &id)?,
            parse("SLURM_ARRAY_TASK_COUNT", &count)?,
            parse("SLURM_ARRAY_TASK_MIN", &min)?,
        );
        let i = id.checked_sub(min).ok_or_else(|| {
            format!("SLURM_ARRAY_TASK_ID {id} is below SLURM_ARRAY_TASK_MIN {min}")
        })?;
        parse_shard(&format!("{i}/{count}"))
    })())
}

/// What a point needs next.
#[derive(Clone, Debug, PartialEq)]
pub enum Status {
    /// Nothing trained yet.
    Todo,
    /// `done` of its epochs trained: resume for the rest.
    Partial { done: u32 },
    /// All epochs trained, or its early-stopping rule met.
    Finished { epochs: u32 },
}

/// The status of the point in `dir` that asks for `epochs` epochs with the early-stopping rule
/// `early_stop` (patience, min delta), read from its checkpoint and metrics.
pub fn status(dir: &Path, epochs: u32, early_stop: Option<(u32, f64)>) -> Result<Status, String> {
    let ck_path = dir.join(CHECKPOINT);
    if !ck_path.exists() {
        return Ok(Status::Todo);
    }
    let ck = checkpoint::load(&ck_path).map_err(|e| e.to_string())?;
    if ck.epoch >= epochs {
        return Ok(Status::Finished { epochs: ck.epoch });
    }
    if let Some((patience, min_delta)) = early_stop {
        let metrics = dir.join(METRICS);
        if metrics.exists() {
            let history: Vec<(u32, f64)> = run_dir::read_history(&metrics)
                .map_err(|e| e.to_string())?
                .iter()
                .filter(|v| v["epoch"].as_u64().is_some_and(|e| e as u32 <= ck.epoch))
                .filter_map(|v| Some((v["epoch"].as_u64()? as u32, v["val_elbo"].as_f64()?)))
                .collect();
            if Progress::replay(&history, min_delta).is_some_and(|p| p.epochs_since >= patience) {
                return Ok(Status::Finished { epochs: ck.epoch });
            }
        }
    }
    Ok(Status::Partial { done: ck.epoch })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn a_grid_is_the_product_of_its_axes_with_readable_names() {
        let g = Grid::parse(
            &strings(&["likelihood=gaussian,beta", "seed=0,1"]),
            &[],
            &strings(&["--epochs", "2"]),
            Path::new("runs/g"),
        )
        .unwrap();
        let p = g.points();
        assert_eq!(p.len(), 4);
        assert_eq!(p[0].name, "likelihood-gaussian_seed-0");
        assert_eq!(p[3].name, "likelihood-beta_seed-1");
        assert_eq!(
            p[1].flags,
            strings(&["--likelihood", "gaussian", "--seed", "1", "--epochs", "2"])
        );
        assert_eq!(p[2].configuration(), "likelihood-beta");
        let c = Grid::parse(
            &strings(&["hidden=500;20,20"]),
            &strings(&["gauss=--likelihood gaussian --pixels 'dequantize'"]),
            &[],
            Path::new("o"),
        )
        .unwrap();
        let p = c.points();
        assert_eq!(p[1].name, "gauss_hidden-20-20");
        assert_eq!(
            p[1].flags,
            strings(&[
                "--likelihood",
                "gaussian",
                "--pixels",
                "dequantize",
                "--hidden",
                "20,20"
            ])
        );
    }

    #[test]
    fn bad_grids_are_one_clear_error() {
        let bad = |grid: &[&str], configs: &[&str], base: &[&str]| {
            Grid::parse(
                &strings(grid),
                &strings(configs),
                &strings(base),
                Path::new("o"),
            )
            .unwrap_err()
        };
        assert!(bad(&["colour=red"], &[], &[]).contains("not a train flag"));
        assert!(bad(&["seed"], &[], &[]).contains("KEY=V1,V2"));
        assert!(bad(&["seed=1,1"], &[], &[]).contains("twice"));
        assert!(bad(&["out=a,b"], &[], &[]).contains("set by the sweep"));
        assert!(bad(&["seed=1"], &[], &["--resume", "x"]).contains("set by the sweep"));
        assert!(bad(&[], &["a b=--seed 1"], &[]).contains("letters, digits"));
        assert!(bad(&[], &[], &[]).contains("at least one"));
        let many: Vec<String> = (0..40).map(|i| i.to_string()).collect();
        let big = [
            format!("seed={}", many.join(",")),
            format!("batch-size={}", many.join(",")),
        ];
        assert!(Grid::parse(&big, &[], &[], Path::new("o"))
            .unwrap_err()
            .contains("more than 1000"));
        assert!(parse_shard("3/2").unwrap_err().contains("0 ≤ I < N"));
        assert!(parse_shard("1/0").is_err());
        assert_eq!(parse_shard("1/4"), Ok((1, 4)));
    }

    #[test]
    fn slurm_array_tasks_are_shards() {
        let env = |vars: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                vars.iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| v.to_string())
            }
        };
        assert_eq!(slurm_shard(env(&[])), None);
        static ONE_BASED: [(&str, &str); 3] = [
            ("SLURM_ARRAY_TASK_ID", "3"),
            ("SLURM_ARRAY_TASK_COUNT", "4"),
            ("SLURM_ARRAY_TASK_MIN", "1"),
        ];
        assert_eq!(slurm_shard(env(&ONE_BASED)), Some(Ok((2, 4))));
        static WRONG: [(&str, &str); 2] = [
            ("SLURM_ARRAY_TASK_ID", "9"),
            ("SLURM_ARRAY_TASK_COUNT", "4"),
        ];
        assert!(slurm_shard(env(&WRONG)).unwrap().is_err());
    }
}
