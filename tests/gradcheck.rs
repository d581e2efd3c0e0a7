//! The reference gradients against f64 central finite differences on a tiny model of every member
//! of the family, and every density against its closed form and its normalisation.

use vae_gpu::cpu::reference::{sigmoid, softplus, step, Workspace};
use vae_gpu::data::batch::Representation;
use vae_gpu::family::latent::kl::analytic_kl;
use vae_gpu::family::likelihood::{
    Beta, Categorical, ContinuousBernoulli, Gaussian, Member, Outputs,
};
use vae_gpu::rng::noise_batch;
use vae_gpu::spec::{
    init_params, linear, members, Activation, ConvSpec, GaussianMean, Init, KlMode, LatentFamily,
    LayerSpec, Likelihood, ModelSpec, Prior, Variance,
};
use vae_gpu::training::backend::Objective;

fn tiny(lik: Likelihood, act: Activation) -> ModelSpec {
    ModelSpec {
        input: 6,
        image: None,
        encoder: linear(&[5, 4]),
        decoder: linear(&[4]),
        activation: act,
        latent: 3,
        posterior: LatentFamily::Gaussian,
        prior: Prior::default(),
        kl: KlMode::Mc,
        likelihood: lik,
        init: Init::Pytorch,
    }
}

/// A tiny convolutional model on 6×4 images: two convolutions (padding 1, then stride 2) down,
/// a reshape and two transposed convolutions up, the last giving the likelihood's channels.
fn tiny_conv(lik: Likelihood, act: Activation) -> ModelSpec {
    let conv = |out, kernel, stride, padding| ConvSpec {
        out,
        kernel,
        stride,
        padding,
    };
    ModelSpec {
        input: 24,
        image: Some([1, 6, 4]),
        encoder: vec![
            LayerSpec::Conv2d(conv(Some(2), 3, 1, 1)),
            LayerSpec::Conv2d(conv(Some(3), 2, 2, 0)),
            LayerSpec::Linear(4),
        ],
        decoder: vec![
            LayerSpec::Linear(18),
            LayerSpec::Reshape([3, 3, 2]),
            LayerSpec::ConvTranspose2d(conv(Some(2), 2, 2, 0)),
            LayerSpec::ConvTranspose2d(conv(None, 3, 1, 1)),
        ],
        ..tiny(lik, act)
    }
}

/// Every likelihood with the default latent layer, then every latent combination the spec allows
/// with a Bernoulli and a Gaussian likelihood, then convolutional models with one, two and three
/// output channels.
fn members() -> Vec<ModelSpec> {
    let acts = [Activation::Tanh, Activation::Relu, Activation::Sigmoid];
    let mut v: Vec<ModelSpec> = members::likelihoods()
        .into_iter()
        .enumerate()
        .map(|(i, lik)| tiny(lik, acts[i % 3]))
        .collect();
    let gauss = Likelihood::Gaussian {
        mean: GaussianMean::Sigmoid,
        variance: Variance::Decoder,
    };
    // The default latent combination (first) is already in the likelihood members above.
    for (i, (posterior, prior, kl)) in members::latents().into_iter().skip(1).enumerate() {
        let lik = if i % 2 == 0 {
            Likelihood::Bernoulli
        } else {
            gauss
        };
        v.push(ModelSpec {
            posterior,
            prior,
            kl,
            ..tiny(lik, acts[i % 3])
        });
    }
    let gauss_decoder = Likelihood::Gaussian {
        mean: GaussianMean::Identity,
        variance: Variance::Decoder,
    };
    // Smooth activations only: with ReLU a finite difference that crosses a kink (a
    // pre-activation within h of 0) is not a derivative; the MLP members above cover ReLU.
    for (lik, act) in [
        (Likelihood::Bernoulli, Activation::Tanh),
        (gauss_decoder, Activation::Sigmoid),
        (Likelihood::Categorical { bins: 3 }, Activation::Tanh),
    ] {
        v.push(tiny_conv(lik, act));
    }
    v
}

#[test]
fn every_member_s_gradients_match_central_differences_in_f64() {
    let (batch, samples) = (3, 2);
    for (i, spec) in members().into_iter().enumerate() {
        let (lik, act) = (spec.likelihood, spec.activation);
        let mut params: Vec<f64> = init_params(&spec, 9 + i as u64)
            .iter()
            .map(|&p| p as f64 * 3.0)
            .collect();
        if let Some(f) = spec.layout().free {
            for (k, p) in params[f.offset..f.offset + f.len].iter_mut().enumerate() {
                *p = -1.0 + 0.4 * k as f64;
            }
        }
        // Binary pixels for the Bernoulli, 8-bit grayscale values otherwise.
        let bytes = [
            255u8, 0, 200, 255, 13, 0, 0, 128, 255, 64, 250, 1, 90, 255, 17, 0, 3, 180,
        ];
        // Each likelihood's own representation of the bytes (binarized, pixel/255, bin middles).
        let x: Vec<f64> = bytes
            .iter()
            .cycle()
            .take(batch * spec.input)
            .map(|&v| lik.default_representation().pixel_value(v, 0.5) as f64)
            .collect();
        let eps: Vec<f64> =
            noise_batch(spec.posterior, 5, 0, i as u32, batch * samples, spec.latent)
                .iter()
                .map(|&e| e as f64)
                .collect();
        // Both objectives (IWAE's per-draw weights need the Monte Carlo KL).
        for objective in [Objective::Elbo, Objective::Iwae] {
            if objective == Objective::Iwae && spec.kl == KlMode::Analytic {
                continue;
            }
            let mut ws = Workspace::<f64>::new(&spec, batch, samples);
            let mut grads = vec![0.0f64; params.len()];
            let at = step(
                &spec,
                objective,
                &params,
                &x,
                &eps,
                &mut ws,
                Some(&mut grads),
            );
            let h = 1e-4;
            let mut kinks = 0;
            for k in 0..params.len() {
                let mut p = params.clone();
                p[k] = params[k] + h;
                let up = step(&spec, objective, &p, &x, &eps, &mut ws, None);
                p[k] = params[k] - h;
                let down = step(&spec, objective, &p, &x, &eps, &mut ws, None);
                let fd = (up - down) / (2.0 * h);
                // With ReLU, a step that moves a pre-activation across 0 crosses a kink of slope
                // jump J at distance t < h: one one-sided slope is then off by J(h − t)/h and the
                // central difference by half that, so its error is at most half the gap between
                // the one-sided slopes (which a smooth function keeps at h·|f''|). A mismatch
                // that such a gap explains is counted as a kink, at most two per model, so a
                // wrong gradient cannot hide behind one.
                let (forward, backward) = ((up - at) / h, (at - down) / h);
                let off = (fd - grads[k]).abs();
                if act == Activation::Relu
                    && off > 1e-6 + 1e-5 * fd.abs()
                    && off <= 0.5 * (forward - backward).abs() + 1e-6
                {
                    kinks += 1;
                    assert!(kinks <= 2, "{lik:?}: more than two ReLU kinks within h");
                    continue;
                }
                // f64 central differences with h = 1e-4: truncation h²·|f'''|/6 ≈ 2e-9·|f'''|; rounding:
                // the Gaussians near their variance floor sum per-pixel terms of 10³–10⁴ nats, whose
                // f64 rounding (about 1e-10 in all, measured) over 2h stays below 1e-6. A smaller h
                // lets that rounding through (h = 1e-6 gave errors of 3.5e-5 on such a member).
                assert!(
                    (fd - grads[k]).abs() <= 1e-6 + 1e-5 * fd.abs(),
                    "{objective:?}: {lik:?} {act:?} {:?} q {:?} prior {:?} KL, param {k}: analytic {} vs finite difference {fd}",
                    spec.posterior,
                    spec.prior,
                    spec.kl,
                    grads[k]
                );
            }
        }
    }
}

fn log_p<M: Member>(m: &M, x: f64, o: &[f64], free: f64) -> f64 {
    m.log_prob_grad(x, Outputs { data: o, stride: 1 }, free, |_, _| {})
        .0
}

/// ∫₀¹ by the midpoint rule on n cells.
fn integrate_unit(f: impl Fn(f64) -> f64, n: usize) -> f64 {
    (0..n).map(|i| f((i as f64 + 0.5) / n as f64)).sum::<f64>() / n as f64
}

#[test]
fn gaussian_is_normalised_and_matches_its_closed_form() {
    for (variance, o, free) in [
        (Variance::Fixed { sigma: 0.1 }, vec![0.3], 0.0),
        (Variance::Learned, vec![-0.2], -1.5),
        (Variance::Shared, vec![0.1], 0.7),
        (Variance::Decoder, vec![0.6, 0.8], 0.0),
    ] {
        let g = Gaussian::new(GaussianMean::Identity, variance);
        let var = match variance {
            Variance::Fixed { sigma } => (sigma as f64).powi(2),
            Variance::Learned | Variance::Shared => softplus(free) + 1e-4,
            Variance::Decoder => softplus(o[1]) + 1e-4,
        };
        let (mu, sd) = (o[0], var.sqrt());
        let dx = sd / 500.0;
        let total: f64 = (-6000..6000)
            .map(|i| log_p(&g, mu + i as f64 * dx, &o, free).exp() * dx)
            .sum();
        assert!((total - 1.0).abs() < 1e-6, "{variance:?}: ∫ = {total}");
        let x = mu + 0.7 * sd;
        let closed = -0.5 * (2.0 * std::f64::consts::PI * var).ln() - 0.245;
        assert!((log_p(&g, x, &o, free) - closed).abs() < 1e-9);
    }
    // Sigmoid means put μ at σ(o).
    let g = Gaussian::new(GaussianMean::Sigmoid, Variance::Fixed { sigma: 0.2 });
    let top = log_p(&g, sigmoid(1.3), &[1.3], 0.0);
    assert!(top > log_p(&g, sigmoid(1.3) + 0.01, &[1.3], 0.0));
}

#[test]
fn continuous_bernoulli_is_normalised_on_both_sides_of_its_taylor_band() {
    for &l in &[
        -6.0, -0.3, -0.25, -0.2499, -0.01, 0.0, 1e-5, 0.1, 0.2501, 2.0, 30.0,
    ] {
        let total = integrate_unit(|x| log_p(&ContinuousBernoulli, x, &[l], 0.0).exp(), 200_000);
        assert!((total - 1.0).abs() < 1e-6, "l = {l}: ∫ = {total}");
        // closed form C(λ) = 2 atanh(1 − 2λ) / (1 − 2λ), λ = σ(l), away from λ = ½ (where it
        // cancels) and from λ → 1 (where 1 − λ loses its digits: relative error ~ e^|l|·ε).
        if l.abs() > 1e-3 && l.abs() < 10.0 {
            let lam = sigmoid(l);
            let c = 2.0 * (1.0 - 2.0 * lam).atanh() / (1.0 - 2.0 * lam);
            let want = c.ln() + 0.3 * lam.ln() + 0.7 * (1.0 - lam).ln();
            assert!(
                (log_p(&ContinuousBernoulli, 0.3, &[l], 0.0) - want).abs() < 1e-9,
                "l = {l}"
            );
        }
    }
    // f32 is continuous across the band edge: the two branches agree there to ~1e-7.
    let (a, b) = (
        vae_gpu::family::likelihood::continuous_bernoulli::log_normaliser(0.2499999f32),
        vae_gpu::family::likelihood::continuous_bernoulli::log_normaliser(0.2500001f32),
    );
    assert!(
        (a.0 - b.0).abs() < 1e-6 && (a.1 - b.1).abs() < 1e-5,
        "{a:?} {b:?}"
    );
}

#[test]
fn beta_matches_its_closed_form_and_sums_to_one_over_the_pixel_bins() {
    // Beta(2, 3): 12·x·(1 − x)². Raw outputs giving α = 2, β = 3 through softplus + 10⁻³.
    let raw = |v: f64| ((v - 1e-3).exp() - 1.0).ln();
    let o = [raw(2.0), raw(3.0)];
    // At the bin middles the gather makes (the `midpoint` representation) and inside (0, 1).
    for byte in [0u8, 17, 128, 255] {
        let x = Representation::Midpoint.pixel_value(byte, 0.0) as f64;
        assert_eq!(x, (byte as f64 + 0.5) / 256.0);
        let want = (12.0 * x * (1.0 - x).powi(2)).ln();
        assert!(
            (log_p(&Beta, x, &o, 0.0) - want).abs() < 1e-9,
            "byte {byte}"
        );
    }
    // The midpoints of the 256 bins integrate the smooth density to 1 within the midpoint
    // rule's error h²·(f'(1) − f'(0))/24 ≈ 1.3e-5 for Beta(2, 4).
    let o = [raw(2.0), raw(4.0)];
    let total: f64 = (0..=255u32)
        .map(|b| log_p(&Beta, (b as f64 + 0.5) / 256.0, &o, 0.0).exp() / 256.0)
        .sum();
    assert!((total - 1.0).abs() < 1e-4, "Σ = {total}");
}

#[test]
fn categorical_sums_to_one_and_bins_are_equal_width() {
    let cat = Categorical::new(4);
    let o = [0.3, -1.0, 2.0, 0.0];
    let firsts = [0u32, 64, 128, 192];
    let total: f64 = firsts
        .iter()
        .map(|&b| log_p(&cat, b as f64 / 255.0, &o, 0.0).exp())
        .sum();
    assert!((total - 1.0).abs() < 1e-12);
    for (byte, bin) in [(0u32, 0), (63, 0), (64, 1), (127, 1), (128, 2), (255, 3)] {
        assert_eq!(cat.bin(byte as f64 / 255.0), bin, "byte {byte}");
    }
    let lse = (o.iter().map(|v: &f64| v.exp()).sum::<f64>()).ln();
    assert!((log_p(&cat, 100.0 / 255.0, &o, 0.0) - (o[1] - lse)).abs() < 1e-12);
}

#[test]
fn the_exponential_family_form_is_the_log_density_for_every_member() {
    for lik in members::likelihoods() {
        vae_gpu::with_member!(&lik, m => {
            let c = lik.channels();
            let o: Vec<f64> = (0..c).map(|k| 0.7 - 0.45 * k as f64).collect();
            let free = -0.8;
            let mut eta = vec![0.0; m.stats()];
            let mut t = vec![0.0; m.stats()];
            let a = m.natural(Outputs { data: &o, stride: 1 }, free, &mut eta);
            for byte in [0u32, 1, 77, 200, 255] {
                let x = lik.default_representation().pixel_value(byte as u8, 0.5) as f64;
                m.sufficient(x, &mut t);
                let form: f64 = t.iter().zip(&eta).map(|(t, e)| t * e).sum::<f64>() - a;
                let direct = log_p(m, x, &o, free);
                assert!((form - direct).abs() < 1e-10 * (1.0 + direct.abs()), "{lik:?} x={x}: {form} vs {direct}");
            }
        });
    }
}

/// ∫ f over [lo, hi] by the midpoint rule on n cells.
fn integrate(f: impl Fn(f64) -> f64, lo: f64, hi: f64, n: usize) -> f64 {
    let h = (hi - lo) / n as f64;
    (0..n).map(|i| f(lo + (i as f64 + 0.5) * h)).sum::<f64>() * h
}

#[test]
fn latent_densities_are_normalised_and_match_their_closed_forms() {
    use std::f64::consts::PI;
    let (mu, head) = (0.7f64, -0.6f64);
    for family in [LatentFamily::Gaussian, LatentFamily::Laplace] {
        let (s, _) = family.scale(head);
        // ±40 scales: the tails beyond hold < e⁻⁴⁰ of the mass. The Laplace kink at μ sits on a
        // cell edge (an even number of cells), so the midpoint rule keeps its O(h²) error.
        let total = integrate(
            |z| family.log_density(z, mu, head).exp(),
            mu - 40.0 * s,
            mu + 40.0 * s,
            400_000,
        );
        assert!((total - 1.0).abs() < 1e-6, "{family:?}: ∫q = {total}");
        for z in [-4.0, 0.1, 0.7, 3.0] {
            let closed = match family {
                LatentFamily::Gaussian => {
                    -0.5 * (2.0 * PI * s * s).ln() - (z - mu).powi(2) / (2.0 * s * s)
                }
                LatentFamily::Laplace => -(2.0 * s).ln() - (z - mu).abs() / s,
            };
            assert!(
                (family.log_density(z, mu, head) - closed).abs() < 1e-12,
                "{family:?} z={z}"
            );
        }
        let prior = Prior { family, scale: 1.7 };
        let total = integrate(|z| prior.log_density(z).0.exp(), -70.0, 70.0, 400_000);
        assert!((total - 1.0).abs() < 1e-6, "{prior:?}: ∫p = {total}");
        // d log p/dz against a central difference (away from the Laplace kink at 0).
        for z in [-2.0f64, 0.3, 5.0] {
            let fd = (prior.log_density(z + 1e-6).0 - prior.log_density(z - 1e-6).0) / 2e-6;
            assert!(
                (prior.log_density(z).1 - fd).abs() < 1e-7,
                "{prior:?} z={z}"
            );
        }
    }
}

#[test]
fn analytic_kl_matches_numerical_integration_and_its_derivatives() {
    let (g, l) = (LatentFamily::Gaussian, LatentFamily::Laplace);
    for (q, p) in [(g, g), (l, g), (l, l)] {
        for &(mu, s, c) in &[
            (0.3f64, 0.8f64, 1.0f64),
            (-1.2, 0.2, 1.7),
            (0.0, 1.0, 1.0),
            (2.0, 3.0, 0.5),
        ] {
            let head = q.head_of_scale(s);
            let prior = Prior {
                family: p,
                scale: c as f32,
            };
            let c = prior.scale as f64;
            let numeric = integrate(
                |z| {
                    let lq = q.log_density(z, mu, head);
                    lq.exp() * (lq - prior.log_density(z).0)
                },
                mu - 60.0 * s,
                mu + 60.0 * s,
                600_000,
            );
            let (kl, dmu, ds) = analytic_kl(q, p, mu, s, c);
            // Midpoint rule with h = s/5000 on a density with kinks at μ and 0: error ~1e-7.
            assert!(
                (kl - numeric).abs() < 1e-6,
                "{q:?}‖{p:?} μ={mu} s={s} c={c}: {kl} vs ∫ {numeric}"
            );
            let h = 1e-4;
            let fd_mu =
                (analytic_kl(q, p, mu + h, s, c).0 - analytic_kl(q, p, mu - h, s, c).0) / (2.0 * h);
            let fd_s =
                (analytic_kl(q, p, mu, s + h, c).0 - analytic_kl(q, p, mu, s - h, c).0) / (2.0 * h);
            assert!(
                (dmu - fd_mu).abs() < 1e-6 && (ds - fd_s).abs() < 1e-6,
                "{q:?}‖{p:?}: derivatives"
            );
        }
    }
}

#[test]
fn bernoulli_density_is_stable_and_normalized() {
    let b = vae_gpu::family::likelihood::Bernoulli::BINARY;
    for &l in &[-30.0f64, -3.0, -0.1, 0.0, 0.5, 4.0, 30.0] {
        let p = 1.0 / (1.0 + (-l).exp());
        if p < 1.0 - 1e-12 && p > 1e-12 {
            assert!((log_p(&b, 1.0, &[l], 0.0) - p.ln()).abs() < 1e-9, "l={l}");
            assert!(
                (log_p(&b, 0.0, &[l], 0.0) - (1.0 - p).ln()).abs() < 1e-9,
                "l={l}"
            );
        }
        let total = log_p(&b, 1.0, &[l], 0.0).exp() + log_p(&b, 0.0, &[l], 0.0).exp();
        assert!((total - 1.0).abs() < 1e-12);
        assert!((sigmoid(l) - p).abs() < 1e-15);
    }
    // Far tails stay finite where the naive forms overflow or give log(0).
    let lp32 = |x: f32, l: f32| {
        b.log_prob_grad(
            x,
            Outputs {
                data: &[l],
                stride: 1,
            },
            0.0,
            |_, _| {},
        )
        .0
    };
    for &l in &[-500.0f32, 500.0] {
        assert!(lp32(1.0, l).is_finite() && lp32(0.0, l).is_finite());
        assert!(softplus(l).is_finite());
    }
    assert!((lp32(1.0, -500.0) + 500.0).abs() < 1e-3);
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

/// With one sample per image the importance-weighted bound is the ELBO: the same loss and the
/// same gradient (the weights are 1/B, the ELBO's scale 1/(B·1)), up to the order of f64 products.
#[test]
fn iwae_with_one_sample_is_the_elbo_step() {
    for (i, spec) in members().into_iter().enumerate() {
        if spec.kl == KlMode::Analytic {
            continue;
        }
        let params: Vec<f64> = init_params(&spec, 3 + i as u64)
            .iter()
            .map(|&p| p as f64)
            .collect();
        let batch = 4;
        let x: Vec<f64> = (0..batch * spec.input)
            .map(|j| {
                let byte = (j * 37 % 256) as u8;
                spec.likelihood
                    .default_representation()
                    .pixel_value(byte, 0.5) as f64
            })
            .collect();
        let eps: Vec<f64> = noise_batch(spec.posterior, 1, 0, i as u32, batch, spec.latent)
            .iter()
            .map(|&e| e as f64)
            .collect();
        let mut ws = Workspace::<f64>::new(&spec, batch, 1);
        let run = |objective, ws: &mut Workspace<f64>| {
            let mut g = vec![0.0; params.len()];
            let loss = step(&spec, objective, &params, &x, &eps, ws, Some(&mut g));
            (loss, g)
        };
        let (elbo, ge) = run(Objective::Elbo, &mut ws);
        let (iwae, gi) = run(Objective::Iwae, &mut ws);
        assert!(
            (elbo - iwae).abs() <= 1e-12 * elbo.abs(),
            "{elbo} vs {iwae}"
        );
        for (k, (a, b)) in ge.iter().zip(&gi).enumerate() {
            assert!(
                (a - b).abs() <= 1e-12 * (1.0 + a.abs()),
                "param {k}: {a} vs {b}"
            );
        }
    }
}
