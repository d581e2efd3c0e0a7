//! Where the ELBO loses (Cremer, Li & Duvenaud 2018, "Inference Suboptimality in Variational
//! Autoencoders"): for one image the inference gap log p(x) − ELBO(q_φ) of the encoder's q splits
//! at q*, the best member of the same family found by SVI (Algorithm 6's E-step run to
//! convergence, started from q_φ), into
//!
//! - the **approximation gap** log p(x) − ELBO(q*): the family cannot match p(z|x);
//! - the **amortization gap** ELBO(q*) − ELBO(q_φ): the encoder does not find q*.
//!
//! With a full-covariance Gaussian q*_full fitted beside the diagonal one, ELBO(q*_full) −
//! ELBO(q*_diag) is how much of the approximation gap the diagonal family's missing
//! correlations cost. Everything runs through [`ModelOps`], so it is one computation on either
//! device, with the same Philox draws.

use crate::error::{Error, Result};
use crate::inference::analysis::{grid_posteriors, iwae_bound, log_weights, Estimate, LatentGrid};
use crate::inference::svi::{fit_family, DiagGaussian, FamilyFit, Reparam, SviOptions};
use crate::inference::ModelOps;
use crate::rng::{noise_row, stream};
use crate::spec::{LatentFamily, Prior};

/// q = N(μ, LLᵀ) with L lower triangular: parameters `[μ (Dz) | s (Dz) | off-diagonal (Dz(Dz−1)/2)]`,
/// L_ii = exp(s_i) (so L stays invertible and log|det L| = Σ s_i), L_ij (i > j) the off-diagonal
/// entries row by row. z = μ + Lε; log q(z) = Σ_i [−½ ln 2π − s_i − ½ ε_i²].
pub struct FullGaussian;

/// Where L_ij (i > j) sits among the off-diagonal parameters.
fn off(i: usize, j: usize) -> usize {
    i * (i - 1) / 2 + j
}

impl FullGaussian {
    /// L (row-major `[Dz, Dz]`, f64) from the parameters.
    pub fn cholesky(p: &[f32], dz: usize) -> Vec<f64> {
        let mut l = vec![0.0; dz * dz];
        for i in 0..dz {
            l[i * dz + i] = (p[dz + i] as f64).exp();
            for j in 0..i {
                l[i * dz + j] = p[2 * dz + off(i, j)] as f64;
            }
        }
        l
    }

    /// The parameters of the diagonal q N(μ, diag σ²) (`[μ | log σ]`) as a full-covariance one.
    pub fn from_diag(diag: &[f32], dz: usize) -> Vec<f32> {
        let mut p = diag[..2 * dz].to_vec();
        p.resize(self::FullGaussian.len_of(dz), 0.0);
        p
    }

    /// The marginal standard deviations sqrt((LLᵀ)_ii).
    pub fn marginal_std(p: &[f32], dz: usize) -> Vec<f64> {
        let l = Self::cholesky(p, dz);
        (0..dz)
            .map(|i| (0..=i).map(|j| l[i * dz + j].powi(2)).sum::<f64>().sqrt())
            .collect()
    }

    fn len_of(&self, dz: usize) -> usize {
        2 * dz + dz * (dz - 1) / 2
    }
}

impl Reparam for FullGaussian {
    fn len(&self, dz: usize) -> usize {
        self.len_of(dz)
    }

    fn draw(&self, p: &[f32], eps: &[f32], z: &mut [f32]) {
        let dz = eps.len();
        for i in 0..dz {
            let mut v = p[i] + p[dz + i].exp() * eps[i];
            for j in 0..i {
                v += p[2 * dz + off(i, j)] * eps[j];
            }
            z[i] = v;
        }
    }

    /// With g_z = ∂ll/∂z + ∂log p(z)/∂z: ∂f/∂μ_i = g_z,i; ∂f/∂L_ij = g_z,i ε_j; ∂f/∂s_i =
    /// g_z,i ε_i e^{s_i} + 1, the +1 from −log q = ½|ε|² + Σ s + const at fixed ε (the entropy
    /// term log|det L|), as autodiff of the same expression gives.
    fn terms(&self, prior: &Prior, p: &[f32], eps: &[f32], ll: f64, g: &[f32]) -> (f64, Vec<f64>) {
        let dz = eps.len();
        let mut grad = vec![0.0; self.len_of(dz)];
        let half_ln_2pi = 0.5 * (2.0 * std::f64::consts::PI).ln();
        let mut f = ll;
        for i in 0..dz {
            let (e, s) = (eps[i] as f64, p[dz + i] as f64);
            let mut z = p[i] as f64 + s.exp() * e;
            for j in 0..i {
                z += p[2 * dz + off(i, j)] as f64 * eps[j] as f64;
            }
            let (log_p, dlog_p) = prior.log_density(z);
            f += log_p + half_ln_2pi + s + 0.5 * e * e;
            let gz = g[i] as f64 + dlog_p;
            grad[i] = gz;
            grad[dz + i] = gz * e * s.exp() + 1.0;
            for j in 0..i {
                grad[2 * dz + off(i, j)] = gz * eps[j] as f64;
            }
        }
        (f, grad)
    }
}

/// The log-weights log p(x_obs, z_k) − log q(z_k) of `samples` draws z_k = μ + Lε_k of a
/// full-covariance q, ε_k from Philox stream ANALYSIS counter (k, image id): the same ε as
/// [`log_weights`] of a Gaussian q of the same image, so differences between families pair up.
#[allow(clippy::too_many_arguments)]
pub fn log_weights_full(
    ops: &mut dyn ModelOps,
    x: &[f32],
    mask: &[f32],
    p: &[f32],
    samples: usize,
    seed: u64,
    image_id: u32,
) -> Result<Vec<f64>> {
    let dz = ops.spec().latent;
    let prior = ops.spec().prior;
    let mut z = vec![0.0f32; samples * dz];
    let mut eps = vec![0.0f32; dz];
    let mut rest = Vec::with_capacity(samples);
    for (k, zk) in z.chunks_mut(dz).enumerate() {
        noise_row(
            LatentFamily::Gaussian,
            seed,
            stream::ANALYSIS,
            k as u32,
            image_id,
            dz,
            &mut eps,
        );
        FullGaussian.draw(p, &eps, zk);
        // f without ll, from the same expression SVI differentiates.
        let (f, _) = FullGaussian.terms(&prior, p, &eps, 0.0, &vec![0.0; dz]);
        rest.push(f);
    }
    let ll = ops.loglik_matrix(&z, x, mask)?;
    Ok(ll.iter().zip(&rest).map(|(&l, &r)| l as f64 + r).collect())
}

/// Most points of one image's widened grid (a 641 × 641 grid: 0.4 M latents decoded).
const GRID_POINTS_CAP: f64 = 410_000.0;

/// How log p(x) is measured.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogPxMethod {
    /// Numerical integration (Dz ≤ 2) on each image's own grid, centred on q*'s mean, ±10 of
    /// its largest marginal standard deviations wide at 81 points a side, and widened (same
    /// spacing) while more than 1e-4 of the posterior lies on its edge.
    Grid,
    /// The importance-weighted bound with K draws of q* (the full-covariance one where fitted):
    /// a lower bound on log p(x), so the approximation gap it gives is one too.
    Iwae { k: usize },
}

impl LogPxMethod {
    pub fn name(&self) -> String {
        match self {
            LogPxMethod::Grid => "grid".into(),
            LogPxMethod::Iwae { k } => format!("iwae-k{k}"),
        }
    }
}

#[derive(Clone, Debug)]
pub struct GapOptions {
    /// SVI for q* (both families): the stopping rule and its learning-rate drops.
    pub svi: SviOptions,
    /// Draws in each final ELBO estimate.
    pub elbo_samples: usize,
    pub method: LogPxMethod,
    /// Fit the full-covariance Gaussian q* too.
    pub full: bool,
    /// Seed of the ELBO and IWAE draws.
    pub seed: u64,
}

/// The gaps of one image. Every ELBO uses the same ε_k (Philox ANALYSIS, counter (k, image)), so
/// differences of ELBOs are estimated from paired log-weights, with their own standard error.
#[derive(Clone, Debug)]
pub struct ImageGaps {
    /// log p(x): the grid's (standard error 0: the Riemann sum's error is not Monte Carlo) or
    /// the IWAE estimate's (delta method: sd(w)/(√K·mean w)).
    pub log_px: Estimate,
    /// Grid only: the posterior mass on the outermost ring of the grid (should be ≈ 0).
    pub edge_mass: Option<f64>,
    pub elbo_encoder: Estimate,
    pub elbo_diag: Estimate,
    pub elbo_full: Option<Estimate>,
    /// log p(x) − ELBO(q*_diag).
    pub approximation: Estimate,
    /// ELBO(q*_diag) − ELBO(q_φ).
    pub amortization: Estimate,
    /// log p(x) − ELBO(q_φ).
    pub inference: Estimate,
    /// ELBO(q*_full) − ELBO(q*_diag): the diagonal family's own approximation gap.
    pub diag_vs_full: Option<Estimate>,
    /// log p(x) − ELBO(q*_full).
    pub approximation_full: Option<Estimate>,
    pub svi_steps: usize,
    pub svi_converged: bool,
    pub full_steps: Option<usize>,
    pub full_converged: Option<bool>,
}

/// Mean and standard error of the paired differences a_k − b_k.
fn paired(a: &[f64], b: &[f64]) -> Estimate {
    let d: Vec<f64> = a.iter().zip(b).map(|(x, y)| x - y).collect();
    Estimate::from_samples(&d)
}

/// a − b for independent estimates.
fn minus(a: Estimate, b: Estimate) -> Estimate {
    Estimate {
        mean: a.mean - b.mean,
        std_err: (a.std_err.powi(2) + b.std_err.powi(2)).sqrt(),
        samples: a.samples.min(b.samples),
    }
}

/// The IWAE estimate from log-weights with its delta-method standard error.
fn iwae_estimate(w: &[f64]) -> Estimate {
    let m = w.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let e: Vec<f64> = w.iter().map(|v| (v - m).exp()).collect();
    let s = Estimate::from_samples(&e);
    Estimate {
        mean: iwae_bound(w),
        std_err: s.std_err / s.mean,
        samples: w.len(),
    }
}

/// Checks what `image_gaps` needs of the model and options; a clear error otherwise.
pub fn check(ops: &dyn ModelOps, o: &GapOptions) -> Result<()> {
    let spec = ops.spec();
    if spec.posterior != LatentFamily::Gaussian {
        return Err(Error::Usage(format!(
            "gaps fits q* by SVI in the encoder's family, which it does for a Gaussian q; this \
             model's q is {:?} (train with the default --posterior gaussian)",
            spec.posterior
        )));
    }
    if o.method == LogPxMethod::Grid && spec.latent > 2 {
        return Err(Error::Usage(format!(
            "--method grid integrates over a 1-D or 2-D latent space and this model has Dz = {}; \
             use --method iwae (the default for Dz > 2)",
            spec.latent
        )));
    }
    if o.elbo_samples < 2 {
        return Err(Error::Usage(
            "gaps: --elbo-samples must be at least 2".into(),
        ));
    }
    Ok(())
}

/// The gaps of every image in `x` `[N, D]` (all pixels observed). `progress(stage, step)` is
/// told the SVI steps of the diagonal fit (stage 0), the full one (stage 1), and the images
/// whose estimates are done (stage 2).
pub fn image_gaps(
    ops: &mut dyn ModelOps,
    x: &[f32],
    o: &GapOptions,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<Vec<ImageGaps>> {
    check(ops, o)?;
    let (d, dz) = (ops.spec().input, ops.spec().latent);
    let posterior = ops.spec().posterior;
    let n = x.len() / d;
    let masks = vec![1.0f32; n * d];
    let mask = &masks[..d];
    let enc = ops.encode(x)?;
    // q_φ's head is log σ²; SVI's diagonal q is parameterized by log σ.
    let init: Vec<f32> = enc
        .chunks(2 * dz)
        .flat_map(|r| {
            r[..dz]
                .iter()
                .copied()
                .chain(r[dz..].iter().map(|&h| posterior.log_std_of_head(h)))
                .collect::<Vec<_>>()
        })
        .collect();
    let diag = fit_family(ops, &DiagGaussian, x, &masks, &init, &o.svi, &mut |s| {
        progress(0, s)
    })?;
    // The full fit starts at q*_diag, so ELBO(q*_full) ≥ ELBO(q*_diag) up to SVI's noise.
    let full: Option<Vec<FamilyFit>> = if o.full {
        let start: Vec<f32> = diag
            .iter()
            .flat_map(|f| FullGaussian::from_diag(&f.params, dz))
            .collect();
        Some(fit_family(
            ops,
            &FullGaussian,
            x,
            &masks,
            &start,
            &o.svi,
            &mut |s| progress(1, s),
        )?)
    } else {
        None
    };
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let xi = &x[i * d..(i + 1) * d];
        let id = i as u32;
        let (emu, ehead) = (
            &enc[i * 2 * dz..i * 2 * dz + dz],
            &enc[i * 2 * dz + dz..(i + 1) * 2 * dz],
        );
        let w_enc = log_weights(
            ops,
            xi,
            mask,
            posterior,
            emu,
            ehead,
            o.elbo_samples,
            o.seed,
            id,
        )?;
        let p = &diag[i].params;
        let logvar: Vec<f32> = p[dz..].iter().map(|s| 2.0 * s).collect();
        let w_diag = log_weights(
            ops,
            xi,
            mask,
            LatentFamily::Gaussian,
            &p[..dz],
            &logvar,
            o.elbo_samples,
            o.seed,
            id,
        )?;
        let w_full = match &full {
            Some(f) => Some(log_weights_full(
                ops,
                xi,
                mask,
                &f[i].params,
                o.elbo_samples,
                o.seed,
                id,
            )?),
            None => None,
        };
        let (log_px, edge_mass) = match o.method {
            LogPxMethod::Grid => {
                let (centre, sd) = match &full {
                    Some(f) => (
                        f[i].params[..dz].to_vec(),
                        FullGaussian::marginal_std(&f[i].params, dz),
                    ),
                    None => (
                        p[..dz].to_vec(),
                        p[dz..].iter().map(|s| (*s as f64).exp()).collect(),
                    ),
                };
                let c = [centre[0] as f64, centre.get(1).map_or(0.0, |&m| m as f64)];
                let mut half = (10.0 * sd.iter().fold(0.0f64, |a, &b| a.max(b))).clamp(1e-3, 8.0);
                let h = half / 40.0;
                // A posterior with mass beyond ±10 sd of q* (a second mode, a heavy tail) puts
                // mass on the grid's edge: the grid doubles in extent at the same spacing until
                // the edge holds less than 1e-4 of it, or it covers ±8 around q* or reaches
                // the point limit.
                let (mut grid, mut post);
                loop {
                    grid = LatentGrid::square(-half, half, h)?
                        .for_latent(dz)?
                        .centred_on(c);
                    post = grid_posteriors(ops, &grid, xi, mask)?.remove(0);
                    let next = (2.0 * half / h + 1.0).powi(dz as i32);
                    if post.edge_mass < 1e-4 || half >= 8.0 || next > GRID_POINTS_CAP {
                        break;
                    }
                    half *= 2.0;
                }
                (
                    Estimate {
                        mean: post.log_px,
                        std_err: 0.0,
                        samples: grid.len(),
                    },
                    Some(post.edge_mass),
                )
            }
            LogPxMethod::Iwae { k } => {
                // Independent of the ELBO draws (another seed), so the IWAE bound is not
                // built from the very weights whose mean it is compared with.
                let seed = o.seed ^ 0x9e37_79b9_7f4a_7c15;
                let w = match &full {
                    Some(f) => log_weights_full(ops, xi, mask, &f[i].params, k, seed, id)?,
                    None => log_weights(
                        ops,
                        xi,
                        mask,
                        LatentFamily::Gaussian,
                        &p[..dz],
                        &logvar,
                        k,
                        seed,
                        id,
                    )?,
                };
                (iwae_estimate(&w), None)
            }
        };
        let (e_enc, e_diag) = (
            Estimate::from_samples(&w_enc),
            Estimate::from_samples(&w_diag),
        );
        let e_full = w_full.as_ref().map(|w| Estimate::from_samples(w));
        out.push(ImageGaps {
            log_px,
            edge_mass,
            elbo_encoder: e_enc,
            elbo_diag: e_diag,
            elbo_full: e_full,
            approximation: minus(log_px, e_diag),
            amortization: paired(&w_diag, &w_enc),
            inference: minus(log_px, e_enc),
            diag_vs_full: w_full.as_ref().map(|w| paired(w, &w_diag)),
            approximation_full: e_full.map(|e| minus(log_px, e)),
            svi_steps: diag[i].steps,
            svi_converged: diag[i].converged,
            full_steps: full.as_ref().map(|f| f[i].steps),
            full_converged: full.as_ref().map(|f| f[i].converged),
        });
        progress(2, i + 1);
    }
    Ok(out)
}

/// The ELBO of the encoder's q and of the q reached by `steps` SVI steps from it, per image
/// (all pixels observed): semi-amortized inference at evaluation (Kim et al. 2018). Both ELBOs
/// from the same `samples` draws (paired), on any device.
pub struct Refined {
    pub before: Estimate,
    pub after: Estimate,
    /// after − before, from paired log-weights.
    pub gain: Estimate,
}

/// `steps` Adam steps of SVI (no stopping rule) from q_φ for each image of `x`.
pub fn refine(
    ops: &mut dyn ModelOps,
    x: &[f32],
    steps: usize,
    svi: &SviOptions,
    samples: usize,
    seed: u64,
    progress: &mut dyn FnMut(usize),
) -> Result<Vec<Refined>> {
    let (d, dz) = (ops.spec().input, ops.spec().latent);
    let posterior = ops.spec().posterior;
    if posterior != LatentFamily::Gaussian {
        return Err(Error::Usage(format!(
            "--refine takes SVI steps on a Gaussian q and this model's q is {posterior:?}"
        )));
    }
    let n = x.len() / d;
    let masks = vec![1.0f32; n * d];
    let enc = ops.encode(x)?;
    let init: Vec<f32> = enc
        .chunks(2 * dz)
        .flat_map(|r| {
            r[..dz]
                .iter()
                .copied()
                .chain(r[dz..].iter().map(|&h| posterior.log_std_of_head(h)))
                .collect::<Vec<_>>()
        })
        .collect();
    // Exactly `steps` steps: a window of 0 never fires.
    let o = SviOptions {
        max_steps: steps,
        window: 0,
        lr_drops: 0,
        ..svi.clone()
    };
    let fits = fit_family(ops, &DiagGaussian, x, &masks, &init, &o, &mut |_| {})?;
    let mut out = Vec::with_capacity(n);
    for (i, f) in fits.iter().enumerate() {
        let xi = &x[i * d..(i + 1) * d];
        let (emu, ehead) = (
            &enc[i * 2 * dz..i * 2 * dz + dz],
            &enc[i * 2 * dz + dz..(i + 1) * 2 * dz],
        );
        let wb = log_weights(
            ops,
            xi,
            &masks[..d],
            posterior,
            emu,
            ehead,
            samples,
            seed,
            i as u32,
        )?;
        let logvar: Vec<f32> = f.params[dz..].iter().map(|s| 2.0 * s).collect();
        let wa = log_weights(
            ops,
            xi,
            &masks[..d],
            LatentFamily::Gaussian,
            &f.params[..dz],
            &logvar,
            samples,
            seed,
            i as u32,
        )?;
        out.push(Refined {
            before: Estimate::from_samples(&wb),
            after: Estimate::from_samples(&wa),
            gain: paired(&wa, &wb),
        });
        progress(i + 1);
    }
    Ok(out)
}
