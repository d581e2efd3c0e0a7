//! Running the `vae-gpu` binary from tests: temporary directories, output capture, and the check
//! that a bad invocation fails with a message (never a panic).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub const BIN: &str = env!("CARGO_BIN_EXE_vae-gpu");

pub fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("vae-gpu-cli-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("tmp dir");
    d
}

/// Runs the binary. A `train` without `--out` gets a fresh temporary one: the default
/// `runs/latest` of the checkout may hold a developer's run, which a fresh run refuses to mix
/// with, and that refusal would hide the error a test is looking for.
pub fn run(args: &[&str]) -> Output {
    let mut args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    if args.first().is_some_and(|a| a == "train") && !args.iter().any(|a| a == "--out") {
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let out = tmp(&format!("default-out-{n}"));
        args.extend(["--out".to_string(), out.display().to_string()]);
    }
    Command::new(BIN).args(&args).output().expect("run vae-gpu")
}

pub fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

pub fn fails_with(args: &[&str], needle: &str) {
    let o = run(args);
    let t = text(&o);
    assert!(!o.status.success(), "{args:?} should fail:\n{t}");
    assert!(!t.contains("panicked"), "{args:?} panicked:\n{t}");
    assert!(
        t.to_lowercase().contains(&needle.to_lowercase()),
        "{args:?}: expected `{needle}` in:\n{t}"
    );
}

/// A small run: 200 training and 100 test images, batches of 50 (4 steps an epoch), 24 hidden
/// units; seconds on either device.
pub const SMALL: &[&str] = &[
    "--train-size",
    "200",
    "--test-size",
    "100",
    "--batch-size",
    "50",
    "--hidden",
    "24",
    "--quiet",
];

/// `train` of the `SMALL` run into `out` for `epochs` epochs, plus `extra` flags.
pub fn train_small(out: &Path, device: &str, epochs: &str, extra: &[&str]) -> Output {
    let mut args = vec![
        "train",
        "--device",
        device,
        "--epochs",
        epochs,
        "--out",
        out.to_str().unwrap(),
    ];
    args.extend_from_slice(SMALL);
    args.extend_from_slice(extra);
    run(&args)
}
