//! `nn.Linear` on the reference path: each product is one GEMM over the weight `[out, in]`.
//! GPU twin: `gpu::layers::linear` (matmul.wgsl).

use super::LayerOps;
use crate::cpu::{gemm, Scalar, View};
use crate::spec::Layer;

pub struct Linear;

impl<T: Scalar> LayerOps<T> for Linear {
    /// Y[rows, out] = X·Wᵀ.
    fn forward(&self, l: &Layer, weights: &[T], x: &[T], rows: usize, y: &mut [T]) {
        gemm(
            rows,
            l.inp,
            l.out,
            View::rows(x, 0, l.inp),
            View::transposed(weights, 0, l.inp),
            y,
            0,
            l.out,
            false,
        )
    }

    /// dX[rows, in] = dY·W.
    fn input_grad(&self, l: &Layer, weights: &[T], dy: &[T], rows: usize, dx: &mut [T]) {
        gemm(
            rows,
            l.out,
            l.inp,
            View::rows(dy, 0, l.out),
            View::rows(weights, 0, l.inp),
            dx,
            0,
            l.inp,
            false,
        )
    }

    /// dW[out, in] = dYᵀ·X.
    fn weight_grad(&self, l: &Layer, x: &[T], dy: &[T], rows: usize, dw: &mut [T]) {
        gemm(
            l.out,
            rows,
            l.inp,
            View::transposed(dy, 0, l.out),
            View::rows(x, 0, l.inp),
            dw,
            0,
            l.inp,
            false,
        )
    }
}
