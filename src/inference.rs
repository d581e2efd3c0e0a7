//! Running a trained model: the encoder, the decoder, and log-likelihood matrices, on either
//! device. Analysis (grid posteriors, figures, SVI) is written once against `ModelOps`; the CPU
//! implementation is the tested twin of the GPU one.

use crate::cpu::reference::{decode, decoder_loglik_grad, encode, softplus};
use crate::cpu::{gemm, View};
use crate::error::{Error, Result};
use crate::gpu::DeviceKind;
use crate::model::ModelConfig;

pub trait ModelOps {
    fn config(&self) -> &ModelConfig;

    fn describe(&self) -> String;

    /// `[μ | log σ²]` rows `[N, 2·Dz]` for binary images `x` `[N, D]`.
    fn encode(&mut self, x: &[f32]) -> Result<Vec<f32>>;

    /// Bernoulli logits `[R, D]` for latents `z` `[R, Dz]`.
    fn decode_logits(&mut self, z: &[f32]) -> Result<Vec<f32>>;

    /// `ll[n, r] = Σ_p mask[n,p] · log Bernoulli(x[n,p] | σ(logits(z_r)_p))`, shape `[N, R]`: the
    /// (masked) log-likelihood of every image under every latent. Computed as
    /// `(x∘mask)·logitsᵀ − mask·softplus(logits)ᵀ`, two matrix products.
    fn loglik_matrix(&mut self, z: &[f32], x: &[f32], mask: &[f32]) -> Result<Vec<f32>>;

    /// For row-paired latents `z` `[R, Dz]` and images `x`, `mask` `[R, D]`: the masked
    /// log-likelihood `ll[r]` and its gradient `d ll[r] / d z_r` `[R, Dz]` through the decoder.
    fn loglik_grad(&mut self, z: &[f32], x: &[f32], mask: &[f32]) -> Result<(Vec<f32>, Vec<f32>)>;
}

/// Checks the row pairing of `loglik_grad`; returns R.
pub fn paired_rows(cfg: &ModelConfig, z: &[f32], x: &[f32], mask: &[f32]) -> Result<usize> {
    let r = z.len() / cfg.latent;
    if !z.len().is_multiple_of(cfg.latent) || x.len() != r * cfg.input || mask.len() != x.len() {
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
    cfg: &ModelConfig,
    z: &[f32],
    x: &[f32],
    mask: &[f32],
) -> Result<(usize, usize)> {
    let (d, dz) = (cfg.input, cfg.latent);
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
    cfg: ModelConfig,
    params: Vec<f32>,
}

impl CpuModel {
    pub fn new(cfg: &ModelConfig, params: &[f32]) -> Self {
        Self {
            cfg: cfg.clone(),
            params: params.to_vec(),
        }
    }
}

impl ModelOps for CpuModel {
    fn config(&self) -> &ModelConfig {
        &self.cfg
    }

    fn describe(&self) -> String {
        "cpu reference path".into()
    }

    fn encode(&mut self, x: &[f32]) -> Result<Vec<f32>> {
        Ok(encode(&self.cfg, &self.params, x, x.len() / self.cfg.input))
    }

    fn decode_logits(&mut self, z: &[f32]) -> Result<Vec<f32>> {
        Ok(decode(
            &self.cfg,
            &self.params,
            z,
            z.len() / self.cfg.latent,
        ))
    }

    fn loglik_matrix(&mut self, z: &[f32], x: &[f32], mask: &[f32]) -> Result<Vec<f32>> {
        let (n, r) = loglik_shapes(&self.cfg, z, x, mask)?;
        let (d, dz) = (self.cfg.input, self.cfg.latent);
        let xm: Vec<f32> = x.iter().zip(mask).map(|(a, b)| a * b).collect();
        let neg_mask: Vec<f32> = mask.iter().map(|m| -m).collect();
        let mut out = vec![0.0f32; n * r];
        // The decoder's outputs for all R latents at once would take R·D·8 bytes (4.5 GB for a
        // 1200×1200 grid); decoding CHUNK_LATENTS at a time bounds it at 50 MB.
        for start in (0..r).step_by(CHUNK_LATENTS) {
            let rc = CHUNK_LATENTS.min(r - start);
            let logits = self.decode_logits(&z[start * dz..(start + rc) * dz])?;
            let sp: Vec<f32> = logits.iter().map(|&l| softplus(l)).collect();
            for (a, b, accumulate) in [(&xm, &logits, false), (&neg_mask, &sp, true)] {
                gemm(
                    n,
                    d,
                    rc,
                    View::rows(a, 0, d),
                    View::transposed(b, 0, d),
                    &mut out,
                    start,
                    r,
                    accumulate,
                );
            }
        }
        Ok(out)
    }

    fn loglik_grad(&mut self, z: &[f32], x: &[f32], mask: &[f32]) -> Result<(Vec<f32>, Vec<f32>)> {
        let r = paired_rows(&self.cfg, z, x, mask)?;
        Ok(decoder_loglik_grad(&self.cfg, &self.params, z, x, mask, r))
    }
}

/// The model on `kind` (`auto` resolved as for training: hardware GPU, else CPU).
pub fn model_ops(kind: DeviceKind, cfg: &ModelConfig, params: &[f32]) -> Result<Box<dyn ModelOps>> {
    match crate::train::resolve_device(kind) {
        DeviceKind::Cpu => Ok(Box::new(CpuModel::new(cfg, params))),
        k => Ok(Box::new(crate::gpu::inference::GpuModel::new(
            k, cfg, params,
        )?)),
    }
}
