//! `compare`: one table (CSV, Markdown, HTML) and the figures a report needs from run
//! directories or whole sweeps.

use std::path::{Path, PathBuf};

use clap::Args;

use super::load_data;
use crate::data::PIXELS;
use crate::device::model_ops;
use crate::device::DeviceKind;
use crate::error::{Error, Result};
use crate::report::compare::{mean_curves, rows, write_tables, RunRecord};
use crate::report::experiments;
use crate::report::plot::{self, Panel};
use crate::report::session::Session;
use crate::sweep::Grid;
use crate::training::checkpoint;
use crate::training::run_dir::CHECKPOINT;

#[derive(Args, Debug)]
pub struct CompareArgs {
    /// Run directories (each a `train --out`), or sweep directories (every finished point); runs that differ only in their seed are one configuration
    #[arg(required = true, value_name = "DIR")]
    pub dirs: Vec<PathBuf>,
    /// Output directory for compare.csv, compare.md, compare.html and the figures [default: the first DIR]
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Also estimate each run's log p(x) by importance weighting with K samples of q(z|x) (Burda et al.), on the first --iwae-images test rows
    #[arg(long, value_name = "K")]
    pub iwae: Option<usize>,
    /// Test rows in each --iwae estimate
    #[arg(long, default_value_t = 100, requires = "iwae")]
    pub iwae_images: usize,
    /// Where the networks run for --iwae and the figures
    #[arg(long, value_enum, default_value_t = DeviceKind::Auto)]
    pub device: DeviceKind,
    /// Seed of the Monte Carlo draws (samples, IWAE)
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

/// A directory's name with its `seed-N` setting taken out: the configuration of a run that was
/// not made by a sweep.
fn configuration_of(dir: &Path) -> String {
    let name = dir.file_name().map_or_else(
        || dir.display().to_string(),
        |n| n.to_string_lossy().to_string(),
    );
    let parts: Vec<&str> = name
        .split('_')
        .filter(|p| !(p.starts_with("seed-") || p.starts_with("seed=")))
        .collect();
    if parts.is_empty() {
        name
    } else {
        parts.join("_")
    }
}

/// Every run to compare, with its configuration; unfinished sweep points are named and skipped.
fn collect(dirs: &[PathBuf]) -> Result<Vec<(PathBuf, String)>> {
    let mut runs = Vec::new();
    for d in dirs {
        if d.join(CHECKPOINT).is_file() {
            runs.push((d.clone(), configuration_of(d)));
        } else if let Some(grid) = Grid::load(d) {
            for p in grid.points() {
                if p.dir.join(CHECKPOINT).is_file() {
                    runs.push((p.dir.clone(), p.configuration()));
                } else {
                    eprintln!("note: {} is not trained yet; left out", p.dir.display());
                }
            }
        } else {
            return Err(Error::Usage(format!(
                "{}: neither a run directory (no {CHECKPOINT}) nor a sweep (no sweep.json)",
                d.display()
            )));
        }
    }
    if runs.is_empty() {
        return Err(Error::Usage("no finished runs to compare".into()));
    }
    Ok(runs)
}

fn open_session(dir: &Path, device: DeviceKind, seed: u64) -> Result<Session> {
    let ck = checkpoint::load(&dir.join(CHECKPOINT))?;
    let data = load_data(&ck.config.data, &None)?;
    let ops = model_ops(device, &ck.config.model, &ck.state.params)?;
    Ok(Session {
        ck,
        test: data.test,
        ops,
        seed,
    })
}

pub(super) fn cmd_compare(a: &CompareArgs) -> Result<()> {
    if let Some(k) = a.iwae {
        super::check_range("--iwae", k, 1, 1_000_000)?;
        super::check_range("--iwae-images", a.iwae_images, 1, 10_000)?;
    }
    let runs = collect(&a.dirs)?;
    let out = a.out.clone().unwrap_or_else(|| a.dirs[0].clone());
    std::fs::create_dir_all(&out).map_err(|e| crate::error::io_err(&out, e))?;
    let mut records = Vec::new();
    for (dir, conf) in &runs {
        let mut r = RunRecord::read(dir, conf)?;
        if let Some(k) = a.iwae {
            let mut s = open_session(dir, a.device, a.seed)?;
            let rows = a.iwae_images.min(s.test.len());
            // Each run's per-row estimates beside its own files.
            let est = experiments::iwae(&mut s, dir, k, rows, &mut |_| {})?;
            r.iwae = Some(est.log_px.mean);
        }
        records.push(r);
    }
    let table = rows(&records)?;
    let mut figures = Vec::new();
    // Validation curves overlaid: in bits/dim when every configuration has them (the scale on
    // which they compare), else in nats.
    let bits = records.iter().all(|r| r.config.bits_per_dim(0.0).is_some());
    let mut curves = mean_curves(&records, &table);
    if bits {
        for ((_, pts), row) in curves.iter_mut().zip(&table) {
            let cfg = &records
                .iter()
                .find(|r| r.configuration == row.configuration)
                .expect("a run of the row")
                .config;
            for p in pts.iter_mut() {
                p.1 = cfg.bits_per_dim(p.1).unwrap_or(f64::NAN);
            }
        }
    }
    let which = if records.iter().all(|r| r.curve_is_validation) {
        "validation"
    } else {
        "test"
    };
    let curve_path = out.join("compare_curves.png");
    let series: Vec<(&str, Vec<(f64, f64)>)> = curves
        .iter()
        .map(|(n, p)| (n.as_str(), p.clone()))
        .collect();
    plot::line_chart(
        &curve_path,
        &if bits {
            format!("{which} ELBO in bits/dim of the 8-bit data by epoch, mean over seeds")
        } else {
            format!("{which} ELBO by epoch, mean over seeds")
        },
        "epoch",
        if bits {
            "bits/dim (lower is better)"
        } else {
            "ELBO (nats)"
        },
        &series,
    )?;
    figures.push(curve_path);
    // Samples and reconstructions side by side: the first run of each configuration.
    let mut samples = Vec::new();
    let mut recons = Vec::new();
    for row in &table {
        let r = records
            .iter()
            .find(|r| r.configuration == row.configuration)
            .expect("a run of the row");
        let mut s = open_session(&r.dir, a.device, a.seed)?;
        if !s.is_image() {
            continue;
        }
        let z = s.prior_z(36, 1);
        samples.push((row.configuration.clone(), s.decode_samples(&z, 1)?));
        let (x, _) = s.test_images(8);
        let n = x.len() / PIXELS;
        let enc = s.ops.encode(&x)?;
        let means = s.decode_means(&s.means(&enc))?;
        let mut tiles = x.clone();
        tiles.extend(means);
        recons.push((row.configuration.clone(), n, tiles));
    }
    if !samples.is_empty() {
        let p = out.join("compare_samples.png");
        let panels: Vec<Panel> = samples
            .iter()
            .map(|(c, im)| Panel {
                caption: c,
                rows: 6,
                cols: 6,
                images: im,
            })
            .collect();
        plot::image_panels(
            &p,
            "36 samples x ~ p(x|z), z ~ p(z), per configuration",
            &panels,
        )?;
        figures.push(p);
        let p = out.join("compare_reconstructions.png");
        let panels: Vec<Panel> = recons
            .iter()
            .map(|(c, n, im)| Panel {
                caption: c,
                rows: 2,
                cols: *n,
                images: im,
            })
            .collect();
        plot::image_panels(
            &p,
            "Test digits (top) and reconstruction means (bottom), per configuration",
            &panels,
        )?;
        figures.push(p);
    }
    let written = write_tables(&table, &out, &figures)?;
    let md = std::fs::read_to_string(&written[1]).unwrap_or_default();
    println!("{md}");
    for p in written.iter().chain(&figures) {
        println!("wrote {}", p.display());
    }
    Ok(())
}
