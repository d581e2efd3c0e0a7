//! `vae-gpu pca` and `vae-gpu ppca`: the lecture notes' linear baselines on grayscale MNIST
//! (pixels/255), with the figures and numbers a report needs. The models are in
//! `inference::linear`.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use crate::data::{ImageSet, PIXELS};
use crate::error::Result;
use crate::inference::analysis::Estimate;
use crate::inference::linear::{Pca, Ppca};
use crate::report::plots::{self, Panel};
use crate::rng::{key_from_seed, normal4, stream};
use crate::training::checkpoint::write_atomic;

/// Grayscale pixels in [0, 1] (`[n, 784]`).
pub fn grayscale(set: &ImageSet) -> Vec<f32> {
    set.images.iter().map(|&b| b as f32 / 255.0).collect()
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
pub fn pca_report(train: &ImageSet, test: &ImageSet, k: usize, out: &Path) -> Result<PcaSummary> {
    let pca = Pca::fit(&grayscale(train), PIXELS)?;
    let x = grayscale(test);
    let mut csv = b"component,eigenvalue,cumulative_explained\n".to_vec();
    for i in 0..PIXELS {
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

    let points: Vec<[f32; 2]> = x
        .chunks(PIXELS)
        .map(|p| {
            let c = pca.project(p, 2);
            [c[0] as f32, c[1] as f32]
        })
        .collect();
    let scatter = out.join("pca_scatter.png");
    plots::class_scatter(
        &scatter,
        &format!(
            "Test digits on the first two principal components ({:.1}% of the variance)",
            100.0 * pca.explained(2)
        ),
        "PC 1",
        "PC 2",
        &points,
        &test.labels,
    )?;

    let mut squared = 0.0;
    let mut recon = Vec::with_capacity(x.len());
    for p in x.chunks(PIXELS) {
        let r = pca.reconstruct(&pca.project(p, k));
        squared += r
            .iter()
            .zip(p)
            .map(|(a, &b)| (a - b as f64).powi(2))
            .sum::<f64>();
        recon.extend(r.iter().map(|&v| v.clamp(0.0, 1.0) as f32));
    }
    let shown = 32.min(test.len());
    let figure = out.join("pca_reconstructions.png");
    let caption = format!("{k}-component reconstructions");
    plots::image_panels(
        &figure,
        &format!("PCA with {k} components: test digits and their reconstructions"),
        &[
            Panel {
                caption: "test digits",
                rows: 4,
                cols: 8,
                images: &x[..shown * PIXELS],
            },
            Panel {
                caption: &caption,
                rows: 4,
                cols: 8,
                images: &recon[..shown * PIXELS],
            },
        ],
    )?;
    Ok(PcaSummary {
        components: k,
        explained: pca.explained(k),
        test_mse: squared / x.len() as f64,
        files: vec![csv_path, scatter, figure],
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
    train: &ImageSet,
    test: &ImageSet,
    k: usize,
    seed: u64,
    out: &Path,
) -> Result<PpcaSummary> {
    let ppca = Ppca::from_pca(&Pca::fit(&grayscale(train), PIXELS)?, k)?;
    let x = grayscale(test);
    let lls: Vec<f64> = x.chunks(PIXELS).map(|p| ppca.log_likelihood(p)).collect();
    let mut csv = b"image,label,log_likelihood_nats\n".to_vec();
    for (i, (ll, l)) in lls.iter().zip(&test.labels).enumerate() {
        let _ = writeln!(csv, "{i},{l},{ll:.4}");
    }
    let csv_path = out.join("ppca_test_log_likelihood.csv");
    write_atomic(&csv_path, &csv)?;

    let w = ppca.w();
    let sigma = ppca.sigma2.sqrt();
    let key = key_from_seed(seed);
    let mut standard = Vec::new();
    let mut samples = Vec::with_capacity(100 * PIXELS);
    for s in 0..100u32 {
        standard.clear();
        for block in 0..(k + PIXELS).div_ceil(4) as u32 {
            standard.extend(
                normal4([s, block, 0, stream::ANALYSIS], key)
                    .iter()
                    .map(|&v| v as f64),
            );
        }
        let (z, eps) = standard.split_at(k);
        for j in 0..PIXELS {
            let wz: f64 = (0..k).map(|i| w[j * k + i] * z[i]).sum();
            samples.push((ppca.mean[j] + wz + sigma * eps[j]).clamp(0.0, 1.0) as f32);
        }
    }
    let mean_image: Vec<f32> = ppca.mean.iter().map(|&m| m as f32).collect();
    let figure = out.join("ppca_samples.png");
    plots::image_panels(
        &figure,
        &format!(
            "Probabilistic PCA, {k} components: samples (σ² = {:.4})",
            ppca.sigma2
        ),
        &[
            Panel {
                caption: "x = μ + Wz + σε (clamped to [0, 1])",
                rows: 10,
                cols: 10,
                images: &samples,
            },
            Panel {
                caption: "the mean μ",
                rows: 1,
                cols: 1,
                images: &mean_image,
            },
        ],
    )?;
    let mut files = vec![csv_path, figure];
    if k >= 2 {
        let points: Vec<[f32; 2]> = x
            .chunks(PIXELS)
            .map(|p| {
                let m = ppca.posterior_mean(p);
                [m[0] as f32, m[1] as f32]
            })
            .collect();
        let scatter = out.join("ppca_posterior_means.png");
        plots::class_scatter(
            &scatter,
            "PPCA posterior means E[z|x] of the test digits (first two components)",
            "z₁",
            "z₂",
            &points,
            &test.labels,
        )?;
        files.push(scatter);
    }
    Ok(PpcaSummary {
        sigma2: ppca.sigma2,
        test_log_likelihood: Estimate::from_samples(&lls),
        files,
    })
}
