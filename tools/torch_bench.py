#!/usr/bin/env python3
"""Training time of vae-gpu's two benchmark models: PyTorch eager against vae-gpu, back to back
on the same machine, data, thread count and timer (the training pass of each epoch alone).

    cargo build --release
    python tools/torch_bench.py --model mlp --vae-gpu target/release/vae-gpu [--threads 2]
        [--epochs 3] [--rounds 1] [--train-size 60000] [--test-size 10000] [--device cpu|cuda]
        [--vae-device cpu|vulkan] [--skip-torch] [--json FILE]

Models (both sides build the same network, initialisation and objective):

- `--model mlp`: vae-gpu's default, Kingma & Welling's Appendix C model (`vae-gpu train` with no
  family flags): encoder Linear(784→500) tanh → Linear(500→2·Dz) giving μ and log σ²; decoder
  Linear(Dz→500) tanh → Linear(500→784) logits; Bernoulli p(x|z) on pixels > 127 (the encoder
  sees the same binary pixels); Gaussian q, N(0, I) prior, Monte Carlo KL at the one sample
  (L = 1); Dz = 2; Adam lr 1e-3; batch 100 shuffled every epoch; PyTorch's default
  initialisation (uniform ±1/√fan_in), which is vae-gpu's `--init pytorch` default.
- `--model conv`: `vae-gpu train --arch conv --likelihood gaussian --variance decoder`: encoder
  Conv(1→32, k4, s2, p1) ReLU → Conv(32→64, k4, s2, p1) ReLU → flatten → Linear(3136→256) ReLU →
  Linear(256→2·Dz); decoder Linear(Dz→256) ReLU → Linear(256→3136) ReLU → reshape 64×7×7 →
  ConvT(64→32, k4, s2, p1) ReLU → ConvT(32→2, k4, s2, p1); Gaussian p(x|z) on pixel/255 with μ
  the first channel and σ² = 1e-4 + softplus(second); otherwise as the MLP.

Timing: each side times the training passes of each epoch only (vae-gpu's `seconds` in
metrics.jsonl; its evaluation is timed apart). PyTorch on `--device cuda` synchronizes before
starting and before stopping each epoch's timer, and keeps the running loss on the device (no
per-step `.item()`, which would add a host round trip to every step that vae-gpu does not pay).
The summary per side is the median epoch time excluding the first epoch (warm-up: allocator,
kernel caches, shader compilation), or the single epoch when `--epochs 1`. `--rounds N` runs the
two sides alternately N times and takes each side's median over all rounds (the table adds each
round's ratio): on a shared machine whose speed drifts over minutes, one round can put the two
sides in different conditions.

Test ELBO: after training, each side evaluates the Monte Carlo ELBO (one draw per image) over the
first `--test-size` test images; expect agreement within noise and the run-to-run spread of
training, not to the last digit.

Threads: torch.set_num_threads and vae-gpu's MATMUL_NUM_THREADS (and RAYON_NUM_THREADS) get the
same `--threads`.

Output: a table on stdout and, with `--json FILE`, one JSON object: {"config": ..., "torch":
{per-epoch seconds, median, test ELBO, device, version}, "vae_gpu": {the same, plus whatever
counters vae-gpu's metrics.jsonl carries (GPU runs: dispatches per step, submits per epoch, host
seconds per step)}, "ratio_vae_gpu_over_torch"}. A missing binary, a vae-gpu run that fails or a
CUDA device that is not there is one `error:` line and exit status 1.

`--skip-torch` runs vae-gpu alone and needs neither torch nor numpy (tools/gpu_bench.sh uses it
on machines whose Python has no PyTorch).
"""
import argparse
import gzip
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MODELS = ("mlp", "conv")
# vae-gpu flags that select each model (the mlp is the default, so none).
VAE_GPU_FLAGS = {
    "mlp": [],
    "conv": ["--arch", "conv", "--likelihood", "gaussian", "--variance", "decoder"],
}
# Counters that GPU runs add to metrics.jsonl, copied into the JSON when present.
COUNTERS = ("dispatches_per_step", "submits", "host_seconds_per_step")


class BenchError(Exception):
    pass


def summary_seconds(times):
    """Median epoch time excluding the first (warm-up) epoch; the one epoch if there is only one."""
    return statistics.median(times[1:] if len(times) > 1 else times)


# ---------------------------------------------------------------------------------------------
# PyTorch side (imported lazily so that --skip-torch works without torch or numpy)


def load_images(data_dir, split, n):
    import numpy as np

    name = {"train": "train-images-idx3-ubyte", "test": "t10k-images-idx3-ubyte"}[split]
    path = Path(data_dir) / f"{name}.gz"
    raw = gzip.open(path).read() if path.exists() else (Path(data_dir) / name).read_bytes()
    pixels = np.frombuffer(raw[16:], dtype=np.uint8).reshape(-1, 1, 28, 28)
    if n > len(pixels):
        raise BenchError(f"--{split}-size {n} is more than the {len(pixels)} {split} images in {data_dir}")
    return pixels[:n]


def make_model(kind, latent=2):
    import math

    import torch
    import torch.nn as nn
    import torch.nn.functional as F

    half_log_2pi = 0.5 * math.log(2 * math.pi)

    def kl_terms(z, eps, logvar):
        log_pz = (-0.5 * z**2 - half_log_2pi).sum(1)
        log_qz = (-0.5 * (eps**2 + logvar) - half_log_2pi).sum(1)
        return log_pz - log_qz

    class MlpVAE(nn.Module):
        """Kingma & Welling Appendix C: one tanh layer of 500 each side, Bernoulli p(x|z)."""

        def __init__(self):
            super().__init__()
            self.fc1 = nn.Linear(784, 500)
            self.head = nn.Linear(500, 2 * latent)
            self.dfc1 = nn.Linear(latent, 500)
            self.logits = nn.Linear(500, 784)

        def elbo_per_image(self, x):
            x = x.flatten(1)
            mean, logvar = self.head(torch.tanh(self.fc1(x))).chunk(2, dim=1)
            eps = torch.randn_like(mean)
            z = mean + (0.5 * logvar).exp() * eps
            logits = self.logits(torch.tanh(self.dfc1(z)))
            log_px = -F.binary_cross_entropy_with_logits(logits, x, reduction="none").sum(1)
            return log_px + kl_terms(z, eps, logvar)

    class ConvVAE(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = nn.Conv2d(1, 32, 4, 2, 1)
            self.conv2 = nn.Conv2d(32, 64, 4, 2, 1)
            self.fc1 = nn.Linear(3136, 256)
            self.head = nn.Linear(256, 2 * latent)
            self.dfc1 = nn.Linear(latent, 256)
            self.dfc2 = nn.Linear(256, 3136)
            self.deconv1 = nn.ConvTranspose2d(64, 32, 4, 2, 1)
            self.out = nn.ConvTranspose2d(32, 2, 4, 2, 1)

        def elbo_per_image(self, x):
            h = F.relu(self.fc1(F.relu(self.conv2(F.relu(self.conv1(x)))).flatten(1)))
            mean, logvar = self.head(h).chunk(2, dim=1)
            eps = torch.randn_like(mean)
            z = mean + (0.5 * logvar).exp() * eps
            h = F.relu(self.dfc2(F.relu(self.dfc1(z)))).view(-1, 64, 7, 7)
            out = self.out(F.relu(self.deconv1(h)))
            mu, var = out[:, 0], 1e-4 + F.softplus(out[:, 1])
            x = x[:, 0]
            log_px = (-0.5 * ((x - mu) ** 2 / var + var.log()) - half_log_2pi).sum((1, 2))
            return log_px + kl_terms(z, eps, logvar)

    return {"mlp": MlpVAE, "conv": ConvVAE}[kind]()


def as_data(kind, pixels, device):
    """The values each model trains on: pixels > 127 for the Bernoulli MLP, pixel/255 for the conv."""
    import torch

    x = torch.from_numpy(pixels.copy())
    x = (x > 127).float() if kind == "mlp" else x.float() / 255
    return x.to(device)


def torch_run(a):
    try:
        import torch
    except ImportError as e:
        raise BenchError(f"PyTorch is not importable ({e}); install torch or pass --skip-torch")
    if a.device == "cuda" and not torch.cuda.is_available():
        raise BenchError("--device cuda but torch.cuda.is_available() is False; use --device cpu")
    dev = torch.device(a.device)
    sync = torch.cuda.synchronize if a.device == "cuda" else (lambda: None)
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    x = as_data(a.model, load_images(a.data, "train", a.train_size), dev)
    xt = as_data(a.model, load_images(a.data, "test", a.test_size), dev)
    model = make_model(a.model).to(dev)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    batch, times, train_elbos = 100, [], []
    steps = len(x) // batch
    for epoch in range(a.epochs):
        perm = torch.randperm(len(x), device=dev)
        sync()
        t0 = time.perf_counter()
        total = torch.zeros((), device=dev)
        for i in range(steps):
            opt.zero_grad(set_to_none=True)
            loss = -model.elbo_per_image(x[perm[i * batch : (i + 1) * batch]]).mean()
            loss.backward()
            opt.step()
            total += loss.detach()
        sync()
        times.append(time.perf_counter() - t0)
        train_elbos.append(-total.item() / steps)
        print(f"torch   epoch {epoch + 1}: {times[-1]:8.3f} s  train ELBO (running mean) {train_elbos[-1]:9.3f}",
              flush=True)
    with torch.no_grad():
        test = sum(model.elbo_per_image(xt[i : i + batch]).sum().item() for i in range(0, len(xt), batch))
    name = (torch.cuda.get_device_name(0) if a.device == "cuda"
            else f"CPU, {platform.machine()}, {torch.get_num_threads()} threads")
    return {
        "framework": f"PyTorch {torch.__version__} eager",
        "device": a.device,
        "device_name": name,
        "epoch_seconds": times,
        "median_seconds": summary_seconds(times),
        "steps_per_epoch": steps,
        "train_elbo": train_elbos,
        "test_elbo": test / len(xt),
    }


# ---------------------------------------------------------------------------------------------
# vae-gpu side (standard library only)


def vae_gpu_run(a):
    binary = Path(a.vae_gpu)
    if not binary.is_file() or not os.access(binary, os.X_OK):
        raise BenchError(f"vae-gpu binary {binary} is not an executable file; build it with "
                         "`cargo build --release` or pass its path with --vae-gpu")
    with tempfile.TemporaryDirectory() as out:
        cmd = [str(binary), "train", *VAE_GPU_FLAGS[a.model], "--device", a.vae_device,
               "--train-size", str(a.train_size), "--val-size", "0", "--test-size", str(a.test_size),
               "--epochs", str(a.epochs), "--seed", str(a.seed), "--quiet", "--out", out]
        if a.vae_data:
            cmd += ["--data", a.vae_data]
        env = dict(os.environ, MATMUL_NUM_THREADS=str(a.threads), RAYON_NUM_THREADS=str(a.threads))
        done = subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        if done.returncode != 0:
            raise BenchError(f"`{' '.join(cmd)}` exited with status {done.returncode}:\n{done.stderr.strip()}")
        rows = [json.loads(line) for line in open(Path(out) / "metrics.jsonl")]
    for r in rows:
        extra = ""
        if "dispatches_per_step" in r:
            extra = (f"  {r['dispatches_per_step']} dispatches/step, {r['submits']} submits, "
                     f"host {1e3 * r['host_seconds_per_step']:.3f} ms/step")
        print(f"vae-gpu epoch {r['epoch']}: {r['seconds']:8.3f} s  train ELBO (running mean) "
              f"{r['train_elbo']:9.3f}{extra}", flush=True)
    times = [r["seconds"] for r in rows]
    result = {
        "framework": "vae-gpu",
        "binary": str(binary),
        "device": a.vae_device,
        "device_name": rows[-1].get("device"),
        "epoch_seconds": times,
        "median_seconds": summary_seconds(times),
        "steps_per_epoch": a.train_size // 100,
        "train_elbo": [r["train_elbo"] for r in rows],
        "test_elbo": rows[-1]["test_elbo"],
    }
    for key in COUNTERS:
        if key in rows[-1]:
            # Epoch 1 pays one-off costs; report the counters of the epochs the median covers.
            vals = [r[key] for r in (rows[1:] if len(rows) > 1 else rows)]
            # Dispatches and submits are the same every epoch of a run: kept as whole numbers.
            result[key] = statistics.median(vals) if key == "host_seconds_per_step" else vals[-1]
    return result


# ---------------------------------------------------------------------------------------------


def table(res):
    lines = [f"| side | device | epoch seconds (1st excluded from the median) | median s | test ELBO |",
             "|---|---|---|---|---|"]
    for key in ("vae_gpu", "torch"):
        r = res.get(key)
        if r:
            epochs = ", ".join(f"{t:.3f}" for t in r["epoch_seconds"])
            lines.append(f"| {r['framework']} | {r['device']} ({r['device_name']}) | {epochs} | "
                         f"{r['median_seconds']:.3f} | {r['test_elbo']:.3f} |")
    if res.get("ratio_vae_gpu_over_torch") is not None:
        lines.append(f"\nvae-gpu / PyTorch epoch time: {res['ratio_vae_gpu_over_torch']:.2f}× "
                     "(below 1: vae-gpu is faster)")
    if res.get("ratio_per_round"):
        lines.append("per round (alternated): " +
                     ", ".join(f"{r:.2f}×" for r in res["ratio_per_round"]))
    return "\n".join(lines)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog="See the module docstring (head tools/torch_bench.py) for the models.")
    p.add_argument("--model", choices=MODELS, default="mlp")
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu", help="PyTorch's device")
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--train-size", type=int, default=None,
                   help="training images [default: 60000 for mlp, 10000 for conv]")
    p.add_argument("--test-size", type=int, default=10_000, help="test images for the test ELBO")
    p.add_argument("--threads", type=int, default=os.cpu_count())
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--vae-gpu", metavar="PATH", default=None,
                   help="vae-gpu binary to compare against (e.g. target/release/vae-gpu) [default: PyTorch only]")
    p.add_argument("--vae-device", choices=("cpu", "vulkan"), default="cpu", help="vae-gpu's --device")
    p.add_argument("--skip-torch", action="store_true", help="run vae-gpu alone (needs --vae-gpu)")
    p.add_argument("--data", default=str(ROOT / "data" / "mnist"), help="MNIST IDX directory for PyTorch")
    p.add_argument("--vae-data", default=None,
                   help="MNIST directory for vae-gpu [default: the copy compiled into the binary]")
    p.add_argument("--rounds", type=int, default=1,
                   help="alternate the two sides this many times; medians over all rounds")
    p.add_argument("--json", metavar="FILE", default=None, help="write the results as one JSON object")
    a = p.parse_args(argv)
    if a.train_size is None:
        a.train_size = 60_000 if a.model == "mlp" else 10_000
    for name in ("epochs", "train_size", "test_size", "threads", "rounds"):
        if getattr(a, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be at least 1")
    if a.train_size < 100:
        p.error("--train-size must be at least one batch of 100 images")
    if a.skip_torch and not a.vae_gpu:
        p.error("--skip-torch leaves nothing to run without --vae-gpu PATH")
    return a


def run(a):
    res = {"config": {"model": a.model, "epochs": a.epochs, "train_size": a.train_size,
                      "test_size": a.test_size, "threads": a.threads, "batch_size": 100, "seed": a.seed,
                      "host": platform.node(), "machine": platform.machine(),
                      "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                      "summary": "median epoch seconds excluding the first epoch"}}
    # vae-gpu first, as tools/torch_conv.py did: a bad binary fails before the long PyTorch run.
    # With --rounds N the two sides alternate N times (on a shared or throttled machine the speed
    # drifts over minutes; alternating spreads the drift over both) and each side's summary is
    # the median over every round's epochs but the first.
    rounds = []
    for _ in range(a.rounds):
        one = {}
        if a.vae_gpu:
            one["vae_gpu"] = vae_gpu_run(a)
        if not a.skip_torch:
            one["torch"] = torch_run(a)
        rounds.append(one)
    for key in ("vae_gpu", "torch"):
        if key in rounds[0]:
            res[key] = dict(rounds[0][key])
            if a.rounds > 1:
                warm = [t for r in rounds for t in
                        (r[key]["epoch_seconds"][1:] if a.epochs > 1 else r[key]["epoch_seconds"])]
                res[key]["epoch_seconds"] = [t for r in rounds for t in r[key]["epoch_seconds"]]
                res[key]["median_seconds"] = statistics.median(warm)
    if "vae_gpu" in res and "torch" in res:
        res["ratio_vae_gpu_over_torch"] = res["vae_gpu"]["median_seconds"] / res["torch"]["median_seconds"]
        if a.rounds > 1:
            res["ratio_per_round"] = [r["vae_gpu"]["median_seconds"] / r["torch"]["median_seconds"]
                                      for r in rounds]
    return res


def main(argv=None):
    a = parse_args(argv)
    try:
        res = run(a)
    except (BenchError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    c = res["config"]
    print(f"\n{a.model} model, {c['train_size']} training images, {c['epochs']} epochs, {c['threads']} threads")
    print(table(res))
    if a.json:
        Path(a.json).write_text(json.dumps(res, indent=2) + "\n")
        print(f"wrote {a.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
