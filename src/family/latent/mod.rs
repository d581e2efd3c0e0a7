//! The latent side of the ELBO on the CPU: the posterior q(z|x) and prior p(z) families (one file
//! each), the reparameterized sample z = μ + s·ε, log p(z) − log q(z|x) or the closed-form −KL,
//! and their gradients. Twin of `shaders/latent/` (entry points `latent_forward`,
//! `latent_backward`).
//!
//! Every family is location-scale: log q(z) = log f((z − μ)/s) − ln s with f the standard member
//! and s = s(head) from the encoder's second head. So the explicit partial derivatives are, with
//! u = (z − μ)/s and f' = d log f/du:
//!   ∂/∂z = f'(u)/s,   ∂/∂μ = −f'(u)/s,   ∂/∂head = −(f'(u)·u + 1)·(ds/dhead)/s,
//! and the path z = μ + s·ε adds dz/dμ = 1, dz/dhead = ε·ds/dhead.

pub mod gaussian;
pub mod kl;
pub mod laplace;

use crate::cpu::Scalar;
use crate::rng;
use crate::spec::{KlMode, LatentFamily, ModelSpec, Prior};

impl LatentFamily {
    /// (s, ds/dhead) for the encoder's scale head.
    pub fn scale<T: Scalar>(self, head: T) -> (T, T) {
        match self {
            LatentFamily::Gaussian => gaussian::scale(head),
            LatentFamily::Laplace => laplace::scale(head),
        }
    }

    /// The scale head that gives scale `s` (SVI starts from the prior this way).
    pub fn head_of_scale<T: Scalar>(self, s: T) -> T {
        match self {
            LatentFamily::Gaussian => gaussian::head_of_scale(s),
            LatentFamily::Laplace => laplace::head_of_scale(s),
        }
    }

    /// (log f(u), d log f/du) of the standard member.
    pub fn log_standard<T: Scalar>(self, u: T) -> (T, T) {
        match self {
            LatentFamily::Gaussian => gaussian::log_standard(u),
            LatentFamily::Laplace => laplace::log_standard(u),
        }
    }

    /// Four standard variates from one Philox call.
    pub fn standard4(self, counter: [u32; 4], key: [u32; 2]) -> [f32; 4] {
        match self {
            LatentFamily::Gaussian => rng::normal4(counter, key),
            LatentFamily::Laplace => rng::laplace4(counter, key),
        }
    }

    /// log density at z of the member with location `mu` and scale head `head`.
    pub fn log_density<T: Scalar>(self, z: T, mu: T, head: T) -> T {
        let (s, _) = self.scale(head);
        self.log_standard((z - mu) / s).0 - s.ln()
    }

    /// ln of the standard deviation of the member with scale head `head` (a Laplace(b) has
    /// standard deviation √2·b): how SVI's Gaussian q starts from an encoder of this family.
    pub fn log_std_of_head(self, head: f32) -> f32 {
        match self {
            LatentFamily::Gaussian => 0.5 * head,
            LatentFamily::Laplace => head + 0.5 * std::f32::consts::LN_2,
        }
    }

    /// z = μ + s(head)·ε.
    pub fn reparameterize<T: Scalar>(self, mu: T, head: T, eps: T) -> T {
        mu + self.scale(head).0 * eps
    }

    /// The closed curve of constant density of a 2-D member with independent coordinates
    /// (location `mean`, scales `scale`) that encloses probability `mass` in (0, 1): where
    /// figures draw q so that it reads against p's highest-density contours of the same masses.
    /// With u = (z − μ)/s the density depends on ‖u‖₂ for a Gaussian — an ellipse of radius r,
    /// P(‖u‖₂ ≤ r) = 1 − e^(−r²/2) — and on ‖u‖₁ for a Laplace — a diamond of radius r, where
    /// ‖u‖₁ is a sum of two Exp(1) (Gamma(2, 1)) and P(‖u‖₁ ≤ r) = 1 − e^(−r)(1 + r).
    pub fn level_curve(self, mean: [f64; 2], scale: [f64; 2], mass: f64) -> Vec<(f64, f64)> {
        const STEPS: usize = 240;
        let mass = mass.clamp(1e-9, 1.0 - 1e-12);
        let unit: Box<dyn Fn(f64) -> (f64, f64)> = match self {
            LatentFamily::Gaussian => {
                let r = (-2.0 * (1.0 - mass).ln()).sqrt();
                Box::new(move |t: f64| (r * t.cos(), r * t.sin()))
            }
            LatentFamily::Laplace => {
                let r = gamma2_quantile(mass);
                // The diamond |u₁| + |u₂| = r, traced at constant speed in t.
                Box::new(move |t: f64| {
                    let (c, s) = (t.cos(), t.sin());
                    let k = r / (c.abs() + s.abs());
                    (k * c, k * s)
                })
            }
        };
        (0..=STEPS)
            .map(|i| {
                let (u1, u2) = unit(std::f64::consts::TAU * i as f64 / STEPS as f64);
                (mean[0] + scale[0] * u1, mean[1] + scale[1] * u2)
            })
            .collect()
    }
}

/// r with 1 − e^(−r)(1 + r) = p: the Gamma(2, 1) quantile, by bisection (the CDF is increasing).
fn gamma2_quantile(p: f64) -> f64 {
    let cdf = |r: f64| 1.0 - (-r).exp() * (1.0 + r);
    let (mut lo, mut hi) = (0.0f64, 60.0f64);
    for _ in 0..200 {
        let mid = 0.5 * (lo + hi);
        if cdf(mid) < p {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    0.5 * (lo + hi)
}

impl Prior {
    /// (log p(z), d log p/dz) for one coordinate.
    pub fn log_density<T: Scalar>(&self, z: T) -> (T, T) {
        let c = T::from_f64(self.scale as f64);
        let (l, dl) = self.family.log_standard(z / c);
        (l - c.ln(), dl / c)
    }

    /// log p(z) of a whole latent vector.
    pub fn log_density_sum(&self, z: &[f64]) -> f64 {
        z.iter().map(|&v| self.log_density(v).0).sum()
    }

    /// ln of the prior's standard deviation per dimension.
    pub fn log_std(&self) -> f32 {
        self.family
            .log_std_of_head(self.family.head_of_scale(self.scale))
    }

    /// A draw from the prior given its standard variate.
    pub fn from_standard(&self, eps: f32) -> f32 {
        self.scale * eps
    }
}

/// The encoder's output row of image `b`: [μ | head], Dz each.
fn location_and_head<T: Scalar>(enc: &[T], dz: usize, b: usize, d: usize) -> (T, T) {
    (enc[b * 2 * dz + d], enc[b * 2 * dz + dz + d])
}

/// z = μ + s·ε for every row r = s·B + b, and per row log p(z) − log q(z|x) (Monte Carlo) or
/// −KL(q ‖ p) (analytic, the same for every sample of an image). `eps` holds standard variates of
/// the posterior family. Twin of `latent_forward` in `shaders/latent/reparam.wgsl`.
pub fn sample_latent<T: Scalar>(
    spec: &ModelSpec,
    batch: usize,
    enc: &[T],
    eps: &[T],
    z: &mut [T],
    prior_minus_q: &mut [T],
) {
    let (dz, q, prior) = (spec.latent, spec.posterior, spec.prior);
    let c = T::from_f64(prior.scale as f64);
    for (r, pq) in prior_minus_q.iter_mut().enumerate() {
        let b = r % batch;
        let mut acc = T::zero();
        for d in 0..dz {
            let (mu, head) = location_and_head(enc, dz, b, d);
            let (s, _) = q.scale(head);
            let e = eps[r * dz + d];
            let zv = mu + s * e;
            z[r * dz + d] = zv;
            acc += match spec.kl {
                KlMode::Mc => prior.log_density(zv).0 - (q.log_standard(e).0 - s.ln()),
                KlMode::Analytic => -kl::analytic_kl(q, prior.family, mu, s, c).0,
            };
        }
        *pq = acc;
    }
}

/// How much each row's log-weight log p(x|z) + log p(z) − log q(z|x) counts in the loss (and so
/// scales its gradient): 1/(B·L) for every row of the ELBO, ŵ_r/B for the importance-weighted
/// bound (the softmax of the log-weights over each image's L samples, `iwae_weights`).
#[derive(Clone, Copy, Debug)]
pub enum RowWeights<'a, T> {
    Uniform(T),
    PerRow(&'a [T]),
}

impl<T: Scalar> RowWeights<'_, T> {
    pub fn get(&self, row: usize) -> T {
        match self {
            RowWeights::Uniform(s) => *s,
            RowWeights::PerRow(w) => w[row],
        }
    }

    /// Σ over image b's L rows (what the analytic KL term of that image is weighted by).
    fn sum_over_samples(&self, batch: usize, samples: usize, b: usize) -> T {
        match self {
            RowWeights::Uniform(s) => *s * T::from_f64(samples as f64),
            RowWeights::PerRow(w) => (0..samples).fold(T::zero(), |a, k| a + w[k * batch + b]),
        }
    }
}

/// dLoss/d[μ, head] from the decoder's dLoss/dz (`dz_dec`) and the explicit terms of the KL part,
/// for the loss −Σ_r weight_r·[log p(x|z_r) + log p(z_r) − log q(z_r|x)] (or −KL in place of the
/// last two). Full path derivative, as autodiff gives it. Twin of `latent_backward` in
/// `shaders/latent/reparam.wgsl`.
#[allow(clippy::too_many_arguments)]
pub fn latent_backward<T: Scalar>(
    spec: &ModelSpec,
    batch: usize,
    samples: usize,
    weights: RowWeights<T>,
    enc: &[T],
    z: &[T],
    eps: &[T],
    dz_dec: &[T],
    denc: &mut [T],
) {
    let (dz, q, prior) = (spec.latent, spec.posterior, spec.prior);
    let c = T::from_f64(prior.scale as f64);
    for b in 0..batch {
        for d in 0..dz {
            let (mu, head) = location_and_head(enc, dz, b, d);
            let (s, ds) = q.scale(head);
            let (mut dmu, mut dhead) = (T::zero(), T::zero());
            for smp in 0..samples {
                let i = (smp * batch + b) * dz + d;
                let e = eps[i];
                let mut gz = dz_dec[i];
                let scale = weights.get(smp * batch + b);
                if spec.kl == KlMode::Mc {
                    let (_, dlogp) = prior.log_density(z[i]);
                    let (_, dlogf) = q.log_standard(e);
                    // + scale·(−∂log p/∂z + ∂log q/∂z)
                    gz += scale * (dlogf / s - dlogp);
                    dmu = dmu - scale * dlogf / s;
                    dhead = dhead - scale * (dlogf * e + T::one()) * ds / s;
                }
                dmu += gz;
                dhead += gz * e * ds;
            }
            if spec.kl == KlMode::Analytic {
                let (_, kmu, ks) = kl::analytic_kl(q, prior.family, mu, s, c);
                let weight = weights.sum_over_samples(batch, samples, b);
                dmu += weight * kmu;
                dhead += weight * ks * ds;
            }
            denc[b * 2 * dz + d] = dmu;
            denc[b * 2 * dz + dz + d] = dhead;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whether (x, y) lies inside the closed polygon `curve` (even-odd rule).
    fn inside(curve: &[(f64, f64)], x: f64, y: f64) -> bool {
        let mut odd = false;
        for w in curve.windows(2) {
            let ((x0, y0), (x1, y1)) = (w[0], w[1]);
            if (y0 > y) != (y1 > y) && x < x0 + (y - y0) / (y1 - y0) * (x1 - x0) {
                odd = !odd;
            }
        }
        odd
    }

    /// The density integrated (midpoint rule, cell 0.02 over [−9, 9]²) over the inside of each
    /// level curve gives its mass: the polygon and the cells each cost ~1e-3.
    #[test]
    fn level_curves_enclose_their_mass() {
        let h = 0.02;
        let n = (18.0 / h) as usize;
        for family in [LatentFamily::Gaussian, LatentFamily::Laplace] {
            let (mean, scale) = ([0.3, -0.2], [0.7, 1.3]);
            let head = |s: f64| family.head_of_scale(s);
            for mass in [0.393, 0.865, 0.989] {
                let curve = family.level_curve(mean, scale, mass);
                let mut sum = 0.0;
                for i in 0..n {
                    for j in 0..n {
                        let (x, y) = (-9.0 + (i as f64 + 0.5) * h, -9.0 + (j as f64 + 0.5) * h);
                        if inside(&curve, x, y) {
                            let l = family.log_density(x, mean[0], head(scale[0]))
                                + family.log_density(y, mean[1], head(scale[1]));
                            sum += l.exp() * h * h;
                        }
                    }
                }
                assert!((sum - mass).abs() < 4e-3, "{family:?} {mass}: {sum}");
            }
        }
    }
}
