//! The layer kinds on the reference path, one file each: a kind supplies its three products
//! (forward, input gradient, weight gradient) without the bias; the bias, the activation and the
//! bias gradient are common to every kind and applied here, as the kernels' epilogues do on the
//! GPU. GPU twins: `gpu::layers`.
//!
//! A new kind is its `spec::layout::LayerKind` entry, a file here implementing [`LayerOps`] with
//! its arm in [`ops`], and the same two on the GPU side.

pub mod conv;
pub mod linear;

use super::{par, Scalar};
use crate::family::activation::activate;
use crate::spec::{Activation, Layer, LayerKind};

/// A layer kind's products over `rows` rows; `weights` is the layer's weight alone, in its
/// PyTorch layout, and `l` the layer as placed (its widths on each side).
pub trait LayerOps<T: Scalar> {
    /// Y[rows, out] = the layer's product of X[rows, in] with `weights` (no bias).
    fn forward(&self, l: &Layer, weights: &[T], x: &[T], rows: usize, y: &mut [T]);

    /// dX[rows, in] = the adjoint product of dY[rows, out] with `weights`.
    fn input_grad(&self, l: &Layer, weights: &[T], dy: &[T], rows: usize, dx: &mut [T]);

    /// dW, in the weight's layout, from the layer's input X and dY.
    fn weight_grad(&self, l: &Layer, x: &[T], dy: &[T], rows: usize, dw: &mut [T]);
}

/// The implementation of a layer kind: the one `match` over kinds on the CPU side.
pub fn ops<T: Scalar>(kind: &LayerKind) -> Box<dyn LayerOps<T>> {
    match *kind {
        LayerKind::Linear => Box::new(linear::Linear),
        LayerKind::Conv2d(g) => Box::new(conv::Conv2d(g)),
        LayerKind::ConvTranspose2d(g) => Box::new(conv::ConvTranspose2d(g)),
    }
}

/// Y[rows, out] = the layer applied to X[rows, in], plus the bias, then the activation if given
/// (matmul.wgsl or conv.wgsl with their bias and activation epilogue).
pub fn forward<T: Scalar>(
    l: &Layer,
    params: &[T],
    x: &[T],
    rows: usize,
    y: &mut [T],
    act: Option<Activation>,
) {
    ops(&l.kind).forward(l, &params[l.w..l.b], x, rows, y);
    let (channels, inner) = l.out_channels();
    let bias = &params[l.b..l.b + channels];
    // Channel by channel over contiguous runs of `inner` values: no division per element, and the
    // activation's match taken once per run, so the loops vectorize (the element-wise
    // `bias[i / inner % channels]` form cost a quarter of the default model's CPU epoch).
    // Rows split across the GEMM's threads (the activation's exp is most of this pass).
    par::rows_mut(y, rows, l.out, |_, part| {
        bias_activate(part, channels, inner, bias, act)
    });
}

crate::widest!(
    /// Rows of `channels` × `inner` values: + the channel's bias, then the activation. Compiled
    /// for the widest vector unit (`cpu::wide`): with the branch-free exp of f32, a row of tanh
    /// is a vector loop.
    fn bias_activate<T>(
        part: &mut [T],
        channels: usize,
        inner: usize,
        bias: &[T],
        act: Option<Activation>,
    ) where [T: Scalar] {
        for row in part.chunks_exact_mut(channels * inner) {
            if inner == 1 {
                // A linear layer: one bias per value, the loop runs along the row.
                let pairs = row.iter_mut().zip(bias);
                match act {
                    Some(a) => pairs.for_each(|(v, &b)| *v = activate(a, *v + b)),
                    None => pairs.for_each(|(v, &b)| *v += b),
                }
                continue;
            }
            for (run, &b) in row.chunks_exact_mut(inner).zip(bias) {
                match act {
                    Some(a) => run.iter_mut().for_each(|v| *v = activate(a, *v + b)),
                    None => run.iter_mut().for_each(|v| *v += b),
                }
            }
        }
    }
);

/// dX from dY: dY·W for a linear layer, the other direction of the convolution for the others.
pub fn input_grad<T: Scalar>(l: &Layer, params: &[T], dy: &[T], rows: usize, dx: &mut [T]) {
    ops(&l.kind).input_grad(l, &params[l.w..l.b], dy, rows, dx);
}

/// dW into grads (the layer's weight, in its layout) and db = the per-channel sum of dY.
pub fn param_grads<T: Scalar>(l: &Layer, x: &[T], dy: &[T], rows: usize, grads: &mut [T]) {
    ops(&l.kind).weight_grad(l, x, dy, rows, &mut grads[l.w..l.b]);
    let (channels, inner) = l.out_channels();
    colsum(dy, rows, channels, inner, &mut grads[l.b..l.b + channels]);
}

/// Bias gradient: out[c] = Σ over rows r and positions s of dY[r, c, s] for a gradient of
/// `channels` × `inner` values per row (`inner` = 1 for a linear layer's columns, H·W for a
/// convolution's channels). Twin of `colsum` (inner = 1) and `channel_sum` in reduce.wgsl.
pub fn colsum<T: Scalar>(dy: &[T], rows: usize, channels: usize, inner: usize, out: &mut [T]) {
    out[..channels].iter_mut().for_each(|v| *v = T::zero());
    let rows_of = dy[..rows * channels * inner].chunks_exact(channels * inner);
    if inner == 1 {
        // A linear layer's columns: the same additions in the same order as below, row-wise
        // across the columns so that they vectorize.
        for row in rows_of {
            for (o, &v) in out[..channels].iter_mut().zip(row) {
                *o += v;
            }
        }
        return;
    }
    for row in rows_of {
        for (o, values) in out.iter_mut().zip(row.chunks_exact(inner)) {
            for &v in values {
                *o += v;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::family::activation::tanh_stable;

    /// The bias + activation pass, compiled for the widest vector unit, gives the bits of the
    /// plain per-value formula (tanh through the inline exp, both sides of its 0.03 switch).
    #[test]
    fn the_vector_bias_and_tanh_equal_the_scalar_formula() {
        let (channels, inner, rows) = (37, 1, 5);
        let bias: Vec<f32> = (0..channels).map(|c| (c as f32 - 18.0) / 40.0).collect();
        let x: Vec<f32> = (0..rows * channels)
            .map(|i| ((i * 7919 % 2001) as f32 - 1000.0) / 97.0)
            .collect();
        for (act, f) in [
            (Some(Activation::Tanh), tanh_stable::<f32> as fn(f32) -> f32),
            (None, |v| v),
        ] {
            let mut y = x.clone();
            bias_activate(&mut y, channels, inner, &bias, act);
            let want: Vec<f32> = x
                .iter()
                .enumerate()
                .map(|(i, &v)| f(v + bias[i % channels]))
                .collect();
            assert_eq!(y, want, "{act:?}");
        }
        // Values near zero take the series: tanh(x) = x − x³/3 + … to f32 precision.
        assert!((tanh_stable(0.01f32) - 0.01f32.tanh()).abs() <= 1e-9);
        assert!((tanh_stable(-3.0f32) - (-3.0f32).tanh()).abs() <= 2e-7);
    }
}
