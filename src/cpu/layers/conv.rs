//! `nn.Conv2d` and `nn.ConvTranspose2d` on the reference path, and the convolution twins of
//! `shaders/conv.wgsl` they are made of: a `Conv2d` from its `full` side to its `reduced` side
//! ([`conv_gather`]), the same operator backwards ([`conv_scatter`], which is both the conv2d's
//! input gradient and the transposed convolution's forward pass), and the weight gradient
//! ([`conv_weight_grad`]). See [`ConvGeometry`] for why three cover both layers. GPU twin:
//! `gpu::layers::conv`.
//!
//! Each is im2col plus one GEMM over the whole batch: a `patches` matrix holds, for every output
//! position of every row, the k×k window of every channel of the full side (`[rows·OH·OW, C·k·k]`), so the
//! convolution is `patches · Wᵀ`. The GPU kernel computes the same products without storing the
//! patches (it gathers them while loading its tiles).

use super::LayerOps;
use crate::cpu::{gemm, Scalar, View};
use crate::spec::layers::ConvGeometry;
use crate::spec::Layer;

/// `nn.Conv2d`, from the geometry's full side to its reduced side.
pub struct Conv2d(pub ConvGeometry);

/// `nn.ConvTranspose2d`, from the geometry's reduced side to its full side: the conv2d's products
/// with the directions swapped.
pub struct ConvTranspose2d(pub ConvGeometry);

impl<T: Scalar> LayerOps<T> for Conv2d {
    fn forward(&self, _: &Layer, weights: &[T], x: &[T], rows: usize, y: &mut [T]) {
        conv_gather(&self.0, weights, x, rows, y)
    }

    fn input_grad(&self, _: &Layer, weights: &[T], dy: &[T], rows: usize, dx: &mut [T]) {
        conv_scatter(&self.0, weights, dy, rows, dx)
    }

    fn weight_grad(&self, _: &Layer, x: &[T], dy: &[T], rows: usize, dw: &mut [T]) {
        conv_weight_grad(&self.0, x, dy, rows, dw)
    }
}

impl<T: Scalar> LayerOps<T> for ConvTranspose2d {
    fn forward(&self, _: &Layer, weights: &[T], x: &[T], rows: usize, y: &mut [T]) {
        conv_scatter(&self.0, weights, x, rows, y)
    }

    fn input_grad(&self, _: &Layer, weights: &[T], dy: &[T], rows: usize, dx: &mut [T]) {
        conv_gather(&self.0, weights, dy, rows, dx)
    }

    fn weight_grad(&self, _: &Layer, x: &[T], dy: &[T], rows: usize, dw: &mut [T]) {
        conv_weight_grad(&self.0, dy, x, rows, dw)
    }
}

/// The index on the full side a window tap reads, or `None` in the zero padding:
/// `out·stride − padding + tap` along one axis.
fn tap(out: usize, tap: usize, g: &ConvGeometry, size: usize) -> Option<usize> {
    (out * g.stride + tap)
        .checked_sub(g.padding)
        .filter(|&i| i < size)
}

/// Calls `f(patch_row, patch_col, image_index)` for every tap of every window that falls inside
/// the full side: patch row (n·OH + oy)·OW + ox, column (c·k + ky)·k + kx.
fn for_each_tap(g: &ConvGeometry, rows: usize, mut f: impl FnMut(usize, usize, usize)) {
    let [ci, h, w] = g.full;
    let [_, oh, ow] = g.reduced;
    let k = g.kernel;
    for n in 0..rows {
        for oy in 0..oh {
            for ox in 0..ow {
                let row = (n * oh + oy) * ow + ox;
                for c in 0..ci {
                    for ky in 0..k {
                        let Some(y) = tap(oy, ky, g, h) else { continue };
                        for kx in 0..k {
                            let Some(x) = tap(ox, kx, g, w) else { continue };
                            f(row, (c * k + ky) * k + kx, ((n * ci + c) * h + y) * w + x);
                        }
                    }
                }
            }
        }
    }
}

/// `[rows·OH·OW, C·k·k]` windows of `full` `[rows, C, H, W]`, zeros in the padding.
fn im2col<T: Scalar>(g: &ConvGeometry, full: &[T], rows: usize) -> Vec<T> {
    let cols = g.patch_len();
    let mut patches = vec![T::zero(); rows * g.reduced[1] * g.reduced[2] * cols];
    for_each_tap(g, rows, |r, c, i| patches[r * cols + c] = full[i]);
    patches
}

/// `[rows·OH·OW, C]` from `[rows, C, OH·OW]`: channels last, one row per output position.
fn channels_last<T: Scalar>(g: &ConvGeometry, reduced: &[T], rows: usize) -> Vec<T> {
    let [c, oh, ow] = g.reduced;
    let s = oh * ow;
    let mut t = vec![T::zero(); rows * c * s];
    for n in 0..rows {
        for ch in 0..c {
            for p in 0..s {
                t[(n * s + p) * c + ch] = reduced[(n * c + ch) * s + p];
            }
        }
    }
    t
}

/// reduced `[rows, C_r, OH, OW]` = conv2d(full `[rows, C_f, H, W]`) with `weights`
/// `[C_r, C_f, k, k]`, no bias. Twin of `conv.wgsl`'s gather mode.
pub fn conv_gather<T: Scalar>(
    g: &ConvGeometry,
    weights: &[T],
    full: &[T],
    rows: usize,
    reduced: &mut [T],
) {
    let (cols, [c, oh, ow]) = (g.patch_len(), g.reduced);
    let s = oh * ow;
    let patches = im2col(g, full, rows);
    let mut t = vec![T::zero(); rows * s * c];
    gemm(
        rows * s,
        cols,
        c,
        View::rows(&patches, 0, cols),
        View::transposed(weights, 0, cols),
        &mut t,
        0,
        c,
        false,
    );
    for n in 0..rows {
        for ch in 0..c {
            for p in 0..s {
                reduced[(n * c + ch) * s + p] = t[(n * s + p) * c + ch];
            }
        }
    }
}

/// full `[rows, C_f, H, W]` = the transpose of conv2d applied to `reduced` `[rows, C_r, OH, OW]`:
/// every reduced value spread over its window through `weights` `[C_r, C_f, k, k]` and summed.
/// The conv2d's input gradient, and a transposed convolution's forward pass. Twin of
/// `conv.wgsl`'s scatter mode.
pub fn conv_scatter<T: Scalar>(
    g: &ConvGeometry,
    weights: &[T],
    reduced: &[T],
    rows: usize,
    full: &mut [T],
) {
    let (cols, c) = (g.patch_len(), g.reduced[0]);
    let s = g.reduced[1] * g.reduced[2];
    let t = channels_last(g, reduced, rows);
    let mut patches = vec![T::zero(); rows * s * cols];
    gemm(
        rows * s,
        c,
        cols,
        View::rows(&t, 0, c),
        View::rows(weights, 0, cols),
        &mut patches,
        0,
        cols,
        false,
    );
    full[..rows * g.full_len()]
        .iter_mut()
        .for_each(|v| *v = T::zero());
    for_each_tap(g, rows, |r, col, i| full[i] += patches[r * cols + col]);
}

/// dW `[C_r, C_f, k, k]` = Σ over rows and output positions of reduced_grad ⊗ window of `full`:
/// the weight gradient of a conv2d (full = its input, reduced_grad = dLoss/d output) and of a
/// transposed convolution (full = dLoss/d output, reduced_grad = its input). Twin of `conv.wgsl`'s
/// weight-gradient mode.
pub fn conv_weight_grad<T: Scalar>(
    g: &ConvGeometry,
    full: &[T],
    reduced_grad: &[T],
    rows: usize,
    dw: &mut [T],
) {
    let (cols, c) = (g.patch_len(), g.reduced[0]);
    let s = g.reduced[1] * g.reduced[2];
    let patches = im2col(g, full, rows);
    let t = channels_last(g, reduced_grad, rows);
    gemm(
        c,
        rows * s,
        cols,
        View::transposed(&t, 0, c),
        View::rows(&patches, 0, cols),
        dw,
        0,
        cols,
        false,
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 3×3 image, a 2×2 kernel, stride 1, no padding, worked by hand.
    #[test]
    fn a_hand_computed_convolution_its_transpose_and_weight_gradient() {
        let g = ConvGeometry {
            full: [1, 3, 3],
            reduced: [1, 2, 2],
            kernel: 2,
            stride: 1,
            padding: 0,
        };
        let full = [1.0f64, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0];
        let w = [1.0, 0.0, -1.0, 2.0];
        let mut reduced = [0.0; 4];
        conv_gather(&g, &w, &full, 1, &mut reduced);
        // (0,0): 1·1 + 0·2 − 1·4 + 2·5 = 7; (0,1): 2 − 5 + 12 = 9; (1,0): 4 − 7 + 16 = 13;
        // (1,1): 5 − 8 + 18 = 15.
        assert_eq!(reduced, [7.0, 9.0, 13.0, 15.0]);

        // Scatter [1, 2; 3, 4] back: full(y, x) = Σ reduced(oy, ox)·w(y − oy, x − ox); the
        // centre (1, 1) gets 1·w(1,1) + 2·w(1,0) + 3·w(0,1) + 4·w(0,0) = 2 − 2 + 0 + 4 = 4.
        let mut back = [0.0; 9];
        conv_scatter(&g, &w, &[1.0, 2.0, 3.0, 4.0], 1, &mut back);
        assert_eq!(back, [1.0, 2.0, 0.0, 2.0, 4.0, 4.0, -3.0, 2.0, 8.0]);

        // dW(ky, kx) = Σ_o dY(o)·full(o + (ky, kx)) with dY = [1, 2; 3, 4]:
        // (0,0): 1 + 4 + 12 + 20 = 37; (0,1): 2 + 6 + 15 + 24 = 47; (1,0): 4 + 10 + 21 + 32 = 67;
        // (1,1): 5 + 12 + 24 + 36 = 77.
        let mut dw = [0.0; 4];
        conv_weight_grad(&g, &full, &[1.0, 2.0, 3.0, 4.0], 1, &mut dw);
        assert_eq!(dw, [37.0, 47.0, 67.0, 77.0]);
    }

    /// Stride 2 with padding 1 on a 2×2 image: each output window sees one real pixel.
    #[test]
    fn padding_and_stride_read_zeros_outside_the_image() {
        let g = ConvGeometry {
            full: [1, 2, 2],
            reduced: [1, 2, 2],
            kernel: 2,
            stride: 2,
            padding: 1,
        };
        let mut reduced = [0.0f32; 4];
        conv_gather(
            &g,
            &[1.0, 10.0, 100.0, 1000.0],
            &[1.0, 2.0, 3.0, 4.0],
            1,
            &mut reduced,
        );
        // Window (0,0) covers (−1..0, −1..0): only (0,0) lies inside, under tap (1,1).
        assert_eq!(reduced, [1000.0, 200.0, 30.0, 4.0]);
    }

    /// ⟨conv(x), y⟩ = ⟨x, scatter(y)⟩ (the scatter is the adjoint), and the weight gradient is
    /// the derivative of ⟨conv_W(x), y⟩ in W, on an odd multi-channel shape.
    #[test]
    fn scatter_is_the_adjoint_and_the_weight_gradient_the_derivative() {
        let g = ConvGeometry {
            full: [3, 7, 5],
            reduced: [2, 4, 3],
            kernel: 3,
            stride: 2,
            padding: 1,
        };
        let rows = 2;
        let val = |i: usize| ((i * 37 % 101) as f64 - 50.0) / 25.0;
        let x: Vec<f64> = (0..rows * g.full_len()).map(val).collect();
        let y: Vec<f64> = (0..rows * g.reduced_len()).map(|i| val(i + 7)).collect();
        let w: Vec<f64> = (0..g.weight_len()).map(|i| val(i + 3)).collect();
        let mut cx = vec![0.0; y.len()];
        conv_gather(&g, &w, &x, rows, &mut cx);
        let mut sy = vec![0.0; x.len()];
        conv_scatter(&g, &w, &y, rows, &mut sy);
        let dot = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(p, q)| p * q).sum::<f64>();
        assert!((dot(&cx, &y) - dot(&x, &sy)).abs() < 1e-9 * dot(&cx, &y).abs().max(1.0));
        let mut dw = vec![0.0; w.len()];
        conv_weight_grad(&g, &x, &y, rows, &mut dw);
        // ⟨conv_W(x), y⟩ is linear in W, so its derivative in W_i is the value at the unit W e_i.
        for i in [0, 7, w.len() - 1] {
            let mut e = vec![0.0; w.len()];
            e[i] = 1.0;
            conv_gather(&g, &e, &x, rows, &mut cx);
            assert!(
                (dot(&cx, &y) - dw[i]).abs() < 1e-9 * dw[i].abs().max(1.0),
                "w[{i}]"
            );
        }
    }
}
