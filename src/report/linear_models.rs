//! `vae-gpu pca` and `vae-gpu ppca`: the lecture notes' linear baselines on grayscale MNIST
//! (pixels/255) or on real-valued data, with the figures and numbers a report needs. The models
//! are in `inference::linear`. Digit figures are drawn for images only; the numbers (CSV and
//! summary) for any data.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use crate::data::{DataSet, Values};
use crate::error::Result;
use crate::inference::analysis::Estimate;
use crate::inference::linear::{Pca, Ppca};
use crate::report::plot::{self, Panel};
use crate::rng::{key_from_seed, normal4, stream};
use crate::training::checkpoint::write_atomic;

/// The rows as the linear models see them: pixels in [0, 1], real values as they are (`[n, D]`).
pub fn real_rows(set: &DataSet) -> Vec<f32> {
    match &set.values {
        Values::Pixels(p) => p.iter().map(|&b| b as f32 / 255.0).collect(),
        Values::Real(v) => v.clone(),
    }
}

/// What `pca` measured.
pub struct PcaSummary {
    pub components: usize,
    pub explained: f64,
    /// Mean squared error per pixel of the k-component reconstructions of the test images.
    pub test_mse: f64,
    pub files: Vec<PathBuf>,
}

/// PCA of the training images: eigenvalues (CSV), the test set on the first two components by
/// class, and test digits beside their k-component reconstructions.
pub fn pca_report(train: &DataSet, test: &DataSet, k: usize, out: &Path) -> Result<PcaSummary> {
    let d = train.dim;
    let pca = Pca::fit(&real_rows(train), d)?;
    let x = real_rows(test);
    let mut csv = b"component,eigenvalue,cumulative_explained\n".to_vec();
    for i in 0..d {
        let _ = writeln!(
            csv,
            "{},{:.6e},{:.6}",
            i + 1,
            pca.eigenvalues[i],
            pca.explained(i + 1)
        );
    }
    let csv_path = out.join("pca_eigenvalues.csv");
    write_atomic(&csv_path, &csv)?;

    let mut files = vec![csv_path];
    if d >= 2 {
        let points: Vec<[f32; 2]> = x
            .chunks(d)
            .map(|p| {
                let c = pca.project(p, 2);
                [c[0] as f32, c[1] as f32]
            })
            .collect();
        let scatter = out.join("pca_scatter.png");
        let title = format!(
            "Test {} on the first two principal components ({:.1}% of the variance)",
            if test.is_image() { "digits" } else { "rows" },
            100.0 * pca.explained(2)
        );
        known_scatter(&scatter, &title, "PC 1", "PC 2", &points, test)?;
        files.push(scatter);
    }

    let mut squared = 0.0;
    let mut recon = Vec::with_capacity(x.len());
    for p in x.chunks(d) {
        let r = pca.reconstruct(&pca.project(p, k));
        squared += r
            .iter()
            .zip(p)
            .map(|(a, &b)| (a - b as f64).powi(2))
            .sum::<f64>();
        recon.extend(r.iter().map(|&v| v as f32));
    }
    if test.is_image() {
        recon.iter_mut().for_each(|v| *v = v.clamp(0.0, 1.0));
        let shown = 32.min(test.len());
        let figure = out.join("pca_reconstructions.png");
        let caption = format!("{k}-component reconstructions");
        plot::image_panels(
            &figure,
            &format!(
                "PCA with {}: test digits and their reconstructions",
                components(k)
            ),
            &[
                Panel::fill("test digits", 8, &x[..shown * d]),
                Panel::fill(&caption, 8, &recon[..shown * d]),
            ],
        )?;
        files.push(figure);
    } else if d == 2 {
        // k = 1: the reconstructions lie on the principal line; drawn as that line.
        let mut line: Vec<(f64, f64)> = recon
            .chunks(2)
            .map(|r| (r[0] as f64, r[1] as f64))
            .collect();
        line.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.total_cmp(&b.1)));
        let figure = out.join("pca_reconstructions.png");
        let points: Vec<[f32; 2]> = x.chunks(2).map(|p| [p[0], p[1]]).collect();
        let (values, label) = colouring(test);
        plot::value_scatter(
            &figure,
            "PCA with 1 component: test rows and their reconstructions",
            "x₁",
            "x₂",
            &points,
            &values,
            label,
            &[("1-component reconstructions", line)],
            true,
        )?;
        files.push(figure);
    }
    Ok(PcaSummary {
        components: k,
        explained: pca.explained(k),
        test_mse: squared / x.len() as f64,
        files,
    })
}

/// What `ppca` measured.
pub struct PpcaSummary {
    pub sigma2: f64,
    /// Exact test log-likelihood per image (nats), mean ± standard error over images.
    pub test_log_likelihood: Estimate,
    pub files: Vec<PathBuf>,
}

/// The maximum-likelihood PPCA of the training images: its exact test log-likelihood (per image,
/// CSV), samples x = μ + Wz + σε, and for k ≥ 2 the posterior means E[z|x] of the test set.
pub fn ppca_report(
    train: &DataSet,
    test: &DataSet,
    k: usize,
    seed: u64,
    out: &Path,
) -> Result<PpcaSummary> {
    let d = train.dim;
    let ppca = Ppca::from_pca(&Pca::fit(&real_rows(train), d)?, k)?;
    let x = real_rows(test);
    let lls: Vec<f64> = x.chunks(d).map(|p| ppca.log_likelihood(p)).collect();
    let mut csv = b"image,label,log_likelihood_nats\n".to_vec();
    for (i, ll) in lls.iter().enumerate() {
        let label = test.labels.get(i).map_or(String::new(), |l| l.to_string());
        let _ = writeln!(csv, "{i},{label},{ll:.4}");
    }
    let csv_path = out.join("ppca_test_log_likelihood.csv");
    write_atomic(&csv_path, &csv)?;

    let image = test.is_image();
    let n_samples = if image { 100 } else { 2000 };
    let (z_first, samples) = ppca_samples(&ppca, k, n_samples, seed);
    let mut files = vec![csv_path];
    let title = format!(
        "Probabilistic PCA, {}: samples (σ² = {:.4})",
        components(k),
        ppca.sigma2
    );
    let figure = out.join("ppca_samples.png");
    if image {
        let clamped: Vec<f32> = samples.iter().map(|v| v.clamp(0.0, 1.0)).collect();
        let mean_image: Vec<f32> = ppca.mean.iter().map(|&m| m as f32).collect();
        plot::image_panels(
            &figure,
            &title,
            &[
                Panel {
                    caption: "x = μ + Wz + σε (clamped to [0, 1])",
                    rows: 10,
                    cols: 10,
                    images: &clamped,
                },
                Panel {
                    caption: "the mean μ",
                    rows: 1,
                    cols: 1,
                    images: &mean_image,
                },
            ],
        )?;
        files.push(figure);
    } else if d == 2 {
        let points: Vec<[f32; 2]> = samples.chunks(2).map(|p| [p[0], p[1]]).collect();
        plot::value_scatter(
            &figure,
            &title,
            "x₁",
            "x₂",
            &points,
            &z_first,
            "z₁",
            &[],
            true,
        )?;
        files.push(figure);
    }
    if k >= 2 {
        let points: Vec<[f32; 2]> = x
            .chunks(d)
            .map(|p| {
                let m = ppca.posterior_mean(p);
                [m[0] as f32, m[1] as f32]
            })
            .collect();
        let scatter = out.join("ppca_posterior_means.png");
        known_scatter(
            &scatter,
            "PPCA posterior means E[z|x] of the test rows (first two components)",
            "z₁",
            "z₂",
            &points,
            test,
        )?;
        files.push(scatter);
    }
    Ok(PpcaSummary {
        sigma2: ppca.sigma2,
        test_log_likelihood: Estimate::from_samples(&lls),
        files,
    })
}

/// What colours a scatter of unlabeled rows: the latent that generated each (the circle's z), or
/// else its row number.
fn colouring(set: &DataSet) -> (Vec<f32>, &'static str) {
    if set.truth.len() == set.len() {
        (set.truth.clone(), "true z")
    } else {
        ((0..set.len()).map(|i| i as f32).collect(), "row")
    }
}

/// A scatter of 2-D points, one per row of `set`, coloured by digit class when the rows have
/// labels, else as [`colouring`] says.
fn known_scatter(
    path: &Path,
    title: &str,
    x_label: &str,
    y_label: &str,
    points: &[[f32; 2]],
    set: &DataSet,
) -> Result<()> {
    if set.labels.len() == set.len() {
        return plot::class_scatter(path, title, x_label, y_label, points, &set.labels);
    }
    let (values, label) = colouring(set);
    plot::value_scatter(
        path,
        title,
        x_label,
        y_label,
        points,
        &values,
        label,
        &[],
        false,
    )
}

/// `n` samples x = μ + Wz + σε (`[n, D]`, not clamped) and the first latent coordinate of each.
fn ppca_samples(ppca: &Ppca, k: usize, n: usize, seed: u64) -> (Vec<f32>, Vec<f32>) {
    let d = ppca.mean.len();
    let w = ppca.w();
    let sigma = ppca.sigma2.sqrt();
    let key = key_from_seed(seed);
    let mut standard = Vec::new();
    let mut z_first = Vec::with_capacity(n);
    let mut samples = Vec::with_capacity(n * d);
    for s in 0..n as u32 {
        standard.clear();
        for block in 0..(k + d).div_ceil(4) as u32 {
            standard.extend(
                normal4([s, block, 0, stream::ANALYSIS], key)
                    .iter()
                    .map(|&v| v as f64),
            );
        }
        let (z, eps) = standard.split_at(k);
        z_first.push(z[0] as f32);
        for j in 0..d {
            let wz: f64 = (0..k).map(|i| w[j * k + i] * z[i]).sum();
            samples.push((ppca.mean[j] + wz + sigma * eps[j]) as f32);
        }
    }
    (z_first, samples)
}

/// "1 component", "k components".
pub fn components(k: usize) -> String {
    if k == 1 {
        "1 component".into()
    } else {
        format!("{k} components")
    }
}
