//! Run directories and checkpoints that cannot be corrupted: one run per directory, metrics that
//! always describe the checkpoint's epochs (also after `kill -9`), resumed runs that keep their
//! settings, validated checkpoints, and byte-identical checkpoints from identical runs.

use std::path::Path;
use std::time::Duration;

use vae_gpu::family::likelihood::MEMBERS;
use vae_gpu::training::checkpoint;
use vae_gpu::training::optim::{OptimizerConfig, OptimizerKind};

mod common;
use common::cli::*;

/// The small CPU run of `train_small`: 4 steps an epoch, milliseconds.
fn tiny(out: &Path, epochs: &str, extra: &[&str]) -> std::process::Output {
    train_small(out, "cpu", epochs, extra)
}

fn resume(out: &Path, from: &Path, epochs: &str, extra: &[&str]) -> std::process::Output {
    let mut args = vec![
        "train",
        "--device",
        "cpu",
        "--quiet",
        "--epochs",
        epochs,
        "--resume",
        from.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    run(&args)
}

/// The epochs of a metrics file, in file order.
fn epochs(dir: &Path) -> Vec<u64> {
    std::fs::read_to_string(dir.join("metrics.jsonl"))
        .expect("metrics")
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).expect("json line")["epoch"]
                .as_u64()
                .expect("epoch")
        })
        .collect()
}

fn ckpt(dir: &Path) -> std::path::PathBuf {
    dir.join("checkpoint.safetensors")
}

#[test]
fn a_fresh_run_into_a_directory_with_a_run_is_refused_unless_forced() {
    let out = tmp("fresh-into-old");
    assert!(tiny(&out, "2", &[]).status.success());
    let o = tiny(&out, "1", &[]);
    assert!(!o.status.success());
    let t = text(&o);
    assert!(
        t.contains("already holds a training run")
            && t.contains("--resume")
            && t.contains("--force"),
        "{t}"
    );
    assert_eq!(
        epochs(&out),
        [1, 2],
        "a refused run must leave the old one alone"
    );
    let o = tiny(&out, "1", &["--force"]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(epochs(&out), [1]);
    assert_eq!(checkpoint::load(&ckpt(&out)).expect("load").epoch, 1);
}

#[test]
fn resume_repairs_metrics_that_lag_or_lead_the_checkpoint() {
    let out = tmp("reconcile");
    assert!(tiny(&out, "2", &[]).status.success());
    let metrics = out.join("metrics.jsonl");
    let text_before = std::fs::read_to_string(&metrics).expect("metrics");
    // Lagging: the crash came after the checkpoint of epoch 2 and before its line.
    let first_line = text_before.lines().next().expect("line 1");
    std::fs::write(&metrics, format!("{first_line}\n")).expect("write");
    let o = resume(&out, &ckpt(&out), "1", &[]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains("restored the metrics line of epoch 2"),
        "{}",
        text(&o)
    );
    assert_eq!(epochs(&out), [1, 2, 3]);
    // Leading, and a torn last line: lines past the checkpoint are dropped on resume.
    let mut t = std::fs::read_to_string(&metrics).expect("metrics");
    t.push_str("{\"epoch\":4,\"train_elbo\":-1.0}\n{\"epoch\":5,\"tr");
    std::fs::write(&metrics, t).expect("write");
    let o = resume(&out, &ckpt(&out), "1", &[]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(epochs(&out), [1, 2, 3, 4]);
    let lines = std::fs::read_to_string(&metrics).expect("metrics");
    let last: serde_json::Value =
        serde_json::from_str(lines.lines().last().expect("last")).expect("json");
    assert!(
        last["test_elbo"].is_f64(),
        "the new epoch 4 replaced the stale one: {last}"
    );
}

#[test]
fn resuming_into_a_new_directory_carries_the_history_over() {
    let (a, b) = (tmp("resume-src"), tmp("resume-dst"));
    assert!(tiny(&a, "2", &[]).status.success());
    let o = resume(&b.join("run"), &ckpt(&a), "1", &[]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(epochs(&b.join("run")), [1, 2, 3]);
    assert_eq!(epochs(&a), [1, 2], "the source run is untouched");
    // An older checkpoint resumed into a directory with a later run would overwrite it.
    let o = resume(&b.join("run"), &ckpt(&a), "1", &[]);
    assert!(!o.status.success());
    assert!(
        text(&o).contains("already holds a training run"),
        "{}",
        text(&o)
    );
}

#[test]
fn a_resumed_run_keeps_its_settings() {
    let out = tmp("settings");
    assert!(tiny(&out, "1", &[]).status.success());
    for (flag, value) in [
        ("--batch-size", "20"),
        ("--samples", "3"),
        ("--seed", "5"),
        ("--pixels", "stochastic"),
        ("--train-size", "150"),
        ("--test-size", "50"),
        ("--lr", "0.01"),
    ] {
        let o = resume(&out, &ckpt(&out), "1", &[flag, value]);
        assert!(!o.status.success(), "{flag} {value} was accepted");
        let t = text(&o);
        assert!(t.contains(&format!("{flag} {value} (the run has")), "{t}");
    }
    // Repeating a stored value is fine; the test split stays the run's 100 images.
    let o = resume(&out, &ckpt(&out), "1", &["--batch-size", "50"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("100 test rows"), "{}", text(&o));
    assert_eq!(
        checkpoint::load(&ckpt(&out)).expect("load").test_size,
        Some(100)
    );
}

#[test]
fn kill_9_during_training_never_loses_an_epoch() {
    let out = tmp("kill");
    let ck = ckpt(&out);
    // The kills land at 1.3–3.5 times the wall time of a whole one-epoch run (start-up, an
    // epoch, its evaluation and writes), measured here so that a loaded machine stretches them
    // too: so the kills fall in every phase of an epoch — training, evaluation, the checkpoint
    // write and the metrics write — and the killed runs still finish some epochs.
    let started = std::time::Instant::now();
    let o = run(&[
        "train",
        "--device",
        "cpu",
        "--epochs",
        "1",
        "--quiet",
        "--test-size",
        "200",
        "--train-size",
        "3000",
        "--hidden",
        "200",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let one_run = started.elapsed();
    for factor in [1.5, 2.4, 1.9, 3.0, 2.1, 3.5, 1.3] {
        let mut child = std::process::Command::new(BIN)
            .args([
                "train",
                "--device",
                "cpu",
                "--epochs",
                "100",
                "--quiet",
                "--resume",
                ck.to_str().unwrap(),
                "--out",
                out.to_str().unwrap(),
            ])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("spawn");
        std::thread::sleep(one_run.mul_f64(factor));
        child.kill().expect("kill -9");
        child.wait().expect("wait");
        // Whatever the moment of the kill, the checkpoint loads.
        checkpoint::load(&ck).expect("checkpoint loads after kill -9");
    }
    let o = resume(&out, &ck, "1", &[]);
    assert!(o.status.success(), "{}", text(&o));
    let epoch = checkpoint::load(&ck).expect("load").epoch as u64;
    assert!(epoch > 2, "the killed runs trained (epoch {epoch})");
    assert_eq!(
        epochs(&out),
        (1..=epoch).collect::<Vec<_>>(),
        "metrics vs checkpoint"
    );
}

/// The lock is an advisory lock on `.vae-gpu.lock`, held while a run writes: a second run is kept
/// out while it is held, and a lock file nobody holds — left by a killed run, even one naming a
/// live process (the pid file it replaced refused those forever: pids are reused) — is taken over.
#[test]
fn a_held_lock_keeps_a_second_run_out_and_a_leftover_one_is_taken_over() {
    let out = tmp("lock");
    let path = out.join(".vae-gpu.lock");
    // This test process plays the run in progress.
    std::fs::write(&path, "12345").expect("lock");
    let held = std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .expect("open");
    held.lock().expect("flock");
    let o = tiny(&out, "1", &[]);
    assert!(!o.status.success());
    assert!(
        text(&o).contains("another vae-gpu run (pid 12345)"),
        "{}",
        text(&o)
    );
    drop(held);
    // Not held, though it names this live process.
    std::fs::write(&path, std::process::id().to_string()).expect("lock");
    let o = tiny(&out, "1", &[]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(!path.exists(), "the lock is released at exit");
    // A symbolic link in its place is refused, not written through.
    let victim = tmp("lock-victim").join("victim");
    std::fs::write(&victim, "precious").expect("victim");
    std::os::unix::fs::symlink(&victim, &path).expect("symlink");
    let o = resume(&out, &ckpt(&out), "1", &[]);
    assert!(!o.status.success());
    assert!(text(&o).contains("symbolic link"), "{}", text(&o));
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
}

/// Four runs started at once into one new directory: exactly one trains, the others are kept
/// out (by the lock, or by the run already there), and the directory holds that one run.
#[test]
fn racing_writers_into_one_directory_leave_one_run() {
    let out = tmp("race").join("run");
    let children: Vec<_> = (0..4)
        .map(|_| {
            std::process::Command::new(BIN)
                .args(["train", "--device", "cpu", "--epochs", "2", "--out"])
                .arg(&out)
                .args(SMALL)
                .output_async()
        })
        .collect();
    let outputs: Vec<_> = children.into_iter().map(|c| c.wait()).collect();
    let ok = outputs.iter().filter(|o| o.status.success()).count();
    assert_eq!(ok, 1, "{:?}", outputs.iter().map(text).collect::<Vec<_>>());
    for o in outputs.iter().filter(|o| !o.status.success()) {
        let t = text(o);
        assert!(
            t.contains("another vae-gpu run") || t.contains("already holds a training run"),
            "{t}"
        );
    }
    assert_eq!(epochs(&out), [1, 2]);
    assert_eq!(checkpoint::load(&ckpt(&out)).expect("load").epoch, 2);
}

trait OutputAsync {
    fn output_async(&mut self) -> Pending;
}
struct Pending(std::process::Child);
impl OutputAsync for std::process::Command {
    fn output_async(&mut self) -> Pending {
        Pending(
            self.stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .expect("spawn"),
        )
    }
}
impl Pending {
    fn wait(self) -> std::process::Output {
        self.0.wait_with_output().expect("wait")
    }
}

/// Row 3: a symbolic link planted at the checkpoint's temporary name (`.checkpoint.safetensors.
/// tmp-<pid>`, predictable from the pid) made the run overwrite the file it points to and leave
/// `checkpoint.safetensors` as that link; one planted at `metrics.jsonl` sent the metrics outside.
#[test]
fn planted_links_are_never_written_through() {
    let out = tmp("planted");
    let victim = tmp("planted-victim").join("victim");
    std::fs::write(&victim, "precious").expect("victim");
    let child = std::process::Command::new(BIN)
        .args(["train", "--device", "cpu", "--epochs", "1", "--out"])
        .arg(&out)
        .args(SMALL)
        .output_async();
    // Planted while the run is still loading its data.
    let planted = out.join(format!(".checkpoint.safetensors.tmp-{}", child.0.id()));
    std::os::unix::fs::symlink(&victim, &planted).expect("symlink");
    let o = child.wait();
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        std::fs::read(&victim).unwrap() == b"precious",
        "the file the planted link points to was overwritten"
    );
    let meta = std::fs::symlink_metadata(ckpt(&out)).expect("checkpoint");
    assert!(meta.file_type().is_file(), "the checkpoint is a link");
    assert_eq!(checkpoint::load(&ckpt(&out)).expect("load").epoch, 1);

    // A dangling link at metrics.jsonl is something in the directory: a fresh run refuses it,
    // --force removes the link itself, and nothing is created where it pointed.
    let out = tmp("planted-metrics");
    let target = tmp("planted-target").join("created-outside");
    std::os::unix::fs::symlink(&target, out.join("metrics.jsonl")).expect("symlink");
    let o = tiny(&out, "1", &[]);
    assert!(!o.status.success());
    assert!(text(&o).contains("already holds"), "{}", text(&o));
    let o = tiny(&out, "1", &["--force"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(!target.exists(), "metrics were written through the link");
    assert_eq!(epochs(&out), [1]);
}

/// Row 6: run A's checkpoint copied into run B's directory and resumed there appended A's epochs
/// to B's metrics with no note, and `curves` then refused the file as mixing runs. Now the resume
/// is refused (both run ids named) and B is untouched; with --force the directory becomes A's run
/// alone, which `curves` draws.
#[test]
fn a_checkpoint_copied_into_another_runs_directory_is_not_mixed_with_it() {
    let (a, b) = (tmp("copied-a"), tmp("copied-b"));
    assert!(tiny(&a, "2", &[]).status.success());
    assert!(tiny(&b, "3", &["--seed", "7"]).status.success());
    let id = |dir: &Path| {
        checkpoint::load(&ckpt(dir))
            .expect("load")
            .run_id
            .expect("run id")
    };
    let (id_a, id_b) = (id(&a), id(&b));
    assert_ne!(id_a, id_b);
    std::fs::copy(ckpt(&a), ckpt(&b)).expect("copy");
    let metrics_b = std::fs::read(b.join("metrics.jsonl")).expect("metrics");
    let o = resume(&b, &ckpt(&b), "1", &[]);
    assert!(!o.status.success(), "{}", text(&o));
    let t = text(&o);
    assert!(
        t.contains(&id_a) && t.contains(&id_b) && t.contains("--force"),
        "{t}"
    );
    assert_eq!(std::fs::read(b.join("metrics.jsonl")).unwrap(), metrics_b);
    let o = resume(&b, &ckpt(&b), "1", &["--force"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("of another run"), "{}", text(&o));
    let history = vae_gpu::training::run_dir::read_history(&b.join("metrics.jsonl")).unwrap();
    assert!(history.iter().all(|v| v["run_id"] == id_a.as_str()));
    assert_eq!(
        history
            .iter()
            .map(|v| v["epoch"].as_u64().unwrap())
            .collect::<Vec<_>>(),
        [2, 3]
    );
    let o = run(&[
        "curves",
        "--metrics",
        b.join("metrics.jsonl").to_str().unwrap(),
        "--out",
        b.join("figs").to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    // Resumed into a new directory, the copy's history is A's own lines only.
    let c = tmp("copied-c").join("run");
    std::fs::copy(ckpt(&a), b.join("a-copy.safetensors")).expect("copy");
    let o = resume(&c, &b.join("a-copy.safetensors"), "1", &[]);
    assert!(o.status.success(), "{}", text(&o));
    let history = vae_gpu::training::run_dir::read_history(&c.join("metrics.jsonl")).unwrap();
    assert!(history.iter().all(|v| v["run_id"] == id_a.as_str()));
}

/// Row 11: `train --resume DIR/best.safetensors --force --out DIR` deleted best.safetensors (the
/// checkpoint being resumed) and then named it as the best epoch. The resumed file is kept: the
/// run continues from its best epoch, and the best checkpoint is still there.
#[test]
fn resuming_the_best_checkpoint_into_its_own_directory_keeps_it() {
    let out = tmp("resume-best");
    let o = run(&[
        "train",
        "--device",
        "cpu",
        "--quiet",
        "--epochs",
        "200",
        "--train-size",
        "100",
        "--val-size",
        "200",
        "--test-size",
        "100",
        "--hidden",
        "200",
        "--batch-size",
        "20",
        "--lr",
        "3e-3",
        "--early-stop",
        "3",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let best = out.join("best.safetensors");
    let b = checkpoint::load(&best).expect("best").epoch;
    assert_eq!(checkpoint::load(&ckpt(&out)).unwrap().epoch, b + 3);
    let o = resume(&out, &best, "1", &[]);
    assert!(!o.status.success(), "without --force it would mix");
    let o = resume(&out, &best, "1", &["--force"]);
    assert!(o.status.success(), "{}", text(&o));
    let t = text(&o);
    assert!(
        t.contains(&format!("at epoch {b} ({})", best.display())),
        "{t}"
    );
    assert_eq!(checkpoint::load(&best).expect("best kept").epoch, b);
    assert_eq!(checkpoint::load(&ckpt(&out)).unwrap().epoch, b + 1);
    assert_eq!(epochs(&out), (1..=b as u64 + 1).collect::<Vec<_>>());
}

/// Row 12: a run refused after its directory was claimed (--early-stop without --val-size, a
/// --val-size larger than the data, a first epoch that diverges) left an empty --out behind, and
/// `--force` deleted the run it was to replace before being refused. Now nothing changes.
#[test]
fn a_refused_or_diverged_run_leaves_nothing_behind() {
    let root = tmp("nothing-left");
    let fresh = |name: &str| root.join(name).join("run");
    let o = run(&[
        "train",
        "--device",
        "cpu",
        "--early-stop",
        "2",
        "--out",
        fresh("a").to_str().unwrap(),
    ]);
    assert!(!o.status.success() && text(&o).contains("no validation split"));
    let o = run(&[
        "train",
        "--device",
        "cpu",
        "--val-size",
        "60000",
        "--out",
        fresh("b").to_str().unwrap(),
    ]);
    assert!(!o.status.success() && text(&o).contains("validation split of 60000"));
    // A first epoch that diverges (huge parameters), resumed into a new directory.
    let good = root.join("good");
    assert!(tiny(&good, "2", &[]).status.success());
    let mut bad = checkpoint::load(&ckpt(&good)).expect("load");
    bad.state.params.iter_mut().for_each(|p| *p = 1e30);
    let huge = root.join("huge.safetensors");
    checkpoint::save(&huge, &bad).expect("save");
    let o = resume(&fresh("c"), &huge, "1", &[]);
    assert!(
        !o.status.success() && text(&o).contains("diverged"),
        "{}",
        text(&o)
    );
    for d in ["a", "b", "c"] {
        assert!(!root.join(d).exists(), "{d}/ left behind");
    }
    // --force on a run that is then refused leaves the run it was to replace as it was.
    let before = std::fs::read(ckpt(&good)).expect("ck");
    let o = tiny(&good, "1", &["--force", "--early-stop", "2"]);
    assert!(!o.status.success() && text(&o).contains("no validation split"));
    assert_eq!(std::fs::read(ckpt(&good)).expect("ck"), before);
    assert_eq!(epochs(&good), [1, 2]);
    // A directory that existed stays, and is left empty as it was.
    let empty = root.join("empty");
    std::fs::create_dir_all(&empty).expect("dir");
    let o = tiny(&empty, "1", &["--early-stop", "2"]);
    assert!(!o.status.success());
    assert_eq!(std::fs::read_dir(&empty).expect("dir").count(), 0);
}

#[test]
fn an_unwritable_out_fails_before_any_training() {
    let dir = tmp("unwritable");
    let file = dir.join("a-file");
    std::fs::write(&file, b"x").expect("file");
    let t0 = std::time::Instant::now();
    // A full-size default run would take many seconds; the refusal must come first.
    let o = run(&[
        "train",
        "--device",
        "cpu",
        "--out",
        file.join("run").to_str().unwrap(),
    ]);
    assert!(!o.status.success());
    assert!(text(&o).contains("choose another --out"), "{}", text(&o));
    assert!(
        t0.elapsed() < Duration::from_secs(3),
        "took {:?}",
        t0.elapsed()
    );
}

#[test]
fn same_seed_runs_write_byte_identical_checkpoints() {
    let (a, b) = (tmp("bytes-a"), tmp("bytes-b"));
    assert!(tiny(&a, "2", &[]).status.success());
    assert!(tiny(&b, "2", &[]).status.success());
    let (x, y) = (
        std::fs::read(ckpt(&a)).expect("a"),
        std::fs::read(ckpt(&b)).expect("b"),
    );
    assert!(x == y, "checkpoints of two identical runs differ");
    // And the file is still a valid safetensors file that loads back.
    assert_eq!(checkpoint::load(&ckpt(&a)).expect("load").epoch, 2);
}

#[test]
fn invalid_stored_configs_and_states_are_errors_not_panics() {
    let out = tmp("validate");
    assert!(tiny(&out, "1", &[]).status.success());
    let ck = checkpoint::load(&ckpt(&out)).expect("load");
    let cases: Vec<(&str, checkpoint::Checkpoint, &str)> = vec![
        (
            "batch0",
            {
                let mut c = ck.clone();
                c.config.batch_size = 0;
                c
            },
            "batch_size is 0",
        ),
        (
            "samples0",
            {
                let mut c = ck.clone();
                c.config.samples = 0;
                c
            },
            "samples is 0",
        ),
        (
            "lrneg",
            {
                let mut c = ck.clone();
                c.config.optimizer = OptimizerConfig::new(OptimizerKind::Adam, Some(-1.0));
                c
            },
            "adam.lr is -1",
        ),
        (
            "vneg",
            {
                let mut c = ck.clone();
                c.state.v[3] = -1.0;
                c
            },
            "second moment",
        ),
        (
            "mnan",
            {
                let mut c = ck.clone();
                c.state.m[0] = f32::NAN;
                c
            },
            "first moment",
        ),
    ];
    for (name, bad, needle) in cases {
        let path = out.join(format!("{name}.safetensors"));
        checkpoint::save(&path, &bad).expect("save");
        let figs = out.join("figs");
        for args in [
            vec!["eval"],
            vec!["report", "--out", figs.to_str().unwrap()],
        ] {
            let cmd = args[0];
            let mut args = args.clone();
            args.extend(["--device", "cpu", "--checkpoint", path.to_str().unwrap()]);
            let o = run(&args);
            assert!(!o.status.success(), "{cmd} accepted {name}");
            let t = text(&o);
            assert!(
                !t.contains("panicked") && t.contains(needle),
                "{cmd} {name}: {t}"
            );
            assert!(
                t.contains("stored") || t.contains("moment"),
                "names the checkpoint's value: {t}"
            );
        }
    }
}

#[test]
fn curves_refuse_a_file_that_mixes_two_runs() {
    let out = tmp("mixed");
    assert!(tiny(&out, "2", &[]).status.success());
    let m = out.join("metrics.jsonl");
    let mut t = std::fs::read_to_string(&m).expect("metrics");
    let first = t.lines().next().expect("line").to_string();
    t.push_str(&first);
    t.push('\n');
    std::fs::write(&m, t).expect("write");
    let o = run(&[
        "curves",
        "--metrics",
        m.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(!o.status.success());
    assert!(text(&o).contains("more than one run"), "{}", text(&o));
}

#[test]
fn checkpoints_from_before_the_run_records_still_resume() {
    // A checkpoint as the previous format wrote it: no test_size, run_id or metrics record.
    let out = tmp("old-format");
    assert!(tiny(&out, "2", &[]).status.success());
    let mut ck = checkpoint::load(&ckpt(&out)).expect("load");
    (ck.test_size, ck.run_id, ck.metrics) = (None, None, None);
    checkpoint::save(&ckpt(&out), &ck).expect("save");
    let o = run(&[
        "eval",
        "--device",
        "cpu",
        "--checkpoint",
        ckpt(&out).to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let o = resume(&out, &ckpt(&out), "1", &["--test-size", "100"]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(epochs(&out), [1, 2, 3]);
    let resumed = checkpoint::load(&ckpt(&out)).expect("load");
    assert_eq!((resumed.epoch, resumed.test_size), (3, Some(100)));
    assert!(resumed.run_id.is_some() && resumed.metrics.is_some());
}

/// An Adagrad run stores its sum of squared gradients under PyTorch's state key
/// (`optimizer.sum.*`, no Adam moments), resumes with it (the sums only grow), and refuses to be
/// resumed as an Adam run.
#[test]
fn an_adagrad_run_keeps_its_optimizer_state_across_resume() {
    let out = tmp("adagrad");
    let o = tiny(&out, "1", &["--optimizer", "adagrad"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("Adagrad, lr 0.01"), "{}", text(&o));
    let before = checkpoint::load(&ckpt(&out)).expect("load");
    assert_eq!(
        before.config.optimizer,
        OptimizerConfig::new(OptimizerKind::Adagrad, None)
    );
    let bytes = std::fs::read(ckpt(&out)).expect("read");
    let names = safetensors::SafeTensors::deserialize(&bytes)
        .expect("safetensors")
        .names()
        .into_iter()
        .map(str::to_string)
        .collect::<Vec<_>>();
    assert!(names.contains(&"optimizer.sum.encoder.fc1.weight".to_string()));
    assert!(!names.iter().any(|n| n.contains("exp_avg")), "{names:?}");
    let o = resume(&out, &ckpt(&out), "1", &["--optimizer", "adam"]);
    assert!(!o.status.success());
    assert!(
        text(&o).contains("--optimizer adam (the run has adagrad)"),
        "{}",
        text(&o)
    );
    let o = resume(&out, &ckpt(&out), "1", &[]);
    assert!(o.status.success(), "{}", text(&o));
    let after = checkpoint::load(&ckpt(&out)).expect("load");
    assert_eq!(after.state.step, 2 * before.state.step);
    assert!(after
        .state
        .v
        .iter()
        .zip(&before.state.v)
        .all(|(a, b)| a >= b));
    assert!(after.state.v.iter().sum::<f32>() > before.state.v.iter().sum::<f32>());
}

/// For every likelihood (and a Laplace latent), a run whose loss overflows stops with an error
/// and keeps its last good checkpoint: the divergence check is the training loop's, not a
/// member's.
#[test]
fn every_member_that_diverges_stops_and_keeps_its_last_checkpoint() {
    // Every member, with a Laplace posterior or prior on some of them.
    let members: Vec<Vec<&str>> = MEMBERS
        .iter()
        .enumerate()
        .map(|(i, l)| {
            let mut f = vec!["--likelihood", l.name()];
            match i % 3 {
                1 => f.extend(["--posterior", "laplace"]),
                2 => f.extend(["--prior", "laplace"]),
                _ => {}
            }
            f
        })
        .collect();
    for (i, flags) in members.iter().enumerate() {
        let out = tmp(&format!("diverge-{i}"));
        let o = tiny(&out, "1", flags);
        assert!(o.status.success(), "{flags:?}: {}", text(&o));
        let mut bad = checkpoint::load(&ckpt(&out)).expect("load");
        bad.state.params.iter_mut().for_each(|p| *p = 1e30);
        let bad_ck = out.join("huge.safetensors");
        checkpoint::save(&bad_ck, &bad).expect("save");
        let resumed = out.join("resumed");
        let o = resume(&resumed, &bad_ck, "1", &[]);
        assert!(!o.status.success(), "{flags:?} trained on 1e30 parameters");
        assert!(text(&o).contains("diverged"), "{flags:?}: {}", text(&o));
        assert!(
            !resumed.join("checkpoint.safetensors").exists(),
            "{flags:?}: a diverged epoch wrote a checkpoint"
        );
        assert_eq!(checkpoint::load(&bad_ck).expect("kept").epoch, 1);
    }
}

/// A run made to overfit (100 training images, 200 hidden units, lr 3e-3) stops by the rule;
/// `best.safetensors` holds the epoch with the highest validation ELBO (evaluating it gives that
/// ELBO back); resuming with the same patience is refused as already stopped, a larger patience
/// trains on; and the rule's bad inputs are one error line each.
#[test]
fn early_stopping_keeps_the_best_validation_epoch() {
    let out = tmp("early-stop");
    let o = run(&[
        "train",
        "--device",
        "cpu",
        "--quiet",
        "--epochs",
        "200",
        "--train-size",
        "100",
        "--val-size",
        "200",
        "--test-size",
        "100",
        "--hidden",
        "200",
        "--batch-size",
        "20",
        "--lr",
        "3e-3",
        "--early-stop",
        "3",
        "--eval-train",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let t = text(&o);
    assert!(t.contains("stopped early after epoch"), "{t}");
    let history = vae_gpu::training::run_dir::read_history(&out.join("metrics.jsonl")).unwrap();
    let last = history.len() as u32;
    assert!(last < 200, "ran all epochs");
    assert!(history
        .iter()
        .all(|v| v["train_elbo_full"].as_f64().is_some()));
    let (best_epoch, best_val) = history
        .iter()
        .map(|v| {
            (
                v["epoch"].as_u64().unwrap() as u32,
                v["val_elbo"].as_f64().unwrap(),
            )
        })
        .fold((0, f64::NEG_INFINITY), |b, e| if e.1 > b.1 { e } else { b });
    assert_eq!(last, best_epoch + 3, "stops three epochs after the best");
    let best = out.join("best.safetensors");
    assert_eq!(checkpoint::load(&best).expect("best").epoch, best_epoch);
    let o = run(&[
        "eval",
        "--checkpoint",
        best.to_str().unwrap(),
        "--device",
        "cpu",
        "--test-size",
        "100",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains(&format!("val ELBO: {best_val:.3}")),
        "{}\nwant {best_val:.3}",
        text(&o)
    );
    let o = resume(&out, &ckpt(&out), "5", &["--early-stop", "3"]);
    assert!(
        !o.status.success() && text(&o).contains("already met its stopping rule"),
        "{}",
        text(&o)
    );
    let o = resume(&out, &ckpt(&out), "1", &["--early-stop", "10"]);
    assert!(o.status.success(), "{}", text(&o));
    fails_with(
        &["train", "--early-stop", "3", "--device", "cpu"],
        "no validation split",
    );
    fails_with(
        &["train", "--early-stop", "0", "--val-size", "10"],
        "--early-stop 0",
    );
    fails_with(&["train", "--min-delta", "0.5"], "--early-stop");
}
