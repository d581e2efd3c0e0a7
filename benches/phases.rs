//! Napkin math for one training step of the default model (Dh = 500, Dz = 2, B = 100, L = 1) on
//! the CPU path, as llm.c does for its kernels: each phase's time, its work (FLOPs of a product,
//! bytes of an element-wise pass) and the rate it achieves, against the machine's GEMM rate
//! measured here (a 2048³ sgemm and each of the step's five big products, through the same
//! matrixmultiply the step uses). With an adapter (`NODEVICE_SELECT=1` and lavapipe count), the
//! whole GPU step is timed too; kernels are not timed one by one (no timestamp queries used).
//!
//! `cargo bench --bench phases` (threads: `MATMUL_NUM_THREADS`, default every core).

use std::hint::black_box;
use std::sync::Arc;
use std::time::Instant;

use vae_gpu::cpu::layers;
use vae_gpu::cpu::reference::{latent_backward, sample_latent, step, RowWeights, Workspace};
use vae_gpu::cpu::{gemm, network, par, View};
use vae_gpu::data::batch::{epoch_permutation, gather_batch, Representation};
use vae_gpu::data::{mnist, DataSource};
use vae_gpu::device::{gpu_context, DeviceKind};
use vae_gpu::family::activation::activation_grad_from_output;
use vae_gpu::family::activation::Activation;
use vae_gpu::family::likelihood::{log_prob_rows, RowGrads, Rows};
use vae_gpu::gpu::trainer::{GpuBackend, OptimizerOn};
use vae_gpu::rng::{noise_batch, stream};
use vae_gpu::spec::layers::conv_arch;
use vae_gpu::spec::{init_params, GaussianMean, Layer, LayerKind, Likelihood, ModelSpec, Variance};
use vae_gpu::training::backend::{Backend, Objective, Splits, TrainConfig};
use vae_gpu::training::optim::{Optimizer, OptimizerConfig};

const B: usize = 100;

/// Median seconds of `reps` calls of `f` (after two warm-up calls), on the CPU path's pool as the
/// trainer runs its steps (so that a phase's splits are the cheap hand-offs they are in training).
fn time(reps: usize, f: impl FnMut() + Send) -> f64 {
    par::install(|| time_here(reps, f))
}

/// [`time`] on the calling thread (the GPU's epochs).
fn time_here(reps: usize, mut f: impl FnMut()) -> f64 {
    f();
    f();
    let mut t: Vec<f64> = (0..reps)
        .map(|_| {
            let s = Instant::now();
            f();
            s.elapsed().as_secs_f64()
        })
        .collect();
    t.sort_by(|a, b| a.partial_cmp(b).unwrap());
    t[reps / 2]
}

/// Seconds of one C[m×n] = A[m×k]·B[k×n] (row-major operands, or transposed as the step has them).
fn gemm_time(m: usize, k: usize, n: usize, ta: bool, tb: bool, reps: usize) -> f64 {
    let a = vec![0.5f32; m * k];
    let b = vec![0.25f32; k * n];
    let mut c = vec![0.0f32; m * n];
    let va = if ta {
        View::transposed(&a, 0, m)
    } else {
        View::rows(&a, 0, k)
    };
    let vb = if tb {
        View::transposed(&b, 0, k)
    } else {
        View::rows(&b, 0, n)
    };
    time(reps, || {
        gemm(m, k, n, va, vb, black_box(&mut c), 0, n, false)
    })
}

struct Row {
    phase: String,
    secs: f64,
    work: String,
    rate: String,
}

fn main() {
    let threads = par::threads();
    let peak_t = gemm_time(2048, 2048, 2048, false, false, 5);
    let peak = 2.0 * 2048f64.powi(3) / peak_t / 1e9;
    println!("CPU path threads: {threads}; sgemm 2048³ (matrixmultiply, split over them): {peak:.1} GFLOP/s\n");

    let spec = ModelSpec::mnist(500, 2);
    let lay = spec.layout();
    let m = mnist::embedded().unwrap_or_else(|e| panic!("{e}"));
    let train = m.train.slice(0, 2000);
    let perm = epoch_permutation(2000, 0, 1);
    let mut x = vec![0.0f32; B * spec.input];
    gather_batch(&train, &perm, 0, B, Representation::Threshold, 0, 1, &mut x);
    let eps = noise_batch(spec.posterior, 0, stream::TRAIN_NOISE, 1, B, spec.latent);
    let mut params = init_params(&spec, 0);
    let mut grads = vec![0.0f32; params.len()];
    let mut ws = Workspace::<f32>::new(&spec, B, 1);
    let reps = 200;

    let mut rows: Vec<Row> = Vec::new();
    let push_gemm = |rows: &mut Vec<Row>, name: &str, secs: f64, flop: f64| {
        rows.push(Row {
            phase: name.into(),
            secs,
            work: format!("{:.1} MFLOP", flop / 1e6),
            rate: format!(
                "{:.1} GFLOP/s ({:.0}% of 2048³)",
                flop / secs / 1e9,
                100.0 * flop / secs / 1e9 / peak
            ),
        })
    };
    let push_mem = |rows: &mut Vec<Row>, name: &str, secs: f64, bytes: f64| {
        rows.push(Row {
            phase: name.into(),
            secs,
            work: format!("{:.2} MB", bytes / 1e6),
            rate: format!("{:.1} GB/s", bytes / secs / 1e9),
        })
    };

    // The products alone, at the step's shapes and operand layouts.
    let (e1, e2) = (&lay.encoder[0], &lay.encoder[1]);
    let (d1, d2) = (&lay.decoder[0], &lay.decoder[1]);
    let f = |m: usize, k: usize, n: usize| 2.0 * (m * k * n) as f64;
    for (name, (mm, k, n, ta, tb)) in [
        (
            "GEMM enc fwd  X·W1ᵀ   100×784×500",
            (B, 784, 500, false, true),
        ),
        (
            "GEMM dec fwd  H·W4ᵀ   100×500×784",
            (B, 500, 784, false, true),
        ),
        (
            "GEMM dec dW4  dYᵀ·H   784×100×500",
            (784, B, 500, true, false),
        ),
        (
            "GEMM dec dH   dY·W4   100×784×500",
            (B, 784, 500, false, false),
        ),
        (
            "GEMM enc dW1  dHᵀ·X   500×100×784",
            (500, B, 784, true, false),
        ),
    ] {
        push_gemm(
            &mut rows,
            name,
            gemm_time(mm, k, n, ta, tb, reps),
            f(mm, k, n),
        );
    }

    // Each phase of the step as `reference::step` runs it.
    let t = time(reps, || {
        layers::forward(
            e1,
            &params,
            &x,
            B,
            &mut ws.encoder.hidden[0],
            Some(spec.activation),
        )
    });
    push_gemm(
        &mut rows,
        "enc layer 1: GEMM + bias + tanh",
        t,
        f(B, 784, 500),
    );
    let t = time(reps, || {
        layers::forward(
            e2,
            &params,
            &ws.encoder.hidden[0],
            B,
            &mut ws.encoder.out,
            None,
        )
    });
    push_gemm(&mut rows, "enc head 500→4", t, f(B, 500, 4));
    let t = time(reps, || {
        sample_latent(
            &spec,
            B,
            &ws.encoder.out,
            &eps,
            &mut ws.z,
            &mut ws.prior_minus_q,
        )
    });
    push_mem(
        &mut rows,
        "latent: z, log p(z) − log q",
        t,
        (B * 4 * 5 * 4) as f64,
    );
    let t = time(reps, || {
        layers::forward(
            d1,
            &params,
            &ws.z,
            B,
            &mut ws.decoder.hidden[0],
            Some(spec.activation),
        )
    });
    push_gemm(&mut rows, "dec layer 1 2→500 + tanh", t, f(B, 2, 500));
    let t = time(reps, || {
        layers::forward(
            d2,
            &params,
            &ws.decoder.hidden[0],
            B,
            &mut ws.decoder.out,
            None,
        )
    });
    push_gemm(&mut rows, "dec layer 2: GEMM + bias", t, f(B, 500, 784));
    let t = time(reps, || {
        let io = Rows {
            dim: 784,
            batch: B,
            x: &x,
            mask: None,
            outputs: &ws.decoder.out,
            free: None,
        };
        let g = RowGrads {
            scale: -0.01,
            d_outputs: &mut ws.d_outputs,
            d_free: None,
        };
        log_prob_rows(&spec.likelihood, &io, &mut ws.loglik, Some(g))
    });
    // x, logits read; d logits written (f32).
    push_mem(
        &mut rows,
        "Bernoulli log p(x|z) + gradient",
        t,
        (3 * B * 784 * 4) as f64,
    );
    let t = time(reps, || {
        layers::param_grads(d2, &ws.decoder.hidden[0], &ws.d_outputs, B, &mut grads)
    });
    push_gemm(&mut rows, "dec layer 2 dW + db", t, f(784, B, 500));
    let t = time(reps, || {
        layers::input_grad(d2, &params, &ws.d_outputs, B, &mut ws.decoder.d_hidden[0]);
        for (d, &h) in ws.decoder.d_hidden[0].iter_mut().zip(&ws.decoder.hidden[0]) {
            *d *= activation_grad_from_output(spec.activation, h);
        }
    });
    push_gemm(&mut rows, "dec layer 2 dH + tanh′", t, f(B, 784, 500));
    let t = time(reps, || {
        layers::param_grads(d1, &ws.z, &ws.decoder.d_hidden[0], B, &mut grads);
        layers::input_grad(d1, &params, &ws.decoder.d_hidden[0], B, &mut ws.dz);
    });
    push_gemm(&mut rows, "dec layer 1 dW, db, dz", t, 2.0 * f(B, 500, 2));
    let t = time(reps, || {
        latent_backward(
            &spec,
            B,
            1,
            RowWeights::Uniform(0.01),
            &ws.encoder.out,
            &ws.z,
            &eps,
            &ws.dz,
            &mut ws.denc,
        )
    });
    push_mem(&mut rows, "latent backward", t, (B * 4 * 6 * 4) as f64);
    let t = time(reps, || {
        network::backward(
            &lay.encoder,
            spec.activation,
            &params,
            &x,
            B,
            &mut ws.encoder,
            &ws.denc,
            Some(&mut grads),
            None,
        )
    });
    push_gemm(
        &mut rows,
        "enc backward (head, tanh′, dW1 + db)",
        t,
        f(500, B, 784) + 2.0 * f(B, 4, 500),
    );
    let mut opt = Optimizer::new(OptimizerConfig::default(), params.len());
    let t = time(reps, || opt.step(&mut params, &grads));
    // params, grads, m, v read; params, m, v written.
    push_mem(
        &mut rows,
        "Adam (790k parameters)",
        t,
        (7 * params.len() * 4) as f64,
    );

    let whole = whole_step(
        reps,
        &spec,
        &mut params,
        &x,
        &eps,
        &mut ws,
        &mut grads,
        &mut opt,
    );
    let sum: f64 = rows[5..].iter().map(|r| r.secs).sum();
    let flop = 5.0 * f(B, 784, 500);
    println!("| phase (CPU, B = 100) | ms | work | achieved |");
    println!("|---|---:|---:|---|");
    for r in &rows {
        println!(
            "| {} | {:.3} | {} | {} |",
            r.phase,
            r.secs * 1e3,
            r.work,
            r.rate
        );
    }
    println!("| **sum of the step's phases** | {:.3} | | |", sum * 1e3);
    println!(
        "| **whole step (step + Adam)** | {:.3} | {:.0} MFLOP | {:.1} GFLOP/s; at the 2048³ rate {:.3} ms (GEMM-bound limit, {:.0}%) |",
        whole * 1e3,
        flop / 1e6,
        flop / whole / 1e9,
        flop / peak / 1e9 * 1e3,
        100.0 * flop / peak / 1e9 / whole
    );
    println!(
        "\n60,000-image epoch ≈ 600 steps × {:.3} ms = {:.2} s (GEMM-bound limit {:.2} s)",
        whole * 1e3,
        600.0 * whole,
        600.0 * flop / peak / 1e9
    );

    conv_phases(peak, &train, &perm);

    // The whole GPU step on whatever adapter is present.
    match gpu_context(DeviceKind::Auto).or_else(|_| gpu_context(DeviceKind::Vulkan)) {
        Err(e) => println!("\nGPU: no adapter ({e}); whole-step time not measured"),
        Ok(ctx) => {
            let name = ctx.info.name.clone();
            let cfg = TrainConfig {
                model: spec.clone(),
                batch_size: B,
                samples: 1,
                optimizer: OptimizerConfig::default(),
                seed: 0,
                pixels: Representation::Threshold,
                data: DataSource::Mnist,
                objective: Default::default(),
                vem: None,
            };
            let splits = Arc::new(Splits {
                train: train.clone(),
                val: None,
                test: m.test.slice(0, 100),
            });
            let mut gpu = GpuBackend::new(ctx, &cfg, &splits, OptimizerOn::Gpu)
                .unwrap_or_else(|e| panic!("{e}"));
            let mut epoch = 0;
            let t = time_here(3, || {
                epoch += 1;
                gpu.train_epoch(epoch, &perm, &mut |_| {})
                    .unwrap_or_else(|e| panic!("{e}"));
            });
            let per = t / 20.0;
            println!(
                "\nGPU ({name}): whole step {:.3} ms ({:.1} GFLOP/s on the five products), 60,000-image epoch ≈ {:.2} s",
                per * 1e3,
                flop / per / 1e9,
                600.0 * per
            );
        }
    }
}

/// Multiply-adds per row of a layer's forward product (its input gradient and weight gradient
/// have the same count).
fn macs(l: &Layer) -> usize {
    match l.kind {
        LayerKind::Linear => l.inp * l.out,
        LayerKind::Conv2d(g) | LayerKind::ConvTranspose2d(g) => {
            g.reduced.iter().product::<usize>() * g.patch_len()
        }
    }
}

/// The conv model of `--arch conv --likelihood gaussian --variance decoder` (the PyTorch
/// comparison's second model), layer by layer: each layer's three products with their bias,
/// activation and bias gradient, then the whole step, against the 2048³ rate.
fn conv_phases(peak: f64, train: &vae_gpu::data::DataSet, perm: &[u32]) {
    let (encoder, decoder) = conv_arch([1, 28, 28], [32, 64], &[256]);
    let spec = ModelSpec {
        image: Some([1, 28, 28]),
        encoder,
        decoder,
        activation: Activation::Relu,
        likelihood: Likelihood::Gaussian {
            mean: GaussianMean::Identity,
            variance: Variance::Decoder,
        },
        ..ModelSpec::mnist(1, 2)
    };
    let lay = spec.layout();
    let mut x = vec![0.0f32; B * spec.input];
    gather_batch(train, perm, 0, B, Representation::Grayscale, 0, 1, &mut x);
    let eps = noise_batch(spec.posterior, 0, stream::TRAIN_NOISE, 1, B, spec.latent);
    let mut params = init_params(&spec, 0);
    let mut grads = vec![0.0f32; params.len()];
    let mut ws = Workspace::<f32>::new(&spec, B, 1);
    let reps = 30;
    println!("\nConv model (`--arch conv --likelihood gaussian --variance decoder`), B = 100:\n");
    println!("| layer | forward ms | input grad ms | dW + db ms | GFLOP/s (all three) |");
    println!("|---|---:|---:|---:|---|");
    let mut flop_total = 0.0;
    let mut layer_total = 0.0;
    for (side, layers_of) in [("enc", &lay.encoder), ("dec", &lay.decoder)] {
        for (i, l) in layers_of.iter().enumerate() {
            let xin: Vec<f32> = (0..B * l.inp)
                .map(|j| ((j % 13) as f32 - 6.0) * 0.1)
                .collect();
            let dy: Vec<f32> = (0..B * l.out)
                .map(|j| ((j % 7) as f32 - 3.0) * 0.01)
                .collect();
            let mut y = vec![0.0f32; B * l.out];
            let mut dx = vec![0.0f32; B * l.inp];
            let act = (i + 1 < layers_of.len()).then_some(spec.activation);
            let tf = time(reps, || layers::forward(l, &params, &xin, B, &mut y, act));
            let ti = time(reps, || layers::input_grad(l, &params, &dy, B, &mut dx));
            let tw = time(reps, || layers::param_grads(l, &xin, &dy, B, &mut grads));
            let flop = 2.0 * (B * macs(l)) as f64;
            // The first encoder layer's input gradient is never computed in training.
            let (secs, work) = if side == "enc" && i == 0 {
                (tf + tw, 2.0 * flop)
            } else {
                (tf + ti + tw, 3.0 * flop)
            };
            flop_total += work;
            layer_total += secs;
            let kind = match l.kind {
                LayerKind::Linear => "linear",
                LayerKind::Conv2d(_) => "conv2d",
                LayerKind::ConvTranspose2d(_) => "conv_transpose2d",
            };
            println!(
                "| {side} {kind} {}→{} | {:.3} | {:.3} | {:.3} | {:.1} ({:.0}% of 2048³) |",
                l.inp,
                l.out,
                tf * 1e3,
                ti * 1e3,
                tw * 1e3,
                work / secs / 1e9,
                100.0 * work / secs / 1e9 / peak
            );
        }
    }
    let mut opt = Optimizer::new(OptimizerConfig::default(), params.len());
    let whole = whole_step(
        reps,
        &spec,
        &mut params,
        &x,
        &eps,
        &mut ws,
        &mut grads,
        &mut opt,
    );
    println!(
        "| **layers' products (sum)** | {:.3} | | | {:.1} GFLOP/s |",
        layer_total * 1e3,
        flop_total / layer_total / 1e9
    );
    println!(
        "| **whole step (step + Adam)** | {:.3} | | | {:.1} GFLOP/s; GEMM-bound limit {:.3} ms ({:.0}%) |",
        whole * 1e3,
        flop_total / whole / 1e9,
        flop_total / peak / 1e9 * 1e3,
        100.0 * flop_total / peak / 1e9 / whole
    );
    println!(
        "\n10,000-image epoch ≈ 100 steps × {:.3} ms = {:.2} s (GEMM-bound limit {:.2} s)",
        whole * 1e3,
        100.0 * whole,
        100.0 * flop_total / peak / 1e9
    );
}

/// Median seconds of a whole training step (`reference::step` and the optimizer) of `spec`.
#[allow(clippy::too_many_arguments)]
fn whole_step(
    reps: usize,
    spec: &ModelSpec,
    params: &mut [f32],
    x: &[f32],
    eps: &[f32],
    ws: &mut Workspace<f32>,
    grads: &mut [f32],
    opt: &mut Optimizer,
) -> f64 {
    time(reps, || {
        step(spec, Objective::Elbo, params, x, eps, ws, Some(grads));
        opt.step(params, grads);
    })
}
