//! `ModelOps` on the GPU: the encoder and decoder as matmul dispatches over the resident
//! parameters, and log-likelihood matrices as two more matmuls against softplus(logits), so a
//! 6,561-point latent grid is decoded once for any number of images.

use bytemuck::cast_slice;

use super::kernels::*;
use super::{DeviceKind, GpuContext};
use crate::error::Result;
use crate::inference::{loglik_shapes, paired_rows, ModelOps};
use crate::model::{Linear, ModelConfig};

/// Rows per chunk: keeps every buffer well under the 128 MiB binding limit of small adapters.
const CHUNK_ROWS: usize = 8192;

pub struct GpuModel {
    ctx: GpuContext,
    k: Kernels,
    cfg: ModelConfig,
    params: wgpu::Buffer,
}

impl GpuModel {
    pub fn new(kind: DeviceKind, cfg: &ModelConfig, params: &[f32]) -> Result<Self> {
        let ctx = GpuContext::new(kind)?;
        let k = Kernels::new(&ctx)?;
        let params = storage_init(&ctx, "params", cast_slice(params));
        Ok(Self {
            ctx,
            k,
            cfg: cfg.clone(),
            params,
        })
    }

    /// Y[rows, out] = X·Wᵀ + b (+ tanh) as one dispatch.
    fn linear(
        &self,
        l: &Linear,
        x: &wgpu::Buffer,
        rows: usize,
        y: &wgpu::Buffer,
        tanh: bool,
    ) -> Dispatch {
        let p = MatmulParams::linear_forward(l, rows, tanh);
        let pb = &self.params;
        Dispatch::new(
            &self.ctx,
            &self.k.matmul,
            0,
            &p,
            &[(1, x), (2, pb), (3, pb), (4, pb), (5, y)],
            p.groups(),
        )
    }

    /// dX[rows, in] = dY·W, times (1 − h²) when the layer's input `h` came out of a tanh.
    fn input_grad(
        &self,
        l: &Linear,
        dy: &wgpu::Buffer,
        rows: usize,
        h: Option<&wgpu::Buffer>,
        dx: &wgpu::Buffer,
    ) -> Dispatch {
        let p = MatmulParams::linear_input_grad(l, rows, h.is_some());
        let (pb, aux) = (&self.params, h.unwrap_or(dy));
        Dispatch::new(
            &self.ctx,
            &self.k.matmul,
            0,
            &p,
            &[(1, dy), (2, pb), (3, pb), (4, aux), (5, dx)],
            p.groups(),
        )
    }

    /// Two stacked layers (hidden tanh, then linear) on `rows` inputs; returns the output buffer.
    fn two_layers(
        &self,
        first: &Linear,
        second: &Linear,
        input: &[f32],
        rows: usize,
    ) -> Result<wgpu::Buffer> {
        let x = storage_init(&self.ctx, "input", cast_slice(input));
        let h = storage_zeroed(&self.ctx, "hidden", rows * first.out);
        let y = storage_zeroed(&self.ctx, "output", rows * second.out);
        let d1 = self.linear(first, &x, rows, &h, true);
        let d2 = self.linear(second, &h, rows, &y, false);
        run(&self.ctx, &[&d1, &d2])?;
        Ok(y)
    }

    fn chunked(
        &mut self,
        input: &[f32],
        width: usize,
        first: Linear,
        second: Linear,
    ) -> Result<Vec<f32>> {
        let rows = input.len() / width;
        let mut out = Vec::with_capacity(rows * second.out);
        for start in (0..rows).step_by(CHUNK_ROWS) {
            let n = CHUNK_ROWS.min(rows - start);
            let y = self.two_layers(
                &first,
                &second,
                &input[start * width..(start + n) * width],
                n,
            )?;
            out.extend(self.ctx.read_f32(&y, 0, n * second.out)?);
        }
        Ok(out)
    }
}

impl ModelOps for GpuModel {
    fn config(&self) -> &ModelConfig {
        &self.cfg
    }

    fn describe(&self) -> String {
        self.ctx.describe()
    }

    fn encode(&mut self, x: &[f32]) -> Result<Vec<f32>> {
        let lay = self.cfg.layout();
        self.chunked(x, self.cfg.input, lay.enc_hidden, lay.enc_out)
    }

    fn decode_logits(&mut self, z: &[f32]) -> Result<Vec<f32>> {
        let lay = self.cfg.layout();
        self.chunked(z, self.cfg.latent, lay.dec_hidden, lay.dec_out)
    }

    fn loglik_matrix(&mut self, z: &[f32], x: &[f32], mask: &[f32]) -> Result<Vec<f32>> {
        let (n, r) = loglik_shapes(&self.cfg, z, x, mask)?;
        let (d, dz) = (self.cfg.input, self.cfg.latent);
        let lay = self.cfg.layout();
        let xm: Vec<f32> = x.iter().zip(mask).map(|(a, b)| a * b).collect();
        let neg_mask: Vec<f32> = mask.iter().map(|m| -m).collect();
        let gxm = storage_init(&self.ctx, "x*mask", cast_slice(&xm));
        let gnm = storage_init(&self.ctx, "-mask", cast_slice(&neg_mask));
        let mut out = vec![0.0f32; n * r];
        for start in (0..r).step_by(CHUNK_ROWS) {
            let rc = CHUNK_ROWS.min(r - start);
            let logits = self.two_layers(
                &lay.dec_hidden,
                &lay.dec_out,
                &z[start * dz..(start + rc) * dz],
                rc,
            )?;
            let sp = storage_zeroed(&self.ctx, "softplus", rc * d);
            let spp = SoftplusParams {
                n: (rc * d) as u32,
                _pad: [0; 3],
            };
            let d_sp = Dispatch::new(
                &self.ctx,
                &self.k.softplus,
                5,
                &spp,
                &[(6, &logits), (7, &sp)],
                grid_1d(rc * d, 256),
            );
            let ll = storage_zeroed(&self.ctx, "loglik", n * rc);
            // ll = (x∘m)·logitsᵀ, then ll += (−m)·softplusᵀ
            let product = |flags: u32| MatmulParams {
                m: n as u32,
                n: rc as u32,
                k: d as u32,
                flags,
                a_rs: d as u32,
                a_cs: 1,
                b_rs: 1,
                b_cs: d as u32,
                c_rs: rc as u32,
                ..Default::default()
            };
            let p1 = product(0);
            let p2 = product(epilogue::ACCUMULATE);
            let d1 = Dispatch::new(
                &self.ctx,
                &self.k.matmul,
                0,
                &p1,
                &[(1, &gxm), (2, &logits), (3, &gxm), (4, &gxm), (5, &ll)],
                p1.groups(),
            );
            let d2 = Dispatch::new(
                &self.ctx,
                &self.k.matmul,
                0,
                &p2,
                &[(1, &gnm), (2, &sp), (3, &gnm), (4, &gnm), (5, &ll)],
                p2.groups(),
            );
            run(&self.ctx, &[&d_sp, &d1, &d2])?;
            let chunk = self.ctx.read_f32(&ll, 0, n * rc)?;
            for (i, row) in chunk.chunks(rc).enumerate() {
                out[i * r + start..i * r + start + rc].copy_from_slice(row);
            }
        }
        Ok(out)
    }

    fn loglik_grad(&mut self, z: &[f32], x: &[f32], mask: &[f32]) -> Result<(Vec<f32>, Vec<f32>)> {
        let rows = paired_rows(&self.cfg, z, x, mask)?;
        let (d, dz, dh) = (self.cfg.input, self.cfg.latent, self.cfg.hidden);
        let lay = self.cfg.layout();
        let (mut ll, mut grad) = (Vec::with_capacity(rows), Vec::with_capacity(rows * dz));
        for start in (0..rows).step_by(CHUNK_ROWS) {
            let n = CHUNK_ROWS.min(rows - start);
            let ctx = &self.ctx;
            let gz = storage_init(ctx, "z", cast_slice(&z[start * dz..(start + n) * dz]));
            let gx = storage_init(ctx, "x", cast_slice(&x[start * d..(start + n) * d]));
            let gm = storage_init(ctx, "mask", cast_slice(&mask[start * d..(start + n) * d]));
            let h2 = storage_zeroed(ctx, "h2", n * dh);
            let logits = storage_zeroed(ctx, "logits", n * d);
            let g = storage_zeroed(ctx, "dll/dlogits", n * d);
            let gll = storage_zeroed(ctx, "ll", n);
            let dh2 = storage_zeroed(ctx, "dh2", n * dh);
            let gdz = storage_zeroed(ctx, "dz", n * dz);
            let f1 = self.linear(&lay.dec_hidden, &gz, n, &h2, true);
            let f2 = self.linear(&lay.dec_out, &h2, n, &logits, false);
            let mp = MaskedParams {
                rows: n as u32,
                dim: d as u32,
                _pad: [0; 2],
            };
            let bm = Dispatch::new(
                ctx,
                &self.k.bernoulli_masked,
                8,
                &mp,
                &[(9, &gx), (10, &gm), (11, &logits), (12, &g), (13, &gll)],
                grid_1d(n, 1),
            );
            let b1 = self.input_grad(&lay.dec_out, &g, n, Some(&h2), &dh2);
            let b2 = self.input_grad(&lay.dec_hidden, &dh2, n, None, &gdz);
            run(ctx, &[&f1, &f2, &bm, &b1, &b2])?;
            ll.extend(ctx.read_f32(&gll, 0, n)?);
            grad.extend(ctx.read_f32(&gdz, 0, n * dz)?);
        }
        Ok((ll, grad))
    }
}
