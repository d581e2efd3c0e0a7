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

/// dLoss/d[μ, head] from the decoder's dLoss/dz (`dz_dec`) and the explicit terms of the KL part,
/// for the loss −scale·Σ_r [log p(x|z_r) + log p(z_r) − log q(z_r|x)] (or −KL in place of the last
/// two). Full path derivative, as autodiff gives it. Twin of `latent_backward` in
/// `shaders/latent/reparam.wgsl`.
#[allow(clippy::too_many_arguments)]
pub fn latent_backward<T: Scalar>(
    spec: &ModelSpec,
    batch: usize,
    samples: usize,
    scale: T,
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
                let weight = scale * T::from_f64(samples as f64);
                dmu += weight * kmu;
                dhead += weight * ks * ds;
            }
            denc[b * 2 * dz + d] = dmu;
            denc[b * 2 * dz + dz + d] = dhead;
        }
    }
}
