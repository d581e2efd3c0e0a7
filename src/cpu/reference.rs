//! One Monte Carlo ELBO step, forward and backward, in plain loops plus GEMM.
//!
//! Shapes: B images, L samples each, rows r = s·B + b; Dh hidden; Dz latent; D = 784 pixels.
//! Loss = -(1/(B·L)) Σ_r [log p(x_b|z_r) + log p(z_r) - log q(z_r|x_b)] (no closed-form KL, as the
//! assignments ask), with z_r = μ_b + σ_b ⊙ ε_r. Every function here has a WGSL twin named in its
//! doc comment; the parity tests compare them.

use super::{gemm, Scalar, View};
use crate::model::{Linear, ModelConfig};

/// ½·ln(2π).
pub const HALF_LOG_TWO_PI: f64 = 0.918_938_533_204_672_8;

/// log N(x; μ, exp(logvar)) for one coordinate (twin of `log_normal` in gaussian.wgsl).
pub fn log_normal<T: Scalar>(x: T, mu: T, logvar: T) -> T {
    let d = x - mu;
    -T::from_f64(HALF_LOG_TWO_PI)
        - T::from_f64(0.5) * logvar
        - T::from_f64(0.5) * d * d * (-logvar).exp()
}

/// Numerically stable softplus log(1 + e^l).
pub fn softplus<T: Scalar>(l: T) -> T {
    l.max(T::zero()) + (T::one() + (-l.abs()).exp()).ln()
}

/// Stable logistic sigmoid.
pub fn sigmoid<T: Scalar>(l: T) -> T {
    let e = (-l.abs()).exp();
    if l >= T::zero() {
        T::one() / (T::one() + e)
    } else {
        e / (T::one() + e)
    }
}

/// log Bernoulli(x | sigmoid(l)) = x·l - softplus(l).
pub fn log_bernoulli<T: Scalar>(x: T, l: T) -> T {
    x * l - softplus(l)
}

/// Activations and gradients of one step, sized for B images and L samples.
#[derive(Clone, Debug)]
pub struct Workspace<T> {
    pub batch: usize,
    pub samples: usize,
    /// [B, Dh] tanh(x·W1ᵀ + b1)
    pub h1: Vec<T>,
    /// [B, 2Dz] = [μ | log σ²]
    pub enc: Vec<T>,
    /// [BL, Dz]
    pub z: Vec<T>,
    /// [BL] log p(z) - log q(z|x)
    pub prior_minus_q: Vec<T>,
    /// [BL, Dh]
    pub h2: Vec<T>,
    /// [BL, D]
    pub logits: Vec<T>,
    /// [BL] log p(x|z)
    pub loglik: Vec<T>,
    pub dlogits: Vec<T>,
    pub dh2: Vec<T>,
    pub dz: Vec<T>,
    pub denc: Vec<T>,
    pub dh1: Vec<T>,
}

impl<T: Scalar> Workspace<T> {
    pub fn new(cfg: &ModelConfig, batch: usize, samples: usize) -> Self {
        let rows = batch * samples;
        let z = |n: usize| vec![T::zero(); n];
        Self {
            batch,
            samples,
            h1: z(batch * cfg.hidden),
            enc: z(batch * 2 * cfg.latent),
            z: z(rows * cfg.latent),
            prior_minus_q: z(rows),
            h2: z(rows * cfg.hidden),
            logits: z(rows * cfg.input),
            loglik: z(rows),
            dlogits: z(rows * cfg.input),
            dh2: z(rows * cfg.hidden),
            dz: z(rows * cfg.latent),
            denc: z(batch * 2 * cfg.latent),
            dh1: z(batch * cfg.hidden),
        }
    }

    /// The ELBO of image b averaged over its L samples (what `elbo_sum` in reduce.wgsl sums).
    pub fn image_elbo(&self, b: usize) -> f64 {
        let mut s = 0.0;
        for k in 0..self.samples {
            let r = k * self.batch + b;
            s += (self.loglik[r] + self.prior_minus_q[r]).to_f64();
        }
        s / self.samples as f64
    }
}

/// tanh as activations.wgsl computes it: through exp(-2|x|), which cannot overflow and is several
/// times faster than libm's expm1-based tanh (that was 18% of a CPU epoch). Near zero, where
/// 1 - e^(-2|x|) would cancel, the Taylor series to x⁷ is used instead.
pub fn tanh_stable<T: Scalar>(x: T) -> T {
    let a = x.abs();
    let y = if a < T::from_f64(0.03) {
        let a2 = a * a;
        a * (T::one()
            - a2 * (T::from_f64(1.0 / 3.0)
                - a2 * (T::from_f64(2.0 / 15.0) - a2 * T::from_f64(17.0 / 315.0))))
    } else {
        let t = (T::from_f64(-2.0) * a).exp();
        (T::one() - t) / (T::one() + t)
    };
    if x >= T::zero() {
        y
    } else {
        -y
    }
}

/// Y[rows, out] = X[rows, in]·Wᵀ + b, optionally tanh (matmul.wgsl with epilogue bias[+tanh]).
fn linear_forward<T: Scalar>(
    l: &Linear,
    params: &[T],
    x: &[T],
    rows: usize,
    y: &mut [T],
    tanh: bool,
) {
    gemm(
        rows,
        l.inp,
        l.out,
        View::rows(x, 0, l.inp),
        View::transposed(params, l.w, l.inp),
        y,
        0,
        l.out,
        false,
    );
    for row in y[..rows * l.out].chunks_mut(l.out) {
        for (v, &bias) in row.iter_mut().zip(&params[l.b..l.b + l.out]) {
            *v += bias;
            if tanh {
                *v = tanh_stable(*v);
            }
        }
    }
}

/// [μ | log σ²] rows `[rows, 2·Dz]` of the encoder for binary images `x` `[rows, D]`.
pub fn encode<T: Scalar>(cfg: &ModelConfig, params: &[T], x: &[T], rows: usize) -> Vec<T> {
    let lay = cfg.layout();
    let mut h1 = vec![T::zero(); rows * cfg.hidden];
    let mut enc = vec![T::zero(); rows * 2 * cfg.latent];
    linear_forward(&lay.enc_hidden, params, x, rows, &mut h1, true);
    linear_forward(&lay.enc_out, params, &h1, rows, &mut enc, false);
    enc
}

/// Bernoulli logits `[rows, D]` of the decoder for latents `z` `[rows, Dz]`.
pub fn decode<T: Scalar>(cfg: &ModelConfig, params: &[T], z: &[T], rows: usize) -> Vec<T> {
    let lay = cfg.layout();
    let mut h2 = vec![T::zero(); rows * cfg.hidden];
    let mut logits = vec![T::zero(); rows * cfg.input];
    linear_forward(&lay.dec_hidden, params, z, rows, &mut h2, true);
    linear_forward(&lay.dec_out, params, &h2, rows, &mut logits, false);
    logits
}

/// Masked log-likelihood ll[r] = Σ_p m·log p(x_rp | z_r) of row-paired images and latents, and its
/// gradient with respect to z `[rows, Dz]` through the decoder (bernoulli_masked in bernoulli.wgsl
/// plus the decoder's backward matmuls): what stochastic variational inference needs.
pub fn decoder_loglik_grad<T: Scalar>(
    cfg: &ModelConfig,
    params: &[T],
    z: &[T],
    x: &[T],
    mask: &[T],
    rows: usize,
) -> (Vec<T>, Vec<T>) {
    let lay = cfg.layout();
    let d = cfg.input;
    let mut h2 = vec![T::zero(); rows * cfg.hidden];
    let mut logits = vec![T::zero(); rows * d];
    linear_forward(&lay.dec_hidden, params, z, rows, &mut h2, true);
    linear_forward(&lay.dec_out, params, &h2, rows, &mut logits, false);
    let mut ll = vec![T::zero(); rows];
    let mut g = vec![T::zero(); rows * d];
    for (r, llr) in ll.iter_mut().enumerate() {
        for i in r * d..(r + 1) * d {
            *llr += mask[i] * log_bernoulli(x[i], logits[i]);
            g[i] = mask[i] * (x[i] - sigmoid(logits[i]));
        }
    }
    let l4 = &lay.dec_out;
    let mut dh2 = vec![T::zero(); rows * cfg.hidden];
    gemm(
        rows,
        l4.out,
        l4.inp,
        View::rows(&g, 0, l4.out),
        View::rows(params, l4.w, l4.inp),
        &mut dh2,
        0,
        l4.inp,
        false,
    );
    tanh_backward(&mut dh2, &h2);
    let l3 = &lay.dec_hidden;
    let mut dz = vec![T::zero(); rows * cfg.latent];
    gemm(
        rows,
        l3.out,
        l3.inp,
        View::rows(&dh2, 0, l3.out),
        View::rows(params, l3.w, l3.inp),
        &mut dz,
        0,
        l3.inp,
        false,
    );
    (ll, dz)
}

/// Bias gradient: column sums of dY[rows, cols] (colsum in reduce.wgsl).
pub fn colsum<T: Scalar>(dy: &[T], rows: usize, cols: usize, out: &mut [T]) {
    out[..cols].iter_mut().for_each(|v| *v = T::zero());
    for row in dy[..rows * cols].chunks(cols) {
        for (o, &v) in out.iter_mut().zip(row) {
            *o += v;
        }
    }
}

/// dW = dYᵀ·X into grads (weight [out, in]), db = colsum(dY); then, if wanted, dX = dY·W.
#[allow(clippy::too_many_arguments)]
fn linear_backward<T: Scalar>(
    l: &Linear,
    params: &[T],
    x: &[T],
    dy: &[T],
    rows: usize,
    grads: &mut [T],
    dx: Option<&mut [T]>,
) {
    gemm(
        l.out,
        rows,
        l.inp,
        View::transposed(dy, 0, l.out),
        View::rows(x, 0, l.inp),
        grads,
        l.w,
        l.inp,
        false,
    );
    colsum(dy, rows, l.out, &mut grads[l.b..l.b + l.out]);
    if let Some(dx) = dx {
        gemm(
            rows,
            l.out,
            l.inp,
            View::rows(dy, 0, l.out),
            View::rows(params, l.w, l.inp),
            dx,
            0,
            l.inp,
            false,
        );
    }
}

/// Multiplies an upstream gradient by the tanh derivative 1 - h² (matmul epilogue mode 2).
fn tanh_backward<T: Scalar>(dh: &mut [T], h: &[T]) {
    for (d, &hv) in dh.iter_mut().zip(h) {
        *d = *d * (T::one() - hv * hv);
    }
}

/// z = μ + σ·ε and log p(z) - log q(z|x) per row (gaussian_forward in gaussian.wgsl).
pub fn sample_latent<T: Scalar>(
    dz: usize,
    batch: usize,
    enc: &[T],
    eps: &[T],
    z: &mut [T],
    pmq: &mut [T],
) {
    let rows = pmq.len();
    for r in 0..rows {
        let b = r % batch;
        let mut acc = T::zero();
        for d in 0..dz {
            let mu = enc[b * 2 * dz + d];
            let lv = enc[b * 2 * dz + dz + d];
            let zv = mu + (T::from_f64(0.5) * lv).exp() * eps[r * dz + d];
            z[r * dz + d] = zv;
            acc += log_normal(zv, T::zero(), T::zero()) - log_normal(zv, mu, lv);
        }
        pmq[r] = acc;
    }
}

/// dLoss/d[μ, log σ²] from the decoder's dLoss/dz and the explicit terms of log p(z) and
/// log q(z|x) (gaussian_backward in gaussian.wgsl). Full path derivative, as autodiff gives it.
#[allow(clippy::too_many_arguments)]
pub fn latent_backward<T: Scalar>(
    dz: usize,
    batch: usize,
    samples: usize,
    scale: T,
    enc: &[T],
    z: &[T],
    eps: &[T],
    dz_dec: &[T],
    denc: &mut [T],
) {
    let half = T::from_f64(0.5);
    for b in 0..batch {
        for d in 0..dz {
            let mu = enc[b * 2 * dz + d];
            let lv = enc[b * 2 * dz + dz + d];
            let sigma = (half * lv).exp();
            let inv_var = (-lv).exp();
            let (mut dmu, mut dlv) = (T::zero(), T::zero());
            for s in 0..samples {
                let i = (s * batch + b) * dz + d;
                let diff = z[i] - mu;
                let gz = dz_dec[i] + scale * (z[i] - diff * inv_var);
                dmu += gz + scale * diff * inv_var;
                dlv += gz * half * sigma * eps[i] + scale * (-half + half * diff * diff * inv_var);
            }
            denc[b * 2 * dz + d] = dmu;
            denc[b * 2 * dz + dz + d] = dlv;
        }
    }
}

/// log p(x_b|z_r) per row and, when `scale` is given, dLoss/dlogits = scale·(σ(l) - x)
/// (bernoulli_loglik in bernoulli.wgsl). One exp per logit serves both softplus and σ: this loop
/// is a large share of the CPU step.
pub fn bernoulli_rows<T: Scalar>(
    dim: usize,
    batch: usize,
    x: &[T],
    logits: &[T],
    loglik: &mut [T],
    mut dlogits: Option<(&mut [T], T)>,
) {
    let rows = loglik.len();
    for r in 0..rows {
        let b = r % batch;
        let xs = &x[b * dim..(b + 1) * dim];
        let ls = &logits[r * dim..(r + 1) * dim];
        let mut s = T::zero();
        for (i, (&xv, &l)) in xs.iter().zip(ls).enumerate() {
            let e = (-l.abs()).exp();
            let one_plus = T::one() + e;
            s += xv * l - (l.max(T::zero()) + one_plus.ln());
            if let Some((dl, scale)) = dlogits.as_mut() {
                let sig = if l >= T::zero() {
                    T::one() / one_plus
                } else {
                    e / one_plus
                };
                dl[r * dim + i] = *scale * (sig - xv);
            }
        }
        loglik[r] = s;
    }
}

/// One ELBO step. `x` is [B, D] binary, `eps` is [BL, Dz] standard normal noise. Returns the loss
/// -(mean ELBO over all B·L rows); fills `grads` (same layout as `params`) when given.
pub fn step<T: Scalar>(
    cfg: &ModelConfig,
    params: &[T],
    x: &[T],
    eps: &[T],
    ws: &mut Workspace<T>,
    grads: Option<&mut [T]>,
) -> T {
    let lay = cfg.layout();
    let (b, l) = (ws.batch, ws.samples);
    let rows = b * l;
    let (dz, dim) = (cfg.latent, cfg.input);
    let scale = T::from_f64(1.0 / rows as f64);

    linear_forward(&lay.enc_hidden, params, x, b, &mut ws.h1, true);
    linear_forward(&lay.enc_out, params, &ws.h1, b, &mut ws.enc, false);
    sample_latent(dz, b, &ws.enc, eps, &mut ws.z, &mut ws.prior_minus_q);
    linear_forward(&lay.dec_hidden, params, &ws.z, rows, &mut ws.h2, true);
    linear_forward(&lay.dec_out, params, &ws.h2, rows, &mut ws.logits, false);
    let dl = grads.is_some().then_some((&mut ws.dlogits[..], scale));
    bernoulli_rows(dim, b, x, &ws.logits, &mut ws.loglik, dl);

    let mut total = T::zero();
    for r in 0..rows {
        total += ws.loglik[r] + ws.prior_minus_q[r];
    }
    let loss = -(total * scale);

    if let Some(g) = grads {
        linear_backward(
            &lay.dec_out,
            params,
            &ws.h2,
            &ws.dlogits,
            rows,
            g,
            Some(&mut ws.dh2),
        );
        tanh_backward(&mut ws.dh2, &ws.h2);
        linear_backward(
            &lay.dec_hidden,
            params,
            &ws.z,
            &ws.dh2,
            rows,
            g,
            Some(&mut ws.dz),
        );
        latent_backward(dz, b, l, scale, &ws.enc, &ws.z, eps, &ws.dz, &mut ws.denc);
        linear_backward(
            &lay.enc_out,
            params,
            &ws.h1,
            &ws.denc,
            b,
            g,
            Some(&mut ws.dh1),
        );
        tanh_backward(&mut ws.dh1, &ws.h1);
        linear_backward(&lay.enc_hidden, params, x, &ws.dh1, b, g, None);
    }
    loss
}
