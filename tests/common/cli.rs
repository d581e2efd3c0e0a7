//! Running the `vae-gpu` binary from tests: temporary directories, output capture, and the check
//! that a bad invocation fails with a message (never a panic).

use std::path::PathBuf;
use std::process::{Command, Output};

pub const BIN: &str = env!("CARGO_BIN_EXE_vae-gpu");

pub fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("vae-gpu-cli-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("tmp dir");
    d
}

pub fn run(args: &[&str]) -> Output {
    Command::new(BIN).args(args).output().expect("run vae-gpu")
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
