//! The integrator, log-sum-exp, grids, PCA and the SVI stopping rule on inputs with known answers.

use vae_gpu::inference::analysis::{log_integral, logsumexp, pca_2d, GridPosterior, LatentGrid};
use vae_gpu::inference::svi::window_converged;

#[test]
fn logsumexp_is_stable_and_exact() {
    assert!((logsumexp(&[1000.0, 1000.0]) - (1000.0 + 2f64.ln())).abs() < 1e-12);
    assert!((logsumexp(&[-1000.0, -1000.0, -1000.0]) - (-1000.0 + 3f64.ln())).abs() < 1e-12);
    assert!((logsumexp(&[0.0, 1.0, 2.0]) - (1f64 + 1f64.exp() + 2f64.exp()).ln()).abs() < 1e-12);
    assert_eq!(logsumexp(&[]), f64::NEG_INFINITY);
    assert_eq!(logsumexp(&[f64::NEG_INFINITY, 3.0]), 3.0);
}

#[test]
fn grid_matches_the_assignment_and_rejects_nonsense() {
    let g = LatentGrid::square(-4.0, 4.0, 0.1).expect("grid");
    assert_eq!((g.nx, g.ny), (81, 81));
    assert_eq!(g.point(0), [-4.0, -4.0]);
    let last = g.point(g.len() - 1);
    assert!((last[0] - 4.0).abs() < 1e-9 && (last[1] - 4.0).abs() < 1e-9);
    let c = g.centred_on([1.0, -2.0]);
    let mid = c.point(40 * 81 + 40);
    assert!((mid[0] - 1.0).abs() < 1e-9 && (mid[1] + 2.0).abs() < 1e-9);
    assert!(LatentGrid::square(-4.0, 4.0, 0.0).is_err());
    assert!(LatentGrid::square(4.0, -4.0, 0.1).is_err());
    assert!(LatentGrid::square(-4.0, 4.0, f64::NAN).is_err());
    assert!(
        LatentGrid::square(-1e6, 1e6, 1e-3).is_err(),
        "absurd grids are refused"
    );
}

/// log ∫ c·N(z; m, diag(s²)) dz = log c, for Gaussians well inside the grid; the normalized grid
/// density integrates to 1 and has no mass on the edge.
#[test]
fn riemann_sum_recovers_known_normalizers() {
    let g = LatentGrid::square(-4.0, 4.0, 0.1).expect("grid");
    for &(log_c, m, s) in &[
        (0.0f64, [0.0f64, 0.0f64], [0.7f64, 0.7f64]),
        (-123.4, [0.5, -1.0], [0.3, 0.6]),
        (50.0, [-1.0, 1.5], [0.5, 0.2]),
    ] {
        let log_f: Vec<f64> = (0..g.len())
            .map(|k| {
                let z = g.point(k);
                log_c
                    + (0..2)
                        .map(|d| {
                            -0.5 * (2.0 * std::f64::consts::PI * s[d] * s[d]).ln()
                                - (z[d] - m[d]).powi(2) / (2.0 * s[d] * s[d])
                        })
                        .sum::<f64>()
            })
            .collect();
        let got = log_integral(&log_f, &g);
        assert!((got - log_c).abs() < 1e-6, "log ∫ = {got}, want {log_c}");
        let post = GridPosterior::from_log_joint(g, log_f);
        assert!(post.norm_error < 1e-12);
        assert!(post.edge_mass < 1e-6);
    }
    // A density centred on the boundary puts visible mass on the edge.
    let log_f: Vec<f64> = (0..g.len())
        .map(|k| -0.5 * (g.point(k)[0] - 4.0).powi(2) / 0.25)
        .collect();
    assert!(GridPosterior::from_log_joint(g, log_f).edge_mass > 0.01);
}

/// The same in one dimension: a 1-D grid's Riemann sum recovers log c of c·N(z; m, s²) and the
/// ends of the line count as its edge.
#[test]
fn riemann_sum_on_a_line_recovers_known_normalizers() {
    let g = LatentGrid::square(-4.0, 4.0, 0.01)
        .and_then(|g| g.for_latent(1))
        .expect("grid");
    assert_eq!((g.dims, g.nx, g.ny, g.len()), (1, 801, 1, 801));
    assert_eq!(g.cell_area(), 0.01);
    assert_eq!(g.points_f32().len(), 801, "one coordinate per point");
    assert_eq!(g.coords(800).len(), 1);
    assert!(g.on_edge(0) && g.on_edge(800) && !g.on_edge(400));
    assert_eq!(g.centred_on([1.0, 7.0]).coords(400), vec![1.0]);
    for &(log_c, m, s) in &[
        (0.0f64, 0.0f64, 0.7f64),
        (-123.4, 0.5, 0.05),
        (50.0, -0.5, 0.6),
    ] {
        let log_f: Vec<f64> = (0..g.len())
            .map(|k| {
                let z = g.coords(k)[0];
                log_c
                    - 0.5 * (2.0 * std::f64::consts::PI * s * s).ln()
                    - (z - m).powi(2) / (2.0 * s * s)
            })
            .collect();
        let got = log_integral(&log_f, &g);
        assert!((got - log_c).abs() < 1e-6, "log ∫ = {got}, want {log_c}");
        let post = GridPosterior::from_log_joint(g, log_f);
        assert!(post.norm_error < 1e-12 && post.edge_mass < 1e-6);
    }
    assert!(LatentGrid::square(-4.0, 4.0, 0.1)
        .unwrap()
        .for_latent(3)
        .is_err());
}

#[test]
fn pca_finds_the_dominant_direction() {
    // Points spread along (1, 1, 0)/√2 with small noise in the other directions.
    let mut pts = Vec::new();
    for i in 0..200 {
        let t = (i as f32 - 100.0) / 10.0;
        let e = ((i * 7919) % 13) as f32 / 100.0 - 0.06;
        pts.extend([t + e, t - e, 0.5 * e]);
    }
    let proj = pca_2d(&pts, 3);
    let var0: f32 = proj.iter().map(|p| p[0] * p[0]).sum();
    let var1: f32 = proj.iter().map(|p| p[1] * p[1]).sum();
    assert!(
        var0 > 100.0 * var1,
        "first component {var0} vs second {var1}"
    );
    assert_eq!(
        pca_2d(&[1.0, 2.0, 3.0, 4.0], 2),
        vec![[1.0, 2.0], [3.0, 4.0]]
    );
}

#[test]
fn stopping_rule_fires_only_on_a_plateau() {
    let rising: Vec<f64> = (0..400).map(|i| i as f64 * 0.01).collect();
    assert!(!window_converged(&rising, 100, 0.02));
    let flat: Vec<f64> = (0..400)
        .map(|i| if i < 200 { i as f64 * 0.01 } else { 2.0 })
        .collect();
    assert!(window_converged(&flat, 100, 0.02));
    assert!(
        !window_converged(&flat[..150], 100, 0.02),
        "needs two full windows"
    );
}

/// Data drawn from a known PPCA model (D = 6, k = 2, σ² = 0.09): the closed-form fit recovers σ²
/// and the column space of W, and its exact log-likelihood equals a direct multivariate-normal
/// evaluation (Cholesky of WWᵀ + σ²I, f64).
#[test]
fn ppca_recovers_a_known_model_and_its_likelihood_is_exact() {
    use rand::{RngExt, SeedableRng};
    use vae_gpu::inference::linear::{Pca, Ppca};
    let (d, k, n, sigma2) = (6usize, 2usize, 40_000usize, 0.09f64);
    let w_true = [
        [1.0, 0.0],
        [0.5, 1.5],
        [-1.0, 0.3],
        [0.0, -0.8],
        [2.0, 0.1],
        [0.3, 0.7],
    ];
    let mu = [0.5, -1.0, 0.0, 2.0, 0.1, -0.3];
    let mut r = rand::rngs::StdRng::seed_from_u64(7);
    let mut normal = || {
        let (u1, u2): (f64, f64) = (r.random_range(1e-12..1.0), r.random_range(0.0..1.0));
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    };
    let mut x = Vec::with_capacity(n * d);
    for _ in 0..n {
        let z = [normal(), normal()];
        for j in 0..d {
            let v = mu[j] + w_true[j][0] * z[0] + w_true[j][1] * z[1] + sigma2.sqrt() * normal();
            x.push(v as f32);
        }
    }
    let ppca = Ppca::from_pca(&Pca::fit(&x, d).expect("pca"), k).expect("ppca");
    // σ² from 4 discarded directions of 40,000 points: relative s.e. ≈ √(2/(4·40,000)) ≈ 0.4%.
    assert!(
        (ppca.sigma2 - sigma2).abs() < 0.03 * sigma2,
        "σ² {} vs {sigma2}",
        ppca.sigma2
    );
    // The column space: each true column's residual off the fitted span is small.
    let columns = (0..k).map(|c| w_true.iter().map(|row| row[c]).collect::<Vec<f64>>());
    for (c, col) in columns.enumerate() {
        let mut resid = col.clone();
        for u in &ppca.components {
            let dot: f64 = u.iter().zip(&col).map(|(a, b)| a * b).sum();
            resid.iter_mut().zip(u).for_each(|(r, ui)| *r -= dot * ui);
        }
        let rel = resid.iter().map(|v| v * v).sum::<f64>().sqrt()
            / col.iter().map(|v| v * v).sum::<f64>().sqrt();
        assert!(
            rel < 0.02,
            "column {c}: {rel} of it lies off the fitted span"
        );
    }
    // The likelihood against a direct evaluation with C = WWᵀ + σ²I.
    let w = ppca.w();
    let c = nalgebra::DMatrix::from_fn(d, d, |a, b| {
        (0..k).map(|i| w[a * k + i] * w[b * k + i]).sum::<f64>()
            + if a == b { ppca.sigma2 } else { 0.0 }
    });
    let chol = nalgebra::Cholesky::new(c).expect("C is positive definite");
    let log_det: f64 = 2.0 * chol.l().diagonal().iter().map(|v| v.ln()).sum::<f64>();
    for row in x.chunks(d).take(50) {
        let diff = nalgebra::DVector::from_iterator(
            d,
            row.iter().zip(&ppca.mean).map(|(&v, m)| v as f64 - m),
        );
        let quad = diff.dot(&chol.solve(&diff));
        let direct = -0.5 * (d as f64 * (std::f64::consts::TAU).ln() + log_det + quad);
        let got = ppca.log_likelihood(row);
        assert!(
            (got - direct).abs() <= 1e-9 + 1e-9 * direct.abs(),
            "{got} vs {direct}"
        );
    }
    // A degenerate case is an error, not a NaN: 3 points span at most a plane in 6-D.
    let few = Pca::fit(&x[..3 * d], d).expect("pca");
    assert!(Ppca::from_pca(&few, 2).is_err());
    assert!(Ppca::from_pca(&few, 0).is_err() && Ppca::from_pca(&few, 6).is_err());
}

/// Bounds so wide that (upper − lower)/spacing passes usize: the point count must not wrap to an
/// empty grid (which panicked later in `chunks(0)`), but be one error naming the flags.
#[test]
fn grids_too_wide_to_count_are_refused() {
    for g in [
        LatentGrid::square(-1e18, 1e18, 0.1),
        LatentGrid::line(-1e18, 1e18, 0.01),
        LatentGrid::square(-1e300, 1e300, 1e-300),
    ] {
        let e = g.expect_err("refused").to_string();
        assert!(
            e.contains("--spacing") && e.contains("points per axis"),
            "{e}"
        );
    }
}

/// Two MNIST images span one direction: PCA must find it first with a finite, sorted spectrum
/// (nalgebra's QR gave NaN eigenpairs on the full 784×784 covariance, sorted first as 0), and
/// PPCA must refuse, saying how many rows it needs.
#[test]
fn pca_of_a_few_images_is_sorted_and_finite() {
    use vae_gpu::inference::linear::{Pca, Ppca};
    let corpus = vae_gpu::data::mnist::embedded().expect("embedded MNIST");
    for n in [2, 5, 10] {
        let x = vae_gpu::report::linear_models::real_rows(&corpus.train.slice(0, n));
        let pca = Pca::fit(&x, 784).expect("fit");
        let ev = &pca.eigenvalues;
        assert!(ev.iter().all(|v| v.is_finite() && *v >= 0.0), "n = {n}");
        assert!(
            ev.windows(2).all(|w| w[0] >= w[1]),
            "n = {n}: {:?}",
            &ev[..4]
        );
        assert!(
            ev[0] > 1.0 && ev[n - 1] < 1e-9 * ev[0],
            "n = {n}: {:?}",
            &ev[..n]
        );
        assert!(pca.components.iter().flatten().all(|v| v.is_finite()));
        assert!((pca.explained(n - 1) - 1.0).abs() < 1e-9, "n = {n}");
        let r = pca.reconstruct(&pca.project(&x[..784], n - 1));
        let err: f64 = r
            .iter()
            .zip(&x[..784])
            .map(|(a, &b)| (a - b as f64).powi(2))
            .sum();
        assert!(
            err < 1e-9,
            "n = {n}: the rows lie in their span, error {err}"
        );
    }
    let two = vae_gpu::report::linear_models::real_rows(&corpus.train.slice(0, 2));
    let e = Ppca::from_pca(&Pca::fit(&two, 784).unwrap(), 1)
        .expect_err("no variance outside one component")
        .to_string();
    assert!(e.contains("at least 3 training rows"), "{e}");
}
