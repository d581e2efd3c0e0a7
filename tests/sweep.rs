//! `sweep` and `compare` end to end: a 2 × 2 grid as one command, idempotent re-runs, resumption
//! with more epochs, two shards started together covering the grid exactly once, bad grids
//! refused before any run, and the comparison table with its ranking.

mod common;

use std::process::Command;

use common::cli::*;

/// The shared flags of every test grid: tiny runs on the CPU path.
const TINY: &[&str] = &[
    "--",
    "--train-size",
    "200",
    "--test-size",
    "100",
    "--batch-size",
    "50",
    "--hidden",
    "16",
    "--device",
    "cpu",
];

fn sweep(out: &std::path::Path, extra: &[&str], epochs: &str) -> std::process::Output {
    let mut args = vec![
        "sweep",
        "--grid",
        "likelihood=bernoulli,categorical",
        "--grid",
        "seed=0,1",
        "--out",
        out.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    args.extend_from_slice(TINY);
    args.extend(["--epochs", epochs]);
    run(&args)
}

fn checkpoints(out: &std::path::Path) -> Vec<(String, Vec<u8>)> {
    let mut v: Vec<(String, Vec<u8>)> = std::fs::read_dir(out)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.path().join("checkpoint.safetensors").exists())
        .map(|e| {
            (
                e.file_name().to_string_lossy().to_string(),
                std::fs::read(e.path().join("checkpoint.safetensors")).unwrap(),
            )
        })
        .collect();
    v.sort();
    v
}

#[test]
fn a_grid_runs_once_resumes_with_more_epochs_and_is_compared() {
    let out = tmp("sweep-grid");
    let o = sweep(&out, &[], "1");
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains("4 trained, 0 resumed, 0 already finished"),
        "{}",
        text(&o)
    );
    let first = checkpoints(&out);
    let names: Vec<&str> = first.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "likelihood-bernoulli_seed-0",
            "likelihood-bernoulli_seed-1",
            "likelihood-categorical_seed-0",
            "likelihood-categorical_seed-1"
        ]
    );
    // Again: nothing retrained, every checkpoint bit for bit as it was.
    let o = sweep(&out, &[], "1");
    assert!(
        text(&o).contains("0 trained, 0 resumed, 4 already finished"),
        "{}",
        text(&o)
    );
    assert_eq!(checkpoints(&out), first);
    // --list names what each point needs: nothing now.
    let o = sweep(&out, &["--list"], "1");
    assert_eq!(text(&o).matches("# finished:").count(), 4, "{}", text(&o));
    // More epochs: each point resumes for the rest and keeps one record per epoch.
    let o = sweep(&out, &["--list"], "2");
    assert!(text(&o).contains("--epochs 1 --resume"), "{}", text(&o));
    let o = sweep(&out, &["--jobs", "2"], "2");
    assert!(text(&o).contains("0 trained, 4 resumed"), "{}", text(&o));
    for (name, _) in &first {
        let metrics = std::fs::read_to_string(out.join(name).join("metrics.jsonl")).unwrap();
        let epochs: Vec<u64> = metrics
            .lines()
            .map(|l| {
                serde_json::from_str::<serde_json::Value>(l).unwrap()["epoch"]
                    .as_u64()
                    .unwrap()
            })
            .collect();
        assert_eq!(epochs, [1, 2], "{name}");
    }
    // Other shared flags into the same directory would mix two settings.
    let mut args = vec!["sweep", "--grid", "seed=0", "--out", out.to_str().unwrap()];
    args.extend_from_slice(TINY);
    args.extend(["--epochs", "2", "--lr", "0.01"]);
    let o = run(&args);
    assert!(
        !o.status.success() && text(&o).contains("other shared flags"),
        "{}",
        text(&o)
    );

    // compare: a row per likelihood over the two seeds; the categorical has bits/dim and is
    // ranked, the binarized Bernoulli is not, with the reason.
    let cmp = out.join("cmp");
    let o = run(&[
        "compare",
        out.to_str().unwrap(),
        "--out",
        cmp.to_str().unwrap(),
        "--device",
        "cpu",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let csv = std::fs::read_to_string(cmp.join("compare.csv")).unwrap();
    assert_eq!(csv.lines().count(), 3, "{csv}");
    assert!(
        csv.contains("likelihood-categorical,categorical,2,"),
        "{csv}"
    );
    let md = std::fs::read_to_string(cmp.join("compare.md")).unwrap();
    assert!(md.contains("1. likelihood-categorical"), "{md}");
    assert!(
        md.contains("not ranked: likelihood-bernoulli — nats of binarized MNIST"),
        "{md}"
    );
    for f in [
        "compare.html",
        "compare_curves.png",
        "compare_samples.png",
        "compare_reconstructions.png",
    ] {
        assert!(cmp.join(f).is_file(), "{f}");
    }
}

#[test]
fn two_shards_started_together_cover_the_grid_exactly_once() {
    let out = tmp("sweep-shards");
    let bin = env!("CARGO_BIN_EXE_vae-gpu");
    let spawn = |shard: &str| {
        let mut args = vec![
            "sweep",
            "--grid",
            "likelihood=bernoulli,categorical",
            "--grid",
            "seed=0,1,2",
            "--out",
            out.to_str().unwrap(),
            "--shard",
            shard,
        ];
        args.extend_from_slice(TINY);
        args.extend(["--epochs", "1"]);
        Command::new(bin)
            .args(&args)
            .env("NODEVICE_SELECT", "1")
            .output()
    };
    let (a, b) = std::thread::scope(|s| {
        let a = s.spawn(|| spawn("0/2"));
        let b = s.spawn(|| spawn("1/2"));
        (a.join().unwrap().unwrap(), b.join().unwrap().unwrap())
    });
    for o in [&a, &b] {
        assert!(o.status.success(), "{}", text(o));
        assert!(
            text(o).contains("3 trained, 0 resumed, 0 already finished, 0 failed"),
            "{}",
            text(o)
        );
    }
    assert_eq!(checkpoints(&out).len(), 6);
    // Slurm's array variables pick the same shards.
    let mut args = vec![
        "sweep",
        "--grid",
        "likelihood=bernoulli,categorical",
        "--grid",
        "seed=0,1,2",
        "--out",
        out.to_str().unwrap(),
        "--list",
    ];
    args.extend_from_slice(TINY);
    args.extend(["--epochs", "2"]);
    let o = Command::new(bin)
        .args(&args)
        .env("SLURM_ARRAY_TASK_ID", "2")
        .env("SLURM_ARRAY_TASK_MIN", "1")
        .env("SLURM_ARRAY_TASK_COUNT", "2")
        .output()
        .unwrap();
    let t = text(&o);
    assert_eq!(
        t.lines().filter(|l| l.starts_with("vae-gpu train")).count(),
        3,
        "{t}"
    );
    assert!(
        t.contains("likelihood-bernoulli_seed-1") && !t.contains("likelihood-bernoulli_seed-0"),
        "{t}"
    );
}

#[test]
fn bad_grids_are_one_error_before_any_run() {
    let out = tmp("sweep-bad").join("grid");
    let o = |args: &[&str], needle: &str| {
        let mut a = vec!["sweep", "--out", out.to_str().unwrap()];
        a.extend_from_slice(args);
        a.extend_from_slice(TINY);
        let r = run(&a);
        assert!(!r.status.success(), "{args:?} was accepted");
        assert!(text(&r).contains(needle), "{args:?}: {}", text(&r));
        assert_eq!(text(&r).trim().lines().count(), 1, "{args:?}: {}", text(&r));
    };
    o(&["--grid", "colour=red,blue"], "not a train flag");
    o(
        &["--grid", "likelihood=bernoulli,beta", "--grid", "bins=4"],
        "--bins applies to --likelihood categorical",
    );
    o(
        &["--grid", "likelihood=poisson"],
        "point likelihood-poisson",
    );
    o(&["--grid", "seed=0", "--shard", "3/2"], "0 ≤ I < N");
    let many: Vec<String> = (0..1001).map(|i| i.to_string()).collect();
    let seeds = format!("seed={}", many.join(","));
    o(&["--grid", &seeds], "more than 1000");
    assert!(!out.exists(), "a refused sweep left {}", out.display());
}

/// kill -9 of a sweep in the middle of its points, then a re-run: the grid is complete, every
/// point holds exactly its epochs 1..E once (resumed, not restarted), and nothing is left
/// running after the kill (the child runs die with the sweep).
#[test]
fn a_killed_sweep_completes_on_re_run_with_no_point_run_twice() {
    let out = tmp("sweep-kill");
    let bin = env!("CARGO_BIN_EXE_vae-gpu");
    let args = |extra: &[&str]| {
        let mut a: Vec<String> = [
            "sweep",
            "--grid",
            "seed=0,1,2,3",
            "--out",
            out.to_str().unwrap(),
            "--",
            "--train-size",
            "3000",
            "--test-size",
            "500",
            "--hidden",
            "64",
            "--device",
            "cpu",
            "--epochs",
            "3",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        a.extend(extra.iter().map(|s| s.to_string()));
        a
    };
    let mut child = Command::new(bin)
        .args(args(&[]))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Kill once the first point has a checkpoint (so some point is cut off mid-way).
    let first = out.join("seed-0").join("checkpoint.safetensors");
    let t0 = std::time::Instant::now();
    while !first.exists() && t0.elapsed().as_secs() < 60 {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(300));
    let o = Command::new(bin).args(args(&[])).output().unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let t = text(&o);
    assert!(t.contains("0 failed"), "{t}");
    for s in 0..4 {
        let dir = out.join(format!("seed-{s}"));
        let metrics = std::fs::read_to_string(dir.join("metrics.jsonl")).unwrap();
        let lines: Vec<serde_json::Value> = metrics
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let epochs: Vec<u64> = lines.iter().map(|v| v["epoch"].as_u64().unwrap()).collect();
        assert_eq!(epochs, [1, 2, 3], "seed {s}: {metrics}");
        let ids: std::collections::HashSet<&str> = lines
            .iter()
            .map(|v| v["run_id"].as_str().unwrap())
            .collect();
        assert_eq!(ids.len(), 1, "seed {s} mixes runs: {metrics}");
    }
}
