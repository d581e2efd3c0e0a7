//! The figures and table of docs/variational-em.md from the runs `tools/vem_experiment.sh`
//! makes: test log p(x) (grid) of amortized inference and of variational EM against epochs and
//! against training seconds.
//!
//! `cargo run --release --example vem_figure -- runs/vem-experiment DIR`

use std::path::{Path, PathBuf};

use vae_gpu::report::plot::line_chart;

const MARKS: [u32; 5] = [1, 2, 5, 10, 20];

struct Point {
    epoch: u32,
    seconds: f64,
    log_px: f64,
    log_px_se: f64,
    test_elbo: f64,
}

/// Mean and standard error of the `log_px` column of a grid_posterior.csv.
fn grid_log_px(csv: &Path) -> Option<(f64, f64)> {
    let text = std::fs::read_to_string(csv).ok()?;
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next()?.split(',').collect();
    let col = header.iter().position(|h| *h == "log_px")?;
    let v: Vec<f64> = lines
        .filter_map(|l| l.split(',').nth(col)?.parse().ok())
        .collect();
    let n = v.len() as f64;
    let mean = v.iter().sum::<f64>() / n;
    let var = v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0);
    Some((mean, (var / n).sqrt()))
}

fn points(run: &Path) -> Vec<Point> {
    let metrics = std::fs::read_to_string(run.join("metrics.jsonl")).unwrap_or_default();
    let lines: Vec<serde_json::Value> = metrics
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let mut out = Vec::new();
    for m in MARKS {
        let Some((log_px, log_px_se)) =
            grid_log_px(&run.join(format!("grid{m}/grid_posterior.csv")))
        else {
            continue;
        };
        let upto = |e: &serde_json::Value| e["epoch"].as_u64().is_some_and(|x| x <= m as u64);
        let seconds = lines
            .iter()
            .filter(|e| upto(e))
            .filter_map(|e| e["seconds"].as_f64())
            .sum();
        let test_elbo = lines
            .iter()
            .find(|e| e["epoch"].as_u64() == Some(m as u64))
            .and_then(|e| e["test_elbo"].as_f64())
            .unwrap_or(f64::NAN);
        out.push(Point {
            epoch: m,
            seconds,
            log_px,
            log_px_se,
            test_elbo,
        });
    }
    out
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let dir = PathBuf::from(args.get(1).map_or("runs/vem-experiment", |s| s.as_str()));
    let out = PathBuf::from(args.get(2).map_or("docs/figures/vem", |s| s.as_str()));
    std::fs::create_dir_all(&out).expect("figure directory");
    let runs = [
        ("amortized (encoder, Algorithm 8)", dir.join("amortized")),
        (
            "variational EM, S = 5, α = 1e-3 (Algorithm 7)",
            dir.join("vem"),
        ),
        ("variational EM, S = 20, α = 1e-3", dir.join("vem-s20")),
        ("variational EM, S = 5, α = 5e-3", dir.join("vem-lr5e-3")),
        (
            "variational EM, S = 5, α = 0.05/(1 + 0.5(i−1))",
            dir.join("vem-decay"),
        ),
    ];
    let data: Vec<(&str, Vec<Point>)> = runs
        .iter()
        .map(|(n, p)| (*n, points(p)))
        .filter(|(_, pts)| !pts.is_empty())
        .collect();
    let series = |x: fn(&Point) -> f64| -> Vec<(&str, Vec<(f64, f64)>)> {
        data.iter()
            .map(|(n, pts)| (*n, pts.iter().map(|p| (x(p), p.log_px)).collect()))
            .collect()
    };
    let title =
        "Test log p(x) by the grid (100 test images), default model Dz = 2, 10,000 training images";
    line_chart(
        &out.join("logpx_vs_epochs.png"),
        title,
        "epochs",
        "test log p(x) (nats per image)",
        &series(|p| p.epoch as f64),
    )
    .expect("figure");
    line_chart(
        &out.join("logpx_vs_seconds.png"),
        title,
        "training wall time (seconds, cpu, 2 cores)",
        "test log p(x) (nats per image)",
        &series(|p| p.seconds),
    )
    .expect("figure");
    println!("| method | epochs | training seconds | test log p(x) (grid, 100 images) | test ELBO (1,000 images) |");
    println!("|---|---:|---:|---:|---:|");
    for (n, pts) in &data {
        for p in pts {
            println!(
                "| {n} | {} | {:.1} | {:.2} ± {:.2} | {:.2} |",
                p.epoch, p.seconds, p.log_px, p.log_px_se, p.test_elbo
            );
        }
    }
}
