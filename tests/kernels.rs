//! Every WGSL kernel against its CPU twin on small random shapes, including sizes that are not
//! multiples of the tile or workgroup size. Runs on the real adapter (lavapipe in CI).

mod common;

use bytemuck::{cast_slice, Pod};
use common::*;
use vae_gpu::cpu::layers::colsum;
use vae_gpu::cpu::reference::{
    iwae_weights, latent_backward, sample_latent, scale_rows, RowWeights,
};
use vae_gpu::cpu::{gemm, View};
use vae_gpu::data::batch::{gather_batch, Representation};
use vae_gpu::data::{DataSet, PIXELS};
use vae_gpu::family::activation::{activate, activation_grad_from_output};
use vae_gpu::gpu::kernels::*;
use vae_gpu::gpu::GpuContext;
use vae_gpu::rng::{noise_batch, stream};
use vae_gpu::spec::{members, Activation, Likelihood, ModelSpec};
use vae_gpu::training::optim::{Optimizer, OptimizerConfig, OptimizerKind};

fn buf<T: Pod>(ctx: &GpuContext, data: &[T]) -> wgpu::Buffer {
    storage_init(ctx, "test", cast_slice(data))
}

fn state_buf(ctx: &GpuContext, s: StepState) -> wgpu::Buffer {
    storage_init(ctx, "state", bytemuck::bytes_of(&s))
}

fn dispatch<P: Pod>(
    ctx: &GpuContext,
    pl: &wgpu::ComputePipeline,
    ub: u32,
    p: &P,
    bufs: &[(u32, &wgpu::Buffer)],
    groups: [u32; 3],
) {
    let d = Dispatch::new(ctx, pl, ub, p, bufs, groups);
    run(ctx, &[&d]).expect("dispatch");
}

fn read(ctx: &GpuContext, b: &wgpu::Buffer, n: usize) -> Vec<f32> {
    ctx.read_f32(b, 0, n).expect("read back")
}

fn activation(code: u32) -> Option<Activation> {
    [Activation::Tanh, Activation::Relu, Activation::Sigmoid]
        .into_iter()
        .find(|a| a.code() == code)
}

/// CPU twin of the matmul kernel including its epilogue.
#[allow(clippy::too_many_arguments)]
fn matmul_cpu(
    p: &MatmulParams,
    a: &[f32],
    b: &[f32],
    bias: &[f32],
    aux: &[f32],
    c: &[f32],
) -> Vec<f32> {
    let (m, n, k) = (p.m as usize, p.n as usize, p.k as usize);
    let mut prod = vec![0.0f32; m * n];
    let av = View {
        data: a,
        off: p.a_off as usize,
        rs: p.a_rs as usize,
        cs: p.a_cs as usize,
    };
    let bv = View {
        data: b,
        off: p.b_off as usize,
        rs: p.b_rs as usize,
        cs: p.b_cs as usize,
    };
    gemm(m, k, n, av, bv, &mut prod, 0, n, false);
    let mut out = c.to_vec();
    for i in 0..m {
        for j in 0..n {
            let mut v = prod[i * n + j];
            if p.flags & epilogue::BIAS != 0 {
                v += bias[p.bias_off as usize + j];
            }
            if let Some(act) = activation((p.flags >> 1) & 3) {
                v = activate(act, v);
            }
            if let Some(act) = activation((p.flags >> 3) & 3) {
                let h = aux[p.aux_off as usize + i * p.aux_rs as usize + j];
                v *= activation_grad_from_output(act, h);
            }
            let ci = p.c_off as usize + i * p.c_rs as usize + j;
            if p.flags & epilogue::ACCUMULATE != 0 {
                v += out[ci];
            }
            out[ci] = v;
        }
    }
    out
}

#[test]
fn matmul_matches_cpu_for_every_transpose_and_epilogue() {
    let ctx = gpu();
    let k = Kernels::new(&ctx, &Likelihood::Bernoulli).expect("kernels");
    let mut r = rng(1);
    let shapes = [
        (1, 1, 1),
        (3, 5, 7),
        (17, 33, 65),
        (64, 64, 16),
        (65, 130, 31),
        (100, 500, 784),
    ];
    for &(m, n, kk) in &shapes {
        // (name, a transposed?, b transposed?, flags)
        let variants = [
            (
                "X·Wᵀ+b, tanh",
                false,
                true,
                epilogue::BIAS | epilogue::activate(Some(Activation::Tanh)),
            ),
            (
                "X·Wᵀ+b, relu",
                false,
                true,
                epilogue::BIAS | epilogue::activate(Some(Activation::Relu)),
            ),
            (
                "X·Wᵀ+b, sigmoid",
                false,
                true,
                epilogue::BIAS | epilogue::activate(Some(Activation::Sigmoid)),
            ),
            (
                "dY·W, tanh'",
                false,
                false,
                epilogue::activation_backward(Some(Activation::Tanh)),
            ),
            (
                "dY·W, relu'",
                false,
                false,
                epilogue::activation_backward(Some(Activation::Relu)),
            ),
            (
                "dY·W, sigmoid'",
                false,
                false,
                epilogue::activation_backward(Some(Activation::Sigmoid)),
            ),
            ("dYᵀ·X", true, false, 0),
            (
                "X·Wᵀ+b accumulate",
                false,
                true,
                epilogue::BIAS | epilogue::ACCUMULATE,
            ),
        ];
        for (name, at, bt, flags) in variants {
            let (a_off, b_off, c_off, bias_off, aux_off) = (3usize, 5usize, 2usize, 1usize, 4usize);
            let a = uniform(&mut r, a_off + m * kk, -1.0, 1.0);
            let b = uniform(&mut r, b_off + kk * n, -1.0, 1.0);
            let bias = uniform(&mut r, bias_off + n, -1.0, 1.0);
            let aux = uniform(&mut r, aux_off + m * n, -1.0, 1.0);
            let c0 = uniform(&mut r, c_off + m * n, -1.0, 1.0);
            let (a_rs, a_cs) = if at { (1, m) } else { (kk, 1) };
            let (b_rs, b_cs) = if bt { (1, kk) } else { (n, 1) };
            let p = MatmulParams {
                m: m as u32,
                n: n as u32,
                k: kk as u32,
                flags,
                a_off: a_off as u32,
                a_rs: a_rs as u32,
                a_cs: a_cs as u32,
                b_off: b_off as u32,
                b_rs: b_rs as u32,
                b_cs: b_cs as u32,
                c_off: c_off as u32,
                c_rs: n as u32,
                bias_off: bias_off as u32,
                aux_off: aux_off as u32,
                aux_rs: n as u32,
                _pad: 0,
            };
            let (ga, gb, gbias, gaux, gc) = (
                buf(&ctx, &a),
                buf(&ctx, &b),
                buf(&ctx, &bias),
                buf(&ctx, &aux),
                buf(&ctx, &c0),
            );
            dispatch(
                &ctx,
                &k.matmul,
                0,
                &p,
                &[(1, &ga), (2, &gb), (3, &gbias), (4, &gaux), (5, &gc)],
                p.groups(),
            );
            let got = read(&ctx, &gc, c0.len());
            let want = matmul_cpu(&p, &a, &b, &bias, &aux, &c0);
            // Sums of k products of O(1) terms: rounding grows like sqrt(k)·ε.
            assert_close(
                &format!("matmul {name} {m}x{n}x{kk}"),
                &got,
                &want,
                1e-5 * (kk as f32).sqrt() * 4.0,
                1e-4,
            );
        }
    }
}

/// Every latent combination the spec allows: posterior × prior × KL mode.
fn latent_specs() -> Vec<ModelSpec> {
    members::latents()
        .into_iter()
        .map(|(posterior, prior, kl)| ModelSpec {
            posterior,
            prior,
            kl,
            ..ModelSpec::mnist(8, 1)
        })
        .collect()
}

#[test]
fn latent_sample_and_backward_match_cpu_for_every_family() {
    let ctx = gpu();
    let k = Kernels::new(&ctx, &Likelihood::Bernoulli).expect("kernels");
    let mut r = rng(2);
    let seed = 0x1234_5678_9abc_def0u64;
    for base in latent_specs() {
        for &(batch, samples, dz) in &[(7usize, 3usize, 5usize), (1, 1, 1), (65, 2, 2), (3, 1, 9)] {
            let spec = ModelSpec {
                latent: dz,
                ..base.clone()
            };
            let rows = batch * samples;
            let mut enc = uniform(&mut r, batch * 2 * dz, -2.0, 2.0);
            enc[dz] = 30.0; // a large scale head must stay finite
            for (st, step, b_idx) in [
                (stream::TRAIN_NOISE, 11u32, 0u32),
                (stream::EVAL_NOISE, 999, 4),
            ] {
                let state = state_buf(
                    &ctx,
                    StepState {
                        step,
                        batch: b_idx,
                        epoch: 0,
                        n_valid: 0,
                    },
                );
                let scale = 1.0 / rows as f32;
                let p = LatentParams::new(&spec, rows, batch, st, seed, scale);
                let genc = buf(&ctx, &enc);
                let (gz, geps, gpmq) = (
                    storage_zeroed(&ctx, "z", rows * dz),
                    storage_zeroed(&ctx, "eps", rows * dz),
                    storage_zeroed(&ctx, "pmq", rows),
                );
                dispatch(
                    &ctx,
                    &k.latent_forward,
                    0,
                    &p,
                    &[(1, &state), (2, &genc), (3, &gz), (4, &geps), (5, &gpmq)],
                    grid_1d(rows, 64),
                );
                let counter = if st == stream::TRAIN_NOISE {
                    step
                } else {
                    b_idx
                };
                let eps = noise_batch(spec.posterior, seed, st, counter, rows, dz);
                let (mut z, mut pmq) = (vec![0.0f32; rows * dz], vec![0.0f32; rows]);
                sample_latent(&spec, batch, &enc, &eps, &mut z, &mut pmq);
                let what = format!(
                    "{:?} q, {:?} prior, {:?} KL, dz {dz}",
                    spec.posterior, spec.prior, spec.kl
                );
                // ε: the same Philox words; ln/cos/sin differ between devices by a few ulps.
                assert_close(
                    &format!("eps, {what}"),
                    &read(&ctx, &geps, rows * dz),
                    &eps,
                    1e-5,
                    1e-5,
                );
                // z = μ + s·ε with s up to e^30 (Laplace head 30): relative error of exp, ~1e-6.
                assert_close(
                    &format!("z, {what}"),
                    &read(&ctx, &gz, rows * dz),
                    &z,
                    1e-4,
                    1e-4,
                );
                // A sum of Dz ≤ 9 terms each with an O(1) rounding of ~1e-6·|term|.
                assert_close(
                    &format!("log p(z) - log q(z|x), {what}"),
                    &read(&ctx, &gpmq, rows),
                    &pmq,
                    1e-3,
                    1e-4,
                );

                let dz_dec = uniform(&mut r, rows * dz, -1.0, 1.0);
                let gdz = buf(&ctx, &dz_dec);
                // Every row weighted by `scale` (the ELBO), or each by its own weight (IWAE's ŵ/B).
                let row_weights = uniform(&mut r, rows, 0.0, 0.5);
                let gw = buf(&ctx, &row_weights);
                for per_row in [false, true] {
                    let gdenc = storage_zeroed(&ctx, "denc", batch * 2 * dz);
                    let pb = LatentParams {
                        per_row: per_row as u32,
                        ..p
                    };
                    dispatch(
                        &ctx,
                        &k.latent_backward,
                        0,
                        &pb,
                        &[
                            (2, &genc),
                            (3, &gz),
                            (4, &geps),
                            (6, &gdz),
                            (7, &gdenc),
                            (8, &gw),
                        ],
                        grid_1d(batch * dz, 64),
                    );
                    let mut denc = vec![0.0f32; batch * 2 * dz];
                    let weights = if per_row {
                        RowWeights::PerRow(&row_weights[..])
                    } else {
                        RowWeights::Uniform(scale)
                    };
                    latent_backward(
                        &spec, batch, samples, weights, &enc, &z, &eps, &dz_dec, &mut denc,
                    );
                    assert_close(
                        &format!("d[mu, head], {what}, per-row weights {per_row}"),
                        &read(&ctx, &gdenc, denc.len()),
                        &denc,
                        1e-4,
                        1e-3,
                    );
                }
            }
        }
    }
}

#[test]
fn colsum_and_elbo_sum_match_cpu() {
    let ctx = gpu();
    let k = Kernels::new(&ctx, &Likelihood::Bernoulli).expect("kernels");
    let mut r = rng(4);
    let (rows, cols, out_off) = (13usize, 70usize, 5usize);
    let dy = uniform(&mut r, rows * cols, -1.0, 1.0);
    let gdy = buf(&ctx, &dy);
    let gout = storage_zeroed(&ctx, "out", out_off + cols);
    let cp = ColsumParams {
        rows: rows as u32,
        cols: cols as u32,
        in_rs: cols as u32,
        out_off: out_off as u32,
        inner: 1,
        _pad: [0; 3],
    };
    dispatch(
        &ctx,
        &k.colsum,
        0,
        &cp,
        &[(1, &gdy), (2, &gout)],
        grid_1d(cols, 64),
    );
    let mut want = vec![0.0f32; cols];
    colsum(&dy, rows, cols, 1, &mut want);
    assert_close(
        "colsum",
        &read(&ctx, &gout, out_off + cols)[out_off..],
        &want,
        1e-5,
        1e-5,
    );

    // ELBO sum of batch 2 of a pass over 23 images with B = 10, L = 3: only 3 images are real.
    let (batch, samples) = (10usize, 3usize);
    let rows = batch * samples;
    let ll = uniform(&mut r, rows, -200.0, -100.0);
    let pmq = uniform(&mut r, rows, -5.0, 5.0);
    let state = state_buf(
        &ctx,
        StepState {
            step: 0,
            batch: 2,
            epoch: 0,
            n_valid: 23,
        },
    );
    let sums = storage_zeroed(&ctx, "sums", 4);
    let lp = LossParams {
        rows: rows as u32,
        batch: batch as u32,
        _pad: [0; 2],
    };
    let (gll, gpmq) = (buf(&ctx, &ll), buf(&ctx, &pmq));
    dispatch(
        &ctx,
        &k.elbo_sum,
        5,
        &lp,
        &[(6, &state), (7, &gll), (8, &gpmq), (9, &sums)],
        [1, 1, 1],
    );
    let mut want = 0.0f32;
    for s in 0..samples {
        for b in 0..3 {
            want += (ll[s * batch + b] + pmq[s * batch + b]) / samples as f32;
        }
    }
    assert_close("elbo_sum", &read(&ctx, &sums, 3)[2..3], &[want], 1e-3, 1e-5);
}

/// Every gather mode against `gather_batch`: MNIST pixels thresholded, stochastically binarized,
/// scaled, dequantized and at their bin middles, and real-valued rows of an odd width (3), including a padded final batch.
#[test]
fn gather_matches_the_cpu_for_every_mode() {
    let ctx = gpu();
    let k = Kernels::new(&ctx, &Likelihood::Bernoulli).expect("kernels");
    let mut r = rng(5);
    let n = 10usize;
    let images: Vec<u8> = uniform(&mut r, n * PIXELS, 0.0, 256.0)
        .iter()
        .map(|&v| v as u8)
        .collect();
    let pixels = DataSet::pixels(PIXELS, images, vec![0; n]);
    let real = DataSet::real(3, uniform(&mut r, n * 3, -2.0, 2.0), vec![]);
    let index: Vec<u32> = vec![3, 7, 1, 0, 9, 2, 8, 5, 4, 6];
    let batch = 4usize;
    let seed = 77u64;
    let cases = [
        (&pixels, Representation::Threshold),
        (&pixels, Representation::Stochastic),
        (&pixels, Representation::Grayscale),
        (&pixels, Representation::Dequantize),
        (&pixels, Representation::Midpoint),
        (&real, Representation::Grayscale),
    ];
    for (set, mode) in cases {
        let d = set.dim;
        let words = if set.is_image() { d / 4 } else { d };
        for batch_idx in [0u32, 2] {
            // batch 2 covers positions 8..12 of 10: the last two rows are padding
            let state = state_buf(
                &ctx,
                StepState {
                    step: 0,
                    batch: batch_idx,
                    epoch: 3,
                    n_valid: n as u32,
                },
            );
            let gdata = storage_init(&ctx, "data", set.values.device_bytes());
            let gidx = buf(&ctx, &index);
            let gx = storage_zeroed(&ctx, "x", batch * d);
            let p = GatherParams {
                batch: batch as u32,
                words: words as u32,
                n_index: n as u32,
                pixels: mode.code(&set.values),
                seed_lo: seed as u32,
                seed_hi: 0,
                _pad: [0; 2],
            };
            dispatch(
                &ctx,
                &k.gather,
                0,
                &p,
                &[(1, &state), (2, &gdata), (3, &gidx), (4, &gx)],
                grid_1d(batch * words, 64),
            );
            let mut want = vec![0.0f32; batch * d];
            gather_batch(
                set,
                &index,
                batch_idx as usize * batch,
                batch,
                mode,
                seed,
                3,
                &mut want,
            );
            // A copy, a comparison, a division by 255, or an f32 sum over a power of two on both
            // sides: bit-identical.
            assert_close(
                &format!("gather {mode:?} of {d}-value rows"),
                &read(&ctx, &gx, batch * d),
                &want,
                0.0,
                0.0,
            );
        }
    }
}

/// Each optimizer entry of optimizer.wgsl against `Optimizer::step`, from a mid-run state (step
/// 4, non-zero moments) on 1000 parameters. Both are a handful of f32 operations per element, so
/// they agree to a few ulps: |g − r| ≤ 1e-6 + 1e-5·|r|.
#[test]
fn optimizer_updates_match_the_host_optimizer() {
    let ctx = gpu();
    let k = Kernels::new(&ctx, &Likelihood::Bernoulli).expect("kernels");
    let n = 1000usize;
    for kind in [OptimizerKind::Adam, OptimizerKind::Adagrad] {
        let mut r = rng(6);
        let cfg = OptimizerConfig::new(kind, Some(1e-2));
        let mut host = Optimizer::new(cfg, n);
        host.m = uniform(&mut r, n, -0.1, 0.1);
        host.v = uniform(&mut r, n, 0.0, 0.01);
        host.t = 4;
        let mut params = uniform(&mut r, n, -1.0, 1.0);
        let grads = uniform(&mut r, n, -1.0, 1.0);
        let (gp, gg, gm, gv) = (
            buf(&ctx, &params),
            buf(&ctx, &grads),
            buf(&ctx, &host.m),
            buf(&ctx, &host.v),
        );
        let state = state_buf(
            &ctx,
            StepState {
                step: 4,
                batch: 0,
                epoch: 0,
                n_valid: 0,
            },
        );
        let uniforms = OptimizerParams::new(&cfg, n);
        let (pipeline, bindings): (_, Vec<(u32, &wgpu::Buffer)>) = match kind {
            OptimizerKind::Adam => (
                &k.adam,
                vec![(1, &state), (2, &gp), (3, &gg), (4, &gm), (5, &gv)],
            ),
            OptimizerKind::Adagrad => (&k.adagrad, vec![(2, &gp), (3, &gg), (5, &gv)]),
        };
        dispatch(&ctx, pipeline, 0, &uniforms, &bindings, grid_1d(n, 256));
        host.step(&mut params, &grads);
        let what = |s: &str| format!("{kind:?} {s}");
        assert_close(&what("params"), &read(&ctx, &gp, n), &params, 1e-6, 1e-5);
        assert_close(&what("m"), &read(&ctx, &gm, n), &host.m, 1e-7, 1e-5);
        assert_close(&what("v"), &read(&ctx, &gv, n), &host.v, 1e-8, 1e-5);
    }
}

fn likelihood_members() -> Vec<Likelihood> {
    // Every member, plus the categorical's extremes (2 bins, and 256: one bin per byte value).
    let mut v = members::likelihoods();
    v.extend([
        Likelihood::Categorical { bins: 2 },
        Likelihood::Categorical { bins: 256 },
    ]);
    v
}

/// Pixel values the member sees: {0, 1} for binary members, byte/255 otherwise (with the ends 0
/// and 1, where Beta's squeeze and the categorical bins matter).
fn pixels_for(lik: &Likelihood, r: &mut rand::rngs::StdRng, n: usize) -> Vec<f32> {
    use rand::RngExt;
    (0..n)
        .map(|i| {
            let byte = match i % 5 {
                0 => 0,
                1 => 255,
                _ => r.random_range(0..256u32),
            };
            lik.default_representation().pixel_value(byte as u8, 0.5)
        })
        .collect()
}

#[test]
fn likelihood_rows_and_natural_parameters_match_cpu_for_every_member() {
    use vae_gpu::family::likelihood::{log_prob_rows, natural_rows, RowGrads, Rows};
    let ctx = gpu();
    let mut r = rng(9);
    for lik in likelihood_members() {
        let spec = ModelSpec {
            likelihood: lik,
            ..ModelSpec::mnist(3, 2)
        };
        let k = Kernels::new(&ctx, &lik).expect("kernels");
        let lay = spec.layout();
        let (d, c) = (spec.input, lik.channels());
        let params = uniform(&mut r, lay.total, -1.5, 1.5);
        let free = lay.free.map(|f| &params[f.offset..f.offset + f.len]);
        // Training form: 5 rows over 2 data rows, no mask, weight −1/5. SVI form: 3 rows, each its
        // own masked data row, weight 1.
        for (rows, batch, masked, scale) in [(5usize, 2usize, false, -0.2f32), (3, 3, true, 1.0)] {
            let x = pixels_for(&lik, &mut r, batch * d);
            let mask: Vec<f32> = (0..batch * d)
                .map(|i| ((i * 7) % 3 != 0) as u8 as f32)
                .collect();
            let outputs = uniform(&mut r, rows * c * d, -4.0, 4.0);
            let lp = LikelihoodParams::new(&spec, rows, batch, scale, masked);
            let (gx, gm, go, gp) = (
                buf(&ctx, &x),
                buf(&ctx, &mask),
                buf(&ctx, &outputs),
                buf(&ctx, &params),
            );
            let (gdo, gdf, gll) = (
                storage_zeroed(&ctx, "d_outputs", rows * c * d),
                storage_zeroed(&ctx, "d_free", rows * d),
                storage_zeroed(&ctx, "loglik", rows),
            );
            dispatch(
                &ctx,
                &k.log_prob_rows,
                0,
                &lp,
                &[
                    (1, &gx),
                    (2, &gm),
                    (3, &go),
                    (4, &gp),
                    (5, &gdo),
                    (6, &gdf),
                    (7, &gll),
                ],
                grid_1d(rows, 1),
            );
            let io = Rows {
                dim: d,
                batch,
                x: &x,
                mask: masked.then_some(&mask[..]),
                outputs: &outputs,
                free,
            };
            let (mut ll, mut d_out, mut d_free) = (
                vec![0.0f32; rows],
                vec![0.0f32; rows * c * d],
                vec![0.0f32; rows * d],
            );
            let grads = RowGrads {
                scale,
                d_outputs: &mut d_out,
                d_free: free.map(|_| &mut d_free[..]),
            };
            log_prob_rows(&lik, &io, &mut ll, Some(grads));
            let what = format!("{lik:?}, rows {rows}, masked {masked}");
            // A row sums 784 terms of magnitude up to ~|log p| ≈ 20 (Beta and Gaussian with
            // σ = 0.1 reach more), each with f32 rounding ~1e-6 relative, including log Γ's stated
            // 4ε·(|log Γ| + terms): 784 × 20 × 1e-6 ≈ 2e-2 absolute at worst; the relative part
            // covers large rows.
            assert_close(
                &format!("loglik, {what}"),
                &read(&ctx, &gll, rows),
                &ll,
                2e-2,
                1e-4,
            );
            // Per-pixel gradients: a few operations each, digamma's 16ε bound for Beta.
            assert_close(
                &format!("d outputs, {what}"),
                &read(&ctx, &gdo, rows * c * d),
                &d_out,
                1e-5,
                1e-3,
            );
            if free.is_some() {
                assert_close(
                    &format!("d free, {what}"),
                    &read(&ctx, &gdf, rows * d),
                    &d_free,
                    1e-5,
                    1e-3,
                );
            }
        }
        // Natural parameters η_s and A per (row, pixel) for the log-likelihood matrices.
        let rows = 3;
        let outputs = uniform(&mut r, rows * c * d, -4.0, 4.0);
        let (eta_cpu, a_cpu) = natural_rows(&lik, d, &outputs, free);
        let s = eta_cpu.len();
        let lp = LikelihoodParams::new(&spec, rows, rows, 1.0, false);
        let (go, gp) = (buf(&ctx, &outputs), buf(&ctx, &params));
        let (geta, ga) = (
            storage_zeroed(&ctx, "eta", s * rows * d),
            storage_zeroed(&ctx, "a", rows * d),
        );
        dispatch(
            &ctx,
            &k.natural_params,
            0,
            &lp,
            &[(3, &go), (4, &gp), (8, &geta), (9, &ga)],
            grid_1d(rows * d, 64),
        );
        let eta_gpu = read(&ctx, &geta, s * rows * d);
        for (i, e) in eta_cpu.iter().enumerate() {
            assert_close(
                &format!("η_{i}, {lik:?}"),
                &eta_gpu[i * rows * d..(i + 1) * rows * d],
                e,
                1e-5,
                1e-4,
            );
        }
        // A contains log Γ(α) + log Γ(β) − log Γ(α + β) for Beta: the stated 4ε·(|log Γ| + terms).
        assert_close(
            &format!("A, {lik:?}"),
            &read(&ctx, &ga, rows * d),
            &a_cpu,
            1e-4,
            1e-4,
        );
    }
}

/// IWAE's row weights (a softmax over each image's samples, over B) and their application to
/// per-row gradients, against the CPU twins, on an odd shape with log-weights far apart (the
/// softmax must subtract the maximum) and more than 64 images (several workgroups).
#[test]
fn iwae_weights_and_row_scaling_match_cpu() {
    let ctx = gpu();
    let k = Kernels::new(&ctx, &Likelihood::Bernoulli).expect("kernels");
    let mut r = rng(9);
    let (batch, samples, width) = (67usize, 5usize, 13usize);
    let rows = batch * samples;
    let loglik = uniform(&mut r, rows, -900.0, -100.0);
    let pmq = uniform(&mut r, rows, -20.0, 5.0);
    let (gl, gp) = (buf(&ctx, &loglik), buf(&ctx, &pmq));
    let gw = storage_zeroed(&ctx, "weights", rows);
    let ip = IwaeParams {
        batch: batch as u32,
        samples: samples as u32,
        _pad: [0; 2],
    };
    dispatch(
        &ctx,
        &k.iwae_weights,
        0,
        &ip,
        &[(1, &gl), (2, &gp), (3, &gw)],
        grid_1d(batch, 64),
    );
    let mut want = vec![0.0f32; rows];
    iwae_weights(&loglik, &pmq, batch, samples, &mut want);
    // exp of differences up to 800 nats (underflowing to 0 on both sides) and one division:
    // a few ulps of weights that are at most 1/B.
    let got = read(&ctx, &gw, rows);
    assert_close("iwae weights", &got, &want, 1e-7, 1e-5);
    let total: f32 = want.iter().sum();
    assert!((total - 1.0).abs() < 1e-5, "weights sum to {total}, not 1");

    let target = uniform(&mut r, rows * width, -3.0, 3.0);
    let gt = buf(&ctx, &target);
    let sp = ScaleRowsParams {
        rows: rows as u32,
        width: width as u32,
        _pad: [0; 2],
    };
    dispatch(
        &ctx,
        &k.scale_rows,
        4,
        &sp,
        &[(5, &gw), (6, &gt)],
        grid_1d(rows * width, 64),
    );
    let mut scaled = target.clone();
    scale_rows(&mut scaled, width, &got);
    // One f32 multiplication of the same operands: bit-identical.
    assert_close(
        "scaled rows",
        &read(&ctx, &gt, rows * width),
        &scaled,
        0.0,
        0.0,
    );
}
