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
///
/// A linear layer's columns are summed down the rows, row-wise across the columns (vectorized).
/// A convolution's channel sums each row's run of `inner` values in [`LANES`] interleaved partial
/// sums, added together at the run's end, then adds that to the channel's total in row order: one
/// running sum per channel was a chain of dependent additions, one per value (1.7 million a
/// conv-model step, each waiting for the last). Channels are split across the CPU path's
/// threads; every channel is summed in the same order whatever the split.
pub fn colsum<T: Scalar>(dy: &[T], rows: usize, channels: usize, inner: usize, out: &mut [T]) {
    let parts = par::parts(channels, rows * inner);
    par::rows_mut_in(out, channels, 1, parts, |c0, part| {
        colsum_range(dy, rows, channels, inner, c0, part)
    });
}

/// Partial sums per run in [`colsum`] (a multiple of every vector width).
const LANES: usize = 16;

/// Channels `c0..c0 + out.len()` of [`colsum`].
fn colsum_range<T: Scalar>(
    dy: &[T],
    rows: usize,
    channels: usize,
    inner: usize,
    c0: usize,
    out: &mut [T],
) {
    let n = out.len();
    out.iter_mut().for_each(|v| *v = T::zero());
    let rows_of = dy[..rows * channels * inner].chunks_exact(channels * inner);
    if inner == 1 {
        for row in rows_of {
            for (o, &v) in out.iter_mut().zip(&row[c0..c0 + n]) {
                *o += v;
            }
        }
        return;
    }
    for row in rows_of {
        let row = &row[c0 * inner..(c0 + n) * inner];
        for (o, run) in out.iter_mut().zip(row.chunks_exact(inner)) {
            let mut lanes = [T::zero(); LANES];
            let mut blocks = run.chunks_exact(LANES);
            for block in &mut blocks {
                for (l, &v) in lanes.iter_mut().zip(block) {
                    *l += v;
                }
            }
            for (l, &v) in lanes.iter_mut().zip(blocks.remainder()) {
                *l += v;
            }
            let mut sum = T::zero();
            for l in lanes {
                sum += l;
            }
            *o += sum;
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

    /// The bias gradient's sums equal f64 sums of the same values within f32 summation's bound, for a linear
    /// layer and for channels with runs that are not a multiple of the lanes, and do not depend
    /// on the thread split (every channel's order is fixed).
    #[test]
    fn colsum_sums_every_channel() {
        for (rows, channels, inner) in [(7, 5, 1), (3, 4, 37), (2, 3, 16), (5, 2, 3)] {
            let dy: Vec<f32> = (0..rows * channels * inner)
                .map(|i| ((i * 7919 % 1013) as f32 - 506.0) / 101.0)
                .collect();
            let mut out = vec![0.0f32; channels];
            colsum(&dy, rows, channels, inner, &mut out);
            for (c, &got) in out.iter().enumerate() {
                let values: Vec<f64> = (0..rows)
                    .flat_map(|r| (0..inner).map(move |p| (r * channels + c) * inner + p))
                    .map(|i| dy[i] as f64)
                    .collect();
                let exact: f64 = values.iter().sum();
                // Any order of n f32 additions is within n·2⁻²⁴·Σ|v| of the exact sum.
                let n = values.len() as f64;
                let tol =
                    n * f32::EPSILON as f64 / 2.0 * values.iter().map(|v| v.abs()).sum::<f64>();
                assert!(
                    (got as f64 - exact).abs() <= tol,
                    "{rows}×{channels}×{inner} channel {c}: {got} vs {exact}"
                );
            }
            let mut split = vec![0.0f32; channels];
            for c in 0..channels {
                colsum_range(&dy, rows, channels, inner, c, &mut split[c..c + 1]);
            }
            assert_eq!(out, split, "the split changed the bits");
        }
    }
}
