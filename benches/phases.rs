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
use vae_gpu::family::likelihood::{log_prob_rows, RowGrads, Rows};
use vae_gpu::gpu::trainer::{GpuBackend, OptimizerOn};
use vae_gpu::rng::{noise_batch, stream};
use vae_gpu::spec::{init_params, ModelSpec};
use vae_gpu::training::backend::{Backend, Objective, Splits, TrainConfig};
use vae_gpu::training::optim::{Optimizer, OptimizerConfig};

const B: usize = 100;

/// Median seconds of `reps` calls of `f` (after two warm-up calls).
fn time(reps: usize, mut f: impl FnMut()) -> f64 {
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
    println!("GEMM threads: {threads}; sgemm 2048³ (matrixmultiply): {peak:.1} GFLOP/s\n");

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

    let whole = time(reps, || {
        step(
            &spec,
            Objective::Elbo,
            &params,
            &x,
            &eps,
            &mut ws,
            Some(&mut grads),
        );
        opt.step(&mut params, &grads);
    });
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
            let t = time(3, || {
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
