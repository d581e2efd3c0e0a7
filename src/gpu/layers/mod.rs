//! The layer kinds on the GPU, one file each. A kind records its forward product and the two
//! products of its backward pass, each one dispatch over the resident parameters with the bias
//! and the activation (or its derivative) fused into the kernel's epilogue; the bias gradient, a
//! per-channel sum, is common to every kind. CPU twins: `cpu::layers`.
//!
//! A new kind is its `spec::layout::LayerKind` entry, a file here implementing [`LayerOps`] with
//! its arm in [`ops`], and the same two on the CPU side.

mod conv;
mod linear;

use super::kernels::Dispatch;
use super::recorder::Recorder;
use crate::spec::{Activation, Layer, LayerKind};

/// What a layer kind records. `l` is the layer placed in the flat parameter vector: its weight
/// at `l.w`, its bias at `l.b`.
pub trait LayerOps {
    /// Y[rows, out] = the layer applied to X[rows, in], plus the bias, then `act` if given.
    fn forward(
        &self,
        rec: &Recorder,
        l: &Layer,
        x: &wgpu::Buffer,
        rows: usize,
        y: &wgpu::Buffer,
        act: Option<Activation>,
    ) -> Dispatch;

    /// dX[rows, in] from dY[rows, out] (the layer's adjoint), times the activation's derivative
    /// at `h`, the layer's input, when that input came out of an activation.
    fn input_grad(
        &self,
        rec: &Recorder,
        l: &Layer,
        dy: &wgpu::Buffer,
        rows: usize,
        h: Option<(&wgpu::Buffer, Activation)>,
        dx: &wgpu::Buffer,
    ) -> Dispatch;

    /// dW from the layer's input `x` and dY, written at the weight's offset of `grads`.
    fn weight_grad(
        &self,
        rec: &Recorder,
        l: &Layer,
        dy: &wgpu::Buffer,
        x: &wgpu::Buffer,
        rows: usize,
        grads: &wgpu::Buffer,
    ) -> Dispatch;
}

/// The implementation of a layer kind: the one `match` over kinds on the GPU side.
pub fn ops(kind: &LayerKind) -> Box<dyn LayerOps> {
    match *kind {
        LayerKind::Linear => Box::new(linear::Linear),
        LayerKind::Conv2d(g) => Box::new(conv::Conv2d(g)),
        LayerKind::ConvTranspose2d(g) => Box::new(conv::ConvTranspose2d(g)),
    }
}

/// dW into `grads` at the weight's offset, and db = the per-channel sum of dY at the bias's.
pub fn param_grads(
    rec: &Recorder,
    l: &Layer,
    dy: &wgpu::Buffer,
    x: &wgpu::Buffer,
    rows: usize,
    grads: &wgpu::Buffer,
) -> [Dispatch; 2] {
    let (channels, inner) = l.out_channels();
    [
        ops(&l.kind).weight_grad(rec, l, dy, x, rows, grads),
        rec.colsum(dy, rows, channels, inner, l.b, grads),
    ]
}
