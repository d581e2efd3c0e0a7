//! Running a trained model: the encoder, the decoder, and log-likelihood matrices, on either
//! device. Analysis (grid posteriors, figures, SVI) is written once against `ModelOps`; the CPU
//! implementation is the tested twin of the GPU one. Nothing here depends on the member of the
//! family: the likelihood enters through `family::likelihood`.
//!
//! Built on it: [`analysis`] (log-sum-exp, grids, integration, ELBO estimates, PCA) and [`svi`]
//! (SVI without the encoder, gradient estimators).

pub mod analysis;
pub mod gaps;
pub mod linear;
pub mod svi;

use crate::cpu::reference::{decode, decoder_loglik_grad, encode, free_params};
use crate::cpu::{gemm, View};
use crate::error::{Error, Result};
use crate::family::likelihood::{log_prob_rows, masked_stats, natural_rows, Rows};
use crate::spec::ModelSpec;

pub trait ModelOps {
    fn spec(&self) -> &ModelSpec;

    fn describe(&self) -> String;

    /// `[μ | log σ²]` rows `[N, 2·Dz]` for images `x` `[N, D]`.
    fn encode(&mut self, x: &[f32]) -> Result<Vec<f32>>;

    /// The likelihood's outputs `[R, C·D]` for latents `z` `[R, Dz]`.
    fn decode(&mut self, z: &[f32]) -> Result<Vec<f32>>;

    /// The per-pixel free parameters `[D]` of the likelihood, if the spec has them.
    fn free_params(&mut self) -> Result<Option<Vec<f32>>>;

    /// `ll[n, r] = Σ_p mask[n,p] · log p(x[n,p] | z_r)`, shape `[N, R]`: the (masked)
    /// log-likelihood of every image under every latent. With the likelihood written as
    /// Σ_s T_s(x)·η_s(z) − A(z), this is S + 1 matrix products:
    /// `Σ_s (mask∘T_s(x))·η_sᵀ − mask·Aᵀ`.
    fn loglik_matrix(&mut self, z: &[f32], x: &[f32], mask: &[f32]) -> Result<Vec<f32>>;

    /// For row-paired latents `z` `[R, Dz]` and images `x`, `mask` `[R, D]`: the masked
    /// log-likelihood `ll[r]` and its gradient `d ll[r] / d z_r` `[R, Dz]` through the decoder.
    fn loglik_grad(&mut self, z: &[f32], x: &[f32], mask: &[f32]) -> Result<(Vec<f32>, Vec<f32>)>;
}

/// Checks the row pairing of `loglik_grad`; returns R.
pub fn paired_rows(spec: &ModelSpec, z: &[f32], x: &[f32], mask: &[f32]) -> Result<usize> {
    let r = z.len() / spec.latent;
    if !z.len().is_multiple_of(spec.latent) || x.len() != r * spec.input || mask.len() != x.len() {
        return Err(Error::Usage(format!(
            "loglik_grad: {} latent values, {} pixels and {} mask values do not pair up",
            z.len(),
            x.len(),
            mask.len()
        )));
    }
    Ok(r)
}

/// Checks shapes shared by both implementations; returns (N, R).
pub fn loglik_shapes(
    spec: &ModelSpec,
    z: &[f32],
    x: &[f32],
    mask: &[f32],
) -> Result<(usize, usize)> {
    let (d, dz) = (spec.input, spec.latent);
    if !z.len().is_multiple_of(dz) || !x.len().is_multiple_of(d) || x.len() != mask.len() {
        return Err(Error::Usage(format!(
            "log-likelihood matrix: z has {} values (Dz={dz}), x {} and mask {} (D={d})",
            z.len(),
            x.len(),
            mask.len()
        )));
    }
    Ok((x.len() / d, z.len() / dz))
}

/// Latents decoded per block by the CPU `loglik_matrix`.
const CHUNK_LATENTS: usize = 8192;

/// The reference implementation.
pub struct CpuModel {
    spec: ModelSpec,
    params: Vec<f32>,
}

impl CpuModel {
    pub fn new(spec: &ModelSpec, params: &[f32]) -> Self {
        Self {
            spec: spec.clone(),
            params: params.to_vec(),
        }
    }
}

impl ModelOps for CpuModel {
    fn spec(&self) -> &ModelSpec {
        &self.spec
    }

    fn describe(&self) -> String {
        "cpu reference path".into()
    }

    fn encode(&mut self, x: &[f32]) -> Result<Vec<f32>> {
        Ok(encode(
            &self.spec,
            &self.params,
            x,
            x.len() / self.spec.input,
        ))
    }

    fn decode(&mut self, z: &[f32]) -> Result<Vec<f32>> {
        Ok(decode(
            &self.spec,
            &self.params,
            z,
            z.len() / self.spec.latent,
        ))
    }

    fn free_params(&mut self) -> Result<Option<Vec<f32>>> {
        Ok(free_params(&self.spec, &self.params).map(|f| f.to_vec()))
    }

    fn loglik_matrix(&mut self, z: &[f32], x: &[f32], mask: &[f32]) -> Result<Vec<f32>> {
        let (n, r) = loglik_shapes(&self.spec, z, x, mask)?;
        let (d, dz) = (self.spec.input, self.spec.latent);
        let lik = self.spec.likelihood;
        let free = self.free_params()?;
        let mut out = vec![0.0f32; n * r];
        if lik.stats() > n {
            // A member with many statistics (the discretized logistic's and a fine categorical's
            // 256 one-hot bytes) would need an [S, R, D] table of η and S products for few
            // images: evaluating log p(x_n | z_r) directly costs N·R·D member calls instead of
            // S·R·D, and no table.
            for start in (0..r).step_by(CHUNK_LATENTS) {
                let rc = CHUNK_LATENTS.min(r - start);
                let outputs = self.decode(&z[start * dz..(start + rc) * dz])?;
                for (i, row) in out.chunks_mut(r).enumerate() {
                    let rows = Rows {
                        dim: d,
                        batch: 1,
                        x: &x[i * d..(i + 1) * d],
                        mask: Some(&mask[i * d..(i + 1) * d]),
                        outputs: &outputs,
                        free: free.as_deref(),
                    };
                    log_prob_rows(&lik, &rows, &mut row[start..start + rc], None);
                }
            }
            return Ok(out);
        }
        let stats = masked_stats(&lik, x, mask);
        let neg_mask: Vec<f32> = mask.iter().map(|m| -m).collect();
        // The decoder's outputs for all R latents at once would take R·C·D·4 bytes (2.3 GB for a
        // 1200×1200 grid); decoding CHUNK_LATENTS at a time bounds it.
        for start in (0..r).step_by(CHUNK_LATENTS) {
            let rc = CHUNK_LATENTS.min(r - start);
            let outputs = self.decode(&z[start * dz..(start + rc) * dz])?;
            let (eta, a) = natural_rows(&lik, d, &outputs, free.as_deref());
            let terms = stats.iter().zip(&eta).chain([(&neg_mask, &a)]);
            for (i, (left, right)) in terms.enumerate() {
                gemm(
                    n,
                    d,
                    rc,
                    View::rows(left, 0, d),
                    View::transposed(right, 0, d),
                    &mut out,
                    start,
                    r,
                    i > 0,
                );
            }
        }
        Ok(out)
    }

    fn loglik_grad(&mut self, z: &[f32], x: &[f32], mask: &[f32]) -> Result<(Vec<f32>, Vec<f32>)> {
        let r = paired_rows(&self.spec, z, x, mask)?;
        Ok(decoder_loglik_grad(&self.spec, &self.params, z, x, mask, r))
    }
}
