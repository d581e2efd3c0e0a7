//! `compare`: the table a report needs from several runs — one row per configuration (runs that
//! differ only in their seed), test ELBO mean ± standard error over seeds, bits/dim of the 8-bit
//! data where the model gives them, best epoch, epochs run, seconds per epoch — written as CSV,
//! Markdown and an HTML page, with a ranking on bits/dim that leaves out (and says why) the
//! configurations whose numbers are on another scale.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::training::backend::TrainConfig;
use crate::training::checkpoint::{self, write_atomic};
use crate::training::run_dir::{read_history, CHECKPOINT, METRICS};

/// What one run directory holds, read for the comparison.
#[derive(Clone, Debug)]
pub struct RunRecord {
    pub dir: PathBuf,
    /// The configuration it belongs to (its settings but the seed).
    pub configuration: String,
    pub config: TrainConfig,
    pub epochs_run: u32,
    /// The epoch of the best validation ELBO, when the run has a validation split.
    pub best_epoch: Option<u32>,
    /// The test ELBO at the best validation epoch, or at the last epoch without validation.
    pub test_elbo: f64,
    /// (epoch, validation ELBO), or the test ELBO when there is no validation split.
    pub curve: Vec<(u32, f64)>,
    pub curve_is_validation: bool,
    pub seconds_per_epoch: f64,
    /// An IWAE estimate of log p(x) on the run's test rows, when asked for.
    pub iwae: Option<f64>,
}

impl RunRecord {
    pub fn read(dir: &Path, configuration: &str) -> Result<RunRecord> {
        let ck = checkpoint::load(&dir.join(CHECKPOINT))?;
        let history = read_history(&dir.join(METRICS))?;
        let epoch_of = |v: &serde_json::Value| v["epoch"].as_u64().map(|e| e as u32);
        let val: Vec<(u32, f64)> = history
            .iter()
            .filter_map(|v| Some((epoch_of(v)?, v["val_elbo"].as_f64()?)))
            .collect();
        let test: Vec<(u32, f64)> = history
            .iter()
            .filter_map(|v| Some((epoch_of(v)?, v["test_elbo"].as_f64()?)))
            .collect();
        let best = val
            .iter()
            .copied()
            .fold(None, |b: Option<(u32, f64)>, (e, v)| match b {
                Some((_, bv)) if bv >= v => b,
                _ => Some((e, v)),
            });
        let at = |epoch: u32| test.iter().find(|(e, _)| *e == epoch).map(|(_, v)| *v);
        let test_elbo = match best {
            Some((e, _)) => at(e),
            None => test.last().map(|(_, v)| *v),
        }
        .ok_or_else(|| {
            Error::Usage(format!(
                "{}: its metrics hold no test ELBO; is it a finished run?",
                dir.display()
            ))
        })?;
        let seconds: Vec<f64> = history
            .iter()
            .filter_map(|v| v["seconds"].as_f64())
            .collect();
        Ok(RunRecord {
            dir: dir.to_path_buf(),
            configuration: configuration.to_string(),
            epochs_run: ck.epoch,
            best_epoch: best.map(|(e, _)| e),
            test_elbo,
            curve_is_validation: !val.is_empty(),
            curve: if val.is_empty() { test } else { val },
            seconds_per_epoch: seconds.iter().sum::<f64>() / seconds.len().max(1) as f64,
            config: ck.config,
            iwae: None,
        })
    }
}

/// Mean and standard error over seeds (no standard error from one run).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MeanSe {
    pub mean: f64,
    pub se: Option<f64>,
    pub n: usize,
}

impl MeanSe {
    pub fn of(v: &[f64]) -> Self {
        let n = v.len();
        let mean = v.iter().sum::<f64>() / n.max(1) as f64;
        let se = (n > 1).then(|| {
            let var = v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
            (var / n as f64).sqrt()
        });
        Self { mean, se, n }
    }

    pub fn show(&self, digits: usize) -> String {
        match self.se {
            Some(se) => format!("{:.*} ± {:.*}", digits, self.mean, digits, se),
            None => format!("{:.*} (one run)", digits, self.mean),
        }
    }
}

/// One configuration's row.
#[derive(Clone, Debug)]
pub struct Row {
    pub configuration: String,
    pub likelihood: String,
    pub runs: usize,
    pub elbo: MeanSe,
    pub bits: Option<MeanSe>,
    pub iwae: Option<MeanSe>,
    pub best_epochs: String,
    pub epochs: String,
    pub seconds_per_epoch: f64,
    /// Why there are no bits/dim, when there are none.
    pub units: Option<String>,
}

/// The rows, one per configuration in first-seen order. Runs of one configuration must share
/// their units (the same likelihood and representation); anything else is an error naming them.
pub fn rows(records: &[RunRecord]) -> Result<Vec<Row>> {
    let mut order: Vec<&str> = Vec::new();
    for r in records {
        if !order.contains(&r.configuration.as_str()) {
            order.push(&r.configuration);
        }
    }
    let join = |v: Vec<String>| {
        let mut v = v;
        v.dedup();
        v.join(", ")
    };
    order
        .into_iter()
        .map(|name| {
            let group: Vec<&RunRecord> = records.iter().filter(|r| r.configuration == name).collect();
            let first = &group[0].config;
            if let Some(other) = group.iter().find(|r| {
                r.config.model.likelihood != first.model.likelihood || r.config.pixels != first.pixels
            }) {
                return Err(Error::Usage(format!(
                    "{} and {} are grouped as one configuration ({name}) but model different things; give them different names",
                    group[0].dir.display(),
                    other.dir.display()
                )));
            }
            let elbos: Vec<f64> = group.iter().map(|r| r.test_elbo).collect();
            let bits: Option<Vec<f64>> = group
                .iter()
                .map(|r| r.config.bits_per_dim(r.test_elbo))
                .collect();
            let iwae: Option<Vec<f64>> = group.iter().map(|r| r.iwae).collect();
            let units = if bits.is_some() {
                None
            } else if !first.model.likelihood.normalised() {
                Some(format!(
                    "the {} objective is not a normalised likelihood",
                    first.model.likelihood.name()
                ))
            } else {
                first
                    .units_note()
                    .or_else(|| Some(format!("{} has no 8-bit scale", first.data.describe())))
            };
            Ok(Row {
                configuration: name.to_string(),
                likelihood: first.model.likelihood.name().to_string(),
                runs: group.len(),
                elbo: MeanSe::of(&elbos),
                bits: bits.map(|b| MeanSe::of(&b)),
                iwae: iwae.map(|v| MeanSe::of(&v)),
                best_epochs: join(
                    group
                        .iter()
                        .map(|r| r.best_epoch.map_or("-".into(), |e| e.to_string()))
                        .collect(),
                ),
                epochs: join(group.iter().map(|r| r.epochs_run.to_string()).collect()),
                seconds_per_epoch: group.iter().map(|r| r.seconds_per_epoch).sum::<f64>()
                    / group.len() as f64,
                units,
            })
        })
        .collect()
}

/// The ranking on bits/dim (lower is better): ranked rows, and the others with the reason.
pub fn ranking(rows: &[Row]) -> (Vec<&Row>, Vec<&Row>) {
    let mut ranked: Vec<&Row> = rows.iter().filter(|r| r.bits.is_some()).collect();
    ranked.sort_by(|a, b| {
        let (x, y) = (a.bits.unwrap().mean, b.bits.unwrap().mean);
        x.total_cmp(&y)
    });
    let unranked = rows.iter().filter(|r| r.bits.is_none()).collect();
    (ranked, unranked)
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// `compare.csv`, `compare.md` and `compare.html` in `out`, the last with `figures` embedded.
pub fn write_tables(rows: &[Row], out: &Path, figures: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let opt = |m: &Option<MeanSe>, f: fn(&MeanSe) -> String| m.as_ref().map_or(String::new(), f);
    let mut csv = String::from(
        "configuration,likelihood,runs,test_elbo_mean,test_elbo_se,bits_per_dim_mean,bits_per_dim_se,iwae_mean,iwae_se,best_epoch,epochs,seconds_per_epoch,units_note\n",
    );
    for r in rows {
        let se = |m: &MeanSe| m.se.map_or(String::new(), |s| format!("{s:.6}"));
        let _ = writeln!(
            csv,
            "{},{},{},{:.6},{},{},{},{},{},{},{},{:.3},{}",
            csv_field(&r.configuration),
            r.likelihood,
            r.runs,
            r.elbo.mean,
            se(&r.elbo),
            opt(&r.bits, |m| format!("{:.6}", m.mean)),
            opt(&r.bits, |m| m
                .se
                .map_or(String::new(), |s| format!("{s:.6}"))),
            opt(&r.iwae, |m| format!("{:.6}", m.mean)),
            opt(&r.iwae, |m| m
                .se
                .map_or(String::new(), |s| format!("{s:.6}"))),
            csv_field(&r.best_epochs),
            csv_field(&r.epochs),
            r.seconds_per_epoch,
            csv_field(r.units.as_deref().unwrap_or(""))
        );
    }
    let has_iwae = rows.iter().any(|r| r.iwae.is_some());
    let header = [
        "configuration",
        "runs",
        "test ELBO (nats)",
        "bits/dim",
        if has_iwae { "IWAE log p(x)" } else { "" },
        "best epoch",
        "epochs",
        "s / epoch",
    ];
    let header: Vec<&str> = header.into_iter().filter(|h| !h.is_empty()).collect();
    let cells = |r: &Row| {
        let mut c = vec![
            r.configuration.clone(),
            r.runs.to_string(),
            r.elbo.show(2),
            r.bits.map_or("—".into(), |b| b.show(4)),
        ];
        if has_iwae {
            c.push(r.iwae.map_or("—".into(), |b| b.show(2)));
        }
        c.extend([
            r.best_epochs.clone(),
            r.epochs.clone(),
            format!("{:.3}", r.seconds_per_epoch),
        ]);
        c
    };
    let (ranked, unranked) = ranking(rows);
    let mut md = format!(
        "| {} |\n|{}\n",
        header.join(" | "),
        " --- |".repeat(header.len())
    );
    for r in rows {
        let _ = writeln!(md, "| {} |", cells(r).join(" | "));
    }
    md.push_str("\nTest ELBO at the best validation epoch (the last epoch for runs without validation), mean ± standard error over the runs (seeds) of each configuration. Bits/dim of the 8-bit test data (an upper bound) are the one scale on which likelihoods compare.\n\n**Ranking on bits/dim** (lower is better):\n\n");
    for (i, r) in ranked.iter().enumerate() {
        let _ = writeln!(
            md,
            "{}. {} — {}",
            i + 1,
            r.configuration,
            r.bits.unwrap().show(4)
        );
    }
    for r in &unranked {
        let _ = writeln!(
            md,
            "- not ranked: {} — {}",
            r.configuration,
            r.units.as_deref().unwrap_or("no bits/dim")
        );
    }
    let mut html = String::from("<!doctype html><html><head><meta charset=\"utf-8\"><title>vae-gpu compare</title><style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}td,th{border:1px solid #bbb;padding:4px 8px;text-align:right}td:first-child,th:first-child{text-align:left}img{max-width:100%}</style></head><body><h1>Comparison</h1><table><tr>");
    for h in &header {
        let _ = write!(html, "<th>{}</th>", html_escape(h));
    }
    html.push_str("</tr>");
    for r in rows {
        html.push_str("<tr>");
        for c in cells(r) {
            let _ = write!(html, "<td>{}</td>", html_escape(&c));
        }
        html.push_str("</tr>");
    }
    html.push_str("</table><p>Test ELBO at the best validation epoch (the last epoch without validation), mean ± standard error over seeds. Bits/dim of the 8-bit test data (an upper bound) are the one scale on which likelihoods compare.</p><h2>Ranking on bits/dim</h2><ol>");
    for r in &ranked {
        let _ = write!(
            html,
            "<li>{} — {}</li>",
            html_escape(&r.configuration),
            html_escape(&r.bits.unwrap().show(4))
        );
    }
    html.push_str("</ol><ul>");
    for r in &unranked {
        let _ = write!(
            html,
            "<li>not ranked: {} — {}</li>",
            html_escape(&r.configuration),
            html_escape(r.units.as_deref().unwrap_or("no bits/dim"))
        );
    }
    html.push_str("</ul>");
    for f in figures {
        if let Some(name) = f.file_name().and_then(|n| n.to_str()) {
            let _ = write!(
                html,
                "<p><img src=\"{}\" alt=\"{}\"></p>",
                html_escape(name),
                html_escape(name)
            );
        }
    }
    html.push_str("</body></html>\n");
    let mut paths = Vec::new();
    for (name, text) in [
        ("compare.csv", csv),
        ("compare.md", md),
        ("compare.html", html),
    ] {
        let p = out.join(name);
        write_atomic(&p, text.as_bytes())?;
        paths.push(p);
    }
    Ok(paths)
}

/// The mean curve over the runs of each configuration, on the epochs all of them have.
pub fn mean_curves(records: &[RunRecord], rows: &[Row]) -> Vec<(String, Vec<(f64, f64)>)> {
    rows.iter()
        .map(|row| {
            let group: Vec<&RunRecord> = records
                .iter()
                .filter(|r| r.configuration == row.configuration)
                .collect();
            let shortest = group.iter().map(|r| r.curve.len()).min().unwrap_or(0);
            let pts = (0..shortest)
                .map(|i| {
                    let e = group[0].curve[i].0 as f64;
                    let v = group.iter().map(|r| r.curve[i].1).sum::<f64>() / group.len() as f64;
                    (e, v)
                })
                .collect();
            (row.configuration.clone(), pts)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn standard_errors_over_seeds() {
        let m = MeanSe::of(&[1.0, 2.0, 3.0]);
        assert!((m.mean - 2.0).abs() < 1e-12);
        assert!((m.se.unwrap() - (1.0f64 / 3.0).sqrt()).abs() < 1e-12);
        assert_eq!(MeanSe::of(&[5.0]).se, None);
        assert!(MeanSe::of(&[5.0]).show(1).contains("one run"));
    }
}
