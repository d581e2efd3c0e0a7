//! A checkpoint records the data it was trained on — the directory or file and the sha256 of what
//! was read — and every command that reads the run's data again (eval, the analysis commands,
//! `--resume`) uses it, or refuses with both identities named when it is gone or has changed.
//! Checkpoints from before the hashes load as before.

use std::path::{Path, PathBuf};

use vae_gpu::data::{input, mnist, DataSource, Values};
use vae_gpu::training::checkpoint;

mod common;
use common::cli::*;

fn idx_images(pixels: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    for x in [0x0803u32, (pixels.len() / 784) as u32, 28, 28] {
        v.extend_from_slice(&x.to_be_bytes());
    }
    v.extend_from_slice(pixels);
    v
}

fn idx_labels(labels: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    for x in [0x0801u32, labels.len() as u32] {
        v.extend_from_slice(&x.to_be_bytes());
    }
    v.extend_from_slice(labels);
    v
}

/// A digit set of its own: the first 300 training and 100 test images of MNIST, inverted
/// (255 − pixel), as raw IDX files in `dir`.
fn inverted_digits(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    let m = mnist::embedded().unwrap();
    for (set, n, images, labels) in [
        (
            &m.train,
            300,
            "train-images-idx3-ubyte",
            "train-labels-idx1-ubyte",
        ),
        (
            &m.test,
            100,
            "t10k-images-idx3-ubyte",
            "t10k-labels-idx1-ubyte",
        ),
    ] {
        let part = set.slice(0, n);
        let Values::Pixels(px) = &part.values else {
            panic!()
        };
        let inv: Vec<u8> = px.iter().map(|p| 255 - p).collect();
        std::fs::write(dir.join(images), idx_images(&inv)).unwrap();
        std::fs::write(dir.join(labels), idx_labels(&part.labels)).unwrap();
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for f in std::fs::read_dir(from).unwrap() {
        let f = f.unwrap().path();
        std::fs::copy(&f, to.join(f.file_name().unwrap())).unwrap();
    }
}

/// The number after `label` in the output, e.g. "test ELBO: -265.123".
fn number_after(t: &str, label: &str) -> String {
    let i = t
        .find(label)
        .unwrap_or_else(|| panic!("no `{label}` in:\n{t}"));
    t[i + label.len()..]
        .split_whitespace()
        .next()
        .unwrap()
        .to_string()
}

fn eval(ck: &Path, extra: &[&str]) -> std::process::Output {
    let mut args = vec![
        "eval",
        "--device",
        "cpu",
        "--checkpoint",
        ck.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    run(&args)
}

fn resume(ck: &Path, out: &Path) -> std::process::Output {
    run(&[
        "train",
        "--device",
        "cpu",
        "--quiet",
        "--epochs",
        "1",
        "--resume",
        ck.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ])
}

fn sha256_of_dir(dir: &Path) -> String {
    let parts: Vec<Vec<u8>> = [
        "train-images-idx3-ubyte",
        "train-labels-idx1-ubyte",
        "t10k-images-idx3-ubyte",
        "t10k-labels-idx1-ubyte",
    ]
    .iter()
    .map(|f| std::fs::read(dir.join(f)).unwrap())
    .collect();
    let refs: Vec<&[u8]> = parts.iter().map(|p| p.as_slice()).collect();
    input::sha256_of(&refs)
}

/// Row 1 of the report: `train --data DIR` (inverted digits), then `eval` without `--data` scored
/// the built-in MNIST (−1062 instead of −265) and `--resume` trained on it.
#[test]
fn a_run_on_a_data_directory_is_evaluated_and_resumed_on_that_directory() {
    let root = tmp("prov-dir");
    let digits = root.join("inverted");
    inverted_digits(&digits);
    let out = root.join("run");
    let o = train_small(&out, "cpu", "1", &["--data", digits.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
    let trained = number_after(&text(&o), "test ELBO: ");
    let ck_path = out.join("checkpoint.safetensors");
    let ck = checkpoint::load(&ck_path).unwrap();
    let sha = sha256_of_dir(&digits);
    assert_eq!(
        ck.config.data,
        DataSource::MnistChecked {
            dir: Some(digits.canonicalize().unwrap()),
            sha256: sha.clone()
        }
    );
    assert_ne!(sha, mnist::BUILTIN_SHA256);

    // Without --data, eval uses the recorded directory: the training run's own test ELBO.
    let o = eval(&ck_path, &[]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(
        number_after(&text(&o), "test ELBO: "),
        trained,
        "{}",
        text(&o)
    );
    // A copy of the same files elsewhere is the same data.
    let copy = root.join("copy");
    copy_dir(&digits, &copy);
    let o = eval(&ck_path, &["--data", copy.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(number_after(&text(&o), "test ELBO: "), trained);
    // Other images under --data are refused, both hashes named.
    let builtin_dir = concat!(env!("CARGO_MANIFEST_DIR"), "/data/mnist");
    let o = eval(&ck_path, &["--data", builtin_dir]);
    assert!(!o.status.success());
    let t = text(&o);
    assert!(
        t.contains(&sha) && t.contains(mnist::BUILTIN_SHA256) && !t.contains("panicked"),
        "{t}"
    );

    // Resume without --data trains on the recorded directory too.
    let o = resume(&ck_path, &out);
    assert!(o.status.success(), "{}", text(&o));
    let t = text(&o);
    assert!(
        t.contains(&format!(
            "on MNIST from {}",
            digits.canonicalize().unwrap().display()
        )),
        "{t}"
    );
    assert_eq!(
        checkpoint::load(&ck_path).unwrap().config.data,
        ck.config.data
    );

    // A changed directory: eval, an analysis command and resume all refuse, naming both.
    let test_images = digits.join("t10k-images-idx3-ubyte");
    let mut bytes = std::fs::read(&test_images).unwrap();
    bytes[16 + 400] ^= 0xff;
    std::fs::write(&test_images, &bytes).unwrap();
    let changed = sha256_of_dir(&digits);
    let before = std::fs::read(&ck_path).unwrap();
    let figs = root.join("figs");
    for o in [
        eval(&ck_path, &[]),
        run(&[
            "samples",
            "--device",
            "cpu",
            "--checkpoint",
            ck_path.to_str().unwrap(),
            "--out",
            figs.to_str().unwrap(),
        ]),
        resume(&ck_path, &out),
    ] {
        assert!(!o.status.success());
        let t = text(&o);
        assert!(
            t.contains(&sha) && t.contains(&changed) && t.contains("other images"),
            "{t}"
        );
        assert!(!t.contains("panicked"), "{t}");
    }
    assert_eq!(std::fs::read(&ck_path).unwrap(), before, "resume refused");
    // Gone: the message names the directory and its hash.
    std::fs::remove_dir_all(&digits).unwrap();
    let o = eval(&ck_path, &[]);
    assert!(!o.status.success());
    let t = text(&o);
    assert!(t.contains("is gone") && t.contains(&sha), "{t}");
    // ... and the copy still evaluates it.
    let o = eval(&ck_path, &["--data", copy.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
}

/// Checkpoints from before the hashes (`{"kind":"mnist"}`) load as before: the built-in copy, or
/// `--data DIR` when given; resuming one records what it read from then on.
#[test]
fn checkpoints_without_a_recorded_hash_read_as_before() {
    let root = tmp("prov-old");
    let out = root.join("run");
    let o = train_small(&out, "cpu", "1", &[]);
    assert!(o.status.success(), "{}", text(&o));
    let ck_path = out.join("checkpoint.safetensors");
    let mut ck = checkpoint::load(&ck_path).unwrap();
    assert_eq!(
        ck.config.data,
        DataSource::MnistChecked {
            dir: None,
            sha256: mnist::BUILTIN_SHA256.into()
        }
    );
    let trained = number_after(&text(&o), "test ELBO: ");
    ck.config.data = DataSource::Mnist;
    let old = root.join("old.safetensors");
    checkpoint::save(&old, &ck).unwrap();
    let o = eval(&old, &["--test-size", "100"]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(number_after(&text(&o), "test ELBO: "), trained);
    let digits = root.join("inverted");
    inverted_digits(&digits);
    let o = eval(&old, &["--data", digits.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
    assert_ne!(number_after(&text(&o), "test ELBO: "), trained);
    let o = resume(&old, &root.join("resumed"));
    assert!(o.status.success(), "{}", text(&o));
    let resumed = checkpoint::load(&root.join("resumed/checkpoint.safetensors")).unwrap();
    assert_eq!(
        resumed.config.data,
        DataSource::MnistChecked {
            dir: None,
            sha256: mnist::BUILTIN_SHA256.into()
        }
    );
    // A new built-in run given another directory is refused: it is not the data it was trained on.
    let o = eval(&ck_path, &["--data", digits.to_str().unwrap()]);
    assert!(!o.status.success());
    assert!(text(&o).contains(mnist::BUILTIN_SHA256), "{}", text(&o));
}

fn rows(n: usize, scale: f32) -> String {
    let mut s = String::from("a,b,c\n");
    for i in 0..n {
        let t = i as f32 / 40.0;
        s += &format!("{},{},{}\n", t.cos() * scale, t.sin() * scale, 0.1 * t);
    }
    s
}

fn train_on_file(file: &Path, out: &Path) -> std::process::Output {
    run(&[
        "train",
        "--data-file",
        file.to_str().unwrap(),
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
        "1",
        "--device",
        "cpu",
        "--quiet",
        "--out",
        out.to_str().unwrap(),
    ])
}

/// Row 2: `train --data-file F`, change F, then `eval` / `--resume` used the new rows silently
/// (the split went from 500 to 1000 rows).
#[test]
fn a_changed_data_file_is_an_error_naming_both_hashes() {
    let root = tmp("prov-file");
    let file = root.join("points.csv");
    let original = rows(400, 1.0);
    std::fs::write(&file, &original).unwrap();
    let out = root.join("run");
    let o = train_on_file(&file, &out);
    assert!(o.status.success(), "{}", text(&o));
    let ck_path = out.join("checkpoint.safetensors");
    let ck = checkpoint::load(&ck_path).unwrap();
    let sha = input::sha256_of(&[original.as_bytes()]);
    assert_eq!(
        ck.config.data,
        DataSource::FileChecked {
            path: file.canonicalize().unwrap(),
            sha256: sha.clone()
        }
    );
    let o = eval(&ck_path, &[]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("the first 100 test rows"), "{}", text(&o));

    let longer = rows(800, 1.0);
    std::fs::write(&file, &longer).unwrap();
    let new_sha = input::sha256_of(&[longer.as_bytes()]);
    let before = std::fs::read(&ck_path).unwrap();
    for o in [eval(&ck_path, &[]), resume(&ck_path, &out)] {
        assert!(!o.status.success(), "{}", text(&o));
        let t = text(&o);
        assert!(
            t.contains("has changed") && t.contains(&sha) && t.contains(&new_sha),
            "{t}"
        );
    }
    assert_eq!(std::fs::read(&ck_path).unwrap(), before);
    // The flag naming the same file is no change of data set; its content still is checked.
    let o = run(&[
        "train",
        "--device",
        "cpu",
        "--quiet",
        "--epochs",
        "1",
        "--resume",
        ck_path.to_str().unwrap(),
        "--data-file",
        file.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(
        !o.status.success() && text(&o).contains("has changed"),
        "{}",
        text(&o)
    );
    // Restored, it is the run's data again.
    std::fs::write(&file, &original).unwrap();
    let o = resume(&ck_path, &out);
    assert!(o.status.success(), "{}", text(&o));
    // Gone.
    std::fs::remove_file(&file).unwrap();
    let o = eval(&ck_path, &[]);
    assert!(!o.status.success());
    assert!(
        text(&o).contains("gone") && text(&o).contains(&sha),
        "{}",
        text(&o)
    );
    // An older checkpoint (no hash) reads the file as before.
    std::fs::write(&file, &longer).unwrap();
    let mut old = checkpoint::load(&ck_path).unwrap();
    old.config.data = DataSource::File {
        path: file.canonicalize().unwrap(),
    };
    let old_path: PathBuf = root.join("old.safetensors");
    checkpoint::save(&old_path, &old).unwrap();
    let o = eval(&old_path, &["--test-size", "100"]);
    assert!(o.status.success(), "{}", text(&o));
}
