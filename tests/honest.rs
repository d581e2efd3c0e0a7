//! What the attack report found: inputs at the edges of the analysis commands (grid bounds past
//! any count, a data directory with a handful of images, PCA of two images), flags with negative
//! or underflowing values, and what the output says about them. Each must end in one clear error
//! or in output that is true, never in a panic or a silent "ok".

use std::path::{Path, PathBuf};

mod common;
use common::cli::*;

/// One epoch of a small model (CPU) with `extra` flags; returns the checkpoint.
fn model(name: &str, extra: &[&str]) -> PathBuf {
    let out = tmp(name);
    let o = train_small(&out, "cpu", "1", extra);
    assert!(o.status.success(), "{}", text(&o));
    out.join("checkpoint.safetensors")
}

/// Writes the IDX files of the first `train` training and `test` test images of the embedded
/// MNIST into `dir` (raw, not gzipped).
fn write_mnist_subset(dir: &Path, train: usize, test: usize) {
    let corpus = vae_gpu::data::mnist::embedded().expect("embedded MNIST");
    for (set, n, prefix) in [
        (&corpus.train, train, "train"),
        (&corpus.test, test, "t10k"),
    ] {
        let mut images = vec![0, 0, 8, 3];
        for v in [n as u32, 28, 28] {
            images.extend(v.to_be_bytes());
        }
        let mut labels = vec![0, 0, 8, 1];
        labels.extend((n as u32).to_be_bytes());
        for i in 0..n {
            images.extend_from_slice(set.image(i));
            labels.push(set.labels[i]);
        }
        std::fs::write(dir.join(format!("{prefix}-images-idx3-ubyte")), images).unwrap();
        std::fs::write(dir.join(format!("{prefix}-labels-idx1-ubyte")), labels).unwrap();
    }
}

/// Row 4: `--lower=-1e18 --upper 1e18` overflowed the point count to an empty grid and
/// panicked in `chunks(0)`; in every command and latent size it is one error line.
#[test]
fn grid_bounds_past_any_point_count_are_one_error() {
    let two = model("h-grid2", &[]);
    let one = model("h-grid1", &["--latent-dim", "1"]);
    let out = tmp("h-grid-out");
    for ck in [&two, &one] {
        for cmd in ["grid-posterior", "report"] {
            for centre in [false, true] {
                let mut args = vec![
                    cmd,
                    "--checkpoint",
                    ck.to_str().unwrap(),
                    "--device",
                    "cpu",
                    "--out",
                    out.to_str().unwrap(),
                    "--lower=-1e18",
                    "--upper",
                    "1e18",
                ];
                if centre {
                    args.push("--centre-on-q");
                }
                let o = run(&args);
                let t = text(&o);
                assert!(
                    !o.status.success() && !t.contains("panicked"),
                    "{args:?}:\n{t}"
                );
                let stderr = String::from_utf8_lossy(&o.stderr);
                assert_eq!(stderr.lines().count(), 1, "{args:?}:\n{stderr}");
                assert!(stderr.contains("points per axis"), "{stderr}");
            }
        }
    }
}

/// Row 5: a data directory with 5 test images (the README: any number of images) draws as many
/// panels as there are, in `samples`, `reconstructions` and `report`.
#[test]
fn five_test_images_draw_five_panels() {
    let data = tmp("h-five-data");
    write_mnist_subset(&data, 300, 5);
    let d = data.to_str().unwrap();
    let run_dir = tmp("h-five-run");
    let o = run(&[
        "train",
        "--device",
        "cpu",
        "--epochs",
        "1",
        "--data",
        d,
        "--train-size",
        "200",
        "--test-size",
        "5",
        "--batch-size",
        "50",
        "--hidden",
        "16",
        "--quiet",
        "--out",
        run_dir.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let ck = run_dir.join("checkpoint.safetensors");
    let out = tmp("h-five-out");
    for cmd in ["samples", "reconstructions", "report"] {
        let o = run(&[
            cmd,
            "--checkpoint",
            ck.to_str().unwrap(),
            "--data",
            d,
            "--device",
            "cpu",
            "--out",
            out.to_str().unwrap(),
        ]);
        let t = text(&o);
        assert!(o.status.success() && !t.contains("panicked"), "{cmd}:\n{t}");
    }
    for f in [
        "sample_grid.png",
        "reconstructions.png",
        "reconstruction_grid.png",
        "index.html",
    ] {
        assert!(out.join(f).exists(), "{f}");
    }
}

/// Rows 8 and 10: PCA of two images is sorted and finite (it printed "0.00%" and a NaN MSE),
/// PPCA of them refuses with the minimum, and ten test images draw ten panels.
#[test]
fn pca_and_ppca_on_few_rows_are_finite_or_refused() {
    let out = tmp("h-pca");
    let o = dir_run(&["pca", "--components", "1", "--train-size", "2"], &out);
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    assert!(t.contains("100.00%") && !t.contains("NaN"), "{t}");
    let csv = std::fs::read_to_string(out.join("pca_eigenvalues.csv")).unwrap();
    let ev: Vec<f64> = csv
        .lines()
        .skip(1)
        .map(|l| l.split(',').nth(1).unwrap().parse().unwrap())
        .collect();
    assert!(ev.windows(2).all(|w| w[0] >= w[1]), "{:?}", &ev[..3]);
    let o = dir_run(&["ppca", "--components", "1", "--train-size", "2"], &out);
    let t = text(&o);
    assert!(!o.status.success() && !t.contains("NaN"), "{t}");
    assert!(t.contains("at least 3 training rows"), "{t}");
    let o = dir_run(&["pca", "--train-size", "1000", "--test-size", "10"], &out);
    assert!(o.status.success(), "{}", text(&o));
    assert!(out.join("pca_reconstructions.png").exists());
}

fn dir_run(args: &[&str], out: &Path) -> std::process::Output {
    let mut a = args.to_vec();
    a.extend(["--out", out.to_str().unwrap()]);
    let o = run(&a);
    assert!(!text(&o).contains("panicked"), "{a:?}:\n{}", text(&o));
    o
}

/// Row 9: a grid that cuts off part of a posterior. `grid-posterior` warned, `report` said
/// nothing and its table read "ok"; now both warn, and the page shows the warning and "edge".
#[test]
fn report_says_when_the_grid_cuts_a_posterior() {
    let ck = model("h-cut", &[]);
    let out = tmp("h-cut-out");
    for cmd in ["grid-posterior", "report"] {
        let o = run(&[
            cmd,
            "--checkpoint",
            ck.to_str().unwrap(),
            "--device",
            "cpu",
            "--out",
            out.to_str().unwrap(),
            "--lower=-0.4",
            "--upper",
            "0.4",
            "--spacing",
            "0.02",
            "--images",
            "4",
            "--plot-images",
            "1",
            "--elbo-samples",
            "50",
        ]);
        let t = text(&o);
        assert!(o.status.success(), "{cmd}: {t}");
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert!(
            stderr.contains("warning: more than 0.1%"),
            "{cmd}: {stderr}"
        );
    }
    let html = std::fs::read_to_string(out.join("index.html")).unwrap();
    assert!(html.contains("Warning:</b> more than 0.1%"), "{html}");
    let table = &html[html.find("<pre>").unwrap()..];
    assert!(table.contains(" edge "), "{table}");
}

/// Row 13: every message names the flag or field and what it takes.
#[test]
fn flag_and_field_messages_name_what_is_allowed() {
    for (args, needle) in [
        (&["train", "--epochs", "-1"][..], "'-1' for '--epochs"),
        (
            &["train", "--epochs", "-1"],
            "not a whole number from 0 to 4294967295",
        ),
        (&["train", "--seed", "-1"], "'--seed"),
        (&["train", "--lr", "-1"], "`-1` must be a positive number"),
        (&["train", "--lr", "1e-300"], "outside the f32 range"),
        (&["train", "--hidden", "-5"], "`-5` is not a layer width"),
        (&["svi", "--checkpoint", "x", "--lr", "1e-300"], "'--lr"),
    ] {
        fails_with(args, needle);
        assert!(
            !text(&run(args)).contains("unexpected argument"),
            "{args:?}"
        );
    }
    let ck = model("h-flags", &[]);
    fails_with(
        &[
            "estimators",
            "--checkpoint",
            ck.to_str().unwrap(),
            "--device",
            "cpu",
            "--image",
            "18446744073709551615",
        ],
        "the test set has 10000 images, numbered 0 to 9999",
    );
    let dir = tmp("h-model-files");
    for (json, needle) in [
        (
            r#"{"input": 100}"#,
            "\"input\": 100 but the data have 784 values per row",
        ),
        (
            r#"{"likelihood": {"kind": "gaussian", "varience": {"kind": "learned"}}}"#,
            "no field `varience`",
        ),
        (
            r#"{"decoder": [16, {"reshape": [4294967296, 4294967296, 1]}]}"#,
            "4294967296×4294967296×1 has more values",
        ),
    ] {
        let f = dir.join("m.json");
        std::fs::write(&f, json).unwrap();
        fails_with(
            &[
                "train",
                "--device",
                "cpu",
                "--model-file",
                f.to_str().unwrap(),
            ],
            needle,
        );
    }
}

/// The number after `key` in `text` (e.g. "test ELBO: -190.123").
fn number_after(text: &str, key: &str) -> f64 {
    let rest = &text[text.find(key).unwrap_or_else(|| panic!("{key} in {text}")) + key.len()..];
    let num: String = rest
        .trim_start()
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '-' || *c == '.')
        .collect();
    num.parse()
        .unwrap_or_else(|_| panic!("{key} {num} in {text}"))
}

/// `eval` and `report` scored all 10,000 test images, not the run's split, so their ELBO
/// differed from `train`'s; now they use the split the checkpoint records and say so.
#[test]
fn eval_and_report_score_the_run_s_test_split() {
    let out = tmp("h-split");
    let o = train_small(&out, "cpu", "1", &[]);
    assert!(o.status.success(), "{}", text(&o));
    let trained = number_after(&text(&o), "test ELBO:");
    let ck = out.join("checkpoint.safetensors");
    let o = run(&[
        "eval",
        "--device",
        "cpu",
        "--checkpoint",
        ck.to_str().unwrap(),
    ]);
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    assert!(
        t.contains("the first 100 test images; the run's test split"),
        "{t}"
    );
    assert!(
        (number_after(&t, "test ELBO:") - trained).abs() < 2e-3,
        "{t}"
    );
    let figs = tmp("h-split-report");
    let o = run(&[
        "report",
        "--checkpoint",
        ck.to_str().unwrap(),
        "--device",
        "cpu",
        "--out",
        figs.to_str().unwrap(),
        "--images",
        "2",
        "--plot-images",
        "1",
        "--elbo-samples",
        "20",
    ]);
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    assert!(
        t.contains("the first 100 test rows: the run's test split"),
        "{t}"
    );
    assert!(
        (number_after(&t, "test ELBO") - trained).abs() < 2e-3,
        "{t}"
    );
    let html = std::fs::read_to_string(figs.join("index.html")).unwrap();
    assert!(html.contains("(100 images)"), "the page names the rows");
}

/// One row has no standard error: "n/a (one row)", not "± NaN" (PPCA and IWAE).
#[test]
fn one_row_has_no_standard_error_rather_than_nan() {
    let out = tmp("h-one-row");
    let o = dir_run(&["ppca", "--train-size", "500", "--test-size", "1"], &out);
    let t = text(&o);
    assert!(o.status.success() && !t.contains("NaN"), "{t}");
    assert!(t.contains("(s.e. n/a: one row)"), "{t}");
    let ck = model("h-one-row-model", &[]);
    let o = dir_run(
        &[
            "eval",
            "--device",
            "cpu",
            "--checkpoint",
            ck.to_str().unwrap(),
            "--iwae",
            "20",
            "--images",
            "1",
        ],
        &out,
    );
    let t = text(&o);
    assert!(o.status.success() && !t.contains("NaN"), "{t}");
    assert!(t.contains("(s.e. n/a: one row)"), "{t}");
}

/// `svi` on vector data failed with its default `--observe top`; and `--lr 1e-30` reported
/// "converged" for a q that never moved.
#[test]
fn svi_defaults_fit_vector_data_and_a_stuck_q_is_not_converged() {
    let circle = tmp("h-svi-circle");
    let o = run(&[
        "train",
        "--device",
        "cpu",
        "--dataset",
        "circle",
        "--n",
        "2000",
        "--latent-dim",
        "1",
        "--likelihood",
        "gaussian",
        "--epochs",
        "1",
        "--quiet",
        "--out",
        circle.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let ck = circle.join("checkpoint.safetensors");
    let out = tmp("h-svi-out");
    let o = dir_run(
        &[
            "svi",
            "--checkpoint",
            ck.to_str().unwrap(),
            "--device",
            "cpu",
            "--images",
            "2",
            "--max-steps",
            "200",
            "--window",
            "20",
            "--elbo-samples",
            "20",
            "--quiet",
        ],
        &out,
    );
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    assert!(t.contains("all values observed"), "{t}");
    let mnist = model("h-svi-mnist", &[]);
    let o = dir_run(
        &[
            "svi",
            "--checkpoint",
            mnist.to_str().unwrap(),
            "--device",
            "cpu",
            "--images",
            "2",
            "--lr",
            "1e-30",
            "--max-steps",
            "100",
            "--window",
            "20",
            "--elbo-samples",
            "20",
            "--quiet",
        ],
        &out,
    );
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    assert!(
        t.contains("stuck") && t.contains("too small for Adam to move it"),
        "{t}"
    );
    assert!(!t.contains(" yes "), "{t}");
}

/// `--bins 256` on 200 images peaked at 4 GB and wrote a 1.2 GB checkpoint without warning:
/// the help says so up front.
#[test]
fn bins_help_states_the_size_of_a_large_categorical() {
    let o = run(&["train", "--help"]);
    let t = text(&o);
    assert!(
        t.contains("1.2 GB checkpoint") && t.contains("4 GB of memory"),
        "{t}"
    );
}

/// A latent scatter titled "10,000 test images" for a run trained on 200 read as if the run
/// had used them: titles say which rows were drawn and the run's sizes.
#[test]
fn figure_titles_say_which_rows_were_drawn() {
    use vae_gpu::report::session::Session;
    let ck_path = model("h-titles", &[]);
    let ck = vae_gpu::training::checkpoint::load(&ck_path).unwrap();
    let corpus = vae_gpu::data::mnist::embedded().unwrap();
    let ops = vae_gpu::device::model_ops(
        vae_gpu::device::DeviceKind::Cpu,
        &ck.config.model,
        &ck.state.params,
    )
    .unwrap();
    let s = Session {
        ck,
        test: corpus.test,
        ops,
        seed: 0,
    };
    assert_eq!(
        s.rows_note(10_000),
        "the first 10000 of 10000 test images (the run trained on 200, tested on 100)"
    );
    assert_eq!(
        s.rows_note(100),
        "the 100 test images of the run's split (the run trained on 200)"
    );
}
