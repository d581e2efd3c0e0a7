//! `nn.Linear` on the GPU: each product is one matmul.wgsl dispatch over the weight `[out, in]`
//! in the flat parameter buffer, bound whole as B and as the bias. CPU twin:
//! `cpu::layers::linear`.

use super::LayerOps;
use crate::gpu::kernels::{epilogue, Dispatch, MatmulBindings, MatmulParams};
use crate::gpu::recorder::Recorder;
use crate::spec::{Activation, Layer};

pub struct Linear;

impl LayerOps for Linear {
    /// Y[rows, out] = X·Wᵀ + b (then `act`).
    fn forward(
        &self,
        rec: &Recorder,
        l: &Layer,
        x: &wgpu::Buffer,
        rows: usize,
        y: &wgpu::Buffer,
        act: Option<Activation>,
    ) -> Dispatch {
        let p = MatmulParams {
            m: rows as u32,
            n: l.out as u32,
            k: l.inp as u32,
            flags: epilogue::BIAS | epilogue::activate(act),
            a_rs: l.inp as u32,
            a_cs: 1,
            b_off: l.w as u32,
            b_rs: 1,
            b_cs: l.inp as u32,
            c_rs: l.out as u32,
            bias_off: l.b as u32,
            ..Default::default()
        };
        let w = rec.params;
        let bind = MatmulBindings {
            a: x,
            b: w,
            bias: w,
            aux: w,
            c: y,
        };
        rec.dispatch(&p, bind)
    }

    /// dX[rows, in] = dY·W, times the activation's derivative at h (bound as aux).
    fn input_grad(
        &self,
        rec: &Recorder,
        l: &Layer,
        dy: &wgpu::Buffer,
        rows: usize,
        h: Option<(&wgpu::Buffer, Activation)>,
        dx: &wgpu::Buffer,
    ) -> Dispatch {
        let p = MatmulParams {
            m: rows as u32,
            n: l.inp as u32,
            k: l.out as u32,
            flags: epilogue::activation_backward(h.map(|(_, a)| a)),
            a_rs: l.out as u32,
            a_cs: 1,
            b_off: l.w as u32,
            b_rs: l.inp as u32,
            b_cs: 1,
            c_rs: l.inp as u32,
            aux_rs: l.inp as u32,
            ..Default::default()
        };
        let w = rec.params;
        let bind = MatmulBindings {
            a: dy,
            b: w,
            bias: w,
            aux: h.map_or(dy, |(b, _)| b),
            c: dx,
        };
        rec.dispatch(&p, bind)
    }

    /// dW[out, in] = dYᵀ·X.
    fn weight_grad(
        &self,
        rec: &Recorder,
        l: &Layer,
        dy: &wgpu::Buffer,
        x: &wgpu::Buffer,
        rows: usize,
        grads: &wgpu::Buffer,
    ) -> Dispatch {
        let p = MatmulParams {
            m: l.out as u32,
            n: l.inp as u32,
            k: rows as u32,
            a_rs: 1,
            a_cs: l.out as u32,
            b_rs: l.inp as u32,
            b_cs: 1,
            c_off: l.w as u32,
            c_rs: l.inp as u32,
            ..Default::default()
        };
        let bind = MatmulBindings {
            a: dy,
            b: x,
            bias: dy,
            aux: dy,
            c: grads,
        };
        rec.dispatch(&p, bind)
    }
}
