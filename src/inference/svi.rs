//! Stochastic variational inference without the encoder: for each image a free diagonal Gaussian
//! q(z) = N(μ, diag σ²) fitted by Adam to the ELBO of the observed pixels only,
//! E_q[log p(x_obs|z) + log p(z) − log q(z)], with reparameterized gradients. Images are fitted
//! together (one batched decoder call per step), each with its own parameters, optimizer and
//! stopping time.

use serde::Serialize;

use crate::error::{Error, Result};
use crate::inference::analysis::Estimate;
use crate::inference::ModelOps;
use crate::rng::{noise_row, stream};
use crate::spec::{LatentFamily, Prior};
use crate::training::optim::{Optimizer, OptimizerConfig, OptimizerKind};

/// Where the variational parameters start.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum SviInit {
    /// μ = 0, σ = 1: the prior, so the encoder plays no part.
    Prior,
    /// The encoder's q(z|x̃) for the image with unobserved pixels set to 0.
    Encoder,
}

#[derive(Clone, Debug)]
pub struct SviOptions {
    /// Monte Carlo samples per image per step (M).
    pub samples: usize,
    pub lr: f32,
    pub max_steps: usize,
    /// The window rule: the mean ELBO estimate of the last `window` steps improved on the window
    /// before it by less than `tol` nats.
    pub window: usize,
    pub tol: f64,
    /// Times the window rule divides the learning rate by 10 before it stops a fit. Adam moves a
    /// parameter by about lr a step whatever the gradient, so with a fixed lr μ keeps jittering by
    /// ~lr: a posterior narrower than that (a Gaussian likelihood's is a few hundredths wide) is
    /// never resolved. Each drop lets the fit settle to ten times finer.
    pub lr_drops: usize,
    pub seed: u64,
}

impl Default for SviOptions {
    fn default() -> Self {
        Self {
            samples: 10,
            lr: 0.05,
            max_steps: 3000,
            window: 100,
            tol: 0.02,
            lr_drops: 2,
            seed: 0,
        }
    }
}

/// The fit of one image.
#[derive(Clone, Debug)]
pub struct SviFit {
    pub mu: Vec<f32>,
    pub log_sigma: Vec<f32>,
    /// Steps taken before the stopping rule fired (or `max_steps`).
    pub steps: usize,
    pub converged: bool,
    /// Learning-rate drops taken (each at a step where the window rule fired).
    pub lr_drops: usize,
    /// Per-step ELBO estimates (mean over the M samples of that step).
    pub trace: Vec<f64>,
    /// Largest distance any of μ, log σ moved from its start.
    pub moved: f32,
}

/// A fit whose parameters moved less than this from their start did not fit anything: the
/// window rule fires on a flat trace when the learning rate is too small to move q (Adam's steps
/// are about lr, so `--lr 1e-30` "converged" at the prior), and such a fit is not converged.
pub const MIN_MOVE: f32 = 1e-4;

impl SviFit {
    /// Whether the window rule fired although q stayed where it started.
    pub fn stalled(&self) -> bool {
        self.moved < MIN_MOVE
    }
}

impl SviFit {
    pub fn logvar(&self) -> Vec<f32> {
        self.log_sigma.iter().map(|s| 2.0 * s).collect()
    }
    pub fn sigma(&self) -> Vec<f32> {
        self.log_sigma.iter().map(|s| s.exp()).collect()
    }
}

/// Whether the last window's mean improved on the previous window's by less than `tol`.
pub fn window_converged(trace: &[f64], window: usize, tol: f64) -> bool {
    if window == 0 || trace.len() < 2 * window {
        return false;
    }
    let n = trace.len();
    let mean = |s: &[f64]| s.iter().sum::<f64>() / s.len() as f64;
    mean(&trace[n - window..]) - mean(&trace[n - 2 * window..n - window]) < tol
}

/// Reparameterized ELBO terms for z = μ + σ·ε: f = ll + log p(z) − log q(z) and the pathwise
/// gradients (df/dμ, df/dlog σ) given g = d ll/dz. log q's total derivative is 0 in μ and −1 in
/// log σ per dimension (ε held fixed), which is what autodiff of the same expression gives.
pub fn reparam_terms(
    prior: &Prior,
    mu: &[f32],
    log_sigma: &[f32],
    eps: &[f32],
    ll: f64,
    g: &[f32],
) -> (f64, Vec<f64>, Vec<f64>) {
    let dz = mu.len();
    let (mut f, mut dmu, mut dls) = (ll, vec![0.0; dz], vec![0.0; dz]);
    for d in 0..dz {
        let sigma = (log_sigma[d] as f64).exp();
        let z = mu[d] as f64 + sigma * eps[d] as f64;
        let (log_p, dlog_p) = prior.log_density(z);
        f += log_p - LatentFamily::Gaussian.log_density(z, mu[d] as f64, 2.0 * log_sigma[d] as f64);
        let gz = g[d] as f64 + dlog_p;
        dmu[d] = gz;
        dls[d] = gz * sigma * eps[d] as f64 + 1.0;
    }
    (f, dmu, dls)
}

/// A reparameterized family of q(z) fitted by [`fit_family`]: its parameters as one vector per
/// image, the draw z(ε), and the pathwise ELBO terms. The diagonal Gaussian is [`DiagGaussian`]
/// (`[μ | log σ]`); the full-covariance one lives in `inference::gaps`.
pub trait Reparam {
    /// Parameters per image for a Dz-dimensional latent.
    fn len(&self, dz: usize) -> usize;
    /// z = z(p, ε), in f32 as the decoder takes it.
    fn draw(&self, p: &[f32], eps: &[f32], z: &mut [f32]);
    /// f = ll + log p(z) − log q(z) at z(p, ε) and ∂f/∂p, given g = ∂ll/∂z.
    fn terms(&self, prior: &Prior, p: &[f32], eps: &[f32], ll: f64, g: &[f32]) -> (f64, Vec<f64>);
}

/// q = N(μ, diag σ²), parameters `[μ | log σ]`.
pub struct DiagGaussian;

impl Reparam for DiagGaussian {
    fn len(&self, dz: usize) -> usize {
        2 * dz
    }
    fn draw(&self, p: &[f32], eps: &[f32], z: &mut [f32]) {
        let dz = eps.len();
        for d in 0..dz {
            z[d] = p[d] + p[dz + d].exp() * eps[d];
        }
    }
    fn terms(&self, prior: &Prior, p: &[f32], eps: &[f32], ll: f64, g: &[f32]) -> (f64, Vec<f64>) {
        let dz = eps.len();
        let (f, dmu, dls) = reparam_terms(prior, &p[..dz], &p[dz..], eps, ll, g);
        (f, dmu.into_iter().chain(dls).collect())
    }
}

/// The fit of one image in a [`Reparam`] family.
#[derive(Clone, Debug)]
pub struct FamilyFit {
    pub params: Vec<f32>,
    pub steps: usize,
    pub converged: bool,
    pub lr_drops: usize,
    window_start: usize,
    pub trace: Vec<f64>,
    /// Largest distance any parameter moved from its start.
    pub moved: f32,
}

/// Fits q for each of the N images in `x` `[N, 784]` with masks `mask` `[N, 784]` from the
/// initial (μ, log σ) rows `init` `[N, 2·Dz]`.
pub fn fit(
    ops: &mut dyn ModelOps,
    x: &[f32],
    mask: &[f32],
    init: &[f32],
    o: &SviOptions,
    progress: &mut dyn FnMut(usize),
) -> Result<Vec<SviFit>> {
    let dz = ops.spec().latent;
    let fits = fit_family(ops, &DiagGaussian, x, mask, init, o, progress)?;
    Ok(fits
        .into_iter()
        .map(|f| SviFit {
            mu: f.params[..dz].to_vec(),
            log_sigma: f.params[dz..].to_vec(),
            steps: f.steps,
            converged: f.converged,
            lr_drops: f.lr_drops,
            trace: f.trace,
            moved: f.moved,
        })
        .collect())
}

/// Fits q of `family` for each of the N images from the parameter rows `init`
/// `[N, family.len(Dz)]`: Adam on the reparameterized ELBO with M samples a step, each image
/// with its own optimizer, window rule and learning-rate drops, all images' draws in one
/// batched decoder call per step. ε comes from Philox stream SVI, counter (step, image·M + s):
/// the same draws on every device.
pub fn fit_family(
    ops: &mut dyn ModelOps,
    family: &dyn Reparam,
    x: &[f32],
    mask: &[f32],
    init: &[f32],
    o: &SviOptions,
    progress: &mut dyn FnMut(usize),
) -> Result<Vec<FamilyFit>> {
    let (dz, d) = (ops.spec().latent, ops.spec().input);
    let prior = ops.spec().prior;
    let n = x.len() / d;
    let np = family.len(dz);
    if init.len() != n * np || mask.len() != x.len() || o.samples == 0 || o.max_steps == 0 {
        return Err(Error::Usage(
            "svi: inconsistent images, masks, initialization or zero samples/steps".into(),
        ));
    }
    let m = o.samples;
    let mut fits: Vec<FamilyFit> = init
        .chunks(np)
        .map(|r| FamilyFit {
            params: r.to_vec(),
            steps: 0,
            converged: false,
            lr_drops: 0,
            window_start: 0,
            trace: vec![],
            moved: 0.0,
        })
        .collect();
    let adam_cfg = OptimizerConfig::new(OptimizerKind::Adam, Some(o.lr));
    let mut adams: Vec<Optimizer> = (0..n).map(|_| Optimizer::new(adam_cfg, np)).collect();
    let mut eps = vec![0.0f32; dz];
    let mut zrow = vec![0.0f32; dz];
    for step in 0..o.max_steps {
        let active: Vec<usize> = (0..n).filter(|&i| !fits[i].converged).collect();
        if active.is_empty() {
            break;
        }
        let rows = active.len() * m;
        let (mut z, mut xs, mut ms, mut all_eps) = (
            Vec::with_capacity(rows * dz),
            Vec::with_capacity(rows * d),
            Vec::with_capacity(rows * d),
            Vec::with_capacity(rows * dz),
        );
        for &i in &active {
            for s in 0..m {
                noise_row(
                    LatentFamily::Gaussian,
                    o.seed,
                    stream::SVI,
                    step as u32,
                    (i * m + s) as u32,
                    dz,
                    &mut eps,
                );
                family.draw(&fits[i].params, &eps, &mut zrow);
                z.extend_from_slice(&zrow);
                all_eps.extend_from_slice(&eps);
                xs.extend_from_slice(&x[i * d..(i + 1) * d]);
                ms.extend_from_slice(&mask[i * d..(i + 1) * d]);
            }
        }
        let (ll, g) = ops.loglik_grad(&z, &xs, &ms)?;
        for (a, &i) in active.iter().enumerate() {
            let (mut elbo, mut grad) = (0.0, vec![0.0f32; np]);
            for s in 0..m {
                let r = a * m + s;
                let (fv, dp) = family.terms(
                    &prior,
                    &fits[i].params,
                    &all_eps[r * dz..(r + 1) * dz],
                    ll[r] as f64,
                    &g[r * dz..(r + 1) * dz],
                );
                elbo += fv / m as f64;
                for (gk, dk) in grad.iter_mut().zip(&dp) {
                    // Adam minimizes: descend on −ELBO.
                    *gk -= (dk / m as f64) as f32;
                }
            }
            if !elbo.is_finite() {
                return Err(Error::Diverged(format!(
                    "svi: the ELBO of image {i} became {elbo} at step {step}; try a smaller --lr"
                )));
            }
            let f = &mut fits[i];
            adams[i].step(&mut f.params, &grad);
            f.trace.push(elbo);
            f.steps = step + 1;
            if window_converged(&f.trace[f.window_start..], o.window, o.tol) {
                if f.lr_drops < o.lr_drops {
                    f.lr_drops += 1;
                    f.window_start = f.trace.len();
                    let lr = o.lr / 10f32.powi(f.lr_drops as i32);
                    adams[i].cfg = OptimizerConfig::new(OptimizerKind::Adam, Some(lr));
                } else {
                    f.converged = true;
                }
            }
        }
        progress(step + 1);
    }
    for (f, start) in fits.iter_mut().zip(init.chunks(np)) {
        f.moved = f
            .params
            .iter()
            .zip(start)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f32::max);
        if f.moved < MIN_MOVE {
            f.converged = false;
        }
    }
    Ok(fits)
}

/// Gradient estimators of ∇_μ ELBO for a diagonal Gaussian q, from M samples each.
#[derive(Clone, Debug, Serialize)]
pub struct EstimatorStats {
    pub name: String,
    /// Per latent component: mean over repetitions.
    pub mean: Vec<f64>,
    /// Per component: variance over repetitions (of one M-sample estimate).
    pub variance: Vec<f64>,
    /// Per component: standard error of `mean`.
    pub std_err: Vec<f64>,
    /// The first component of every repetition (for histograms).
    #[serde(skip)]
    pub first: Vec<f64>,
}

fn stats(name: &str, reps: &[Vec<f64>]) -> EstimatorStats {
    let dz = reps.first().map_or(0, |r| r.len());
    let (mut mean, mut variance, mut std_err) = (vec![0.0; dz], vec![0.0; dz], vec![0.0; dz]);
    for d in 0..dz {
        let col: Vec<f64> = reps.iter().map(|r| r[d]).collect();
        let e = Estimate::from_samples(&col);
        mean[d] = e.mean;
        std_err[d] = e.std_err;
        variance[d] = e.std_err * e.std_err * col.len() as f64;
    }
    EstimatorStats {
        name: name.into(),
        mean,
        variance,
        std_err,
        first: reps.iter().map(|r| r[0]).collect(),
    }
}

/// Reparameterization, score-function, and score-function-with-baseline estimates of
/// ∇_μ ELBO(μ, σ) for image `x` (observed `mask`), each from `samples` draws, repeated `reps`
/// times with independent noise. The score-function estimator uses f(z)·∇_μ log q(z) =
/// f(z)·(z − μ)/σ² (no gradient through z); the baseline version subtracts, for each draw, the
/// mean of f over the other M − 1 draws of the repetition (leave-one-out, so it stays unbiased).
#[allow(clippy::too_many_arguments)]
pub fn gradient_estimators(
    ops: &mut dyn ModelOps,
    x: &[f32],
    mask: &[f32],
    mu: &[f32],
    log_sigma: &[f32],
    samples: usize,
    reps: usize,
    seed: u64,
) -> Result<[EstimatorStats; 3]> {
    let dz = mu.len();
    let prior = ops.spec().prior;
    if samples < 2 || reps < 2 {
        return Err(Error::Usage(
            "estimators need at least 2 samples and 2 repetitions".into(),
        ));
    }
    let rows = samples * reps;
    let mut eps = vec![0.0f32; rows * dz];
    let mut z = vec![0.0f32; rows * dz];
    for r in 0..rows {
        noise_row(
            LatentFamily::Gaussian,
            seed,
            stream::SVI,
            u32::MAX,
            r as u32,
            dz,
            &mut eps[r * dz..(r + 1) * dz],
        );
        for d in 0..dz {
            z[r * dz + d] = mu[d] + log_sigma[d].exp() * eps[r * dz + d];
        }
    }
    let xs: Vec<f32> = (0..rows).flat_map(|_| x.iter().copied()).collect();
    let ms: Vec<f32> = (0..rows).flat_map(|_| mask.iter().copied()).collect();
    let (ll, g) = ops.loglik_grad(&z, &xs, &ms)?;
    let (mut rp, mut sf, mut sfb) = (Vec::new(), Vec::new(), Vec::new());
    for rep in 0..reps {
        let terms: Vec<(f64, Vec<f64>)> = (rep * samples..(rep + 1) * samples)
            .map(|r| {
                let (f, dmu, _) = reparam_terms(
                    &prior,
                    mu,
                    log_sigma,
                    &eps[r * dz..(r + 1) * dz],
                    ll[r] as f64,
                    &g[r * dz..(r + 1) * dz],
                );
                (f, dmu)
            })
            .collect();
        let total_f: f64 = terms.iter().map(|t| t.0).sum();
        let (mut a, mut b, mut c) = (vec![0.0; dz], vec![0.0; dz], vec![0.0; dz]);
        for (k, (f, dmu)) in terms.iter().enumerate() {
            let r = rep * samples + k;
            let baseline = (total_f - f) / (samples - 1) as f64;
            for d in 0..dz {
                let score = eps[r * dz + d] as f64 / (log_sigma[d] as f64).exp(); // (z−μ)/σ²
                a[d] += dmu[d] / samples as f64;
                b[d] += f * score / samples as f64;
                c[d] += (f - baseline) * score / samples as f64;
            }
        }
        rp.push(a);
        sf.push(b);
        sfb.push(c);
    }
    Ok([
        stats("reparameterization", &rp),
        stats("score function", &sf),
        stats("score function + baseline", &sfb),
    ])
}
