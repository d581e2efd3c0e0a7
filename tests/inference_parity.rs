//! Running a model (encoder, decoder, log-likelihood matrices and gradients, SVI) on the GPU vs the
//! CPU reference, and the SVI / estimator math on a model trained in the test.

mod common;

use std::sync::Arc;

use common::*;
use vae_gpu::cpu::reference::decoder_loglik_grad;
use vae_gpu::cpu::trainer::CpuBackend;
use vae_gpu::data::batch::{epoch_permutation, gather_batch, Representation};
use vae_gpu::data::{mnist, DataSource, PIXELS};
use vae_gpu::gpu::inference::GpuModel;
use vae_gpu::inference::analysis::{
    elbo_estimate, grid_posteriors, top_rows_mask, Estimate, LatentGrid,
};
use vae_gpu::inference::svi::{fit, gradient_estimators, SviOptions};
use vae_gpu::inference::{CpuModel, ModelOps};
use vae_gpu::spec::{init_params, members, GaussianMean, Likelihood, ModelSpec, Variance};
use vae_gpu::training::backend::{Backend, Splits, TrainConfig};
use vae_gpu::training::optim::{OptimizerConfig, OptimizerKind};

fn binary(seed: u64, n: usize) -> Vec<f32> {
    let mut r = rng(seed);
    uniform(&mut r, n * PIXELS, 0.0, 1.0)
        .iter()
        .map(|&u| (u > 0.8) as u8 as f32)
        .collect()
}

/// Grayscale pixels k/255 (a quarter of them 0, as MNIST's background).
fn grayscale(seed: u64, n: usize) -> Vec<f32> {
    let mut r = rng(seed);
    uniform(&mut r, n * PIXELS, -0.35, 1.0)
        .iter()
        .map(|&u| (u.max(0.0) * 255.0).round() / 255.0)
        .collect()
}

#[test]
fn model_ops_match_between_gpu_and_cpu_for_every_likelihood() {
    // Every member's examples, plus an odd width, Dz = 3, and a 1-D latent (the circle's) with
    // the shared variance of the linear VAE.
    let mut members: Vec<(usize, usize, Likelihood)> = members::likelihoods()
        .into_iter()
        .map(|l| (20, 2, l))
        .collect();
    members.push((37, 2, Likelihood::Bernoulli));
    members.push((20, 3, Likelihood::Bernoulli));
    members.push((
        20,
        1,
        Likelihood::Gaussian {
            mean: GaussianMean::Identity,
            variance: Variance::Shared,
        },
    ));
    for (hidden, latent, lik) in members {
        let cfg = ModelSpec {
            likelihood: lik,
            ..ModelSpec::mnist(hidden, latent)
        };
        let params = init_params(&cfg, 3);
        let mut cpu = CpuModel::new(&cfg, &params);
        let mut gpu = GpuModel::new(gpu(), &cfg, &params).unwrap_or_else(|e| panic!("{e}"));
        // Each member's own representation of the bytes (binarized, pixel/255, bin middles, …).
        let x: Vec<f32> = grayscale(1, 5)
            .iter()
            .map(|v| {
                lik.default_representation()
                    .pixel_value((v * 255.0).round() as u8, 0.5)
            })
            .collect();
        assert_close(
            "encode",
            &gpu.encode(&x).expect("gpu"),
            &cpu.encode(&x).expect("cpu"),
            1e-4,
            1e-4,
        );
        let mut r = rng(2);
        let z = uniform(&mut r, 67 * latent, -3.0, 3.0);
        assert_close(
            "decode",
            &gpu.decode(&z).expect("gpu"),
            &cpu.decode(&z).expect("cpu"),
            1e-4,
            1e-4,
        );
        let mask: Vec<f32> = (0..5)
            .flat_map(|i| {
                if i % 2 == 0 {
                    top_rows_mask(14)
                } else {
                    vec![1.0; PIXELS]
                }
            })
            .collect();
        let want = cpu.loglik_matrix(&z, &x, &mask).expect("cpu");
        let name = lik.name();
        assert_close(
            &format!("{name} loglik matrix"),
            &gpu.loglik_matrix(&z, &x, &mask).expect("gpu"),
            &want,
            2e-3,
            1e-4,
        );
        let xs: Vec<f32> = (0..67)
            .flat_map(|r| x[(r % 5) * PIXELS..(r % 5 + 1) * PIXELS].to_vec())
            .collect();
        let ms: Vec<f32> = (0..67)
            .flat_map(|r| mask[(r % 5) * PIXELS..(r % 5 + 1) * PIXELS].to_vec())
            .collect();
        let (gl, gg) = gpu.loglik_grad(&z, &xs, &ms).expect("gpu");
        let (cl, cg) = cpu.loglik_grad(&z, &xs, &ms).expect("cpu");
        assert_close(&format!("{name} loglik (paired)"), &gl, &cl, 2e-3, 1e-4);
        assert_close(
            &format!("{name} d loglik / dz"),
            &gg,
            &cg,
            1e-3 * max_abs(&cg),
            1e-3,
        );
        // The paired log-likelihood (direct form) is the diagonal of the matrix (exponential-family
        // form): sums of 784 terms whose size is up to ~10 in f32.
        for (rr, &l) in cl.iter().enumerate().take(5) {
            let m = want[(rr % 5) * 67 + rr];
            assert!(
                (l - m).abs() < 2e-3 + 1e-5 * l.abs(),
                "{name}: paired {l} vs matrix {m}"
            );
        }
    }
}

#[test]
fn decoder_gradient_matches_finite_differences() {
    let cfg = ModelSpec {
        input: 6,
        ..ModelSpec::mnist(4, 2)
    };
    let params: Vec<f64> = init_params(&cfg, 4)
        .iter()
        .map(|&p| 2.0 * p as f64)
        .collect();
    let x = [1.0, 0.0, 1.0, 1.0, 0.0, 1.0];
    let m = [1.0, 1.0, 0.0, 1.0, 1.0, 0.0];
    let z = [0.3, -0.7];
    let (_, g) = decoder_loglik_grad(&cfg, &params, &z, &x, &m, 1);
    for d in 0..2 {
        let h = 1e-6;
        let mut zp = z;
        zp[d] += h;
        let up = decoder_loglik_grad(&cfg, &params, &zp, &x, &m, 1).0[0];
        zp[d] -= 2.0 * h;
        let down = decoder_loglik_grad(&cfg, &params, &zp, &x, &m, 1).0[0];
        let fd = (up - down) / (2.0 * h);
        assert!(
            (fd - g[d]).abs() < 1e-7 + 1e-6 * fd.abs(),
            "dz[{d}]: {} vs {fd}",
            g[d]
        );
    }
}

/// A small model trained for a few CPU epochs, so that posteriors are concentrated as in practice.
fn trained_model() -> (ModelSpec, Vec<f32>, Vec<f32>) {
    let m = mnist::embedded().expect("mnist");
    let splits = Arc::new(Splits {
        train: m.train.slice(0, 2000),
        val: None,
        test: m.test.slice(0, 100),
    });
    let cfg = TrainConfig {
        model: ModelSpec::mnist(64, 2),
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
    let index: Vec<u32> = (0..3).collect();
    let mut x = vec![0.0; 3 * PIXELS];
    gather_batch(
        &splits.test,
        &index,
        0,
        3,
        Representation::Threshold,
        1,
        0,
        &mut x,
    );
    (cfg.model, params, x)
}

#[test]
fn svi_reaches_the_grid_log_likelihood_and_agrees_across_devices() {
    let (cfg, params, x) = trained_model();
    let mask: Vec<f32> = (0..3).flat_map(|_| top_rows_mask(14)).collect();
    let mut cpu = CpuModel::new(&cfg, &params);
    let opts = SviOptions {
        max_steps: 1500,
        ..SviOptions::default()
    };
    let init = vec![0.0f32; 3 * 4];
    let fits = fit(&mut cpu, &x, &mask, &init, &opts, &mut |_| {}).expect("svi");
    let grid = LatentGrid::square(-4.0, 4.0, 0.1).expect("grid");
    let posts = grid_posteriors(&mut cpu, &grid, &x, &mask).expect("grid");
    for (i, f) in fits.iter().enumerate() {
        let e = elbo_estimate(
            &mut cpu,
            &x[i * PIXELS..(i + 1) * PIXELS],
            &mask[..PIXELS],
            vae_gpu::spec::LatentFamily::Gaussian,
            &f.mu,
            &f.logvar(),
            2000,
            0,
            i as u32,
        )
        .expect("elbo");
        let log_px = posts[i].log_px;
        // The ELBO is a lower bound (up to Monte Carlo error) and SVI gets close to it.
        assert!(
            e.mean <= log_px + 4.0 * e.std_err + 1e-3,
            "image {i}: ELBO {} > log p(x_obs) {log_px}",
            e.mean
        );
        assert!(
            log_px - e.mean < 1.0,
            "image {i}: SVI stopped {} nats below log p(x_obs) = {log_px}",
            log_px - e.mean
        );
    }

    // Same noise on both devices: the first 40 steps land on the same parameters.
    let short = SviOptions {
        max_steps: 40,
        ..SviOptions::default()
    };
    let mut gpu = GpuModel::new(gpu(), &cfg, &params).unwrap_or_else(|e| panic!("{e}"));
    let a = fit(&mut cpu, &x, &mask, &init, &short, &mut |_| {}).expect("cpu svi");
    let b = fit(&mut gpu, &x, &mask, &init, &short, &mut |_| {}).expect("gpu svi");
    for (fa, fb) in a.iter().zip(&b) {
        assert_close("svi mu", &fb.mu, &fa.mu, 2e-3, 1e-3);
        assert_close("svi log sigma", &fb.log_sigma, &fa.log_sigma, 2e-3, 1e-3);
    }
}

#[test]
fn gradient_estimators_agree_in_mean_and_differ_in_variance() {
    let (cfg, params, x) = trained_model();
    let mut cpu = CpuModel::new(&cfg, &params);
    let mask = vec![1.0f32; PIXELS];
    for (mu, ls) in [
        (vec![0.0f32, 0.0], vec![0.0f32, 0.0]),
        (vec![0.5, -0.5], vec![-1.0, -1.5]),
    ] {
        let [rp, sf, sfb] =
            gradient_estimators(&mut cpu, &x[..PIXELS], &mask, &mu, &ls, 10, 2000, 7)
                .expect("estimators");
        for d in 0..2 {
            for other in [&sf, &sfb] {
                let se = (rp.std_err[d].powi(2) + other.std_err[d].powi(2)).sqrt();
                assert!(
                    (rp.mean[d] - other.mean[d]).abs() <= 4.0 * se,
                    "component {d}: {} {} vs {} {} (se {se})",
                    rp.name,
                    rp.mean[d],
                    other.name,
                    other.mean[d]
                );
            }
            assert!(
                sf.variance[d] > 2.0 * rp.variance[d],
                "score-function variance {} vs reparameterization {}",
                sf.variance[d],
                rp.variance[d]
            );
            assert!(
                sfb.variance[d] < sf.variance[d],
                "the baseline must reduce variance"
            );
        }
    }
}

/// The CPU log-likelihood matrix decodes latents in blocks of 8,192 (so a huge grid does not need
/// gigabytes); across a block boundary, and on the GPU (which blocks the same way), every entry
/// must equal the one computed from the decoder's logits directly in f64.
#[test]
fn loglik_matrix_is_exact_across_decoder_blocks() {
    let cfg = ModelSpec::mnist(4, 2);
    let params = init_params(&cfg, 11);
    let (n, r) = (2usize, 8192 + 37);
    let x = binary(5, n);
    let mask: Vec<f32> = [top_rows_mask(14), vec![1.0; PIXELS]].concat();
    let z = uniform(&mut rng(6), r * 2, -3.0, 3.0);
    let mut cpu = CpuModel::new(&cfg, &params);
    let logits = cpu.decode(&z).expect("decode");
    let mut want = vec![0.0f32; n * r];
    for i in 0..n {
        for k in 0..r {
            want[i * r + k] = (0..PIXELS)
                .map(|p| {
                    let l = logits[k * PIXELS + p] as f64;
                    let softplus = l.max(0.0) + (-l.abs()).exp().ln_1p();
                    mask[i * PIXELS + p] as f64 * (x[i * PIXELS + p] as f64 * l - softplus)
                })
                .sum::<f64>() as f32;
        }
    }
    // Sums of 784 terms of size ≲ 5 in f32: |error| ≲ 784·5·6e-8 ≈ 2e-4.
    let got = cpu.loglik_matrix(&z, &x, &mask).expect("cpu");
    assert_close("cpu loglik matrix", &got, &want, 5e-4, 1e-5);
    let mut gpu = GpuModel::new(gpu(), &cfg, &params).unwrap_or_else(|e| panic!("{e}"));
    let got = gpu.loglik_matrix(&z, &x, &mask).expect("gpu");
    assert_close("gpu loglik matrix", &got, &want, 5e-4, 1e-5);
}

/// The importance-weighted estimate on the small trained model (Dz = 2), for three test images:
/// with K = 1 it is the single-sample ELBO of the same draw; for any K it is at least the mean
/// log-weight of its own draws (log-mean-exp ≥ mean); in expectation it rises with K (with the
/// prior N(0, I) as the proposal, far from the posterior, means of 200 independent estimates at
/// K = 1, 10, 100 increase by more than three standard errors; the trained encoder's q is so close
/// to the posterior that its rise, hundredths of a nat, drowns in the noise);
/// at K = 5000 it agrees with grid integration; and the GPU gives the CPU's estimate.
#[test]
fn iwae_is_the_elbo_at_one_sample_rises_with_k_and_meets_the_grid() {
    use vae_gpu::inference::analysis::{iwae_bound, log_weights};
    let (cfg, params, x) = trained_model();
    let mut cpu = CpuModel::new(&cfg, &params);
    let mut gpu = GpuModel::new(gpu(), &cfg, &params).unwrap_or_else(|e| panic!("{e}"));
    let full = vec![1.0f32; PIXELS];
    let enc = cpu.encode(&x).expect("encode");
    let grid = LatentGrid::square(-4.0, 4.0, 0.05).expect("grid");
    let posts = grid_posteriors(&mut cpu, &grid, &x, &vec![1.0; 3 * PIXELS]).expect("grid");
    let q = vae_gpu::spec::LatentFamily::Gaussian;
    for i in 0..3 {
        let xi = &x[i * PIXELS..(i + 1) * PIXELS];
        let (mu, head) = (&enc[i * 4..i * 4 + 2], &enc[i * 4 + 2..i * 4 + 4]);
        let w = |ops: &mut dyn ModelOps, k: usize, seed: u64| {
            log_weights(ops, xi, &full, q, mu, head, k, seed, i as u32).expect("weights")
        };
        let from_prior = |ops: &mut dyn ModelOps, k: usize, seed: u64| {
            let zero = [0.0f32; 2];
            log_weights(ops, xi, &full, q, &zero, &zero, k, seed, i as u32).expect("weights")
        };
        let one = w(&mut cpu, 1, 3);
        let elbo = elbo_estimate(&mut cpu, xi, &full, q, mu, head, 1, 3, i as u32).expect("elbo");
        assert_eq!(iwae_bound(&one), elbo.mean, "K = 1 is the ELBO");
        let mut means = Vec::new();
        for k in [1usize, 10, 100] {
            let v: Vec<f64> = (0..200u64)
                .map(|seed| {
                    let lw = from_prior(&mut cpu, k, 100 + seed);
                    let b = iwae_bound(&lw);
                    assert!(b >= lw.iter().sum::<f64>() / k as f64 - 1e-9);
                    b
                })
                .collect();
            means.push(Estimate::from_samples(&v));
        }
        for pair in means.windows(2) {
            let (a, b) = (pair[0], pair[1]);
            let se = (a.std_err.powi(2) + b.std_err.powi(2)).sqrt();
            assert!(b.mean - a.mean > 3.0 * se, "image {i}: {a:?} then {b:?}");
        }
        // K = 5000 against the grid (spacing 0.05: its Riemann error is far below this): the
        // estimate's bias is about var(w)/(2K·E[w]²) and its spread a few hundredths here.
        let big = iwae_bound(&w(&mut cpu, 5000, 7));
        assert!(
            (big - posts[i].log_px).abs() < 0.05,
            "image {i}: IWAE {big} vs grid {}",
            posts[i].log_px
        );
        // The same draws through the GPU's decoder: f32 sums over 784 pixels, as the other
        // log-likelihood parity checks.
        let on_gpu = iwae_bound(&w(&mut gpu, 5000, 7));
        assert!(
            (on_gpu - big).abs() <= 1e-3 + 1e-5 * big.abs(),
            "image {i}: gpu {on_gpu} vs cpu {big}"
        );
    }
}
