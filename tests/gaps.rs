//! The approximation and amortization gaps (`inference::gaps`): on a linear-Gaussian model whose
//! posterior is known in closed form, the full-covariance q* reaches it (approximation gap 0)
//! and the diagonal q* falls short by exactly the mean-field KL; on a trained MNIST model the
//! bounds log p(x) ≥ ELBO(q*) ≥ ELBO(q_φ) hold on every image; the same numbers on both devices;
//! `eval --refine` raises the ELBO; bad input is one clear error.

mod common;

use std::sync::Arc;

use common::cli::{fails_with, run, text, tmp, train_small};
use common::*;
use vae_gpu::cpu::trainer::CpuBackend;
use vae_gpu::data::batch::{epoch_permutation, gather_batch, Representation};
use vae_gpu::data::{mnist, DataSource, PIXELS};
use vae_gpu::gpu::inference::GpuModel;
use vae_gpu::inference::gaps::{image_gaps, refine, GapOptions, ImageGaps, LogPxMethod};
use vae_gpu::inference::svi::SviOptions;
use vae_gpu::inference::CpuModel;
use vae_gpu::spec::{GaussianMean, KlMode, Likelihood, ModelSpec, Variance};
use vae_gpu::training::backend::{Backend, Splits, TrainConfig};
use vae_gpu::training::optim::{OptimizerConfig, OptimizerKind};

const D: usize = 5;
const K: usize = 2;
/// A decoder whose columns are far from orthogonal, so p(z|x) is correlated.
const W: [[f64; K]; D] = [[1.0, 0.8], [0.5, 1.2], [-0.8, 0.3], [0.3, -0.2], [1.0, 0.9]];
const B: [f64; D] = [0.2, -0.5, 0.0, 1.0, 0.3];
const SIGMA: f64 = 0.7;

/// x = Wz + b + σε with z ~ N(0, I): the linear VAE (no hidden layers) with a fixed σ, and an
/// encoder that ignores x (q_φ = N(0, I), the prior), so the amortization gap is large.
fn linear_model() -> (ModelSpec, Vec<f32>) {
    let spec = ModelSpec {
        input: D,
        encoder: vec![],
        decoder: vec![],
        latent: K,
        kl: KlMode::Analytic,
        likelihood: Likelihood::Gaussian {
            mean: GaussianMean::Identity,
            variance: Variance::Fixed {
                sigma: SIGMA as f32,
            },
        },
        ..ModelSpec::mnist(1, 2)
    };
    let layout = spec.layout();
    let mut params = vec![0.0f32; layout.total];
    let mut set = |name: &str, values: Vec<f64>| {
        let t = layout
            .named_tensors()
            .into_iter()
            .find(|t| t.name == name)
            .unwrap_or_else(|| panic!("no tensor {name}"));
        assert_eq!(t.len(), values.len(), "{name}");
        for (p, v) in params[t.offset..t.offset + t.len()].iter_mut().zip(values) {
            *p = v as f32;
        }
    };
    set("decoder.mean.weight", W.iter().flatten().copied().collect());
    set("decoder.mean.bias", B.to_vec());
    (spec, params)
}

/// The closed form: posterior precision Λ = I + WᵀW/σ², log p(x) = log N(x; b, WWᵀ + σ²I)
/// (by the matrix determinant lemma and Woodbury: |C| = σ^{2D}|Λ|, C⁻¹ = (I − WΛ⁻¹Wᵀ/σ²)/σ²),
/// and the mean-field KL of the best diagonal q, ½(Σ ln Λ_ii − ln|Λ|).
fn closed_form(x: &[f32]) -> (f64, f64) {
    let s2 = SIGMA * SIGMA;
    let mut l = [[0.0; K]; K];
    for i in 0..K {
        for j in 0..K {
            l[i][j] = (i == j) as u8 as f64 + (0..D).map(|p| W[p][i] * W[p][j]).sum::<f64>() / s2;
        }
    }
    let det = l[0][0] * l[1][1] - l[0][1] * l[1][0];
    let inv = [
        [l[1][1] / det, -l[0][1] / det],
        [-l[1][0] / det, l[0][0] / det],
    ];
    let r: Vec<f64> = (0..D).map(|p| x[p] as f64 - B[p]).collect();
    let wr: Vec<f64> = (0..K)
        .map(|i| (0..D).map(|p| W[p][i] * r[p]).sum())
        .collect();
    let quad_w: f64 = (0..K)
        .map(|i| (0..K).map(|j| wr[i] * inv[i][j] * wr[j]).sum::<f64>())
        .sum();
    let quad = (r.iter().map(|v| v * v).sum::<f64>() - quad_w / s2) / s2;
    let log_det_c = D as f64 * s2.ln() + det.ln();
    let log_px = -0.5 * (D as f64 * (2.0 * std::f64::consts::PI).ln() + log_det_c + quad);
    let mean_field_kl = 0.5 * (l[0][0].ln() + l[1][1].ln() - det.ln());
    (log_px, mean_field_kl)
}

fn opts(method: LogPxMethod) -> GapOptions {
    GapOptions {
        svi: SviOptions::default(),
        elbo_samples: 2000,
        method,
        full: true,
        seed: 5,
    }
}

/// A few rows from the model itself.
fn linear_rows(n: usize) -> Vec<f32> {
    let mut r = rng(3);
    let eps = uniform(&mut r, n * (K + D), -1.7, 1.7);
    eps.chunks(K + D)
        .flat_map(|e| {
            (0..D)
                .map(|p| {
                    (B[p] + W[p][0] * e[0] as f64 + W[p][1] * e[1] as f64 + SIGMA * e[K + p] as f64)
                        as f32
                })
                .collect::<Vec<_>>()
        })
        .collect()
}

/// Whether `e` ≥ 0 up to 3 of its standard errors and `slack` nats.
fn nonneg(e: &vae_gpu::inference::analysis::Estimate, slack: f64) -> bool {
    e.mean >= -3.0 * e.std_err - slack
}

#[test]
fn the_full_covariance_q_closes_the_approximation_gap_of_a_linear_gaussian_model() {
    let (spec, params) = linear_model();
    let x = linear_rows(4);
    let mut cpu = CpuModel::new(&spec, &params);
    for method in [LogPxMethod::Grid, LogPxMethod::Iwae { k: 5000 }] {
        let gaps = image_gaps(&mut cpu, &x, &opts(method), &mut |_, _| {}).expect("gaps");
        for (i, g) in gaps.iter().enumerate() {
            let (exact, kl) = closed_form(&x[i * D..(i + 1) * D]);
            // The grid: a Riemann sum at a fifth of the posterior's width, exact to far below
            // 1e-3 (f32 log-likelihoods of 5 values add a few 1e-6). IWAE with q*_full ≈ the
            // posterior: every weight ≈ p(x), so the bound is tight to its s.e. plus SVI's misfit.
            let tol = match method {
                LogPxMethod::Grid => 1e-3,
                LogPxMethod::Iwae { .. } => 0.01,
            };
            assert!(
                (g.log_px.mean - exact).abs() < tol,
                "{method:?} image {i}: log p(x) {} vs closed form {exact}",
                g.log_px.mean
            );
            // The posterior is in the full family: its gap is 0 within the ELBO's error and the
            // 0.01 nats Adam's final jitter (lr 5e-4 after two drops) costs.
            let full = g.approximation_full.expect("full fitted");
            assert!(
                full.mean.abs() <= 3.0 * full.std_err + 0.01,
                "{method:?} image {i}: full-covariance approximation gap {full:?}"
            );
            // The diagonal family misses exactly the mean-field KL (0.20 nats here).
            let dvf = g.diag_vs_full.expect("full fitted");
            assert!(
                kl > 0.15,
                "the test model's posterior must be correlated: KL {kl}"
            );
            assert!(
                (dvf.mean - kl).abs() <= 3.0 * dvf.std_err + 0.02,
                "{method:?} image {i}: ELBO(q*_full) − ELBO(q*) = {dvf:?}, mean-field KL {kl}"
            );
            assert!(
                (g.approximation.mean - kl).abs() <= 3.0 * g.approximation.std_err + 0.02,
                "{method:?} image {i}: diagonal approximation gap {:?} vs KL {kl}",
                g.approximation
            );
            // q_φ is the prior, far from p(z|x): a large amortization gap, never negative.
            assert!(g.amortization.mean > 0.5, "image {i}: {:?}", g.amortization);
        }
    }
}

/// A small MNIST model trained for a few CPU epochs (posteriors concentrated as in practice).
fn trained(latent: usize) -> (ModelSpec, Vec<f32>, Vec<f32>) {
    let m = mnist::embedded().expect("mnist");
    let splits = Arc::new(Splits {
        train: m.train.slice(0, 2000),
        val: None,
        test: m.test.slice(0, 100),
    });
    let cfg = TrainConfig {
        model: ModelSpec::mnist(64, latent),
        batch_size: 50,
        samples: 1,
        optimizer: OptimizerConfig::new(OptimizerKind::Adam, Some(3e-3)),
        seed: 1,
        pixels: Representation::Threshold,
        data: DataSource::Mnist,
        objective: Default::default(),
        vem: None,
    };
    let mut b = CpuBackend::new(&cfg, splits.clone());
    for epoch in 1..=4 {
        b.train_epoch(epoch, &epoch_permutation(2000, 1, epoch), &mut |_| {})
            .expect("train");
    }
    let params = b.state().expect("state").params;
    let n = 4;
    let index: Vec<u32> = (0..n as u32).collect();
    let mut x = vec![0.0; n * PIXELS];
    gather_batch(
        &splits.test,
        &index,
        0,
        n,
        Representation::Threshold,
        1,
        0,
        &mut x,
    );
    (cfg.model, params, x)
}

fn check_bounds(what: &str, gaps: &[ImageGaps]) {
    for (i, g) in gaps.iter().enumerate() {
        assert!(
            nonneg(&g.amortization, 0.0),
            "{what} image {i}: ELBO(q*) below ELBO(q_φ): {:?}",
            g.amortization
        );
        assert!(
            nonneg(&g.approximation, 0.01),
            "{what} image {i}: log p(x) below ELBO(q*): {:?}",
            g.approximation
        );
        let full = g.approximation_full.expect("full");
        assert!(nonneg(&full, 0.01), "{what} image {i}: {full:?}");
        assert!(g.svi_converged, "{what} image {i}: SVI did not converge");
    }
}

#[test]
fn the_bounds_hold_on_every_image_of_trained_models() {
    let (spec, params, x) = trained(2);
    let mut cpu = CpuModel::new(&spec, &params);
    let g = image_gaps(&mut cpu, &x, &opts(LogPxMethod::Grid), &mut |_, _| {}).expect("gaps");
    check_bounds("Dz = 2, grid", &g);
    let (spec, params, x) = trained(5);
    let mut cpu = CpuModel::new(&spec, &params);
    let g = image_gaps(
        &mut cpu,
        &x,
        &opts(LogPxMethod::Iwae { k: 2000 }),
        &mut |_, _| {},
    )
    .expect("gaps");
    check_bounds("Dz = 5, IWAE", &g);
}

/// Both devices run the same computation on the same Philox draws. SVI's hundreds of Adam steps
/// carry the f32 differences of the two decoders (≈1e-6 relative a step) into q*'s parameters,
/// so q* differs by ~1e-4; at q*, ELBO estimates are flat to first order in it, and every
/// estimate uses the same ε: the ELBOs, log p(x) and gaps agree to 5e-3 nats + 1e-5 relative
/// (measured: a few 1e-4).
#[test]
fn gaps_agree_between_cpu_and_gpu() {
    let (spec, params, x) = trained(2);
    let x = &x[..2 * PIXELS];
    let o = GapOptions {
        svi: SviOptions {
            max_steps: 400,
            ..SviOptions::default()
        },
        elbo_samples: 500,
        ..opts(LogPxMethod::Grid)
    };
    let mut cpu = CpuModel::new(&spec, &params);
    let mut gpu = GpuModel::new(gpu(), &spec, &params).unwrap_or_else(|e| panic!("{e}"));
    let a = image_gaps(&mut cpu, x, &o, &mut |_, _| {}).expect("cpu");
    let b = image_gaps(&mut gpu, x, &o, &mut |_, _| {}).expect("gpu");
    let close = |what: &str, p: f64, q: f64| {
        assert!(
            (p - q).abs() <= 5e-3 + 1e-5 * q.abs(),
            "{what}: gpu {p} vs cpu {q}"
        );
    };
    for (i, (ga, gb)) in a.iter().zip(&b).enumerate() {
        close(
            &format!("image {i} log p(x)"),
            gb.log_px.mean,
            ga.log_px.mean,
        );
        close(
            &format!("image {i} ELBO(q_φ)"),
            gb.elbo_encoder.mean,
            ga.elbo_encoder.mean,
        );
        close(
            &format!("image {i} ELBO(q*)"),
            gb.elbo_diag.mean,
            ga.elbo_diag.mean,
        );
        close(
            &format!("image {i} ELBO(q*_full)"),
            gb.elbo_full.unwrap().mean,
            ga.elbo_full.unwrap().mean,
        );
        close(
            &format!("image {i} amortization"),
            gb.amortization.mean,
            ga.amortization.mean,
        );
    }
}

#[test]
fn refining_the_encoders_q_raises_the_elbo() {
    let (spec, params, x) = trained(2);
    let mut cpu = CpuModel::new(&spec, &params);
    let r = refine(
        &mut cpu,
        &x,
        100,
        &SviOptions::default(),
        500,
        0,
        &mut |_| {},
    )
    .expect("refine");
    for (i, g) in r.iter().enumerate() {
        assert!(
            nonneg(&g.gain, 0.0),
            "image {i}: the refined ELBO {:?} is below the encoder's {:?}",
            g.after,
            g.before
        );
    }
    let mean_gain = r.iter().map(|g| g.gain.mean).sum::<f64>() / r.len() as f64;
    assert!(mean_gain > 0.0, "mean gain {mean_gain}");
}

#[test]
fn gaps_and_refine_write_their_outputs_and_refuse_bad_input() {
    let dir = tmp("gaps");
    let o = train_small(&dir.join("dz2"), "cpu", "1", &[]);
    assert!(o.status.success(), "{}", text(&o));
    let ck2 = dir.join("dz2/checkpoint.safetensors");
    let ck2 = ck2.to_str().unwrap();
    let out = dir.join("out");
    let out_s = out.to_str().unwrap();
    let o = run(&[
        "gaps",
        "--checkpoint",
        ck2,
        "--device",
        "cpu",
        "--images",
        "3",
        "--elbo-samples",
        "100",
        "--max-steps",
        "300",
        "--out",
        out_s,
        "--quiet",
    ]);
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    assert!(
        t.contains("log p(x) (grid)") && t.contains("amortization gap"),
        "{t}"
    );
    let csv = std::fs::read_to_string(out.join("gaps.csv")).expect("csv");
    assert_eq!(csv.lines().count(), 4, "{csv}");
    assert!(out.join("gaps.png").exists() && out.join("gaps.json").exists());
    // The report in the same directory shows the table.
    let o = run(&[
        "report",
        "--checkpoint",
        ck2,
        "--device",
        "cpu",
        "--out",
        out_s,
        "--images",
        "2",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let html = std::fs::read_to_string(out.join("index.html")).expect("html");
    assert!(html.contains("Approximation and amortization gaps") && html.contains("gaps.png"));

    let o = run(&[
        "eval",
        "--checkpoint",
        ck2,
        "--device",
        "cpu",
        "--refine",
        "5",
        "--images",
        "3",
        "--refine-samples",
        "50",
        "--out",
        out_s,
    ]);
    let t = text(&o);
    assert!(o.status.success() && t.contains("refined ELBO"), "{t}");
    assert!(out.join("refine_k5.csv").exists() && out.join("refine_k5.json").exists());

    fails_with(
        &[
            "gaps",
            "--checkpoint",
            ck2,
            "--device",
            "cpu",
            "--images",
            "101",
            "--out",
            out_s,
        ],
        "test split",
    );
    fails_with(
        &[
            "gaps",
            "--checkpoint",
            ck2,
            "--device",
            "cpu",
            "--images",
            "0",
            "--out",
            out_s,
        ],
        "--images 0",
    );
    fails_with(
        &[
            "gaps",
            "--checkpoint",
            ck2,
            "--device",
            "cpu",
            "--method",
            "iwae",
            "--k",
            "0",
            "--out",
            out_s,
        ],
        "--k 0",
    );
    fails_with(
        &[
            "gaps",
            "--checkpoint",
            ck2,
            "--device",
            "cpu",
            "--k",
            "10",
            "--out",
            out_s,
        ],
        "drop --k",
    );
    fails_with(
        &[
            "eval",
            "--checkpoint",
            ck2,
            "--device",
            "cpu",
            "--refine",
            "0",
        ],
        "--refine 0",
    );
    fails_with(
        &[
            "eval",
            "--checkpoint",
            ck2,
            "--device",
            "cpu",
            "--images",
            "3",
        ],
        "--iwae or --refine",
    );
    let o = train_small(&dir.join("dz20"), "cpu", "1", &["--latent-dim", "20"]);
    assert!(o.status.success(), "{}", text(&o));
    let ck20 = dir.join("dz20/checkpoint.safetensors");
    fails_with(
        &[
            "gaps",
            "--checkpoint",
            ck20.to_str().unwrap(),
            "--device",
            "cpu",
            "--method",
            "grid",
            "--out",
            out_s,
        ],
        "Dz = 20",
    );
}
