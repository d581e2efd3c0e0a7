//! The reference gradients against f64 central finite differences on a tiny model, and the
//! densities against their closed forms.

use vae_gpu::cpu::reference::{log_bernoulli, log_normal, sigmoid, softplus, step, Workspace};
use vae_gpu::model::{init_params, ModelConfig};
use vae_gpu::rng::noise_batch;

#[test]
fn gradients_match_central_differences_in_f64() {
    let cfg = ModelConfig {
        input: 6,
        hidden: 5,
        latent: 3,
    };
    let (batch, samples) = (3, 2);
    let params: Vec<f64> = init_params(&cfg, 9)
        .iter()
        .map(|&p| p as f64 * 3.0)
        .collect();
    let x: Vec<f64> = [1, 0, 1, 1, 0, 0, 0, 1, 1, 0, 1, 0, 1, 1, 1, 0, 0, 1]
        .iter()
        .map(|&v| v as f64)
        .collect();
    let eps: Vec<f64> = noise_batch(5, 0, 0, batch * samples, cfg.latent)
        .iter()
        .map(|&e| e as f64)
        .collect();
    let mut ws = Workspace::<f64>::new(&cfg, batch, samples);
    let mut grads = vec![0.0f64; params.len()];
    step(&cfg, &params, &x, &eps, &mut ws, Some(&mut grads));
    let h = 1e-6;
    for i in 0..params.len() {
        let mut p = params.clone();
        p[i] = params[i] + h;
        let up = step(&cfg, &p, &x, &eps, &mut ws, None);
        p[i] = params[i] - h;
        let down = step(&cfg, &p, &x, &eps, &mut ws, None);
        let fd = (up - down) / (2.0 * h);
        assert!(
            (fd - grads[i]).abs() <= 1e-7 + 1e-5 * fd.abs(),
            "param {i}: analytic {} vs finite difference {fd}",
            grads[i]
        );
    }
}

#[test]
fn log_normal_matches_closed_form_and_integrates_to_one() {
    for &(x, mu, lv) in &[
        (0.3f64, -0.2f64, 0.5f64),
        (-4.0, 1.0, -2.0),
        (10.0, 0.0, 3.0),
    ] {
        let var = lv.exp();
        let closed =
            -0.5 * (2.0 * std::f64::consts::PI * var).ln() - (x - mu).powi(2) / (2.0 * var);
        assert!((log_normal(x, mu, lv) - closed).abs() < 1e-12);
    }
    // Riemann sum of the density over ±10σ.
    let (mu, lv) = (0.7f64, -0.6f64);
    let sd = (0.5 * lv).exp();
    let dx = sd / 1000.0;
    let total: f64 = (-10_000..10_000)
        .map(|i| log_normal(mu + i as f64 * dx, mu, lv).exp() * dx)
        .sum();
    assert!((total - 1.0).abs() < 1e-6, "∫N = {total}");
}

#[test]
fn bernoulli_density_is_stable_and_normalized() {
    for &l in &[-30.0f64, -3.0, -0.1, 0.0, 0.5, 4.0, 30.0] {
        let p = 1.0 / (1.0 + (-l).exp());
        let closed1 = p.ln();
        let closed0 = (1.0 - p).ln();
        if p < 1.0 - 1e-12 && p > 1e-12 {
            assert!((log_bernoulli(1.0, l) - closed1).abs() < 1e-9, "l={l}");
            assert!((log_bernoulli(0.0, l) - closed0).abs() < 1e-9, "l={l}");
        }
        let total = log_bernoulli(1.0, l).exp() + log_bernoulli(0.0, l).exp();
        assert!((total - 1.0).abs() < 1e-12);
        assert!((sigmoid(l) - p).abs() < 1e-15);
    }
    // Far tails stay finite where the naive forms overflow or give log(0).
    for &l in &[-500.0f32, 500.0] {
        assert!(log_bernoulli(1.0f32, l).is_finite() && log_bernoulli(0.0f32, l).is_finite());
        assert!(softplus(l).is_finite());
    }
    assert!((log_bernoulli(1.0f32, -500.0) + 500.0).abs() < 1e-3);
}

#[test]
fn tanh_matches_libm_across_its_branches() {
    use vae_gpu::cpu::reference::tanh_stable;
    for i in -4000..=4000 {
        let x = i as f64 * 0.005;
        let (got, want) = (tanh_stable(x), x.tanh());
        assert!(
            (got - want).abs() <= 1e-15 + 1e-13 * want.abs(),
            "f64 x={x}: {got} vs {want}"
        );
        let g32 = tanh_stable(x as f32) as f64;
        assert!(
            (g32 - want).abs() <= 1e-7 + 2e-6 * want.abs(),
            "f32 x={x}: {g32} vs {want}"
        );
    }
    assert_eq!(tanh_stable(1e30f32), 1.0);
    assert_eq!(tanh_stable(-1e30f32), -1.0);
}
