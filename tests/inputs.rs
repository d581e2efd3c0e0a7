//! Row 7 of the report: inputs that are not regular files of a sane size — `/dev/zero`, a FIFO, a
//! 20 GB sparse file — given as a data file, an MNIST directory's file, a checkpoint, a model file
//! or a metrics file. Each must end at once with one error line and exit status 1: no abort on a
//! huge allocation, no read until memory runs out, no open blocked on a pipe nobody writes.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

mod common;
use common::cli::*;

/// Runs the binary with a deadline; a run still going after it is killed and fails the test.
fn run_within(args: &[&str], limit: Duration) -> (Option<i32>, String) {
    let mut child = Command::new(BIN)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let t0 = Instant::now();
    loop {
        if child.try_wait().expect("wait").is_some() {
            break;
        }
        if t0.elapsed() > limit {
            child.kill().ok();
            child.wait().ok();
            panic!("{args:?} still running after {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let o = child.wait_with_output().expect("output");
    (o.status.code(), text(&o))
}

fn fifo(path: &Path) {
    let o = Command::new("mkfifo").arg(path).output().expect("mkfifo");
    assert!(o.status.success(), "mkfifo: {o:?}");
}

fn sparse(path: &Path, len: u64) {
    std::fs::File::create(path)
        .expect("create")
        .set_len(len)
        .expect("set_len");
}

/// One error line, exit status 1, quickly.
fn refused(args: &[&str], needle: &str) {
    let (code, t) = run_within(args, Duration::from_secs(20));
    assert_eq!(code, Some(1), "{args:?}:\n{t}");
    assert!(!t.contains("panicked"), "{args:?}:\n{t}");
    let lines: Vec<&str> = t.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(
        lines.len() == 1 && lines[0].starts_with("error: "),
        "{args:?}: not one error line:\n{t}"
    );
    assert!(t.contains(needle), "{args:?}: expected `{needle}` in:\n{t}");
}

#[test]
fn devices_fifos_and_huge_sparse_files_are_refused_at_once() {
    let dir = tmp("inputs");
    let pipe = dir.join("pipe.csv");
    fifo(&pipe);
    let huge_csv = dir.join("huge.csv");
    sparse(&huge_csv, 20 << 30);
    let huge_ck = dir.join("huge.safetensors");
    sparse(&huge_ck, 20 << 30);
    let s = |p: &PathBuf| p.to_str().unwrap().to_string();
    let (pipe_s, huge_csv_s, huge_ck_s) = (s(&pipe), s(&huge_csv), s(&huge_ck));
    let out = dir.join("out");
    let out_s = s(&out);
    let figs_s = s(&dir.join("figs"));
    let gauss = [
        "--likelihood",
        "gaussian",
        "--device",
        "cpu",
        "--out",
        &out_s,
    ];
    let train_file = |f: &str| -> Vec<String> {
        let mut v = vec!["train".to_string(), "--data-file".into(), f.into()];
        v.extend(gauss.iter().map(|s| s.to_string()));
        v
    };
    let cases: Vec<(Vec<String>, &str)> = vec![
        (train_file("/dev/zero"), "character device"),
        (train_file(&pipe_s), "FIFO"),
        (train_file(&huge_csv_s), "20 GiB"),
        (
            vec!["eval".into(), "--checkpoint".into(), "/dev/zero".into()],
            "character device",
        ),
        (
            vec!["eval".into(), "--checkpoint".into(), pipe_s.clone()],
            "FIFO",
        ),
        (
            vec!["eval".into(), "--checkpoint".into(), huge_ck_s.clone()],
            "not a safetensors file",
        ),
        (
            vec![
                "train".into(),
                "--model-file".into(),
                "/dev/zero".into(),
                "--out".into(),
                out_s.clone(),
            ],
            "character device",
        ),
        (
            vec![
                "train".into(),
                "--model-file".into(),
                pipe_s.clone(),
                "--out".into(),
                out_s.clone(),
            ],
            "FIFO",
        ),
        (
            vec![
                "curves".into(),
                "--metrics".into(),
                "/dev/zero".into(),
                "--out".into(),
                figs_s.clone(),
            ],
            "character device",
        ),
        (
            vec![
                "curves".into(),
                "--metrics".into(),
                pipe_s.clone(),
                "--out".into(),
                figs_s.clone(),
            ],
            "FIFO",
        ),
    ];
    for (args, needle) in &cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        refused(&args, needle);
    }
    // An MNIST directory with a FIFO, or /dev/zero, in place of one of its files.
    let mnist = dir.join("mnist");
    std::fs::create_dir_all(&mnist).unwrap();
    fifo(&mnist.join("train-images-idx3-ubyte"));
    let mnist_s = s(&mnist);
    refused(
        &[
            "train", "--device", "cpu", "--data", &mnist_s, "--out", &out_s,
        ],
        "FIFO",
    );
    std::fs::remove_file(mnist.join("train-images-idx3-ubyte")).unwrap();
    std::os::unix::fs::symlink("/dev/zero", mnist.join("train-images-idx3-ubyte.gz")).unwrap();
    refused(
        &[
            "train", "--device", "cpu", "--data", &mnist_s, "--out", &out_s,
        ],
        "character device",
    );
    assert!(!out.exists(), "a refused run left {out:?} behind");
    // svi --observe FILE: the mask is an input too.
    let run = dir.join("run");
    let o = train_small(&run, "cpu", "1", &[]);
    assert!(o.status.success(), "{}", text(&o));
    let ck_s = s(&run.join("checkpoint.safetensors"));
    refused(
        &[
            "svi",
            "--checkpoint",
            &ck_s,
            "--observe",
            &pipe_s,
            "--device",
            "cpu",
            "--out",
            &figs_s,
        ],
        "FIFO",
    );
}
