//! `nn.Conv2d` and `nn.ConvTranspose2d` on the reference path, and the convolution twins of
//! `shaders/conv.wgsl` they are made of: a `Conv2d` from its `full` side to its `reduced` side
//! ([`conv_gather`]), the same operator backwards ([`conv_scatter`], which is both the conv2d's
//! input gradient and the transposed convolution's forward pass), and the weight gradient
//! ([`conv_weight_grad`]). See [`ConvGeometry`] for why three cover both layers. GPU twin:
//! `gpu::layers::conv`.
//!
//! Each is im2col plus GEMM. The patch matrix is stored transposed, `cols[C·k·k, images·OH·OW]`:
//! row (c·k + ky)·k + kx holds that tap of channel c for every output position of every image, so
//! the small side of each product (the channels) is the GEMM's m and the long side its n, the
//! shape matrixmultiply runs fastest, and an image's `[C, OH·OW]` block of the product is already
//! in NCHW order (a copy of runs of OH·OW values, no element-wise transpose). The forward and
//! scatter products go a tile of images at a time ([`tile_images`]), so the patches a tile needs
//! stay in cache between im2col and the GEMM; the weight gradient sums over the whole batch in
//! one product. The buffers live in a per-thread [`scratch`] reused from call to call, not
//! allocated (and page-faulted) each step. The GPU kernel computes the same products without
//! storing the patches (it gathers them while loading its tiles).
//!
//! Every output is summed in the order of the plain definition, so the values are bit-identical to
//! im2col + one GEMM over `[rows·OH·OW, C·k·k]` patches: each GEMM reduces over the same index in
//! the same order and kc blocks (only m and n change roles; the tiles split n, never the
//! reduction), and [`col2im`] adds each full-side value's contributions in increasing output
//! position.

use std::any::Any;
use std::cell::RefCell;

use super::LayerOps;
use crate::cpu::{gemm_serial, par, Scalar, View};
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

/// Where each window tap of each output position reads, in a zero-padded copy of one channel
/// of the full side: im2col and col2im become a table-driven copy with no bounds tests or edge
/// cases in their inner loops (a convolution's rows of 7 or 14 taps were all edges).
struct Taps {
    /// The padded plane, `hp × wp`: the image at offset (padding, padding), zeros around it,
    /// large enough for every window.
    hp: usize,
    wp: usize,
    /// `by_tap[t·S + o]`: the padded index tap t = ky·k + kx of output position o reads.
    by_tap: Vec<u32>,
}

impl Taps {
    fn new(g: &ConvGeometry) -> Self {
        let [_, h, w] = g.full;
        let [_, oh, ow] = g.reduced;
        let (k, st, p) = (g.kernel, g.stride, g.padding);
        let hp = (p + h).max((oh.max(1) - 1) * st + k);
        let wp = (p + w).max((ow.max(1) - 1) * st + k);
        let mut by_tap = Vec::with_capacity(k * k * oh * ow);
        for ky in 0..k {
            for kx in 0..k {
                for oy in 0..oh {
                    for ox in 0..ow {
                        by_tap.push(((oy * st + ky) * wp + ox * st + kx) as u32);
                    }
                }
            }
        }
        Self { hp, wp, by_tap }
    }

    /// Copies `plane` (`[H, W]`) into the interior of `pad` (`hp × wp`), whose border is zero.
    fn pad<T: Scalar>(&self, g: &ConvGeometry, plane: &[T], pad: &mut [T]) {
        let [_, h, w] = g.full;
        for (y, row) in plane[..h * w].chunks_exact(w).enumerate() {
            pad[(y + g.padding) * self.wp + g.padding..][..w].copy_from_slice(row);
        }
    }
}

/// About this many values (1 MiB of f32) of patches per tile of images: the tile's patches,
/// written by im2col and read back by the GEMM's packing, stay in the core's L2 (1 MiB a core on
/// the Zen 4 this was measured on), and the tile's product is wide enough to run the GEMM kernel
/// near its rate (the conv model's second layer: 10 images, n = 490). Measured on that model's
/// four convolutions, all three products, best of 7: 256 KiB 11.4 ms a step, 512 KiB 10.9,
/// 1 MiB 10.8, 2 MiB 11.3.
const TILE_VALUES: usize = 1 << 18;

/// Images per tile for the forward and scatter products of `g`.
fn tile_images(g: &ConvGeometry, rows: usize) -> usize {
    let per_image = g.patch_len() * g.reduced[1] * g.reduced[2];
    (TILE_VALUES / per_image.max(1)).clamp(1, rows.max(1))
}

/// One thread's kept buffers (see [`scratch`]).
type Slot = RefCell<Option<Box<dyn Any>>>;

thread_local! {
    /// Buffers per thread, kept between calls: a step's convolutions reuse them instead of
    /// allocating (and zeroing, page by page) megabytes of patches each time. `PART` serves one
    /// thread's share of a product (its tiles' patches), `CALL` the calling thread's whole-call
    /// buffers (the batch's patches of a weight gradient); two slots, because the calling
    /// thread also runs a part while holding its call's buffers.
    static PART: Slot = const { RefCell::new(None) };
    static CALL: Slot = const { RefCell::new(None) };
}

/// Runs `f` on three scratch buffers of `a`, `b` and `c` values from this thread's `slot`: the
/// first two with unspecified contents, the third zeroed.
fn scratch<T: Scalar, R>(
    slot: &'static std::thread::LocalKey<Slot>,
    [a, b, c]: [usize; 3],
    f: impl FnOnce(&mut [T], &mut [T], &mut [T]) -> R,
) -> R {
    let taken = slot.with(|s| s.borrow_mut().take());
    let mut bufs = taken
        .and_then(|b| b.downcast::<[Vec<T>; 3]>().ok())
        .map_or_else(|| [Vec::new(), Vec::new(), Vec::new()], |b| *b);
    for (v, n) in bufs.iter_mut().zip([a, b, c]) {
        if v.len() < n {
            v.resize(n, T::zero());
        }
    }
    bufs[2][..c].fill(T::zero());
    let [x, y, z] = &mut bufs;
    let out = f(&mut x[..a], &mut y[..b], &mut z[..c]);
    slot.with(|s| *s.borrow_mut() = Some(Box::new(bufs)));
    out
}

/// `cols[C·k·k, count·OH·OW]`: the windows of images `first..first + count` of `full`
/// `[rows, C, H, W]`, zeros in the padding (see the module note for the layout), for the input
/// channels `channels` only (row (c − start)·k·k + tap). `pad` is a zeroed `hp × wp` buffer.
#[allow(clippy::too_many_arguments)]
fn im2col<T: Scalar>(
    g: &ConvGeometry,
    taps: &Taps,
    full: &[T],
    first: usize,
    count: usize,
    channels: std::ops::Range<usize>,
    cols: &mut [T],
    pad: &mut [T],
) {
    let ci = g.full[0];
    let (kk, s, plane) = (
        g.kernel * g.kernel,
        g.reduced[1] * g.reduced[2],
        g.full[1] * g.full[2],
    );
    let width = count * s;
    for b in 0..count {
        for (r, c) in channels.clone().enumerate() {
            taps.pad(g, &full[((first + b) * ci + c) * plane..], pad);
            for (t, idx) in taps.by_tap.chunks_exact(s).enumerate() {
                let row = &mut cols[(r * kk + t) * width + b * s..][..s];
                for (d, &i) in row.iter_mut().zip(idx) {
                    *d = pad[i as usize];
                }
            }
        }
    }
}

/// Images `first..first + count` of `full` `[rows, C, H, W]` = the sum of `cols` (im2col's
/// layout) over every window. Each value's contributions are added in increasing output position
/// (oy, then ox), the order of the plain definition: the taps go in decreasing order, since a
/// larger ky (kx) reaches a given row (column) from a smaller oy (ox). `pad` is `hp × wp`.
fn col2im<T: Scalar>(
    g: &ConvGeometry,
    taps: &Taps,
    cols: &[T],
    first: usize,
    count: usize,
    full: &mut [T],
    pad: &mut [T],
) {
    let [ci, h, w] = g.full;
    let (kk, s) = (g.kernel * g.kernel, g.reduced[1] * g.reduced[2]);
    let width = count * s;
    for b in 0..count {
        for c in 0..ci {
            pad.fill(T::zero());
            for (t, idx) in taps.by_tap.chunks_exact(s).enumerate().rev() {
                let row = &cols[(c * kk + t) * width + b * s..][..s];
                for (&v, &i) in row.iter().zip(idx) {
                    pad[i as usize] += v;
                }
            }
            let plane = &mut full[((first + b) * ci + c) * h * w..][..h * w];
            for (y, dst) in plane.chunks_exact_mut(w).enumerate() {
                dst.copy_from_slice(&pad[(y + g.padding) * taps.wp + g.padding..][..w]);
            }
        }
    }
}

/// Images `first..first + count` of `nchw` `[rows, C, S]` into `cm` `[C', count·S]`
/// (channel-major, the GEMM's layout) for the channels `channels` (C' of them): runs of S values.
fn channel_major<T: Scalar>(
    c: usize,
    s: usize,
    first: usize,
    count: usize,
    channels: std::ops::Range<usize>,
    nchw: &[T],
    cm: &mut [T],
) {
    for (r, ch) in channels.enumerate() {
        for b in 0..count {
            cm[(r * count + b) * s..][..s]
                .copy_from_slice(&nchw[((first + b) * c + ch) * s..][..s]);
        }
    }
}

/// The inverse of [`channel_major`]: `cm` `[C, count·S]` into images `first..` of `nchw`.
fn to_nchw<T: Scalar>(c: usize, s: usize, first: usize, count: usize, cm: &[T], nchw: &mut [T]) {
    for ch in 0..c {
        for b in 0..count {
            nchw[((first + b) * c + ch) * s..][..s]
                .copy_from_slice(&cm[(ch * count + b) * s..][..s]);
        }
    }
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
    let (kk, c) = (g.patch_len(), g.reduced[0]);
    let s = g.reduced[1] * g.reduced[2];
    let (tile, taps) = (tile_images(g, rows), Taps::new(g));
    scratch(
        &CALL,
        [kk * c, 0, 0],
        |wt: &mut [T], _: &mut [T], _: &mut [T]| {
            // W stored `[C_f·k·k, C_r]`: the GEMM packs its m side fastest from contiguous columns.
            for (ch, w) in weights[..c * kk].chunks_exact(kk).enumerate() {
                for (i, &v) in w.iter().enumerate() {
                    wt[i * c + ch] = v;
                }
            }
            let wt = &*wt;
            // Contiguous ranges of images on the CPU path's threads, each a run of tiles.
            let parts = par::parts(rows.div_ceil(tile), kk * tile * s);
            par::rows_mut_in(reduced, rows, c * s, parts, |r0, part| {
                let count_here = part.len() / (c * s);
                let lens = [kk * tile * s, c * tile * s, taps.hp * taps.wp];
                scratch(
                    &PART,
                    lens,
                    |cols: &mut [T], out: &mut [T], pad: &mut [T]| {
                        for at in (0..count_here).step_by(tile) {
                            let count = tile.min(count_here - at);
                            let n = count * s;
                            im2col(g, &taps, full, r0 + at, count, 0..g.full[0], cols, pad);
                            // out[C_r, n] = W[C_r, C_f·k·k] · cols.
                            gemm_serial(
                                c,
                                kk,
                                n,
                                View::transposed(wt, 0, c),
                                View::rows(cols, 0, n),
                                out,
                                0,
                                n,
                                false,
                            );
                            to_nchw(c, s, at, count, out, part);
                        }
                    },
                )
            });
        },
    )
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
    let (kk, c) = (g.patch_len(), g.reduced[0]);
    let s = g.reduced[1] * g.reduced[2];
    let (tile, taps) = (tile_images(g, rows), Taps::new(g));
    let image = g.full.iter().product::<usize>();
    // Contiguous ranges of images on the CPU path's threads, each a run of tiles.
    let parts = par::parts(rows.div_ceil(tile), kk * tile * s);
    par::rows_mut_in(full, rows, image, parts, |r0, part| {
        let count_here = part.len() / image.max(1);
        let lens = [kk * tile * s, c * tile * s, taps.hp * taps.wp];
        scratch(
            &PART,
            lens,
            |cols: &mut [T], cm: &mut [T], pad: &mut [T]| {
                for at in (0..count_here).step_by(tile) {
                    let count = tile.min(count_here - at);
                    let n = count * s;
                    channel_major(c, s, r0 + at, count, 0..c, reduced, cm);
                    // cols[C_f·k·k, n] = Wᵀ · cm[C_r, n].
                    gemm_serial(
                        kk,
                        c,
                        n,
                        View::transposed(weights, 0, kk),
                        View::rows(cm, 0, n),
                        cols,
                        0,
                        n,
                        false,
                    );
                    col2im(g, &taps, cols, at, count, part, pad);
                }
            },
        )
    });
}

/// dW `[C_r, C_f, k, k]` = Σ over rows and output positions of reduced_grad ⊗ window of `full`:
/// the weight gradient of a conv2d (full = its input, reduced_grad = dLoss/d output) and of a
/// transposed convolution (full = dLoss/d output, reduced_grad = its input). Twin of `conv.wgsl`'s
/// weight-gradient mode.
///
/// A tile of images at a time, as the forward product: the tile's patches (im2col's layout) stay
/// in cache for the GEMM that adds the tile's share, dW += dY_tile · cols_tileᵀ, instead of
/// patches of the whole batch (10 MB for the conv model's second layer) written and read back
/// from memory. Each element of dW is the sum over the tiles in order of each tile's sum, so the
/// bits depend on the tile size (fixed by the geometry and batch) but not on the threads: those
/// split dW by columns (ranges of input channels, whose patch rows alone each thread builds) or,
/// when the input has too few channels, by rows (output channels).
pub fn conv_weight_grad<T: Scalar>(
    g: &ConvGeometry,
    full: &[T],
    reduced_grad: &[T],
    rows: usize,
    dw: &mut [T],
) {
    let (kk, c, ci) = (g.patch_len(), g.reduced[0], g.full[0]);
    let (k2, s) = (g.kernel * g.kernel, g.reduced[1] * g.reduced[2]);
    let (tile, taps) = (tile_images(g, rows), Taps::new(g));
    let want = par::parts(rows, kk * s);
    let by_channels = ci >= want;
    let parts = want.min(if by_channels { ci } else { c }).max(1);
    let cuts = par::bounds(if by_channels { ci } else { c }, parts);
    // Part p: dW rows `rows_p` × columns `cols_p` (one of the two ranges is everything).
    let range = |p: usize| {
        if by_channels {
            (0..c, cuts[p]..cuts[p + 1])
        } else {
            (cuts[p]..cuts[p + 1], 0..ci)
        }
    };
    let one_part = |p: usize| -> Vec<T> {
        let (out_ch, in_ch) = range(p);
        let (m, width) = (out_ch.len(), in_ch.len() * k2);
        let mut part = vec![T::zero(); m * width];
        let lens = [width * tile * s, m * tile * s, taps.hp * taps.wp];
        scratch(
            &PART,
            lens,
            |cols: &mut [T], cm: &mut [T], pad: &mut [T]| {
                for first in (0..rows).step_by(tile) {
                    let count = tile.min(rows - first);
                    let n = count * s;
                    im2col(g, &taps, full, first, count, in_ch.clone(), cols, pad);
                    channel_major(c, s, first, count, out_ch.clone(), reduced_grad, cm);
                    // part[m, width] += dY[out_ch, n] · cols[width, n]ᵀ.
                    gemm_serial(
                        m,
                        n,
                        width,
                        View::rows(cm, 0, n),
                        View::transposed(cols, 0, n),
                        &mut part,
                        0,
                        width,
                        first > 0,
                    );
                }
            },
        );
        part
    };
    let mut results: Vec<Vec<T>> = (0..parts).map(|_| Vec::new()).collect();
    if parts == 1 {
        results[0] = one_part(0);
    } else {
        par::scope(|sc| {
            let (first, rest) = results.split_at_mut(1);
            for (i, r) in rest.iter_mut().enumerate() {
                let one_part = &one_part;
                sc.spawn(move |_| *r = one_part(i + 1));
            }
            first[0] = one_part(0);
        });
    }
    for (p, part) in results.iter().enumerate() {
        let (out_ch, in_ch) = range(p);
        let width = in_ch.len() * k2;
        for (i, row) in out_ch.clone().enumerate() {
            dw[row * kk + in_ch.start * k2..][..width].copy_from_slice(&part[i * width..][..width]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpu::gemm;

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

    /// The index on the full side a window tap reads, or `None` in the zero padding:
    /// `out·stride − padding + tap` along one axis.
    fn tap(out: usize, tap: usize, g: &ConvGeometry, size: usize) -> Option<usize> {
        (out * g.stride + tap)
            .checked_sub(g.padding)
            .filter(|&i| i < size)
    }

    /// The plain definition the module note promises bit-identity with: `[rows·OH·OW, C·k·k]`
    /// patches from every in-image tap, one GEMM over the batch (the weight gradient: one per
    /// tile of images, added in order), and for the scatter the patch values added back tap by
    /// tap in increasing output position.
    fn plain(g: &ConvGeometry, w: &[f32], full: &[f32], red: &[f32], rows: usize) -> [Vec<f32>; 3] {
        let ([ci, h, wd], [c, oh, ow], k) = (g.full, g.reduced, g.kernel);
        let (cols, s) = (g.patch_len(), oh * ow);
        let mut taps = Vec::new(); // (patch row, patch column, full index)
        for n in 0..rows {
            for (oy, ox) in (0..oh).flat_map(|y| (0..ow).map(move |x| (y, x))) {
                for (cc, ky, kx) in (0..ci).flat_map(|c| (0..k * k).map(move |t| (c, t / k, t % k)))
                {
                    if let (Some(y), Some(x)) = (tap(oy, ky, g, h), tap(ox, kx, g, wd)) {
                        let i = ((n * ci + cc) * h + y) * wd + x;
                        taps.push(((n * oh + oy) * ow + ox, (cc * k + ky) * k + kx, i));
                    }
                }
            }
        }
        let mut patches = vec![0.0; rows * s * cols];
        taps.iter()
            .for_each(|&(r, col, i)| patches[r * cols + col] = full[i]);
        let mut t = vec![0.0; rows * s * c]; // `red` channels last
        for (n, ch, p) in (0..rows).flat_map(|n| (0..c * s).map(move |i| (n, i / s, i % s))) {
            t[(n * s + p) * c + ch] = red[(n * c + ch) * s + p];
        }
        let mut y = vec![0.0; rows * s * c];
        gemm(
            rows * s,
            cols,
            c,
            View::rows(&patches, 0, cols),
            View::transposed(w, 0, cols),
            &mut y,
            0,
            c,
            false,
        );
        let mut gathered = vec![0.0; red.len()];
        for (n, ch, p) in (0..rows).flat_map(|n| (0..c * s).map(move |i| (n, i / s, i % s))) {
            gathered[(n * c + ch) * s + p] = y[(n * s + p) * c + ch];
        }
        let mut back = vec![0.0; rows * s * cols];
        gemm(
            rows * s,
            c,
            cols,
            View::rows(&t, 0, c),
            View::rows(w, 0, cols),
            &mut back,
            0,
            cols,
            false,
        );
        let mut scattered = vec![0.0; full.len()];
        taps.iter()
            .for_each(|&(r, col, i)| scattered[i] += back[r * cols + col]);
        // The weight gradient sums the batch a tile of images at a time (its module note).
        let mut dw = vec![0.0; w.len()];
        let tile = tile_images(g, rows);
        for first in (0..rows).step_by(tile) {
            let count = tile.min(rows - first);
            gemm(
                c,
                count * s,
                cols,
                View::transposed(&t, first * s * c, c),
                View::rows(&patches, first * s * cols, cols),
                &mut dw,
                0,
                cols,
                first > 0,
            );
        }
        [gathered, scattered, dw]
    }

    /// The tiled, table-driven products equal the plain definition bit for bit (f32), on odd
    /// shapes and on one whose batch splits into tiles of 11, 11 and 3 images (and, with more
    /// than one thread, into parts that cut the weight gradient by input channels).
    #[test]
    fn the_tiled_products_are_bit_identical_to_the_plain_definition() {
        let geometries = [
            (
                ConvGeometry {
                    full: [3, 7, 5],
                    reduced: [2, 4, 3],
                    kernel: 3,
                    stride: 2,
                    padding: 1,
                },
                3,
            ),
            (
                ConvGeometry {
                    full: [16, 20, 18],
                    reduced: [8, 10, 9],
                    kernel: 4,
                    stride: 2,
                    padding: 1,
                },
                25,
            ),
            (
                ConvGeometry {
                    full: [2, 6, 6],
                    reduced: [3, 5, 5],
                    kernel: 2,
                    stride: 1,
                    padding: 0,
                },
                2,
            ),
        ];
        assert_eq!(
            tile_images(&geometries[1].0, 25),
            11,
            "the second shape must split into tiles (11, 11, 3)"
        );
        for (g, rows) in geometries {
            let val = |i: usize, m: usize| ((i * m % 1009) as f32 - 504.0) / 317.0;
            let x: Vec<f32> = (0..rows * g.full_len()).map(|i| val(i, 37)).collect();
            let y: Vec<f32> = (0..rows * g.reduced_len()).map(|i| val(i, 53)).collect();
            let w: Vec<f32> = (0..g.weight_len()).map(|i| val(i, 71)).collect();
            let [want_g, want_s, want_w] = plain(&g, &w, &x, &y, rows);
            let mut got = vec![0.0; y.len()];
            conv_gather(&g, &w, &x, rows, &mut got);
            assert_eq!(got, want_g, "gather {g:?}");
            let mut got = vec![1.0; x.len()];
            conv_scatter(&g, &w, &y, rows, &mut got);
            assert_eq!(got, want_s, "scatter {g:?}");
            let mut got = vec![1.0; w.len()];
            conv_weight_grad(&g, &x, &y, rows, &mut got);
            assert_eq!(got, want_w, "weight gradient {g:?}");
        }
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
