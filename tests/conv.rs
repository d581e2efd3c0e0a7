//! `shaders/conv.wgsl` and the channel sum against their CPU twins (`cpu::layers::conv`,
//! `cpu::layers::colsum`) on small odd shapes: batch 2, 3 channels, 7×7 and 9×5 images, strides
//! 1 and 2, padding 0 and 1, kernels 1 to 4, every epilogue; and a 1×1 convolution over more
//! than 65,535 tiles. Runs on the real adapter (lavapipe in CI).

mod common;

use bytemuck::cast_slice;
use common::*;
use vae_gpu::cpu::layers::colsum;
use vae_gpu::cpu::layers::conv::{conv_gather, conv_scatter, conv_weight_grad};
use vae_gpu::family::activation::{activate, activation_grad_from_output};
use vae_gpu::gpu::kernels::*;
use vae_gpu::gpu::GpuContext;
use vae_gpu::spec::layers::{conv_out, ConvGeometry};
use vae_gpu::spec::{Activation, Likelihood};

/// (image, result channels, kernel, stride, padding): every combination the issue lists.
fn geometries() -> Vec<ConvGeometry> {
    [
        ([3, 7, 7], 2, 3, 1, 0),
        ([3, 7, 7], 4, 3, 2, 1),
        ([3, 9, 5], 2, 3, 2, 0),
        ([3, 9, 5], 5, 3, 1, 1),
        ([2, 8, 6], 3, 4, 2, 1),
        ([1, 9, 5], 1, 1, 1, 0),
    ]
    .into_iter()
    .map(|(image, out, kernel, stride, padding)| {
        let size = |n| conv_out(n, kernel, stride, padding).expect("a valid geometry");
        ConvGeometry {
            full: image,
            reduced: [out, size(image[1]), size(image[2])],
            kernel,
            stride,
            padding,
        }
    })
    .collect()
}

fn buf(ctx: &GpuContext, data: &[f32]) -> wgpu::Buffer {
    storage_init(ctx, "test", cast_slice(data))
}

fn run_conv(
    ctx: &GpuContext,
    k: &Kernels,
    p: &ConvParams,
    buffers: [&wgpu::Buffer; 4],
    n_out: usize,
) -> Vec<f32> {
    let [source, other, aux, dest] = buffers;
    let d = Dispatch::new(
        ctx,
        p.pipeline(k),
        0,
        p,
        &[(1, source), (2, other), (3, aux), (4, dest)],
        p.groups(),
    );
    run(ctx, &[&d]).expect("dispatch");
    ctx.read_f32(dest, 0, n_out).expect("read back")
}

/// The epilogue on the CPU: bias per channel (`inner` values each), activation, or the
/// activation's derivative at `aux`.
fn epilogue_cpu(
    v: &mut [f32],
    channels: usize,
    inner: usize,
    bias: Option<&[f32]>,
    act: Option<Activation>,
    backward: Option<(Activation, &[f32])>,
) {
    for (i, x) in v.iter_mut().enumerate() {
        if let Some(b) = bias {
            *x += b[i / inner % channels];
        }
        if let Some(a) = act {
            *x = activate(a, *x);
        }
        if let Some((a, h)) = backward {
            *x *= activation_grad_from_output(a, h[i]);
        }
    }
}

// Tolerances: inputs and weights are uniform in ±1, so each output is a sum of K products of
// size ≤ 1 (K ≤ 5·16 = 80 here, or rows·OH·OW ≤ 2·81 = 162 for the weight gradient). The GPU
// and the CPU sum in different orders; each f32 sum is within K·2⁻²⁴·Σ|terms| ≤ 162²·6e-8 ≈ 1.6e-3
// of exact in the worst case and ~√K·ε·Σ|terms| (≈ 1e-5) typically, so atol 2e-4 + rtol 1e-4.
const ATOL: f32 = 2e-4;
const RTOL: f32 = 1e-4;

#[test]
fn conv_gather_scatter_and_weight_gradient_match_their_cpu_twins() {
    let ctx = gpu();
    let k = Kernels::new(&ctx, &Likelihood::Bernoulli).expect("kernels");
    let mut r = rng(11);
    let rows = 2;
    let acts = [Activation::Tanh, Activation::Relu, Activation::Sigmoid];
    for (gi, g) in geometries().into_iter().enumerate() {
        let act = acts[gi % 3];
        let (image_n, result_n) = (rows * g.full_len(), rows * g.reduced_len());
        // The flat parameter buffer: padding, the weights, then the bias of the output side.
        let w_off = 5;
        let params = uniform(
            &mut r,
            w_off + g.weight_len() + g.full[0].max(g.reduced[0]),
            -1.0,
            1.0,
        );
        let (weights, bias) = params[w_off..].split_at(g.weight_len());
        let image = uniform(&mut r, image_n, -1.0, 1.0);
        let result = uniform(&mut r, result_n, -1.0, 1.0);
        let aux_image = uniform(&mut r, image_n, 0.05, 0.95);
        let aux_result = uniform(&mut r, result_n, 0.05, 0.95);
        let gparams = buf(&ctx, &params);
        let b_off = w_off + g.weight_len();
        let what = format!("{g:?}");

        // Gather with bias and activation (a conv2d layer's forward pass).
        let p = ConvParams::new(
            &g,
            ConvMode::Gather,
            rows,
            w_off,
            b_off,
            epilogue::BIAS | epilogue::activate(Some(act)),
        );
        let (gimage, gresult) = (buf(&ctx, &image), buf(&ctx, &result));
        let dest = storage_zeroed(&ctx, "dest", result_n);
        let got = run_conv(&ctx, &k, &p, [&gimage, &gparams, &gimage, &dest], result_n);
        let mut want = vec![0.0; result_n];
        conv_gather(&g, weights, &image, rows, &mut want);
        let inner = g.reduced[1] * g.reduced[2];
        epilogue_cpu(&mut want, g.reduced[0], inner, Some(bias), Some(act), None);
        assert_close(&format!("gather {what}"), &got, &want, ATOL, RTOL);

        // Gather with the activation's backward (a transposed conv's input gradient).
        let p = ConvParams::new(
            &g,
            ConvMode::Gather,
            rows,
            w_off,
            0,
            epilogue::activation_backward(Some(act)),
        );
        let gaux = buf(&ctx, &aux_result);
        let got = run_conv(&ctx, &k, &p, [&gimage, &gparams, &gaux, &dest], result_n);
        let mut want = vec![0.0; result_n];
        conv_gather(&g, weights, &image, rows, &mut want);
        epilogue_cpu(&mut want, 1, 1, None, None, Some((act, &aux_result)));
        assert_close(&format!("gather, backward {what}"), &got, &want, ATOL, RTOL);

        // Scatter with bias and activation (a transposed conv's forward pass) ...
        let p = ConvParams::new(
            &g,
            ConvMode::Scatter,
            rows,
            w_off,
            b_off,
            epilogue::BIAS | epilogue::activate(Some(act)),
        );
        let dest = storage_zeroed(&ctx, "dest", image_n);
        let got = run_conv(&ctx, &k, &p, [&gresult, &gparams, &gresult, &dest], image_n);
        let mut want = vec![0.0; image_n];
        conv_scatter(&g, weights, &result, rows, &mut want);
        let inner = g.full[1] * g.full[2];
        epilogue_cpu(&mut want, g.full[0], inner, Some(bias), Some(act), None);
        assert_close(&format!("scatter {what}"), &got, &want, ATOL, RTOL);

        // ... and with the activation's backward (a conv2d layer's input gradient).
        let p = ConvParams::new(
            &g,
            ConvMode::Scatter,
            rows,
            w_off,
            0,
            epilogue::activation_backward(Some(act)),
        );
        let gaux = buf(&ctx, &aux_image);
        let got = run_conv(&ctx, &k, &p, [&gresult, &gparams, &gaux, &dest], image_n);
        let mut want = vec![0.0; image_n];
        conv_scatter(&g, weights, &result, rows, &mut want);
        epilogue_cpu(&mut want, 1, 1, None, None, Some((act, &aux_image)));
        assert_close(
            &format!("scatter, backward {what}"),
            &got,
            &want,
            ATOL,
            RTOL,
        );

        // The weight gradient, written at w_off of a gradient buffer whose other values stay.
        let p = ConvParams::new(&g, ConvMode::WeightGrad, rows, w_off, 0, 0);
        let grads0 = vec![7.0f32; w_off + g.weight_len() + 3];
        let ggrads = buf(&ctx, &grads0);
        let got = run_conv(
            &ctx,
            &k,
            &p,
            [&gimage, &gresult, &gimage, &ggrads],
            grads0.len(),
        );
        let mut want = grads0.clone();
        conv_weight_grad(
            &g,
            &image,
            &result,
            rows,
            &mut want[w_off..w_off + g.weight_len()],
        );
        assert_close(&format!("weight gradient {what}"), &got, &want, 5e-4, RTOL);
    }
}

#[test]
fn channel_sum_matches_the_cpu_colsum() {
    let ctx = gpu();
    let k = Kernels::new(&ctx, &Likelihood::Bernoulli).expect("kernels");
    let mut r = rng(12);
    // 300 positions per channel: more than one pass of the 256 threads.
    let (rows, channels, inner, out_off) = (3usize, 5usize, 300usize, 2usize);
    let dy = uniform(&mut r, rows * channels * inner, -1.0, 1.0);
    let gout = storage_zeroed(&ctx, "out", out_off + channels);
    let cp = ColsumParams {
        rows: rows as u32,
        cols: channels as u32,
        in_rs: channels as u32,
        out_off: out_off as u32,
        inner: inner as u32,
        _pad: [0; 3],
    };
    let d = Dispatch::new(
        &ctx,
        &k.channel_sum,
        0,
        &cp,
        &[(1, &buf(&ctx, &dy)), (2, &gout)],
        grid_1d(channels, 1),
    );
    run(&ctx, &[&d]).expect("dispatch");
    let mut want = vec![0.0f32; channels];
    colsum(&dy, rows, channels, inner, &mut want);
    // 900 terms in ±1 per channel, summed in different orders: |error| ≲ 900·6e-8·30 ≈ 2e-3 at
    // worst (√900·ε·Σ|terms| ≈ 5e-5 typically).
    assert_close(
        "channel sum",
        &ctx.read_f32(&gout, 0, out_off + channels).unwrap()[out_off..],
        &want,
        5e-4,
        1e-4,
    );
}

/// A 1×1 convolution of one 2048×2050 image: 4,198,400 output positions are 65,600 tiles of 64,
/// more than the 65,535 workgroups one dimension allows, so the tiles spill into y.
#[test]
fn conv_covers_more_than_65535_tiles() {
    let ctx = gpu();
    let k = Kernels::new(&ctx, &Likelihood::Bernoulli).expect("kernels");
    let g = ConvGeometry {
        full: [1, 2048, 2050],
        reduced: [1, 2048, 2050],
        kernel: 1,
        stride: 1,
        padding: 0,
    };
    let n = g.full_len();
    let image: Vec<f32> = (0..n).map(|i| (i % 1000) as f32 / 1000.0).collect();
    let params = [0.0f32, 2.0, -1.0];
    let p = ConvParams::new(&g, ConvMode::Gather, 1, 1, 2, epilogue::BIAS);
    assert!(
        p.groups()[1] > 1,
        "the test must spill past 65,535 workgroups"
    );
    let gimage = buf(&ctx, &image);
    let dest = storage_zeroed(&ctx, "dest", n);
    let got = run_conv(
        &ctx,
        &k,
        &p,
        [&gimage, &buf(&ctx, &params), &gimage, &dest],
        n,
    );
    let want: Vec<f32> = image.iter().map(|x| 2.0 * x - 1.0).collect();
    assert_close("1×1 conv over 65,600 tiles", &got, &want, 1e-6, 0.0);
}
