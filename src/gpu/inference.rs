//! `ModelOps` on the GPU: the encoder and decoder as the dispatches of the spec's layers over the
//! resident parameters; log-likelihood matrices as the likelihood's natural parameters followed
//! by S + 1 matmuls, so a 6,561-point latent grid is decoded once for any number of images; and
//! the masked log-likelihood with its gradient to z for SVI.

use bytemuck::cast_slice;

use super::kernels::*;
use super::network::{self, NetworkBuffers};
use super::recorder::Recorder;
use super::GpuContext;
use crate::error::Result;
use crate::family::likelihood::masked_stats;
use crate::inference::{loglik_shapes, paired_rows, ModelOps};
use crate::spec::{Layer, Layout, ModelSpec};

/// Rows per chunk at most, and values per buffer at most: 8,192 rows of 784 values, 25 MB, well
/// under the 128 MiB binding limit of small adapters. Wider rows (a convolution's 32×14×14
/// feature maps, a categorical's 256 channels) get fewer rows per chunk; see [`rows_per_chunk`].
const CHUNK_ROWS: usize = 8192;
const CHUNK_VALUES: usize = CHUNK_ROWS * 784;

/// How many rows of `width` values fit in one chunk.
fn rows_per_chunk(width: usize) -> usize {
    (CHUNK_VALUES / width.max(1)).clamp(1, CHUNK_ROWS)
}

pub struct GpuModel {
    ctx: GpuContext,
    k: Kernels,
    spec: ModelSpec,
    layout: Layout,
    params: wgpu::Buffer,
}

impl GpuModel {
    /// The model `spec` with `params` resident on `ctx` (`device::gpu_context` opens one).
    pub fn new(ctx: GpuContext, spec: &ModelSpec, params: &[f32]) -> Result<Self> {
        let k = Kernels::new(&ctx, &spec.likelihood)?;
        let params = storage_init(&ctx, "params", cast_slice(params));
        Ok(Self {
            ctx,
            k,
            layout: spec.layout(),
            spec: spec.clone(),
            params,
        })
    }

    fn recorder(&self) -> Recorder<'_> {
        Recorder {
            ctx: &self.ctx,
            kernels: &self.k,
            params: &self.params,
        }
    }

    /// Runs a network (the encoder or the decoder, of any layer kinds) on `rows` inputs; returns
    /// its buffers (the output in `out`).
    fn run_network(&self, layers: &[Layer], input: &[f32], rows: usize) -> Result<NetworkBuffers> {
        let x = storage_init(&self.ctx, "input", cast_slice(input));
        let bufs = NetworkBuffers::new(&self.ctx, "network", layers, rows);
        let act = self.spec.activation;
        let dispatches = network::forward(&self.recorder(), layers, act, &x, rows, &bufs);
        run(&self.ctx, &dispatches.iter().collect::<Vec<_>>())?;
        Ok(bufs)
    }

    fn chunked(&mut self, input: &[f32], width: usize, layers: &[Layer]) -> Result<Vec<f32>> {
        let rows = input.len() / width;
        let out_width = layers.last().map_or(0, |l| l.out);
        let widest = layers.iter().map(|l| l.out).max().unwrap_or(1);
        let chunk = rows_per_chunk(widest.max(width));
        let mut out = Vec::with_capacity(rows * out_width);
        for start in (0..rows).step_by(chunk) {
            let n = chunk.min(rows - start);
            let bufs = self.run_network(layers, &input[start * width..(start + n) * width], n)?;
            out.extend(self.ctx.read_f32(&bufs.out, 0, n * out_width)?);
        }
        Ok(out)
    }
}

impl ModelOps for GpuModel {
    fn spec(&self) -> &ModelSpec {
        &self.spec
    }

    fn describe(&self) -> String {
        self.ctx.describe()
    }

    fn encode(&mut self, x: &[f32]) -> Result<Vec<f32>> {
        let layers = self.layout.encoder.clone();
        self.chunked(x, self.spec.input, &layers)
    }

    fn decode(&mut self, z: &[f32]) -> Result<Vec<f32>> {
        let layers = self.layout.decoder.clone();
        self.chunked(z, self.spec.latent, &layers)
    }

    fn free_params(&mut self) -> Result<Option<Vec<f32>>> {
        match self.layout.free {
            Some(f) => Ok(Some(self.ctx.read_f32(&self.params, f.offset, f.len)?)),
            None => Ok(None),
        }
    }

    fn loglik_matrix(&mut self, z: &[f32], x: &[f32], mask: &[f32]) -> Result<Vec<f32>> {
        let (n, r) = loglik_shapes(&self.spec, z, x, mask)?;
        let (d, dz) = (self.spec.input, self.spec.latent);
        let stats = masked_stats(&self.spec.likelihood, x, mask);
        let s = stats.len();
        let neg_mask: Vec<f32> = mask.iter().map(|m| -m).collect();
        let lefts: Vec<wgpu::Buffer> = stats
            .iter()
            .chain([&neg_mask])
            .map(|t| storage_init(&self.ctx, "mask*T(x)", cast_slice(t)))
            .collect();
        let mut out = vec![0.0f32; n * r];
        // η takes S·rows·D floats: fewer latents per chunk for the categorical's many statistics.
        let decoder_widest = self.layout.decoder.iter().map(|l| l.out).max().unwrap_or(1);
        let chunk = rows_per_chunk(decoder_widest.max(s * d));
        for start in (0..r).step_by(chunk) {
            let rc = chunk.min(r - start);
            let dec =
                self.run_network(&self.layout.decoder, &z[start * dz..(start + rc) * dz], rc)?;
            let eta = storage_zeroed(&self.ctx, "eta", s * rc * d);
            let a = storage_zeroed(&self.ctx, "A", rc * d);
            let rec = self.recorder();
            let lp = LikelihoodParams::new(&self.spec, rc, rc, 1.0, false);
            let natural = rec.dispatch(
                &lp,
                NaturalParamsBindings {
                    outputs: &dec.out,
                    params: &self.params,
                    eta: &eta,
                    log_normaliser: &a,
                },
            );
            let ll = storage_zeroed(&self.ctx, "loglik", n * rc);
            // ll = Σ_s (m∘T_s(x))·η_sᵀ + (−m)·Aᵀ, accumulated
            let products: Vec<Dispatch> = lefts
                .iter()
                .enumerate()
                .map(|(i, left)| {
                    let (right, off) = if i < s { (&eta, i * rc * d) } else { (&a, 0) };
                    let p = MatmulParams {
                        m: n as u32,
                        n: rc as u32,
                        k: d as u32,
                        flags: if i > 0 { epilogue::ACCUMULATE } else { 0 },
                        a_rs: d as u32,
                        a_cs: 1,
                        b_off: off as u32,
                        b_rs: 1,
                        b_cs: d as u32,
                        c_rs: rc as u32,
                        ..Default::default()
                    };
                    let bind = MatmulBindings {
                        a: left,
                        b: right,
                        bias: left,
                        aux: left,
                        c: &ll,
                    };
                    rec.dispatch(&p, bind)
                })
                .collect();
            let mut all = vec![&natural];
            all.extend(products.iter());
            run(&self.ctx, &all)?;
            let block = self.ctx.read_f32(&ll, 0, n * rc)?;
            for (i, row) in block.chunks(rc).enumerate() {
                out[i * r + start..i * r + start + rc].copy_from_slice(row);
            }
        }
        Ok(out)
    }

    fn loglik_grad(&mut self, z: &[f32], x: &[f32], mask: &[f32]) -> Result<(Vec<f32>, Vec<f32>)> {
        let rows = paired_rows(&self.spec, z, x, mask)?;
        let (d, dz) = (self.spec.input, self.spec.latent);
        let channels = self.spec.likelihood.channels();
        let (mut ll, mut grad) = (Vec::with_capacity(rows), Vec::with_capacity(rows * dz));
        let decoder_widest = self.layout.decoder.iter().map(|l| l.out).max().unwrap_or(1);
        let chunk = rows_per_chunk(decoder_widest.max(channels * d));
        for start in (0..rows).step_by(chunk) {
            let n = chunk.min(rows - start);
            let ctx = &self.ctx;
            let rec = self.recorder();
            let gz = storage_init(ctx, "z", cast_slice(&z[start * dz..(start + n) * dz]));
            let gx = storage_init(ctx, "x", cast_slice(&x[start * d..(start + n) * d]));
            let gm = storage_init(ctx, "mask", cast_slice(&mask[start * d..(start + n) * d]));
            let dec = NetworkBuffers::new(ctx, "decoder", &self.layout.decoder, n);
            let g = storage_zeroed(ctx, "dll/doutputs", n * channels * d);
            let free_rows = if self.layout.free.is_some() { n * d } else { 1 };
            let d_free = storage_zeroed(ctx, "d_free", free_rows);
            let gll = storage_zeroed(ctx, "ll", n);
            let gdz = storage_zeroed(ctx, "dz", n * dz);
            let act = self.spec.activation;
            let mut dispatches = network::forward(&rec, &self.layout.decoder, act, &gz, n, &dec);
            let lp = LikelihoodParams::new(&self.spec, n, n, 1.0, true);
            let bind = LogProbRowsBindings {
                x: &gx,
                mask: &gm,
                outputs: &dec.out,
                params: &self.params,
                d_outputs: &g,
                d_free: &d_free,
                loglik: &gll,
            };
            dispatches.push(rec.dispatch(&lp, bind));
            dispatches.extend(network::backward(
                &rec,
                &self.layout.decoder,
                act,
                &gz,
                n,
                &dec,
                &g,
                None,
                Some(&gdz),
            ));
            run(ctx, &dispatches.iter().collect::<Vec<_>>())?;
            ll.extend(ctx.read_f32(&gll, 0, n)?);
            grad.extend(ctx.read_f32(&gdz, 0, n * dz)?);
        }
        Ok((ll, grad))
    }
}
