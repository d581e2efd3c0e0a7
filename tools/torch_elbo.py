#!/usr/bin/env python3
"""Load a vae-gpu checkpoint into a PyTorch module and evaluate its test ELBO.

    pip install torch safetensors numpy
    python tools/torch_elbo.py runs/latest/checkpoint.safetensors [--data data/mnist] [--n 10000]
        [--samples 1] [--seed 0]

The checkpoint is a safetensors file whose tensors follow PyTorch's nn.Linear layout (weight
[out, in]); the names are documented in the README ("Outputs"). This script rebuilds the Kingma &
Welling Appendix C model from those names alone, binarizes the test images as vae-gpu does
(`threshold`: pixel > 127; a `stochastic` run is evaluated with the threshold too, and the script
says so), and prints

- the Monte Carlo ELBO, log p(x|z) + log p(z) - log q(z|x) at z = mu + sigma*eps, the estimator
  vae-gpu reports (it uses one fixed noise draw per image, so expect agreement within a few
  noise-only standard errors, printed with --samples 2 or more, not to the last digit),
- the same ELBO with the KL term in closed form, which has lower variance.
"""

import argparse
import gzip
import json
import math
from pathlib import Path

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import load_file
from torch import nn
from torch.nn import functional as F


class Encoder(nn.Module):
    def __init__(self, hidden, latent):
        super().__init__()
        self.fc1 = nn.Linear(784, hidden)
        self.mean = nn.Linear(hidden, latent)
        self.logvar = nn.Linear(hidden, latent)

    def forward(self, x):
        h = torch.tanh(self.fc1(x))
        return self.mean(h), self.logvar(h)


class Decoder(nn.Module):
    def __init__(self, hidden, latent):
        super().__init__()
        self.fc1 = nn.Linear(latent, hidden)
        self.logits = nn.Linear(hidden, 784)

    def forward(self, z):
        return self.logits(torch.tanh(self.fc1(z)))


class VAE(nn.Module):
    def __init__(self, hidden, latent):
        super().__init__()
        self.encoder = Encoder(hidden, latent)
        self.decoder = Decoder(hidden, latent)


def load(path):
    """The model with the checkpoint's parameters, and the checkpoint's configuration."""
    with safe_open(path, framework="pt") as f:
        meta = f.metadata()
    if meta.get("format") != "vae-gpu/1":
        raise SystemExit(f"{path}: not a vae-gpu/1 checkpoint (format {meta.get('format')!r})")
    config = json.loads(meta["config"])
    model = VAE(config["model"]["hidden"], config["model"]["latent"])
    # Adam's moments (optimizer.*) are in the file too; the module takes only its parameters.
    tensors = {k: v for k, v in load_file(path).items() if not k.startswith("optimizer.")}
    model.load_state_dict(tensors, strict=True)
    return model.eval(), config, meta


def test_images(data_dir, n):
    """The first n MNIST test images as binarized float rows (IDX: 16-byte big-endian header)."""
    raw = gzip.open(Path(data_dir) / "t10k-images-idx3-ubyte.gz").read()
    count, rows, cols = np.frombuffer(raw[4:16], dtype=">u4")
    pixels = np.frombuffer(raw[16:], dtype=np.uint8).reshape(count, rows * cols)[:n]
    return torch.from_numpy((pixels > 127).astype(np.float32))


def log_normal(z, mean, logvar):
    return (-0.5 * (math.log(2 * math.pi) + logvar + (z - mean) ** 2 / logvar.exp())).sum(-1)


@torch.no_grad()
def elbos(model, x, samples):
    """Per-image Monte Carlo ELBOs, one row per draw ([samples, n]), and the analytic-KL ELBO [n]."""
    mean, logvar = model.encoder(x)
    mc, rec = [], torch.zeros(x.shape[0], dtype=torch.float64)
    for _ in range(samples):
        z = mean + (0.5 * logvar).exp() * torch.randn_like(mean)
        # Bernoulli log-likelihood, sum over pixels of x*logits - softplus(logits).
        loglik = -F.binary_cross_entropy_with_logits(model.decoder(z), x, reduction="none").sum(-1)
        zeros = torch.zeros_like(z)
        mc.append((loglik + log_normal(z, zeros, zeros) - log_normal(z, mean, logvar)).double())
        rec += loglik.double()
    kl = 0.5 * (mean**2 + logvar.exp() - 1 - logvar).sum(-1).double()
    return torch.stack(mc), rec / samples - kl


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("checkpoint")
    p.add_argument("--data", default=Path(__file__).resolve().parent.parent / "data" / "mnist")
    p.add_argument("--n", type=int, default=10_000, help="first N test images")
    p.add_argument("--samples", type=int, default=1, help="noise draws per image")
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args()
    torch.manual_seed(a.seed)
    model, config, meta = load(a.checkpoint)
    if config.get("binarize") != "threshold":
        print(f"note: the run used {config.get('binarize')!r} binarization; evaluating with the threshold")
    x = test_images(a.data, a.n)
    draws, analytic = elbos(model, x, a.samples)
    mc = draws.mean(0)
    se = lambda v: v.std().item() / math.sqrt(len(v))
    m = config["model"]
    print(f"checkpoint: {a.checkpoint} (epoch {meta['epoch']}, Dh={m['hidden']}, Dz={m['latent']})")
    print(f"test ELBO (Monte Carlo KL, {a.samples} sample(s)): {mc.mean().item():.3f} nats/image ({len(x)} images; ± {se(mc):.3f} s.e. over images)")
    print(f"test ELBO (analytic KL): {analytic.mean().item():.3f} nats/image (± {se(analytic):.3f})")
    # The s.e. over images mostly measures how images differ. Another evaluation of the same
    # images (vae-gpu's, with other noise) differs from this one only by the noise, whose s.e.
    # needs two or more draws per image to estimate.
    if a.samples >= 2:
        noise = math.sqrt(draws.var(0).mean().item() / a.samples / len(x))
        print(f"noise-only s.e. of the Monte Carlo ELBO: ± {noise:.3f} (the spread between evaluations of these images)")
    else:
        print("(--samples 2 or more also prints the noise-only s.e., the one to compare runs with)")


if __name__ == "__main__":
    main()
