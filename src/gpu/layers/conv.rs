//! `nn.Conv2d` and `nn.ConvTranspose2d` on the GPU, as conv.wgsl dispatches. The two layers are
//! one operator run in opposite directions (see `spec::layers::ConvGeometry`), so they share the
//! kernel's three modes with the roles swapped: a Conv2d's forward pass is the gather and its
//! input gradient the scatter; a ConvTranspose2d's are the scatter and the gather; the weight
//! gradient takes the full-side and the reduced-side tensors in either order. CPU twin:
//! `cpu::layers::conv`.

use super::LayerOps;
use crate::gpu::kernels::{epilogue, ConvBindings, ConvMode, ConvParams, Dispatch};
use crate::gpu::recorder::Recorder;
use crate::spec::layers::ConvGeometry;
use crate::spec::{Activation, Layer};

/// `nn.Conv2d`, from the geometry's full side to its reduced side.
pub struct Conv2d(pub ConvGeometry);

/// `nn.ConvTranspose2d`, from the geometry's reduced side to its full side.
pub struct ConvTranspose2d(pub ConvGeometry);

/// `mode` of `g` from `source` into `dest`: the layer's bias and activation in the epilogue of
/// the forward modes (`flags`), `aux` the activation's output for its derivative.
#[allow(clippy::too_many_arguments)]
fn conv(
    rec: &Recorder,
    l: &Layer,
    g: &ConvGeometry,
    mode: ConvMode,
    rows: usize,
    flags: u32,
    source: &wgpu::Buffer,
    aux: &wgpu::Buffer,
    dest: &wgpu::Buffer,
) -> Dispatch {
    let p = ConvParams::new(g, mode, rows, l.w, l.b, flags);
    let bind = ConvBindings {
        source,
        other: rec.params,
        aux,
        dest,
    };
    rec.dispatch(&p, bind)
}

/// dW at the weight's offset of `grads` from the full-side tensor and the reduced-side gradient.
fn weight_grad(
    rec: &Recorder,
    l: &Layer,
    g: &ConvGeometry,
    full: &wgpu::Buffer,
    reduced_grad: &wgpu::Buffer,
    rows: usize,
    grads: &wgpu::Buffer,
) -> Dispatch {
    let p = ConvParams::new(g, ConvMode::WeightGrad, rows, l.w, 0, 0);
    let bind = ConvBindings {
        source: full,
        other: reduced_grad,
        aux: full,
        dest: grads,
    };
    rec.dispatch(&p, bind)
}

/// The epilogue of a forward pass, and of an input gradient through `h`'s activation.
fn forward_flags(act: Option<Activation>) -> u32 {
    epilogue::BIAS | epilogue::activate(act)
}

fn backward_flags(h: Option<(&wgpu::Buffer, Activation)>) -> u32 {
    epilogue::activation_backward(h.map(|(_, a)| a))
}

impl LayerOps for Conv2d {
    fn forward(
        &self,
        rec: &Recorder,
        l: &Layer,
        x: &wgpu::Buffer,
        rows: usize,
        y: &wgpu::Buffer,
        act: Option<Activation>,
    ) -> Dispatch {
        let flags = forward_flags(act);
        conv(rec, l, &self.0, ConvMode::Gather, rows, flags, x, x, y)
    }

    fn input_grad(
        &self,
        rec: &Recorder,
        l: &Layer,
        dy: &wgpu::Buffer,
        rows: usize,
        h: Option<(&wgpu::Buffer, Activation)>,
        dx: &wgpu::Buffer,
    ) -> Dispatch {
        let aux = h.map_or(dy, |(b, _)| b);
        let flags = backward_flags(h);
        conv(rec, l, &self.0, ConvMode::Scatter, rows, flags, dy, aux, dx)
    }

    fn weight_grad(
        &self,
        rec: &Recorder,
        l: &Layer,
        dy: &wgpu::Buffer,
        x: &wgpu::Buffer,
        rows: usize,
        grads: &wgpu::Buffer,
    ) -> Dispatch {
        weight_grad(rec, l, &self.0, x, dy, rows, grads)
    }
}

impl LayerOps for ConvTranspose2d {
    fn forward(
        &self,
        rec: &Recorder,
        l: &Layer,
        x: &wgpu::Buffer,
        rows: usize,
        y: &wgpu::Buffer,
        act: Option<Activation>,
    ) -> Dispatch {
        let flags = forward_flags(act);
        conv(rec, l, &self.0, ConvMode::Scatter, rows, flags, x, x, y)
    }

    fn input_grad(
        &self,
        rec: &Recorder,
        l: &Layer,
        dy: &wgpu::Buffer,
        rows: usize,
        h: Option<(&wgpu::Buffer, Activation)>,
        dx: &wgpu::Buffer,
    ) -> Dispatch {
        let aux = h.map_or(dy, |(b, _)| b);
        let flags = backward_flags(h);
        conv(rec, l, &self.0, ConvMode::Gather, rows, flags, dy, aux, dx)
    }

    fn weight_grad(
        &self,
        rec: &Recorder,
        l: &Layer,
        dy: &wgpu::Buffer,
        x: &wgpu::Buffer,
        rows: usize,
        grads: &wgpu::Buffer,
    ) -> Dispatch {
        weight_grad(rec, l, &self.0, dy, x, rows, grads)
    }
}
