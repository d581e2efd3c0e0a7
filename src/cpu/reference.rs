//! One Monte Carlo ELBO step of any member of the family, forward and backward, in plain loops plus
//! GEMM: the reference the GPU recording is checked against.
//!
//! Shapes: B images, L samples each, rows r = s·B + b; Dz latent; D = 784 pixels, C likelihood
//! channels per pixel. Loss = −(1/(B·L)) Σ_r [log p(x_b|z_r) + log p(z_r) − log q(z_r|x_b)] (or −KL(q‖p) in
//! closed form in place of the last two, `--kl analytic`), with z_r = μ_b + s_b ⊙ ε_r. Every function here has a
//! WGSL twin named in its doc comment; the parity tests compare them.

use super::layers::colsum;
use super::network::{self, NetworkActivations};
use super::{par, Scalar};
use crate::family::likelihood::{log_prob_rows, RowGrads, Rows};
use crate::spec::ModelSpec;

pub use crate::family::activation::{sigmoid, softplus, tanh_stable};
pub use crate::family::latent::{latent_backward, sample_latent, RowWeights};
use crate::training::backend::Objective;

/// Activations and gradients of one step, sized for B images and L samples.
#[derive(Clone, Debug)]
pub struct Workspace<T> {
    pub batch: usize,
    pub samples: usize,
    /// Encoder activations; `out` is [B, 2Dz] = [μ | log σ²].
    pub encoder: NetworkActivations<T>,
    /// [BL, Dz]
    pub z: Vec<T>,
    /// [BL] log p(z) − log q(z|x)
    pub prior_minus_q: Vec<T>,
    /// Decoder activations; `out` is [BL, C·D], the likelihood's outputs.
    pub decoder: NetworkActivations<T>,
    /// [BL] log p(x|z)
    pub loglik: Vec<T>,
    /// [BL, C·D] dLoss/d outputs
    pub d_outputs: Vec<T>,
    /// [BL, D] dLoss/d per-pixel parameter, row by row (summed into the gradient)
    pub d_free: Vec<T>,
    pub dz: Vec<T>,
    pub denc: Vec<T>,
    /// [BL] the IWAE objective's row weights ŵ_r/B (unused by the ELBO)
    pub weights: Vec<T>,
}

impl<T: Scalar> Workspace<T> {
    pub fn new(spec: &ModelSpec, batch: usize, samples: usize) -> Self {
        let lay = spec.layout();
        let rows = batch * samples;
        let z = |n: usize| vec![T::zero(); n];
        let free = if lay.free.is_some() {
            rows * spec.input
        } else {
            0
        };
        Self {
            batch,
            samples,
            encoder: NetworkActivations::new(&lay.encoder, batch),
            z: z(rows * spec.latent),
            prior_minus_q: z(rows),
            decoder: NetworkActivations::new(&lay.decoder, rows),
            loglik: z(rows),
            d_outputs: z(rows * lay.decoder_out().out),
            d_free: z(free),
            dz: z(rows * spec.latent),
            denc: z(batch * 2 * spec.latent),
            weights: z(rows),
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

/// [μ | log σ²] rows `[rows, 2·Dz]` of the encoder for images `x` `[rows, D]`.
pub fn encode<T: Scalar>(spec: &ModelSpec, params: &[T], x: &[T], rows: usize) -> Vec<T> {
    let lay = spec.layout();
    let mut a = NetworkActivations::new(&lay.encoder, rows);
    network::forward(&lay.encoder, spec.activation, params, x, rows, &mut a);
    a.out
}

/// The likelihood's outputs `[rows, C·D]` of the decoder for latents `z` `[rows, Dz]`.
pub fn decode<T: Scalar>(spec: &ModelSpec, params: &[T], z: &[T], rows: usize) -> Vec<T> {
    let lay = spec.layout();
    let mut a = NetworkActivations::new(&lay.decoder, rows);
    network::forward(&lay.decoder, spec.activation, params, z, rows, &mut a);
    a.out
}

/// The per-pixel free parameters of the spec, if it has them.
pub fn free_params<'a, T>(spec: &ModelSpec, params: &'a [T]) -> Option<&'a [T]> {
    spec.layout()
        .free
        .map(|f| &params[f.offset..f.offset + f.len])
}

/// Masked log-likelihood ll[r] = Σ_p m·log p(x_rp | z_r) of row-paired images and latents, and its
/// gradient with respect to z `[rows, Dz]` through the decoder (the masked likelihood rows plus the
/// decoder's backward matmuls): what stochastic variational inference needs.
pub fn decoder_loglik_grad<T: Scalar>(
    spec: &ModelSpec,
    params: &[T],
    z: &[T],
    x: &[T],
    mask: &[T],
    rows: usize,
) -> (Vec<T>, Vec<T>) {
    let lay = spec.layout();
    let mut a = NetworkActivations::new(&lay.decoder, rows);
    network::forward(&lay.decoder, spec.activation, params, z, rows, &mut a);
    let mut ll = vec![T::zero(); rows];
    let mut g = vec![T::zero(); a.out.len()];
    let io = Rows {
        dim: spec.input,
        batch: rows,
        x,
        mask: Some(mask),
        outputs: &a.out,
        free: free_params(spec, params),
    };
    let grads = RowGrads {
        scale: T::one(),
        d_outputs: &mut g,
        d_free: None,
    };
    log_prob_rows(&spec.likelihood, &io, &mut ll, Some(grads));
    let mut dz = vec![T::zero(); rows * spec.latent];
    network::backward(
        &lay.decoder,
        spec.activation,
        params,
        z,
        rows,
        &mut a,
        &g,
        None,
        Some(&mut dz),
    );
    (ll, dz)
}

/// IWAE's row weights: for each image b of `batch`, the softmax over its `samples` rows
/// (r = s·B + b) of the log-weights log p(x|z_r) + log p(z_r) − log q(z_r|x), divided by B, into
/// `weights`; returns Σ_b log (1/L) Σ_s w_{s,b}, the batch's summed bound. Twin of `iwae_weights`
/// in `shaders/iwae.wgsl`.
pub fn iwae_weights<T: Scalar>(
    loglik: &[T],
    prior_minus_q: &[T],
    batch: usize,
    samples: usize,
    weights: &mut [T],
) -> T {
    let mut total = T::zero();
    for b in 0..batch {
        let lw = |s: usize| loglik[s * batch + b] + prior_minus_q[s * batch + b];
        let m = (1..samples).fold(lw(0), |m, s| if lw(s) > m { lw(s) } else { m });
        let mut sum = T::zero();
        for s in 0..samples {
            sum += (lw(s) - m).exp();
        }
        for s in 0..samples {
            weights[s * batch + b] = (lw(s) - m).exp() / sum / T::from_f64(batch as f64);
        }
        total += m + sum.ln() - T::from_f64(samples as f64).ln();
    }
    total
}

/// Multiplies row r of `target` (`width` values per row) by `weights[r]`. Twin of `scale_rows` in
/// `shaders/iwae.wgsl`.
pub fn scale_rows<T: Scalar>(target: &mut [T], width: usize, weights: &[T]) {
    for (row, w) in target.chunks_mut(width).zip(weights) {
        for v in row {
            *v = *v * *w;
        }
    }
}

/// One training step on `objective`. `x` is [B, D] data, `eps` is [BL, Dz] standard variates of
/// the posterior family. Returns the loss: −(mean ELBO over all B·L rows), or −(mean over images
/// of the IWAE bound of their L rows); fills `grads` (same layout as `params`) when given.
pub fn step<T: Scalar>(
    spec: &ModelSpec,
    objective: Objective,
    params: &[T],
    x: &[T],
    eps: &[T],
    ws: &mut Workspace<T>,
    grads: Option<&mut [T]>,
) -> T {
    // On the CPU path's pool, so that every split inside the step is a cheap hand-off.
    par::install(|| {
        let lay = spec.layout();
        network::forward(
            &lay.encoder,
            spec.activation,
            params,
            x,
            ws.batch,
            &mut ws.encoder,
        );
        let backward = grads.is_some();
        let mut grads = grads;
        let loss = step_from_q(
            spec,
            objective,
            params,
            x,
            eps,
            ws,
            grads.as_deref_mut(),
            backward,
        );
        if let Some(g) = grads {
            network::backward(
                &lay.encoder,
                spec.activation,
                params,
                x,
                ws.batch,
                &mut ws.encoder,
                &ws.denc,
                Some(g),
                None,
            );
        }
        loss
    })
}

/// The step after the encoder, from the q rows `[B, 2·Dz]` already in `ws.encoder.out`: sample,
/// decoder, likelihood and loss; with `backward`, dLoss/d q rows into `ws.denc` and (when
/// `grads` is given) the decoder's and free parameters' gradients into `grads`. The encoder's
/// gradient slots are left as they were. `--inference vem` calls it with its λ rows in place of
/// the encoder's output (the GPU's `StepRecorder` stages after `encoder_forward`).
#[allow(clippy::too_many_arguments)]
pub fn step_from_q<T: Scalar>(
    spec: &ModelSpec,
    objective: Objective,
    params: &[T],
    x: &[T],
    eps: &[T],
    ws: &mut Workspace<T>,
    grads: Option<&mut [T]>,
    backward: bool,
) -> T {
    let lay = spec.layout();
    let (b, l) = (ws.batch, ws.samples);
    let rows = b * l;
    let scale = T::from_f64(1.0 / rows as f64);

    sample_latent(
        spec,
        b,
        &ws.encoder.out,
        eps,
        &mut ws.z,
        &mut ws.prior_minus_q,
    );
    network::forward(
        &lay.decoder,
        spec.activation,
        params,
        &ws.z,
        rows,
        &mut ws.decoder,
    );
    let io = Rows {
        dim: spec.input,
        batch: b,
        x,
        mask: None,
        outputs: &ws.decoder.out,
        free: free_params(spec, params),
    };
    let iwae = objective == Objective::Iwae;
    // IWAE's weights need every row's log-likelihood first: the rows' gradients are taken with
    // weight −1 and scaled by ŵ_r/B once the weights are known.
    let row_grads = backward.then(|| RowGrads {
        scale: if iwae { -T::one() } else { -scale },
        d_outputs: &mut ws.d_outputs,
        d_free: lay.free.map(|_| &mut ws.d_free[..]),
    });
    log_prob_rows(&spec.likelihood, &io, &mut ws.loglik, row_grads);

    let loss = if iwae {
        let bound = iwae_weights(&ws.loglik, &ws.prior_minus_q, b, l, &mut ws.weights);
        -(bound / T::from_f64(b as f64))
    } else {
        let mut total = T::zero();
        for r in 0..rows {
            total += ws.loglik[r] + ws.prior_minus_q[r];
        }
        -(total * scale)
    };

    if backward {
        let mut grads = grads;
        let weights = if iwae {
            scale_rows(&mut ws.d_outputs, lay.decoder_out().out, &ws.weights);
            if lay.free.is_some() {
                scale_rows(&mut ws.d_free, spec.input, &ws.weights);
            }
            RowWeights::PerRow(&ws.weights[..])
        } else {
            RowWeights::Uniform(scale)
        };
        network::backward(
            &lay.decoder,
            spec.activation,
            params,
            &ws.z,
            rows,
            &mut ws.decoder,
            &ws.d_outputs,
            grads.as_deref_mut(),
            Some(&mut ws.dz),
        );
        if let (Some(f), Some(g)) = (lay.free, grads) {
            // Per pixel: sum over rows; shared: over every (row, pixel).
            let (off, n) = (f.offset, f.len);
            colsum(
                &ws.d_free,
                rows * spec.input / n,
                n,
                1,
                &mut g[off..off + n],
            );
        }
        latent_backward(
            spec,
            b,
            l,
            weights,
            &ws.encoder.out,
            &ws.z,
            eps,
            &ws.dz,
            &mut ws.denc,
        );
    }
    loss
}
