#!/usr/bin/env python3
"""CPU training time of the default conv VAE: PyTorch eager against `vae-gpu --device cpu`, back
to back on the same machine, data and thread count.

    cargo build --release
    python tools/torch_conv.py [--threads 2] [--train-size 50000] [--epochs 1]

The model is `vae-gpu train --arch conv --likelihood gaussian --variance decoder` (the issue's
network): encoder Conv(1→32, k4, s2, p1) ReLU → Conv(32→64, k4, s2, p1) ReLU → flatten →
Linear(3136→256) ReLU → Linear(256→2·Dz); decoder Linear(Dz→256) ReLU → Linear(256→3136) ReLU →
reshape 64×7×7 → ConvT(64→32, k4, s2, p1) ReLU → ConvT(32→2, k4, s2, p1); Gaussian p(x|z) on
pixel/255 with μ the first channel and σ² = 1e-4 + softplus(second); Gaussian q, N(0, I) prior,
Monte Carlo KL; Adam lr 1e-3; batch 100 shuffled; Dz = 2. Both sides time the training passes of
each epoch only (vae-gpu's `seconds` in metrics.jsonl; evaluation is timed apart there).
Threads: torch.set_num_threads and vae-gpu's MATMUL_NUM_THREADS get the same number.
"""
import argparse
import gzip
import json
import os
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parent.parent


def train_images(n):
    raw = gzip.open(ROOT / "data" / "mnist" / "train-images-idx3-ubyte.gz").read()
    pixels = np.frombuffer(raw[16:], dtype=np.uint8).reshape(-1, 1, 28, 28)[:n]
    return torch.from_numpy(pixels.astype(np.float32) / 255)


class ConvVAE(nn.Module):
    def __init__(self, latent=2):
        super().__init__()
        self.latent = latent
        self.conv1 = nn.Conv2d(1, 32, 4, 2, 1)
        self.conv2 = nn.Conv2d(32, 64, 4, 2, 1)
        self.fc1 = nn.Linear(3136, 256)
        self.head = nn.Linear(256, 2 * latent)
        self.dfc1 = nn.Linear(latent, 256)
        self.dfc2 = nn.Linear(256, 3136)
        self.deconv1 = nn.ConvTranspose2d(64, 32, 4, 2, 1)
        self.out = nn.ConvTranspose2d(32, 2, 4, 2, 1)

    def elbo(self, x):
        h = F.relu(self.fc1(F.relu(self.conv2(F.relu(self.conv1(x)))).flatten(1)))
        mean, logvar = self.head(h).chunk(2, dim=1)
        std = (0.5 * logvar).exp()
        eps = torch.randn_like(std)
        z = mean + std * eps
        h = F.relu(self.dfc2(F.relu(self.dfc1(z)))).view(-1, 64, 7, 7)
        out = self.out(F.relu(self.deconv1(h)))
        mu, var = out[:, 0], 1e-4 + F.softplus(out[:, 1])
        x = x[:, 0]
        log_px = (-0.5 * ((x - mu) ** 2 / var + var.log() + np.log(2 * np.pi))).sum((1, 2))
        log_pz = (-0.5 * (z**2 + np.log(2 * np.pi))).sum(1)
        log_qz = (-0.5 * (eps**2 + logvar + np.log(2 * np.pi))).sum(1)
        return (log_px + log_pz - log_qz).mean()


def torch_epochs(x, epochs, batch=100):
    torch.manual_seed(0)
    model = ConvVAE()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    times = []
    for epoch in range(epochs):
        perm = torch.randperm(len(x))
        t0 = time.perf_counter()
        total = 0.0
        for i in range(0, len(x) - batch + 1, batch):
            opt.zero_grad()
            loss = -model.elbo(x[perm[i : i + batch]])
            loss.backward()
            opt.step()
            total += loss.item()
        times.append(time.perf_counter() - t0)
        print(f"torch   epoch {epoch + 1}: {times[-1]:7.2f} s  train ELBO (running mean) {-total / (len(x) // batch):.2f}")
    return times


def vae_gpu_epochs(binary, n, epochs, threads):
    with tempfile.TemporaryDirectory() as out:
        cmd = [binary, "train", "--arch", "conv", "--likelihood", "gaussian", "--variance", "decoder",
               "--device", "cpu", "--train-size", str(n), "--val-size", "0", "--test-size", "100",
               "--epochs", str(epochs), "--quiet", "--out", out]
        env = dict(os.environ, MATMUL_NUM_THREADS=str(threads))
        subprocess.run(cmd, check=True, env=env, stdout=subprocess.DEVNULL)
        rows = [json.loads(l) for l in open(Path(out) / "metrics.jsonl")]
    times = [r["seconds"] for r in rows]
    for r in rows:
        print(f"vae-gpu epoch {r['epoch']}: {r['seconds']:7.2f} s  train ELBO (running mean) {r['train_elbo']:.2f}")
    return times


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=os.cpu_count())
    p.add_argument("--train-size", type=int, default=50_000)
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--vae-gpu", default=str(ROOT / "target" / "release" / "vae-gpu"))
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    x = train_images(a.train_size)
    ours = vae_gpu_epochs(a.vae_gpu, a.train_size, a.epochs, a.threads)
    theirs = torch_epochs(x, a.epochs)
    print(f"{a.train_size} images, {a.threads} threads, torch {torch.__version__}: "
          f"vae-gpu {min(ours):.2f} s, torch {min(theirs):.2f} s per epoch (best of {a.epochs}); "
          f"torch / vae-gpu = {min(theirs) / min(ours):.2f}")


if __name__ == "__main__":
    main()
