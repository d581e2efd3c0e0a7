//! The binary end to end on small subsets, and its error cases: each must exit non-zero with a
//! message that says what was wrong, never a panic.

use std::path::{Path, PathBuf};
use std::process::Output;

use vae_gpu::training::checkpoint;

mod common;
use common::cli::*;

/// One epoch of the small CPU/GPU run of `train_small`.
fn train(out: &Path, device: &str, extra: &[&str]) -> Output {
    train_small(out, device, "1", extra)
}

#[test]
fn train_resume_and_eval_on_cpu() {
    let out = tmp("cpu");
    let o = train(&out, "cpu", &[]);
    assert!(o.status.success(), "{}", text(&o));
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        stdout.contains("test ELBO:")
            && stdout.contains("train ELBO (full pass, final parameters):"),
        "{stdout}"
    );
    let ck = out.join("checkpoint.safetensors");
    let loaded = checkpoint::load(&ck).expect("checkpoint loads");
    assert_eq!(
        (
            loaded.epoch,
            loaded.state.step,
            loaded.config.model.encoder.clone()
        ),
        (1, 4, vae_gpu::spec::linear(&[24]))
    );

    let o = run(&[
        "train",
        "--device",
        "cpu",
        "--epochs",
        "1",
        "--quiet",
        "--resume",
        ck.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let metrics = std::fs::read_to_string(out.join("metrics.jsonl")).expect("metrics");
    let lines: Vec<serde_json::Value> = metrics
        .lines()
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[1]["epoch"], 2);
    assert_eq!(lines[1]["steps"], 8);
    for l in &lines {
        for k in ["seconds", "train_elbo", "test_elbo"] {
            assert!(l[k].as_f64().is_some_and(|v| v.is_finite()), "{k} in {l}");
        }
        // The queue counters are the GPU trainer's; the CPU path has no queue to count.
        assert!(l.get("submits").is_none(), "{l}");
    }

    let o = run(&[
        "eval",
        "--device",
        "cpu",
        "--test-size",
        "100",
        "--checkpoint",
        ck.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let t = text(&o);
    assert!(
        t.contains("train ELBO") && t.contains("test ELBO") && t.contains("epoch 2"),
        "{t}"
    );
}

#[test]
fn train_on_the_gpu_end_to_end() {
    let out = tmp("gpu");
    let o = train(
        &out,
        "vulkan",
        &["--optimizer-on", "gpu", "--val-size", "100"],
    );
    assert!(o.status.success(), "{}", text(&o));
    let line = std::fs::read_to_string(out.join("metrics.jsonl")).expect("metrics");
    let v: serde_json::Value = serde_json::from_str(line.trim()).expect("json");
    assert!(v["val_elbo"].as_f64().is_some_and(|x| x < 0.0), "{v}");
    assert!(v["device"].as_str().unwrap_or("").contains("Vulkan"), "{v}");
    // Mesa's device-select layer must not print its Wayland complaint on a successful run.
    assert!(!text(&o).contains("XDG_RUNTIME_DIR"), "{}", text(&o));
    // The counters tools/gpu_bench.sh reads: the 4 steps of 22 dispatches go in one submit (up to
    // 50 steps a submit), then one copy submit reads the epoch's ELBO sums back.
    assert_eq!(
        (&v["dispatches_per_step"], &v["submits"]),
        (&22.into(), &2.into()),
        "{v}"
    );
    let host = v["host_seconds_per_step"].as_f64().expect("host seconds");
    assert!(
        host > 0.0 && 4.0 * host <= v["seconds"].as_f64().unwrap(),
        "{v}"
    );
    // Host time is not reproducible, so the line the checkpoint stores has none of them.
    let stored = checkpoint::load(&out.join("checkpoint.safetensors")).expect("checkpoint");
    let stored: serde_json::Value =
        serde_json::from_str(&stored.metrics.expect("stored line")).unwrap();
    assert!(stored.get("submits").is_none() && stored.get("host_seconds_per_step").is_none());

    // With the host optimizer every step is its own submit (and read-back of the gradient).
    let host_out = tmp("gpu-host-optimizer");
    let o = train(&host_out, "vulkan", &["--optimizer-on", "host"]);
    assert!(o.status.success(), "{}", text(&o));
    let line = std::fs::read_to_string(host_out.join("metrics.jsonl")).expect("metrics");
    let v: serde_json::Value = serde_json::from_str(line.trim()).expect("json");
    assert_eq!(v["submits"], 5, "{v}");
    assert!(
        v["dispatches_per_step"].as_u64().is_some_and(|d| d < 22),
        "{v}"
    );
}

#[test]
fn bad_data_is_a_clear_error() {
    fails_with(
        &["train", "--device", "cpu", "--data", "/nonexistent/mnist"],
        "fetch_mnist",
    );
    let dir = tmp("corrupt");
    for f in
        std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/data/mnist")).expect("data dir")
    {
        let f = f.expect("entry").path();
        std::fs::copy(&f, dir.join(f.file_name().unwrap())).expect("copy");
    }
    let bad = dir.join("t10k-images-idx3-ubyte.gz");
    let bytes = std::fs::read(&bad).expect("read");
    std::fs::write(&bad, &bytes[..bytes.len() / 2]).expect("truncate");
    fails_with(
        &["train", "--device", "cpu", "--data", dir.to_str().unwrap()],
        "t10k-images",
    );
}

#[test]
fn impossible_flags_are_clear_errors() {
    fails_with(
        &["train", "--device", "cpu", "--batch-size", "0"],
        "--batch-size",
    );
    fails_with(
        &["train", "--device", "cpu", "--train-size", "70000"],
        "--train-size",
    );
    fails_with(
        &[
            "train",
            "--device",
            "cpu",
            "--train-size",
            "50",
            "--val-size",
            "59990",
        ],
        "--train-size",
    );
    fails_with(
        &["train", "--device", "cpu", "--test-size", "0"],
        "--test-size",
    );
    fails_with(&["train", "--device", "cpu", "--lr", "NaN"], "--lr");
    fails_with(&["train", "--device", "cpu", "--epochs", "0"], "--epochs");
    fails_with(
        &["train", "--device", "cpu", "--hidden", "100000000"],
        "--hidden",
    );
    fails_with(
        &["train", "--device", "cpu", "--optimizer-on", "gpu"],
        "--optimizer-on",
    );
    fails_with(
        &["train", "--device", "cpu", "--train-size", "20"],
        "smaller than one batch",
    );
    fails_with(&["train", "--device", "quantum"], "invalid value");
}

#[test]
fn missing_backend_lists_adapters_and_suggests_cpu() {
    // No Metal on Linux (and no DX12 elsewhere): either way one of them is absent here.
    let kind = if cfg!(target_os = "macos") {
        "dx12"
    } else {
        "metal"
    };
    fails_with(
        &["train", "--device", kind, "--train-size", "100", "--quiet"],
        "--device cpu",
    );
    // A backend this operating system does not have is named as such, not blamed on a driver.
    fails_with(
        &["train", "--device", kind, "--train-size", "100", "--quiet"],
        "exists only on",
    );
}

#[test]
fn the_binary_carries_its_data() {
    // Before the data was compiled in, the binary held this absolute path and failed when the
    // clone's data/ moved; now nothing in it points at the source tree's data.
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/data/mnist");
    let bytes = std::fs::read(BIN).expect("binary");
    let found = bytes.windows(path.len()).any(|w| w == path.as_bytes());
    assert!(!found, "the binary refers to {path}");
    // And it trains from any working directory.
    let out = tmp("anywhere");
    let o = std::process::Command::new(BIN)
        .current_dir(std::env::temp_dir())
        .args([
            "train",
            "--device",
            "cpu",
            "--epochs",
            "1",
            "--quiet",
            "--train-size",
            "100",
        ])
        .args([
            "--test-size",
            "50",
            "--batch-size",
            "50",
            "--hidden",
            "8",
            "--out",
        ])
        .arg(&out)
        .output()
        .expect("run");
    assert!(o.status.success(), "{}", text(&o));
}

#[test]
fn a_grid_too_large_for_memory_is_refused_before_any_work() {
    let (ck, out) = small_model("grid-memory", "2");
    let t0 = std::time::Instant::now();
    fails_with(
        &[
            "grid-posterior",
            "--device",
            "cpu",
            "--checkpoint",
            ck.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--lower",
            "-60",
            "--upper",
            "60",
            "--images",
            "100",
        ],
        "fewer --images",
    );
    assert!(
        t0.elapsed() < std::time::Duration::from_secs(5),
        "{:?}",
        t0.elapsed()
    );
}

#[test]
fn bad_checkpoints_are_clear_errors() {
    let out = tmp("ck");
    let garbage = out.join("garbage.safetensors");
    std::fs::write(&garbage, b"definitely not a checkpoint").expect("write");
    fails_with(
        &[
            "eval",
            "--device",
            "cpu",
            "--checkpoint",
            garbage.to_str().unwrap(),
        ],
        "checkpoint",
    );
    fails_with(
        &[
            "eval",
            "--device",
            "cpu",
            "--checkpoint",
            out.join("missing").to_str().unwrap(),
        ],
        "missing",
    );

    let o = train(&out, "cpu", &[]);
    assert!(o.status.success(), "{}", text(&o));
    let ck = out.join("checkpoint.safetensors");
    fails_with(
        &[
            "train",
            "--device",
            "cpu",
            "--resume",
            ck.to_str().unwrap(),
            "--hidden",
            "25",
        ],
        "--hidden 25 (the run has 24)",
    );

    // Huge (finite, so loadable) parameters make the next epoch's loss overflow: the run must stop
    // with an error and must not replace the last good checkpoint.
    let mut bad = checkpoint::load(&ck).expect("load");
    bad.state.params.iter_mut().for_each(|p| *p = 1e30);
    let nan_ck = out.join("nan.safetensors");
    checkpoint::save(&nan_ck, &bad).expect("save");
    let div_out = out.join("diverged");
    fails_with(
        &[
            "train",
            "--device",
            "cpu",
            "--resume",
            nan_ck.to_str().unwrap(),
            "--out",
            div_out.to_str().unwrap(),
            "--quiet",
        ],
        "diverged",
    );
    assert!(
        !div_out.join("checkpoint.safetensors").exists(),
        "a diverged epoch must not write a checkpoint"
    );
    assert_eq!(checkpoint::load(&nan_ck).expect("kept").epoch, 1);
}

/// A small trained 2-D model for the analysis commands (CPU, a few seconds).
fn small_model(name: &str, latent: &str) -> (PathBuf, PathBuf) {
    let out = tmp(name);
    let o = run(&[
        "train",
        "--device",
        "cpu",
        "--epochs",
        "2",
        "--out",
        out.to_str().unwrap(),
        "--train-size",
        "1000",
        "--test-size",
        "200",
        "--batch-size",
        "50",
        "--hidden",
        "32",
        "--latent-dim",
        latent,
        "--quiet",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    (out.join("checkpoint.safetensors"), out)
}

fn assert_png(p: &Path) {
    let img = image::open(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    assert!(
        img.width() > 100 && img.height() > 100,
        "{} is {}x{}",
        p.display(),
        img.width(),
        img.height()
    );
}

#[test]
fn grid_posterior_svi_and_estimators_end_to_end() {
    let (ck, out) = small_model("analysis", "2");
    let ck = ck.to_str().unwrap();
    let figs = out.join("figs");
    let f = figs.to_str().unwrap();
    let o = run(&[
        "grid-posterior",
        "--device",
        "cpu",
        "--checkpoint",
        ck,
        "--out",
        f,
        "--images",
        "4",
        "--elbo-samples",
        "200",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let csv = std::fs::read_to_string(figs.join("grid_posterior.csv")).expect("csv");
    let rows: Vec<Vec<String>> = csv
        .lines()
        .skip(1)
        .map(|l| l.split(',').map(String::from).collect())
        .collect();
    assert_eq!(rows.len(), 4);
    for r in &rows {
        let (log_px, elbo, se): (f64, f64, f64) = (
            r[2].parse().unwrap(),
            r[3].parse().unwrap(),
            r[4].parse().unwrap(),
        );
        assert!(log_px >= elbo - 3.0 * se, "log p(x) {log_px} < ELBO {elbo}");
        assert!(
            r[7].parse::<f64>().unwrap() < 1e-9,
            "normalization error {}",
            r[7]
        );
    }
    assert_png(&figs.join("posterior.png"));
    assert_png(&figs.join("posterior_top_half.png"));

    for observe in ["top", "left", "all"] {
        let o = run(&[
            "svi",
            "--device",
            "cpu",
            "--checkpoint",
            ck,
            "--out",
            f,
            "--images",
            "2",
            "--observe",
            observe,
            "--max-steps",
            "300",
            "--elbo-samples",
            "100",
            "--quiet",
        ]);
        assert!(o.status.success(), "{}", text(&o));
        assert_png(&figs.join(format!("svi_{observe}.png")));
        let summary: serde_json::Value = serde_json::from_slice(
            &std::fs::read(figs.join(format!("svi_{observe}.json"))).expect("json"),
        )
        .expect("parse");
        assert_eq!(summary.as_array().map(|a| a.len()), Some(2));
        assert!(
            summary[0]["kl_to_grid_posterior"]
                .as_f64()
                .is_some_and(|k| (0.0..5.0).contains(&k)),
            "{summary}"
        );
    }
    // A custom mask: observe the right half, given as a PNG.
    let mask_png = out.join("right.png");
    image::GrayImage::from_fn(28, 28, |x, _| image::Luma([if x >= 14 { 255 } else { 0 }]))
        .save(&mask_png)
        .expect("mask");
    let o = run(&[
        "svi",
        "--device",
        "cpu",
        "--checkpoint",
        ck,
        "--out",
        f,
        "--images",
        "1",
        "--observe",
        mask_png.to_str().unwrap(),
        "--max-steps",
        "100",
        "--window",
        "20",
        "--quiet",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    // Outputs are named after the mask file, so a second mask does not overwrite the first.
    assert_png(&figs.join("svi_mask-right.png"));
    assert!(figs.join("svi_mask-right.json").exists());
    for (window, needle) in [
        ("0", "--window 0"),
        ("1", "--window 1"),
        ("60", "--max-steps"),
    ] {
        fails_with(
            &[
                "svi",
                "--device",
                "cpu",
                "--checkpoint",
                ck,
                "--out",
                f,
                "--max-steps",
                "100",
                "--window",
                window,
            ],
            needle,
        );
    }
    fails_with(
        &[
            "svi",
            "--device",
            "cpu",
            "--checkpoint",
            ck,
            "--observe",
            "/no/such/mask.png",
        ],
        "--observe",
    );

    let o = run(&[
        "estimators",
        "--device",
        "cpu",
        "--checkpoint",
        ck,
        "--out",
        f,
        "--reps",
        "300",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("variance ratio"), "{}", text(&o));
    assert_png(&figs.join("estimators_encoder.png"));

    fails_with(
        &[
            "grid-posterior",
            "--device",
            "cpu",
            "--checkpoint",
            ck,
            "--spacing",
            "0",
        ],
        "spacing",
    );
}

#[test]
fn report_on_the_gpu_writes_every_figure_and_an_index() {
    let (ck, out) = small_model("report", "2");
    let rep = out.join("report");
    let o = run(&[
        "report",
        "--device",
        "vulkan",
        "--checkpoint",
        ck.to_str().unwrap(),
        "--out",
        rep.to_str().unwrap(),
        "--images",
        "3",
        "--elbo-samples",
        "100",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let html = std::fs::read_to_string(rep.join("index.html")).expect("index.html");
    for fig in [
        "training_curves",
        "prior_samples",
        "sample_grid",
        "reconstructions",
        "reconstruction_grid",
        "latent_scatter",
        "lattice",
        "interpolation",
        "posterior",
        "posterior_top_half",
    ] {
        let file = format!("{fig}.png");
        assert!(html.contains(&file), "index.html does not show {file}");
        assert_png(&rep.join(&file));
    }
    assert!(
        html.contains("log p(x)") && html.contains("test ELBO"),
        "table and ELBOs in the page"
    );
    // The explorable plane: the page loads both scripts, and the data has a lattice of decoded
    // digits (2-D latent) and one 784-byte image per scatter point.
    assert!(html.contains("id=\"explore\"") && html.contains("explore.js"));
    let data = explore_data(&rep);
    let lattice = &data["lattice"];
    let n = lattice["n"].as_u64().expect("lattice n") as usize;
    assert_eq!(base64_len(&lattice["images"]), n * n * 784);
    // The report draws from the run's test split (200 images here, fewer than the explorer's
    // SCATTER_POINTS), as its test ELBO does.
    let points = data["scatter"]["x"].as_array().expect("x").len();
    assert_eq!(points, vae_gpu::report::explore::SCATTER_POINTS.min(200));
    assert_eq!(base64_len(&data["scatter"]["images"]), points * 784);
}

/// The JSON object of a report's `explore_data.js` (`window.VAE_EXPLORE = {...};`).
fn explore_data(report: &Path) -> serde_json::Value {
    let js = std::fs::read_to_string(report.join("explore_data.js")).expect("explore_data.js");
    let json = js
        .trim()
        .strip_prefix("window.VAE_EXPLORE = ")
        .and_then(|j| j.strip_suffix(';'))
        .expect("window.VAE_EXPLORE = {...};");
    serde_json::from_str(json).expect("explore data is JSON")
}

/// Decoded length of a base64 string value.
fn base64_len(v: &serde_json::Value) -> usize {
    let s = v.as_str().expect("base64 string");
    s.len() / 4 * 3 - s.chars().rev().take_while(|&c| c == '=').count()
}

#[test]
fn two_d_only_commands_refuse_other_latent_sizes() {
    let (ck, out) = small_model("dz3", "3");
    let ck = ck.to_str().unwrap();
    let f = out.join("figs");
    fails_with(
        &[
            "grid-posterior",
            "--device",
            "cpu",
            "--checkpoint",
            ck,
            "--out",
            f.to_str().unwrap(),
        ],
        "--latent-dim 2",
    );
    fails_with(
        &[
            "lattice",
            "--device",
            "cpu",
            "--checkpoint",
            ck,
            "--out",
            f.to_str().unwrap(),
        ],
        "--latent-dim 2",
    );
    // The report works too: its explorable plane is the PCA plane, with no decoded lattice.
    let rep = out.join("report");
    let o = run(&[
        "report",
        "--device",
        "cpu",
        "--checkpoint",
        ck,
        "--out",
        rep.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let data = explore_data(&rep);
    assert!(
        data["lattice"].is_null() && data["axes"][0] == "PC1",
        "{}",
        data["axes"]
    );
    // The scatter still works, through PCA.
    let o = run(&[
        "latent-scatter",
        "--device",
        "cpu",
        "--checkpoint",
        ck,
        "--out",
        f.to_str().unwrap(),
        "--n",
        "200",
    ]);
    assert!(o.status.success(), "{}", text(&o));
}

/// Every impossible model combination ends before any work with exit status 1, an `error:` first
/// line naming the flag, and no run directory.
#[test]
fn impossible_model_combinations_fail_before_any_work() {
    let out = tmp("impossible-models").join("run");
    let cases: &[(&[&str], &str)] = &[
        (&["--likelihood", "categorical", "--bins", "1"], "--bins 1"),
        (
            &["--likelihood", "gaussian", "--variance", "fixed:0"],
            "fixed:0",
        ),
        (&["--hidden", "20,0"], "width 0"),
        (&["--likelihood", "beta", "--mean", "sigmoid"], "--mean"),
        (
            &["--likelihood", "gaussian", "--binarize", "threshold"],
            "--pixels threshold",
        ),
        (&["--kl", "analytic", "--prior", "laplace"], "--kl analytic"),
        (
            &["--bins", "4"],
            "--bins applies to --likelihood categorical",
        ),
        (&["--prior", "laplace:-1"], "scale"),
        (&["--init", "normal:0"], "normal:0"),
        (&["--optimizer", "sgd"], "sgd"),
    ];
    for (flags, needle) in cases {
        let mut args = vec!["train", "--device", "cpu", "--out", out.to_str().unwrap()];
        args.extend_from_slice(flags);
        let o = run(&args);
        let err = String::from_utf8_lossy(&o.stderr).to_string();
        assert_eq!(o.status.code(), Some(1), "{flags:?}:\n{err}");
        let first = err.lines().next().unwrap_or("");
        assert!(
            first.starts_with("error:") && first.contains(needle),
            "{flags:?}: first line `{first}` should name `{needle}`"
        );
        assert!(!err.contains("panicked"), "{err}");
        assert!(!out.exists(), "{flags:?} created {}", out.display());
    }
}

/// `train --help` names every choice of every family flag with a line of its own.
#[test]
fn train_help_explains_every_choice() {
    let o = run(&["train", "--help"]);
    assert!(o.status.success());
    let help = text(&o);
    for choice in [
        "- bernoulli:",
        "- bernoulli-ce:",
        "- continuous-bernoulli:",
        "- gaussian:",
        "- beta:",
        "- categorical:",
        "- laplace:",
        "- analytic:",
        "- relu:",
        "- adagrad:",
        "- sigmoid:",
    ] {
        assert!(help.contains(choice), "train --help lacks `{choice}`");
    }
    for flag in ["--prior", "--variance", "--init", "--bins", "--hidden"] {
        assert!(help.contains(flag), "train --help lacks {flag}");
    }
}

/// `train --model-file`: a JSON spec (any field may be left out), flags on top of it, stored in
/// the checkpoint; a misspelt field, an impossible member or a missing file is one error line.
#[test]
fn a_model_file_chooses_the_member_and_flags_override_it() {
    let dir = tmp("model-file");
    let spec = dir.join("model.json");
    std::fs::write(
        &spec,
        r#"{"encoder": [16, 8], "activation": "relu", "likelihood": {"kind": "beta"},
            "posterior": "laplace"}"#,
    )
    .unwrap();
    let out = dir.join("run");
    let o = train_small(
        &out,
        "cpu",
        "1",
        &["--model-file", spec.to_str().unwrap(), "--latent-dim", "3"],
    );
    assert!(o.status.success(), "{}", text(&o));
    let model = vae_gpu::training::checkpoint::load(&out.join("checkpoint.safetensors"))
        .expect("load")
        .config
        .model;
    // train_small passes --hidden 24, which overrides the file's encoder like any flag.
    assert_eq!(
        (model.encoder, model.decoder, model.latent),
        (
            vae_gpu::spec::linear(&[24]),
            vae_gpu::spec::linear(&[24]),
            3
        )
    );
    assert_eq!(model.likelihood, vae_gpu::spec::Likelihood::Beta);
    assert_eq!(model.posterior, vae_gpu::spec::LatentFamily::Laplace);
    for (body, needle) in [
        (
            r#"{"likelihod": {"kind": "beta"}}"#,
            "unknown field `likelihod`",
        ),
        (
            r#"{"likelihood": {"kind": "categorical", "bins": 1}}"#,
            "2..=256",
        ),
        ("{", "EOF"),
    ] {
        std::fs::write(&spec, body).unwrap();
        let args = [
            "train",
            "--device",
            "cpu",
            "--model-file",
            spec.to_str().unwrap(),
        ];
        fails_with(&args, needle);
    }
    fails_with(
        &[
            "train",
            "--model-file",
            dir.join("absent.json").to_str().unwrap(),
        ],
        "absent.json",
    );
}

/// `pca` and `ppca` on a small slice of MNIST: their figures and tables, the printed numbers,
/// and bad component counts as one error line.
#[test]
fn pca_and_ppca_write_their_figures_and_numbers() {
    let out = tmp("linear");
    let linear = |command: &str, k: &str| {
        let o = run(&[
            command,
            "--components",
            k,
            "--train-size",
            "2000",
            "--test-size",
            "300",
            "--out",
            out.to_str().unwrap(),
        ]);
        assert!(o.status.success(), "{}", text(&o));
        text(&o)
    };
    assert!(linear("pca", "5").contains("5 components explain"));
    for f in ["pca_scatter.png", "pca_reconstructions.png"] {
        assert_png(&out.join(f));
    }
    assert!(linear("ppca", "3").contains("test log-likelihood"));
    for f in ["ppca_samples.png", "ppca_posterior_means.png"] {
        assert_png(&out.join(f));
    }
    let csv = std::fs::read_to_string(out.join("ppca_test_log_likelihood.csv")).expect("csv");
    assert_eq!(csv.lines().count(), 301);
    fails_with(&["ppca", "--components", "0"], "--components");
    fails_with(&["ppca", "--components", "784"], "--components");
    fails_with(&["pca", "--components", "784"], "--components");
}

/// The lecture notes' circle end to end on the CPU path: a short run of the notes' model (1-D
/// latent), every vector-data figure through `report`, the grid table's bound, the commands that
/// draw digits saying so, and `ppca` on the same data. Then a user's CSV and `.npy` files: a good
/// one trains, bad ones (and impossible combinations) are one error line each.
#[test]
fn circle_and_data_files_end_to_end() {
    let dir = tmp("circle");
    let run_dir = dir.join("run");
    let notes = [
        "train",
        "--dataset",
        "circle",
        "--n",
        "2000",
        "--latent-dim",
        "1",
        "--hidden",
        "20,20",
        "--activation",
        "relu",
        "--likelihood",
        "gaussian",
        "--variance",
        "fixed:0.1",
        "--kl",
        "analytic",
        "--lr",
        "3e-3",
        "--batch-size",
        "100",
        "--epochs",
        "15",
        "--device",
        "cpu",
        "--quiet",
        "--out",
    ];
    let o = run(&[&notes[..], &[run_dir.to_str().unwrap()]].concat());
    assert!(o.status.success(), "{}", text(&o));
    let t = text(&o);
    assert!(
        t.contains("on the circle (n = 2000, noise 0.1, data seed 0)"),
        "{t}"
    );
    assert!(t.contains("1500 train / 0 val / 500 test rows"), "{t}");
    let ck = run_dir.join("checkpoint.safetensors");
    let ck_s = ck.to_str().unwrap();
    let report = dir.join("report");
    let o = run(&[
        "report",
        "--checkpoint",
        ck_s,
        "--device",
        "cpu",
        "--out",
        report.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    for f in [
        "data.png",
        "prior_samples.png",
        "decoder_curve.png",
        "reconstructions.png",
        "encoder_map.png",
        "latent_scatter.png",
        "posterior.png",
        "training_curves.png",
    ] {
        assert_png(&report.join(f));
    }
    assert!(
        !report.join("lattice.png").exists() && !report.join("posterior_top_half.png").exists()
    );
    // log p(x) by integration on the line bounds the ELBO for every row of the table.
    let csv = std::fs::read_to_string(report.join("grid_posterior.csv")).expect("csv");
    assert_eq!(csv.lines().count(), 11);
    assert!(csv.lines().skip(1).all(|l| l.contains(",true,")), "{csv}");
    let html = std::fs::read_to_string(report.join("index.html")).expect("html");
    assert!(
        html.contains("the circle (n = 2000"),
        "data named in the report"
    );
    let svi_out = dir.join("svi");
    let o = run(&[
        "svi",
        "--checkpoint",
        ck_s,
        "--device",
        "cpu",
        "--observe",
        "all",
        "--images",
        "2",
        "--quiet",
        "--out",
        svi_out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    assert_png(&svi_out.join("svi_posterior_all.png"));
    // IWAE for a 1-D latent and a Gaussian likelihood: per-row CSV, and bad K as one error line.
    let iwae_out = dir.join("iwae");
    let o = run(&[
        "eval",
        "--checkpoint",
        ck_s,
        "--device",
        "cpu",
        "--iwae",
        "50",
        "--images",
        "20",
        "--out",
        iwae_out.to_str().unwrap(),
    ]);
    assert!(
        o.status.success() && text(&o).contains("IWAE log p(x), K = 50:"),
        "{}",
        text(&o)
    );
    let iwae_csv = std::fs::read_to_string(iwae_out.join("iwae_k50.csv")).expect("csv");
    assert_eq!(iwae_csv.lines().count(), 21);
    for line in iwae_csv.lines().skip(1) {
        let f: Vec<f64> = line
            .split(',')
            .skip(2)
            .map(|v| v.parse().unwrap())
            .collect();
        assert!(f[0] >= f[1] - 1e-3, "log-mean-exp below the mean: {line}");
    }
    fails_with(
        &[
            "eval",
            "--checkpoint",
            ck_s,
            "--device",
            "cpu",
            "--iwae",
            "0",
        ],
        "--iwae 0",
    );
    fails_with(&["eval", "--checkpoint", ck_s, "--images", "5"], "--iwae");
    fails_with(
        &[
            "lattice",
            "--checkpoint",
            ck_s,
            "--device",
            "cpu",
            "--out",
            dir.to_str().unwrap(),
        ],
        "draws 28×28 digits",
    );
    fails_with(
        &[
            "interpolate",
            "--checkpoint",
            ck_s,
            "--device",
            "cpu",
            "--out",
            dir.to_str().unwrap(),
        ],
        "vector data",
    );
    fails_with(
        &[
            "svi",
            "--checkpoint",
            ck_s,
            "--device",
            "cpu",
            "--observe",
            "top",
            "--out",
            dir.to_str().unwrap(),
        ],
        "--observe all",
    );
    fails_with(
        &[
            "eval",
            "--checkpoint",
            ck_s,
            "--device",
            "cpu",
            "--data",
            dir.to_str().unwrap(),
        ],
        "drop --data",
    );
    let o = run(&[
        "ppca",
        "--dataset",
        "circle",
        "--components",
        "1",
        "--out",
        dir.join("ppca").to_str().unwrap(),
    ]);
    assert!(
        o.status.success() && text(&o).contains("nats/row over 5000 rows"),
        "{}",
        text(&o)
    );
    assert_png(&dir.join("ppca").join("ppca_samples.png"));

    let csv_file = dir.join("points.csv");
    let mut rows = String::from("a,b,c\n");
    for i in 0..400 {
        let t = i as f32 / 40.0;
        rows += &format!("{},{},{}\n", t.cos(), t.sin(), 0.1 * t);
    }
    std::fs::write(&csv_file, rows).unwrap();
    let mine = dir.join("mine");
    let o = run(&[
        "train",
        "--data-file",
        csv_file.to_str().unwrap(),
        "--latent-dim",
        "1",
        "--hidden",
        "none",
        "--likelihood",
        "gaussian",
        "--variance",
        "shared",
        "--kl",
        "analytic",
        "--batch-size",
        "50",
        "--epochs",
        "2",
        "--device",
        "cpu",
        "--quiet",
        "--out",
        mine.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let loaded = checkpoint::load(&mine.join("checkpoint.safetensors")).expect("checkpoint");
    assert_eq!((loaded.config.model.input, loaded.train_size), (3, 300));
    assert!(loaded.config.model.encoder.is_empty());
    let bad = dir.join("ragged.csv");
    std::fs::write(&bad, "1,2\n3\n").unwrap();
    let gauss = ["--likelihood", "gaussian", "--device", "cpu"];
    fails_with(
        &[&["train", "--data-file", bad.to_str().unwrap()][..], &gauss].concat(),
        "line 2 has 1 values",
    );
    let empty = dir.join("empty.npy");
    std::fs::write(&empty, b"").unwrap();
    fails_with(
        &[
            &["train", "--data-file", empty.to_str().unwrap()][..],
            &gauss,
        ]
        .concat(),
        "not a NumPy .npy file",
    );
    fails_with(
        &[
            "train",
            "--data-file",
            dir.join("absent.csv").to_str().unwrap(),
        ],
        "absent.csv",
    );
    fails_with(&["train", "--dataset", "circle"], "--likelihood bernoulli");
    fails_with(&["train", "--n", "100"], "--dataset circle");
    fails_with(
        &[
            "train",
            "--dataset",
            "circle",
            "--n",
            "1",
            "--likelihood",
            "gaussian",
        ],
        "--n 1",
    );
    fails_with(
        &[
            "train",
            "--dataset",
            "circle",
            "--likelihood",
            "gaussian",
            "--binarize",
            "threshold",
        ],
        "--pixels threshold applies to MNIST pixels",
    );
    fails_with(
        &[
            "train",
            "--dataset",
            "circle",
            "--data-file",
            csv_file.to_str().unwrap(),
        ],
        "cannot be used with",
    );
}

/// Comparable units: a Gaussian on dequantized pixels reports bits/dim of the 8-bit data, a
/// Bernoulli says its nats are binarized MNIST's, and representations a likelihood does not model
/// are refused (a categorical is already over 8-bit values; a Beta needs values inside (0, 1);
/// bin middles are the Beta's).
#[test]
fn dequantized_models_report_bits_per_dimension() {
    let out = tmp("dequantize");
    let o = train(
        &out,
        "cpu",
        &["--likelihood", "gaussian", "--binarize", "dequantize"],
    );
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains("test ELBO in bits/dim of the 8-bit data:"),
        "{}",
        text(&o)
    );
    let o = run(&[
        "eval",
        "--checkpoint",
        out.join("checkpoint.safetensors").to_str().unwrap(),
        "--device",
        "cpu",
        "--test-size",
        "50",
        "--iwae",
        "3",
        "--images",
        "5",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(
        o.status.success() && text(&o).contains("IWAE log p(x) in bits/dim"),
        "{}",
        text(&o)
    );
    let bern = tmp("binarized-units");
    assert!(text(&train(&bern, "cpu", &[])).contains("nats of binarized MNIST"));
    fails_with(
        &["train", "--likelihood", "beta", "--binarize", "grayscale"],
        "midpoint",
    );
    fails_with(
        &["train", "--likelihood", "gaussian", "--pixels", "midpoint"],
        "modelled by --likelihood beta",
    );
    fails_with(
        &[
            "train",
            "--likelihood",
            "categorical",
            "--binarize",
            "dequantize",
        ],
        "already a distribution over 8-bit values",
    );
}

/// `--arch conv` end to end on a small run: trained on the CPU and on the GPU (lavapipe in CI)
/// from the same seed, the two first epochs agree; the checkpoint holds PyTorch's conv layouts;
/// `svi --observe left`, `estimators` and `eval` run on it; impossible conv specs are one error
/// line naming the layer and the shapes.
#[test]
fn conv_models_train_on_both_devices_and_every_command_takes_them() {
    let dir = tmp("conv");
    let conv = [
        "--arch",
        "conv",
        "--channels",
        "4,6",
        "--likelihood",
        "gaussian",
        "--variance",
        "decoder",
    ];
    let test_elbo = |out: &std::path::Path| {
        let ck =
            vae_gpu::training::checkpoint::load(&out.join("checkpoint.safetensors")).expect("load");
        let shapes: Vec<String> = ck
            .config
            .model
            .layout()
            .named_tensors()
            .iter()
            .map(|t| format!("{} {:?}", t.name, t.shape))
            .collect();
        assert!(shapes.contains(&"encoder.conv1.weight [4, 1, 4, 4]".to_string()));
        assert!(shapes.contains(&"decoder.deconv1.weight [6, 4, 4, 4]".to_string()));
        assert!(shapes.contains(&"decoder.mean_variance.weight [4, 2, 4, 4]".to_string()));
        let line: serde_json::Value =
            serde_json::from_str(ck.metrics.as_deref().expect("metrics")).expect("json");
        line["test_elbo"].as_f64().expect("a test ELBO")
    };
    let (cpu, gpu) = (dir.join("cpu"), dir.join("gpu"));
    let o = train_small(&cpu, "cpu", "1", &conv);
    assert!(o.status.success(), "{}", text(&o));
    let o = train_small(&gpu, "vulkan", "1", &conv);
    assert!(o.status.success(), "{}", text(&o));
    // Same initial parameters, data order and noise: after 4 Adam steps in f32 on two devices the
    // test ELBOs (sums over 784 pixels of a σ²(z) Gaussian, |terms| up to ~10 nats) agree to a
    // fraction of a nat.
    let (a, b) = (test_elbo(&cpu), test_elbo(&gpu));
    assert!((a - b).abs() < 0.05 + 1e-3 * a.abs(), "cpu {a} vs gpu {b}");

    let ck = cpu.join("checkpoint.safetensors");
    let ck = ck.to_str().unwrap();
    let figs = dir.join("figs");
    let o = run(&[
        "svi",
        "--checkpoint",
        ck,
        "--observe",
        "left",
        "--images",
        "2",
        "--max-steps",
        "200",
        "--out",
        figs.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(figs.join("svi_left.png").exists());
    let o = run(&["eval", "--checkpoint", ck, "--iwae", "3", "--images", "5"]);
    assert!(o.status.success(), "{}", text(&o));

    // --arch conv on vector data, and a spec whose stride does not fit the image.
    fails_with(
        &[
            "train",
            "--dataset",
            "circle",
            "--arch",
            "conv",
            "--likelihood",
            "gaussian",
        ],
        "--arch mlp",
    );
    let spec = dir.join("bad.json");
    std::fs::write(
        &spec,
        r#"{"image": [1, 28, 28], "encoder": [{"conv2d": {"out": 8, "kernel": 3, "stride": 2}}]}"#,
    )
    .unwrap();
    fails_with(
        &["train", "--model-file", spec.to_str().unwrap()],
        "model.encoder[0] (conv2d on 1×28×28), height: stride 2 does not divide",
    );
    std::fs::write(
        &spec,
        r#"{"encoder": [{"conv2d": {"out": 8, "kernel": 3}}]}"#,
    )
    .unwrap();
    fails_with(
        &["train", "--model-file", spec.to_str().unwrap()],
        "needs an image-shaped input",
    );
}

/// The discretized logistic end to end: one epoch on the CPU and on the GPU (lavapipe in CI) from
/// the same seed gives the same test ELBO, reported also in bits/dim of the 8-bit data (its nats
/// are log P of the bytes); the checkpoint names its heads; svi, eval --iwae and grid-posterior
/// run on it; a representation it does not model is refused naming what it takes.
#[test]
fn discretized_logistic_trains_on_both_devices_and_reports_bits_per_dim() {
    let dir = tmp("discretized-logistic");
    let flags = ["--likelihood", "discretized-logistic"];
    let test_elbo = |out: &std::path::Path| {
        let ck =
            vae_gpu::training::checkpoint::load(&out.join("checkpoint.safetensors")).expect("load");
        let names: Vec<String> = ck
            .config
            .model
            .layout()
            .named_tensors()
            .iter()
            .map(|t| t.name.clone())
            .collect();
        assert!(
            names.contains(&"decoder.log_scale.weight".to_string()),
            "{names:?}"
        );
        let line: serde_json::Value =
            serde_json::from_str(ck.metrics.as_deref().expect("metrics")).expect("json");
        line["test_elbo"].as_f64().expect("a test ELBO")
    };
    let (cpu, gpu) = (dir.join("cpu"), dir.join("gpu"));
    let o = train_small(&cpu, "cpu", "1", &flags);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains("test ELBO in bits/dim of the 8-bit data:"),
        "{}",
        text(&o)
    );
    let o = train_small(&gpu, "vulkan", "1", &flags);
    assert!(o.status.success(), "{}", text(&o));
    // Same parameters, order and noise; four Adam steps in f32 on two devices: the sums over 784
    // log masses (|terms| a few nats) agree to a small fraction of a nat.
    let (a, b) = (test_elbo(&cpu), test_elbo(&gpu));
    assert!((a - b).abs() < 0.05 + 1e-4 * a.abs(), "cpu {a} vs gpu {b}");

    let ck = cpu.join("checkpoint.safetensors");
    let ck = ck.to_str().unwrap();
    let figs = dir.join("figs");
    let figs = figs.to_str().unwrap();
    for args in [
        &[
            "svi",
            "--checkpoint",
            ck,
            "--images",
            "2",
            "--max-steps",
            "200",
            "--window",
            "50",
        ][..],
        &[
            "eval",
            "--checkpoint",
            ck,
            "--test-size",
            "20",
            "--iwae",
            "4",
            "--images",
            "3",
        ],
        &[
            "grid-posterior",
            "--checkpoint",
            ck,
            "--images",
            "2",
            "--plot-images",
            "1",
            "--spacing",
            "0.4",
            "--elbo-samples",
            "20",
        ],
    ] {
        let mut a = args.to_vec();
        a.extend(["--device", "cpu", "--out", figs]);
        let o = run(&a);
        assert!(o.status.success(), "{args:?}: {}", text(&o));
    }
    fails_with(
        &[
            "train",
            "--likelihood",
            "discretized-logistic",
            "--pixels",
            "dequantize",
        ],
        "the discretized-logistic likelihood models the 8-bit values",
    );
}
