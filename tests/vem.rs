//! `--inference vem` (variational EM, a λ_n per training image): the λ-step's gradient against
//! f64 central differences, the `vem_lambda` kernel against its CPU twins on small odd shapes,
//! whole variational-EM epochs CPU vs GPU, the checkpoint's λ table, and the CLI's refusals.

mod common;

use std::process::Command;
use std::sync::Arc;

use common::*;
use vae_gpu::cpu::reference::{step_from_q, Workspace};
use vae_gpu::cpu::vem::{lambda_gather, lambda_prior, lambda_scatter, lambda_sgd, CpuVemBackend};
use vae_gpu::data::batch::{epoch_permutation, Representation};
use vae_gpu::data::{mnist, DataSource};
use vae_gpu::gpu::kernels::{
    run, storage_init, vem_mode, Dispatch, Kernels, StepState, VemBindings, VemParams,
};
use vae_gpu::gpu::trainer::{GpuBackend, OptimizerOn};
use vae_gpu::rng::noise_batch;
use vae_gpu::spec::{
    init_params, linear, Activation, GaussianMean, Init, KlMode, LatentFamily, Likelihood,
    ModelSpec, Prior, Variance,
};
use vae_gpu::training::backend::{
    Backend, Objective, Split, Splits, TrainConfig, TrainState, VemConfig,
};
use vae_gpu::training::checkpoint::{self, Checkpoint};
use vae_gpu::training::optim::OptimizerConfig;

fn tiny(lik: Likelihood, act: Activation, kl: KlMode) -> ModelSpec {
    ModelSpec {
        input: 6,
        image: None,
        encoder: linear(&[5]),
        decoder: linear(&[4]),
        activation: act,
        latent: 3,
        posterior: LatentFamily::Gaussian,
        prior: Prior::default(),
        kl,
        likelihood: lik,
        init: Init::Pytorch,
    }
}

/// The E-step's gradient: −B·denc (what `lambda_sgd` ascends along) is, for each image b, the
/// gradient of its own ELBO (mean over its L draws at fixed ε) with respect to its λ row, checked
/// against f64 central differences of that ELBO in every λ coordinate, for a Bernoulli and a
/// Gaussian likelihood and both KL modes. With smooth activations (tanh) and h = 1e-5 the
/// truncation error is h²·|f'''|/6 ≈ 1e-10·|f'''| and the rounding of an O(10)-nat f64 ELBO over
/// 2h about 1e-16·10/1e-5 = 1e-10: a bound of 1e-7 + 1e-6·|fd| is far above both and far below
/// any missing term (an O(1) slope).
#[test]
fn the_lambda_step_gradient_matches_central_differences_in_f64() {
    let gauss = Likelihood::Gaussian {
        mean: GaussianMean::Sigmoid,
        variance: Variance::Decoder,
    };
    let (batch, samples) = (3, 2);
    for (i, (lik, kl)) in [
        (Likelihood::Bernoulli, KlMode::Mc),
        (Likelihood::Bernoulli, KlMode::Analytic),
        (gauss, KlMode::Mc),
    ]
    .into_iter()
    .enumerate()
    {
        let spec = tiny(lik, Activation::Tanh, kl);
        let params: Vec<f64> = init_params(&spec, 3 + i as u64)
            .iter()
            .map(|&p| p as f64 * 2.0)
            .collect();
        let bytes = [
            255u8, 0, 200, 255, 13, 0, 0, 128, 255, 64, 250, 1, 90, 255, 17, 0, 3, 180,
        ];
        let x: Vec<f64> = bytes
            .iter()
            .map(|&v| lik.default_representation().pixel_value(v, 0.5) as f64)
            .collect();
        let eps: Vec<f64> = noise_batch(LatentFamily::Gaussian, 7, 6, i as u32, batch * samples, 3)
            .iter()
            .map(|&e| e as f64)
            .collect();
        let q0: Vec<f64> = (0..batch * 6)
            .map(|k| 0.3 * ((k * 7 % 11) as f64 / 5.0 - 1.0))
            .collect();
        let mut ws = Workspace::<f64>::new(&spec, batch, samples);
        // Image b's ELBO at q: the mean over its L rows (row r = s·B + b).
        let image_elbo = |ws: &mut Workspace<f64>, q: &[f64], b: usize| {
            ws.encoder.out.copy_from_slice(q);
            step_from_q(&spec, Objective::Elbo, &params, &x, &eps, ws, None, false);
            ws.image_elbo(b)
        };
        ws.encoder.out.copy_from_slice(&q0);
        step_from_q(
            &spec,
            Objective::Elbo,
            &params,
            &x,
            &eps,
            &mut ws,
            None,
            true,
        );
        let denc = ws.denc.clone();
        // lambda_sgd with α = 1 from 0 gives exactly −B·denc.
        let mut ascent = vec![0.0f64; q0.len()];
        lambda_sgd(&mut ascent, &denc, 1.0, batch);
        let h = 1e-5;
        for k in 0..q0.len() {
            let b = k / 6;
            let mut q = q0.clone();
            q[k] = q0[k] + h;
            let up = image_elbo(&mut ws, &q, b);
            q[k] = q0[k] - h;
            let down = image_elbo(&mut ws, &q, b);
            let fd = (up - down) / (2.0 * h);
            assert!(
                (fd - ascent[k]).abs() <= 1e-7 + 1e-6 * fd.abs(),
                "{lik:?} {kl:?}: λ[{k}] (image {b}) analytic {} vs finite difference {fd}",
                ascent[k]
            );
            // The other images' ELBOs do not depend on this λ.
            for other in (0..batch).filter(|&o| o != b) {
                let (u, d) = (image_elbo(&mut ws, &q, other), {
                    q[k] = q0[k] + h;
                    image_elbo(&mut ws, &q, other)
                });
                assert!(
                    (u - d).abs() < 1e-12,
                    "image {other} moved with λ of image {b}"
                );
            }
        }
    }
}

/// Every mode of `vem_lambda` against its CPU twin on an odd shape: B = 3 images of Dz = 3
/// (width 6) from a table of N = 7 rows, at batch 1 of a permutation of 7 (so the batch's last
/// row is a padding row clamped to the index's end, as evaluation's last batch has). Gather,
/// prior and scatter copy bits, so they are compared exactly; the SGD step is one f32 product
/// (α·B)·d and a subtraction in the same order on both sides, within 1 ulp of an FMA's
/// contraction: |g − r| ≤ 1e-6·|r| + 1e-7.
#[test]
fn vem_lambda_kernel_matches_its_cpu_twins_on_odd_shapes() {
    let ctx = gpu();
    let spec = ModelSpec::mnist(3, 3);
    let k = Kernels::new(&ctx, &spec.likelihood).expect("kernels");
    let (batch, width, n) = (3usize, 6usize, 7usize);
    let mut r = rng(11);
    let table0 = uniform(&mut r, n * width, -2.0, 2.0);
    let q0 = uniform(&mut r, batch * width, -2.0, 2.0);
    let denc = uniform(&mut r, batch * width, -0.5, 0.5);
    let index: Vec<u32> = vec![4, 0, 6, 2, 5, 1, 3];
    let alpha = 0.37f32;
    let state = StepState {
        step: 0,
        batch: 1,
        epoch: 0,
        n_valid: n as u32,
    };
    for mode in [
        vem_mode::GATHER,
        vem_mode::PRIOR,
        vem_mode::SGD,
        vem_mode::SCATTER,
    ] {
        let b_state = storage_init(&ctx, "state", bytemuck::bytes_of(&state));
        let b_index = storage_init(&ctx, "index", bytemuck::cast_slice(&index));
        let b_table = storage_init(&ctx, "table", bytemuck::cast_slice(&table0));
        let b_q = storage_init(&ctx, "q", bytemuck::cast_slice(&q0));
        let b_denc = storage_init(&ctx, "denc", bytemuck::cast_slice(&denc));
        let b_alpha = storage_init(&ctx, "alpha", bytemuck::bytes_of(&alpha));
        let p = VemParams {
            batch: batch as u32,
            width: width as u32,
            n_index: n as u32,
            mode,
        };
        let bind = VemBindings {
            state: &b_state,
            index: &b_index,
            table: &b_table,
            q: &b_q,
            denc: &b_denc,
            alpha: &b_alpha,
        };
        let d = Dispatch::of(&ctx, &k, &p, &bind);
        run(&ctx, &[&d]).expect("run");
        let got_q = ctx.read_f32(&b_q, 0, batch * width).expect("q");
        let got_table = ctx.read_f32(&b_table, 0, n * width).expect("table");
        let (mut q, mut table) = (q0.clone(), table0.clone());
        let start = batch; // state.batch · B
        match mode {
            vem_mode::GATHER => lambda_gather(&table, &index, start, batch, width, &mut q),
            vem_mode::PRIOR => lambda_prior(&mut q),
            vem_mode::SGD => lambda_sgd(&mut q, &denc, alpha, batch),
            _ => lambda_scatter(&mut table, &index, start, batch, width, &q),
        }
        if mode == vem_mode::SGD {
            assert_close("sgd q", &got_q, &q, 1e-7, 1e-6);
            assert_ne!(q, q0, "the SGD step moved nothing");
        } else {
            assert_eq!(got_q, q, "mode {mode}: q");
        }
        assert_eq!(got_table, table, "mode {mode}: table");
        if mode == vem_mode::SCATTER {
            // Rows index[3..6] = 2, 5, 1 changed; the clamped padding row wrote index[6] = 3.
            assert_ne!(table, table0);
        }
    }
}

fn splits(train: usize, test: usize) -> Splits {
    let m = mnist::embedded().expect("embedded MNIST");
    Splits {
        train: m.train.slice(0, train),
        val: None,
        test: m.test.slice(0, test),
    }
}

fn vem_config(hidden: usize, batch: usize, samples: usize, vem: VemConfig) -> TrainConfig {
    TrainConfig {
        model: ModelSpec::mnist(hidden, 2),
        batch_size: batch,
        samples,
        optimizer: OptimizerConfig::default(),
        seed: 5,
        pixels: Representation::Threshold,
        data: DataSource::Mnist,
        objective: Objective::Elbo,
        vem: Some(vem),
    }
}

/// Two epochs of variational EM and the test-time E-step, CPU vs GPU: the running training ELBOs,
/// the test ELBO of the E-step alone, the decoder's parameters, Adam's moments and the whole λ
/// table. Each epoch is 4 θ steps of Adam (each moves a parameter by ≤ lr = 1e-3) after 3 SGD
/// E-steps of α = 0.01 (α·|ELBO gradient| ≲ 0.1 per step for a λ); the two devices differ only by
/// f32 summation order (~1e-6 relative per step), so λ within 1e-4 + 1e-3·|λ| and the
/// parameters within 5% of one Adam step are generous and still catch a wrong gather, noise
/// stream or step size (those move λ by ~α·gradient ≈ 1e-2). The step size decays (0.5), so the
/// schedule is exercised too; the encoder, unused, stays bit-identical to its initialization.
#[test]
fn variational_em_on_cpu_and_gpu_ends_at_the_same_state() {
    let vem = VemConfig {
        e_steps: 3,
        e_lr: 0.01,
        step_decay: 0.5,
        test_e_steps: 7,
    };
    let cfg = vem_config(17, 25, 2, vem);
    cfg.check().expect("valid");
    let s = Arc::new(splits(100, 37));
    let mut cpu = CpuVemBackend::new(&cfg, vem, s.clone());
    let mut gpu =
        GpuBackend::new(gpu(), &cfg, &s, OptimizerOn::Gpu).unwrap_or_else(|e| panic!("{e}"));
    let backends: [&mut dyn Backend; 2] = [&mut cpu, &mut gpu];
    let mut results = Vec::new();
    for b in backends {
        let mut elbos = Vec::new();
        for epoch in 1..=2 {
            let perm = epoch_permutation(100, cfg.seed, epoch);
            elbos.push(b.train_epoch(epoch, &perm, &mut |_| {}).expect("train"));
        }
        elbos.push(b.evaluate(Split::Test).expect("test"));
        results.push((elbos, b.state().expect("state")));
    }
    let (ref_elbos, ref_state) = &results[0];
    let (elbos, state) = &results[1];
    assert_eq!(state.step, 8);
    assert_eq!(ref_state.lambda.len(), 100 * 4);
    for (g, r) in elbos.iter().zip(ref_elbos) {
        assert!(
            (g - r).abs() <= 1e-2 + 1e-4 * r.abs(),
            "ELBO gpu {g} vs cpu {r}"
        );
    }
    assert_close("λ table", &state.lambda, &ref_state.lambda, 1e-4, 1e-3);
    assert_close("params", &state.params, &ref_state.params, 5e-5, 1e-4);
    assert_close(
        "first moment",
        &state.m,
        &ref_state.m,
        1e-4 * max_abs(&ref_state.m),
        1e-3,
    );
    // Every image was visited twice: its λ moved from the prior.
    assert!(ref_state
        .lambda
        .chunks(4)
        .all(|r| r.iter().any(|&v| v != 0.0)));
    let lay = cfg.model.layout();
    let init = init_params(&cfg.model, cfg.seed);
    for t in lay
        .named_tensors()
        .iter()
        .filter(|t| t.name.starts_with("encoder"))
    {
        let r = t.offset..t.offset + t.len();
        assert_eq!(
            &ref_state.params[r.clone()],
            &init[r.clone()],
            "cpu {}",
            t.name
        );
        assert_eq!(&state.params[r.clone()], &init[r], "gpu {}", t.name);
    }
    // The E-steps improve the held-out ELBO over q at the prior (a test that the test-time fit
    // does something): the same model with one E-step of a tiny step size is worse.
    let mut still = CpuVemBackend::new(
        &TrainConfig {
            vem: Some(VemConfig {
                test_e_steps: 1,
                e_lr: 1e-6,
                ..vem
            }),
            ..cfg.clone()
        },
        VemConfig {
            test_e_steps: 1,
            e_lr: 1e-6,
            ..vem
        },
        s.clone(),
    );
    still.set_state(ref_state).expect("state");
    let at_prior = still.evaluate(Split::Test).expect("eval");
    assert!(
        ref_elbos[2] > at_prior + 0.2,
        "fitted {} vs prior {at_prior}",
        ref_elbos[2]
    );
}

/// The λ table round-trips through the checkpoint as `vem.mean` / `vem.logvar` `[N, Dz]`, and the
/// inference settings through its config.
#[test]
fn the_checkpoint_keeps_the_lambda_table() {
    let vem = VemConfig {
        e_steps: 2,
        e_lr: 0.003,
        step_decay: 0.1,
        test_e_steps: 9,
    };
    let cfg = vem_config(5, 10, 1, vem);
    let n_params = cfg.model.layout().total;
    let lambda: Vec<f32> = (0..20 * 4).map(|i| i as f32 * 0.25 - 3.0).collect();
    let ck = Checkpoint {
        config: cfg.clone(),
        state: TrainState {
            params: init_params(&cfg.model, 1),
            m: vec![0.0; n_params],
            v: vec![0.0; n_params],
            step: 4,
            lambda: lambda.clone(),
        },
        epoch: 2,
        train_size: 20,
        val_size: 0,
        test_size: Some(10),
        run_id: None,
        metrics: None,
    };
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("ck.safetensors");
    checkpoint::save(&path, &ck).expect("save");
    let back = checkpoint::load(&path).expect("load");
    assert_eq!(back, ck);
    let bytes = std::fs::read(&path).expect("read");
    let st = safetensors::SafeTensors::deserialize(&bytes).expect("safetensors");
    let mean = st.tensor("vem.mean").expect("vem.mean");
    assert_eq!(mean.shape(), [20, 2]);
    let m: Vec<f32> = bytemuck::pod_collect_to_vec(mean.data());
    assert_eq!(&m[..4], &[lambda[0], lambda[1], lambda[4], lambda[5]]);
    let lv: Vec<f32> =
        bytemuck::pod_collect_to_vec(st.tensor("vem.logvar").expect("vem.logvar").data());
    assert_eq!(&lv[..2], &[lambda[2], lambda[3]]);
    // A table of the wrong size is refused when written.
    let mut bad = ck.clone();
    bad.state.lambda.pop();
    assert!(checkpoint::save(&path, &bad).is_err());
}

fn vae_gpu(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_vae-gpu"))
        .args(args)
        .env("NODEVICE_SELECT", "1")
        .output()
        .expect("run vae-gpu")
}

fn fails_with(args: &[&str], needle: &str) {
    let out = vae_gpu(args);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{args:?} succeeded");
    assert!(
        err.contains(needle),
        "{args:?}: stderr {err:?} lacks {needle:?}"
    );
    assert!(!err.contains("panicked"), "{args:?} panicked: {err}");
}

/// Bad input is one clear error; a vem run trains, resumes (refusing changed E-step settings) and
/// evaluates.
#[test]
fn the_cli_trains_resumes_and_evaluates_a_vem_run_and_refuses_bad_input() {
    let dir = tempfile::tempdir().expect("tmp");
    let out = dir.path().join("run");
    let out_s = out.to_str().expect("utf-8");
    let base = [
        "train",
        "--device",
        "cpu",
        "--train-size",
        "200",
        "--test-size",
        "50",
        "--hidden",
        "20",
        "--quiet",
    ];
    let with = |extra: &[&str]| -> Vec<String> {
        base.iter().chain(extra).map(|s| s.to_string()).collect()
    };
    let run = |extra: &[&str]| {
        let a = with(extra);
        let refs: Vec<&str> = a.iter().map(|s| s.as_str()).collect();
        vae_gpu(&refs)
    };
    let fails = |extra: &[&str], needle: &str| {
        let a = with(extra);
        let refs: Vec<&str> = a.iter().map(|s| s.as_str()).collect();
        fails_with(&refs, needle)
    };
    let o = ["--out", out_s];
    fails(
        &[&["--inference", "vem", "--e-steps", "0"][..], &o].concat(),
        "--e-steps 0",
    );
    fails(
        &[
            &["--inference", "vem", "--objective", "iwae", "--kl", "mc"][..],
            &o,
        ]
        .concat(),
        "--objective iwae is not supported",
    );
    fails(
        &[&["--inference", "vem", "--arch", "conv"][..], &o].concat(),
        "--arch mlp",
    );
    fails(
        &[&["--e-steps", "3"][..], &o].concat(),
        "add --inference vem",
    );
    fails(
        &[&["--inference", "vem", "--posterior", "laplace"][..], &o].concat(),
        "--posterior gaussian",
    );
    let first = run(&[
        &[
            "--inference",
            "vem",
            "--e-steps",
            "2",
            "--test-e-steps",
            "5",
            "--epochs",
            "1",
        ][..],
        &o,
    ]
    .concat());
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    let ck = out.join("checkpoint.safetensors");
    let ck_s = ck.to_str().expect("utf-8");
    fails(
        &[
            &["--resume", ck_s, "--e-steps", "3", "--epochs", "1"][..],
            &o,
        ]
        .concat(),
        "--e-steps 3 (the run has 2)",
    );
    fails(
        &[
            &[
                "--resume",
                ck_s,
                "--inference",
                "amortized",
                "--epochs",
                "1",
            ][..],
            &o,
        ]
        .concat(),
        "--inference amortized (the run has vem)",
    );
    let resumed = run(&[&["--resume", ck_s, "--epochs", "1"][..], &o].concat());
    assert!(
        resumed.status.success(),
        "{}",
        String::from_utf8_lossy(&resumed.stderr)
    );
    let back = checkpoint::load(&ck).expect("load");
    assert_eq!((back.epoch, back.state.step), (2, 4));
    assert_eq!(back.state.lambda.len(), 200 * 4);
    let eval = vae_gpu(&["eval", "--device", "cpu", "--checkpoint", ck_s]);
    let text = String::from_utf8_lossy(&eval.stdout);
    assert!(
        eval.status.success(),
        "{}",
        String::from_utf8_lossy(&eval.stderr)
    );
    assert!(
        text.contains("variational EM"),
        "eval says how q was found: {text}"
    );
    // eval --iwae samples the encoder's q: a vem checkpoint has none, so it is refused.
    let iwae = vae_gpu(&[
        "eval",
        "--device",
        "cpu",
        "--checkpoint",
        ck_s,
        "--iwae",
        "10",
    ]);
    assert!(!iwae.status.success());
    assert!(String::from_utf8_lossy(&iwae.stderr).contains("grid-posterior"));
    // So is --refine (SVI from the encoder's q), before any ELBO is printed.
    let refine = vae_gpu(&[
        "eval",
        "--device",
        "cpu",
        "--checkpoint",
        ck_s,
        "--refine",
        "5",
    ]);
    assert!(!refine.status.success());
    assert!(String::from_utf8_lossy(&refine.stderr).contains("--inference vem"));
    assert!(
        !String::from_utf8_lossy(&refine.stdout).contains("ELBO"),
        "refused before evaluating: {}",
        String::from_utf8_lossy(&refine.stdout)
    );
}
