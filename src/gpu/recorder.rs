//! [`Recorder`]: what every recorded dispatch is built against — one device's context and
//! kernels, and the parameter buffer resident on it.

use super::kernels::{Bindings, ColsumBindings, ColsumParams, Dispatch, Kernels};
use super::GpuContext;

/// Records dispatches against one parameter buffer.
pub struct Recorder<'a> {
    pub ctx: &'a GpuContext,
    pub kernels: &'a Kernels,
    /// The flat parameter vector (weights, biases and free parameters, `spec::layout`'s order).
    pub params: &'a wgpu::Buffer,
}

impl Recorder<'_> {
    /// A dispatch of the entry point whose bind group `buffers` is, with parameters `p`.
    pub fn dispatch<B: Bindings>(&self, p: &B::Params, buffers: B) -> Dispatch {
        Dispatch::of(self.ctx, self.kernels, p, &buffers)
    }

    /// grads[off + c] = Σ_r Σ_s dy[r, c, s] for a gradient of `channels` × `inner` values per
    /// row (a bias gradient, or a likelihood's free parameters'): `colsum` for single columns,
    /// `channel_sum` (a workgroup per channel) otherwise.
    pub fn colsum(
        &self,
        dy: &wgpu::Buffer,
        rows: usize,
        channels: usize,
        inner: usize,
        off: usize,
        grads: &wgpu::Buffer,
    ) -> Dispatch {
        let p = ColsumParams {
            rows: rows as u32,
            cols: channels as u32,
            in_rs: channels as u32,
            out_off: off as u32,
            inner: inner as u32,
            _pad: [0; 3],
        };
        self.dispatch(
            &p,
            ColsumBindings {
                cin: dy,
                cout: grads,
            },
        )
    }
}
