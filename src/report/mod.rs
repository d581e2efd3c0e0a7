//! `vae-gpu report`: every figure and the integration table for one checkpoint, plus an
//! `index.html` that shows them with the model's configuration and ELBOs.
//!
//! Its parts: [`figures`] (the assignments' figures), [`vectors`] (their counterparts for
//! real-valued vector data such as the circle), [`experiments`] (SVI and estimator runs),
//! [`explore`] (the explorable latent plane), [`linear_models`] (PCA and PPCA), [`plot`]
//! (PNG drawing) and [`session`] (the trained model they all draw from).

pub mod compare;
pub mod experiments;
pub mod explore;
pub mod figures;
pub mod gaps;
pub mod linear_models;
pub mod plot;
pub mod session;
pub mod vectors;

use std::path::{Path, PathBuf};

use crate::error::Result;
use crate::training::checkpoint::write_atomic;
use figures::{format_grid_table, GridOptions, GridResult};
use session::Session;

pub struct ReportInputs {
    pub metrics: Option<PathBuf>,
    pub train_elbo: f64,
    pub test_elbo: f64,
    pub device: String,
    pub grid: GridOptions,
}

/// `v` to `digits` significant figures: plain between 0.001 and 10,000 (29.4, 0.0123), in
/// scientific notation outside (2.94e4, 1.20e-5), so variances spanning orders of magnitude
/// read alike ("29434.950" hid that it is 3e4).
pub fn significant(v: f64, digits: usize) -> String {
    let digits = digits.max(1);
    if !v.is_finite() || v == 0.0 {
        return format!("{v}");
    }
    let exp = v.abs().log10().floor() as i32;
    if (-3..4).contains(&exp) {
        let decimals = (digits as i32 - 1 - exp).max(0) as usize;
        format!("{v:.decimals$}")
    } else {
        format!("{v:.*e}", digits - 1)
    }
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn rel(out: &Path, p: &Path) -> String {
    esc(&p.strip_prefix(out).unwrap_or(p).to_string_lossy())
}

/// Writes all figures into `out` and `out/index.html`; returns the HTML path.
pub fn write_report(s: &mut Session, out: &Path, inp: &ReportInputs) -> Result<PathBuf> {
    let mut sections: Vec<(String, Vec<PathBuf>, String)> = Vec::new();
    if let Some(m) = inp.metrics.as_deref().filter(|m| m.exists()) {
        sections.push((
            "Training curves".into(),
            vec![figures::training_curves(m, out)?],
            String::new(),
        ));
    }
    let image = s.is_image();
    if !image {
        sections.push((
            "The data".into(),
            vec![vectors::data_figure(s, out)?],
            String::new(),
        ));
    }
    sections.push((
        "Samples from the model".into(),
        figures::prior_samples(s, out)?,
        String::new(),
    ));
    sections.push((
        "Reconstructions".into(),
        figures::reconstructions(s, out)?,
        String::new(),
    ));
    if !image && s.dim() == 2 {
        sections.push((
            "The encoder over the plane".into(),
            vec![vectors::encoder_map(s, out)?],
            String::new(),
        ));
    }
    let (scatter, bounds) = figures::latent_scatter(s, out, s.test.len())?;
    sections.push((
        "Latent embedding of the test set".into(),
        vec![scatter],
        String::new(),
    ));
    let latent = s.ck.config.model.latent;
    if image && latent == 2 {
        sections.push((
            "Decoder on a latent lattice (Fig. 4b)".into(),
            vec![figures::lattice(s, out, 20, bounds)?],
            String::new(),
        ));
    }
    if image {
        sections.push((
            "Interpolation".into(),
            vec![figures::interpolation(s, out, 10, false)?],
            String::new(),
        ));
    }
    let mut grid_html = String::new();
    if latent <= 2 {
        let GridResult {
            rows,
            csv,
            figures,
            seconds,
        } = figures::grid_posterior(s, out, &inp.grid)?;
        let grid = inp.grid.grid.for_latent(latent)?;
        let warnings = figures::grid_warnings(&rows, &grid);
        for w in &warnings {
            eprintln!("warning: {w}");
        }
        let warning_html: String = warnings
            .iter()
            .map(|w| format!("<p class=\"warn\"><b>Warning:</b> {}</p>", esc(w)))
            .collect();
        grid_html = format!(
            "<p>Grid [{:.2}, {:.2}]{}, spacing {}, {} points; ELBO from {} samples of q(z|x); {:.1} s on {}. \
             <a href=\"{}\">CSV</a></p>{warning_html}<pre>{}</pre>",
            grid.x_min,
            grid.x_min + (grid.nx - 1) as f64 * grid.dx,
            if latent == 2 { "²" } else { "" },
            grid.dx,
            grid.len(),
            inp.grid.elbo_samples,
            seconds,
            esc(&inp.device),
            rel(out, &csv),
            esc(&format_grid_table(&rows))
        );
        sections.push(("True posterior vs q(z|x)".into(), figures, String::new()));
    }
    // `vae-gpu gaps --out` into the same directory adds its table and figure.
    if let Some(sum) = gaps::summary_for(out, s.ck.epoch, s.ck.state.step) {
        let png = out.join("gaps.png");
        sections.push((
            "Approximation and amortization gaps".into(),
            if png.exists() { vec![png] } else { vec![] },
            format!(
                "<p>From <code>vae-gpu gaps</code> (Cremer, Li &amp; Duvenaud 2018): q* is the best \
                 member of the encoder's family for each image, found by SVI from q_φ. \
                 <a href=\"gaps.csv\">per-image CSV</a></p><pre>{}</pre>",
                esc(&gaps::format_table(&sum))
            ),
        ));
    }
    let c = &s.ck.config;
    let mut html = String::from("<!doctype html><html><head><meta charset=\"utf-8\"><title>vae-gpu report</title>\
        <style>body{font-family:sans-serif;max-width:1200px;margin:auto;padding:1em}img{max-width:100%;border:1px solid #ccc;margin:4px 0}\
        table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:2px 8px;text-align:left}pre{background:#f6f6f6;padding:8px;overflow-x:auto}.warn{background:#fff3cd;border:1px solid #e0a800;padding:6px 10px}</style></head><body>");
    html += "<h1>vae-gpu report</h1><h2>Model</h2><table>";
    for (k, v) in [
        ("architecture", c.model.describe()),
        ("data", c.data.describe()),
        (
            "epochs / steps",
            format!("{} / {}", s.ck.epoch, s.ck.state.step),
        ),
        (
            "batch size, samples L",
            format!("{}, {}", c.batch_size, c.samples),
        ),
        ("optimizer", c.optimizer.describe()),
        (
            "data representation, seed",
            format!("{:?}, {}", c.pixels, c.seed),
        ),
        (
            "training images (validation)",
            format!("{} ({})", s.ck.train_size, s.ck.val_size),
        ),
        (
            "train ELBO",
            format!("{:.3} nats/{}", inp.train_elbo, c.data.row_name()),
        ),
        (
            "test ELBO",
            format!(
                "{:.3} nats/{unit} ({} {unit}s)",
                inp.test_elbo,
                s.test.len(),
                unit = c.data.row_name()
            ),
        ),
        ("device", inp.device.clone()),
    ] {
        html += &format!("<tr><th>{}</th><td>{}</td></tr>", esc(k), esc(&v));
    }
    html += "</table>";
    // Near the top, so the interactive view is the first thing after the numbers.
    if image {
        html += &crate::report::explore::write_explorer(s, out)?;
    }
    for (title, imgs, text) in &sections {
        html += &format!("<h2>{}</h2>", esc(title));
        html += text;
        if title.starts_with("True posterior") {
            html += &grid_html;
        }
        for p in imgs {
            html += &format!(
                "<p><img src=\"{}\" alt=\"{}\"></p>",
                rel(out, p),
                rel(out, p)
            );
        }
    }
    html += "</body></html>\n";
    let path = out.join("index.html");
    write_atomic(&path, html.as_bytes())?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    #[test]
    fn significant_figures_read_alike_across_magnitudes() {
        let s = super::significant;
        assert_eq!(s(29434.95, 3), "2.94e4");
        assert_eq!(s(29.43495, 3), "29.4");
        assert_eq!(s(0.012345, 3), "0.0123");
        assert_eq!(s(1.2e-5, 3), "1.20e-5");
        assert_eq!(s(-512.0, 3), "-512");
        assert_eq!(s(0.0, 3), "0");
    }
}
