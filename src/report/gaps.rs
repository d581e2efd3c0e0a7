//! `vae-gpu gaps`: the approximation and amortization gaps of a checkpoint's test images
//! (`inference::gaps`) as a table, a per-image CSV, a JSON summary and a stacked-bar figure;
//! `report` shows the table when the JSON is in its directory and belongs to its checkpoint.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::inference::analysis::Estimate;
use crate::inference::gaps::{image_gaps, GapOptions, ImageGaps, LogPxMethod};
use crate::report::plot;
use crate::report::session::{Session, NO_LABEL};
use crate::training::checkpoint::write_atomic;

/// The JSON summary's file name, which `report` looks for.
pub const SUMMARY: &str = "gaps.json";

/// A mean ± standard error, as written to JSON.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq)]
pub struct MeanSe {
    pub mean: f64,
    pub std_err: f64,
}

impl MeanSe {
    fn over(v: &[f64]) -> Self {
        let e = Estimate::from_samples(v);
        Self {
            mean: e.mean,
            std_err: if v.len() > 1 { e.std_err } else { 0.0 },
        }
    }
    pub fn pm(&self) -> String {
        format!("{:.3} ± {:.3}", self.mean, self.std_err)
    }
}

/// One line of the table: what, and its mean ± s.e. over images.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct GapLine {
    pub name: String,
    pub value: MeanSe,
}

/// What `gaps.json` holds.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct GapSummary {
    pub checkpoint: String,
    pub epoch: u32,
    pub step: u32,
    pub latent: usize,
    pub images: usize,
    /// How log p(x) was measured: "grid" or "iwae-k5000".
    pub log_px_method: String,
    pub elbo_samples: usize,
    pub device: String,
    pub seconds: f64,
    pub lines: Vec<GapLine>,
    /// Images where a bound failed beyond 3 standard errors of its estimate.
    pub amortization_below_zero: usize,
    pub approximation_below_zero: usize,
    pub svi_not_converged: usize,
}

pub struct GapsOutput {
    pub summary: GapSummary,
    pub rows: Vec<ImageGaps>,
    pub files: Vec<PathBuf>,
}

/// Whether a gap estimate is below zero by more than 3 of its standard errors (plus 0.01 nats
/// for the grid's and SVI's non-Monte-Carlo error).
pub fn below_zero(e: &Estimate) -> bool {
    e.mean < -3.0 * e.std_err - 0.01
}

/// Runs the gaps of the first `images` test rows of the session (its test set is the run's
/// split) and writes gaps.csv, gaps.json and gaps.png into `out`.
pub fn gaps(
    s: &mut Session,
    out: &Path,
    checkpoint: &Path,
    images: usize,
    o: &GapOptions,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<GapsOutput> {
    let t0 = std::time::Instant::now();
    let (x, labels) = s.test_images(images);
    let rows = image_gaps(s.ops.as_mut(), &x, o, progress)?;
    let seconds = t0.elapsed().as_secs_f64();
    let col = |f: &dyn Fn(&ImageGaps) -> Option<f64>| -> Option<MeanSe> {
        let v: Option<Vec<f64>> = rows.iter().map(f).collect();
        v.map(|v| MeanSe::over(&v))
    };
    let mut lines = Vec::new();
    let mut add = |name: &str, v: Option<MeanSe>| {
        if let Some(value) = v {
            lines.push(GapLine {
                name: name.into(),
                value,
            });
        }
    };
    let method = o.method.name();
    add(
        &format!("log p(x) ({method})"),
        col(&|r| Some(r.log_px.mean)),
    );
    add(
        "ELBO(q*_full), full-covariance SVI",
        col(&|r| r.elbo_full.map(|e| e.mean)),
    );
    add("ELBO(q*), diagonal SVI", col(&|r| Some(r.elbo_diag.mean)));
    add(
        "ELBO(q_φ), the encoder",
        col(&|r| Some(r.elbo_encoder.mean)),
    );
    add(
        "approximation gap log p(x) − ELBO(q*)",
        col(&|r| Some(r.approximation.mean)),
    );
    add(
        "amortization gap ELBO(q*) − ELBO(q_φ)",
        col(&|r| Some(r.amortization.mean)),
    );
    add(
        "inference gap log p(x) − ELBO(q_φ)",
        col(&|r| Some(r.inference.mean)),
    );
    add(
        "  of the approximation gap: diagonal vs full, ELBO(q*_full) − ELBO(q*)",
        col(&|r| r.diag_vs_full.map(|e| e.mean)),
    );
    add(
        "  the full family's own, log p(x) − ELBO(q*_full)",
        col(&|r| r.approximation_full.map(|e| e.mean)),
    );
    let summary = GapSummary {
        checkpoint: checkpoint.display().to_string(),
        epoch: s.ck.epoch,
        step: s.ck.state.step,
        latent: s.latent(),
        images: rows.len(),
        log_px_method: method.clone(),
        elbo_samples: o.elbo_samples,
        device: s.ops.describe(),
        seconds,
        lines,
        amortization_below_zero: rows.iter().filter(|r| below_zero(&r.amortization)).count(),
        approximation_below_zero: rows.iter().filter(|r| below_zero(&r.approximation)).count(),
        svi_not_converged: rows.iter().filter(|r| !r.svi_converged).count(),
    };

    let mut csv = Vec::new();
    let _ = writeln!(
        csv,
        "image,label,log_px_method,log_px,log_px_std_err,elbo_encoder,elbo_encoder_std_err,\
         elbo_diag,elbo_diag_std_err,elbo_full,elbo_full_std_err,approximation_gap,\
         approximation_gap_std_err,amortization_gap,amortization_gap_std_err,inference_gap,\
         inference_gap_std_err,diag_vs_full,diag_vs_full_std_err,svi_steps,svi_converged,\
         full_steps,full_converged,grid_edge_mass"
    );
    let pair = |e: Option<Estimate>| {
        e.map_or(",".to_string(), |e| {
            format!("{:.4},{:.4}", e.mean, e.std_err)
        })
    };
    for (i, r) in rows.iter().enumerate() {
        let _ = writeln!(
            csv,
            "{i},{},{method},{},{},{},{},{},{},{},{},{},{},{},{},{}",
            if labels[i] == NO_LABEL {
                String::new()
            } else {
                labels[i].to_string()
            },
            pair(Some(r.log_px)),
            pair(Some(r.elbo_encoder)),
            pair(Some(r.elbo_diag)),
            pair(r.elbo_full),
            pair(Some(r.approximation)),
            pair(Some(r.amortization)),
            pair(Some(r.inference)),
            pair(r.diag_vs_full),
            r.svi_steps,
            r.svi_converged,
            r.full_steps.map_or(String::new(), |v| v.to_string()),
            r.full_converged.map_or(String::new(), |v| v.to_string()),
            r.edge_mass.map_or(String::new(), |v| format!("{v:.3e}")),
        );
    }
    let csv_path = out.join("gaps.csv");
    write_atomic(&csv_path, &csv)?;
    let json = serde_json::to_vec_pretty(&summary).map_err(|e| Error::Io(e.to_string()))?;
    let json_path = out.join(SUMMARY);
    write_atomic(&json_path, &json)?;
    let png = out.join("gaps.png");
    gap_figure(&png, s, &summary, &rows)?;
    Ok(GapsOutput {
        summary,
        rows,
        files: vec![csv_path, json_path, png],
    })
}

/// The two gaps per image stacked (approximation below, amortization above: the bar's height is
/// the inference gap), images sorted by the inference gap.
fn gap_figure(path: &Path, s: &Session, sum: &GapSummary, rows: &[ImageGaps]) -> Result<()> {
    let mut order: Vec<usize> = (0..rows.len()).collect();
    order.sort_by(|&a, &b| rows[a].inference.mean.total_cmp(&rows[b].inference.mean));
    let pick = |f: &dyn Fn(&ImageGaps) -> f64| order.iter().map(|&i| f(&rows[i])).collect();
    let segments: Vec<(&str, Vec<f64>)> = match rows.first().and_then(|r| r.diag_vs_full) {
        // With the full family the approximation gap splits again: what correlations would
        // recover (full − diagonal), and what even the full Gaussian misses.
        Some(_) => vec![
            (
                "approx. gap beyond full cov.: log p(x) − ELBO(q*_full)",
                pick(&|r| r.approximation_full.map_or(0.0, |e| e.mean)),
            ),
            (
                "approx. gap of the diagonal: ELBO(q*_full) − ELBO(q*)",
                pick(&|r| r.diag_vs_full.map_or(0.0, |e| e.mean)),
            ),
            (
                "amortization gap: ELBO(q*) − ELBO(q_φ)",
                pick(&|r| r.amortization.mean),
            ),
        ],
        None => vec![
            (
                "approximation gap: log p(x) − ELBO(q*)",
                pick(&|r| r.approximation.mean),
            ),
            (
                "amortization gap: ELBO(q*) − ELBO(q_φ)",
                pick(&|r| r.amortization.mean),
            ),
        ],
    };
    let line = |name: &str| {
        sum.lines
            .iter()
            .find(|l| l.name.starts_with(name))
            .map(|l| l.value.pm())
    };
    let mut notes = vec![
        format!("means over the {} images, nats:", rows.len()),
        format!(
            "approximation {}",
            line("approximation gap").unwrap_or_default()
        ),
        format!(
            "amortization {}",
            line("amortization gap").unwrap_or_default()
        ),
        format!("inference {}", line("inference gap").unwrap_or_default()),
        format!("log p(x) by {}", sum.log_px_method),
        format!("each bar's height: the inference gap log p(x) − ELBO(q_φ)"),
    ];
    if let Some(v) = line("  of the approximation gap") {
        notes.insert(4, format!("diagonal vs full {v}"));
    }
    let title = format!(
        "Where the ELBO loses: gaps of {} test {}s, Dz = {}, epoch {}",
        rows.len(),
        s.ck.config.data.row_name(),
        sum.latent,
        sum.epoch
    );
    plot::stacked_bars(
        path,
        &title,
        "test image (sorted by inference gap)",
        "gap (nats)",
        &segments,
        &notes,
    )
}

/// The table `gaps` prints and `report` shows.
pub fn format_table(sum: &GapSummary) -> String {
    let mut t = format!(
        "gaps of {} test images of {} (epoch {}, Dz = {}), log p(x) by {}, ELBOs from {} draws \
         each; nats per image, mean ± s.e. over images; {:.1} s on {}\n",
        sum.images,
        sum.checkpoint,
        sum.epoch,
        sum.latent,
        sum.log_px_method,
        sum.elbo_samples,
        sum.seconds,
        sum.device
    );
    let w = sum
        .lines
        .iter()
        .map(|l| l.name.chars().count())
        .max()
        .unwrap_or(0);
    for l in &sum.lines {
        let pad = w - l.name.chars().count();
        t += &format!("  {}{}  {:>20}\n", l.name, " ".repeat(pad), l.value.pm());
    }
    t += &format!(
        "images with a gap below 0 by more than 3 s.e.: amortization {}, approximation {}; SVI \
         fits stopped by --max-steps before the stopping rule: {}\n",
        sum.amortization_below_zero, sum.approximation_below_zero, sum.svi_not_converged
    );
    t
}

/// The gaps summary in `dir`, if there is one for this checkpoint (epoch and step); a summary
/// of another checkpoint is reported and left out.
pub fn summary_for(dir: &Path, epoch: u32, step: u32) -> Option<GapSummary> {
    let bytes = std::fs::read(dir.join(SUMMARY)).ok()?;
    let sum: GapSummary = match serde_json::from_slice(&bytes) {
        Ok(s) => s,
        Err(e) => {
            eprintln!(
                "warning: {} is not a gaps summary ({e}); left out of the report",
                dir.join(SUMMARY).display()
            );
            return None;
        }
    };
    if sum.epoch != epoch || sum.step != step {
        eprintln!(
            "warning: {} belongs to another checkpoint (epoch {}, step {}; this one: epoch {epoch}, \
             step {step}); left out of the report — rerun `vae-gpu gaps` with this --out",
            dir.join(SUMMARY).display(),
            sum.epoch,
            sum.step
        );
        return None;
    }
    Some(sum)
}

/// `LogPxMethod` for Dz: the grid where it applies.
pub fn default_method(latent: usize, k: usize) -> LogPxMethod {
    if latent <= 2 {
        LogPxMethod::Grid
    } else {
        LogPxMethod::Iwae { k }
    }
}

/// What `eval --refine K` measured over the first rows of the test split.
#[derive(Clone, Debug, Serialize)]
pub struct RefineSummary {
    pub steps: usize,
    pub images: usize,
    pub elbo_samples: usize,
    /// Mean over images of the encoder's ELBO and of the refined q's, and their difference.
    pub elbo_before: MeanSe,
    pub elbo_after: MeanSe,
    pub gain: MeanSe,
    pub device: String,
    pub seconds: f64,
}

/// `steps` SVI steps from q_φ on each of the first `images` test rows (all pixels observed)
/// and the ELBO before and after; writes refine_k{K}.csv (per image) and refine_k{K}.json.
pub fn refine(
    s: &mut Session,
    out: &Path,
    steps: usize,
    images: usize,
    svi: &crate::inference::svi::SviOptions,
    samples: usize,
    progress: &mut dyn FnMut(usize),
) -> Result<(RefineSummary, Vec<PathBuf>)> {
    let t0 = std::time::Instant::now();
    let (x, labels) = s.test_images(images);
    let r =
        crate::inference::gaps::refine(s.ops.as_mut(), &x, steps, svi, samples, s.seed, progress)?;
    let col = |f: &dyn Fn(&crate::inference::gaps::Refined) -> f64| {
        MeanSe::over(&r.iter().map(f).collect::<Vec<_>>())
    };
    let sum = RefineSummary {
        steps,
        images: r.len(),
        elbo_samples: samples,
        elbo_before: col(&|g| g.before.mean),
        elbo_after: col(&|g| g.after.mean),
        gain: col(&|g| g.gain.mean),
        device: s.ops.describe(),
        seconds: t0.elapsed().as_secs_f64(),
    };
    let mut csv = b"row,label,elbo_before,elbo_before_std_err,elbo_after,elbo_after_std_err,gain,gain_std_err\n".to_vec();
    for (i, g) in r.iter().enumerate() {
        let _ = writeln!(
            csv,
            "{i},{},{:.4},{:.4},{:.4},{:.4},{:.4},{:.4}",
            if labels[i] == NO_LABEL {
                String::new()
            } else {
                labels[i].to_string()
            },
            g.before.mean,
            g.before.std_err,
            g.after.mean,
            g.after.std_err,
            g.gain.mean,
            g.gain.std_err
        );
    }
    let cpath = out.join(format!("refine_k{steps}.csv"));
    write_atomic(&cpath, &csv)?;
    let json = serde_json::to_vec_pretty(&sum).map_err(|e| Error::Io(e.to_string()))?;
    let jpath = out.join(format!("refine_k{steps}.json"));
    write_atomic(&jpath, &json)?;
    Ok((sum, vec![cpath, jpath]))
}
