#!/usr/bin/env python3
"""The lecture notes' circle VAE (seeds/004, Part 2) in PyTorch, as the notes run it, timed.

    python tools/torch_circle.py [--epochs 500] [--threads N]

Data: z ~ N(0, 1), x = (cos z, sin z) + 0.1 noise, N = 20,000 (torch.manual_seed(0)), first 3/4
train; encoder and decoder 20-20 ReLU MLPs, Gaussian p(x|z) with sigma 0.1, analytic KL, Adam lr
3e-4, batch 1000 (shuffled), the notes' training loop. Prints the test ELBO every 100 epochs (and
the first) and the wall time of training; for comparing with

    vae-gpu train --dataset circle --latent-dim 1 --hidden 20,20 --activation relu \\
        --likelihood gaussian --variance fixed:0.1 --kl analytic --lr 3e-4 --batch-size 1000 \\
        --epochs 500 --device cpu

on the same machine (the data sets differ in their random draws, not in their law).
"""
import argparse
import time

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.distributions import Normal
from torch.distributions.kl import kl_divergence
from torch.utils.data import DataLoader


class Decoder(nn.Module):
    def __init__(self, data_dim=2, latent_dim=1, hidden=(20, 20), noise_scale=0.1):
        super().__init__()
        self.noise_scale = noise_scale
        self.fc1 = nn.Linear(latent_dim, hidden[0])
        self.fc2 = nn.Linear(hidden[0], hidden[1])
        self.fc3 = nn.Linear(hidden[1], data_dim)

    def forward(self, z):
        return Normal(self.fc3(F.relu(self.fc2(F.relu(self.fc1(z))))), self.noise_scale)


class Encoder(nn.Module):
    def __init__(self, data_dim=2, latent_dim=1, hidden=(20, 20)):
        super().__init__()
        self.fc1 = nn.Linear(data_dim, hidden[0])
        self.fc2 = nn.Linear(hidden[0], hidden[1])
        self.fc31 = nn.Linear(hidden[1], latent_dim)
        self.fc32 = nn.Linear(hidden[1], latent_dim)

    def forward(self, x):
        h = F.relu(self.fc2(F.relu(self.fc1(x))))
        return Normal(self.fc31(h), torch.exp(0.5 * self.fc32(h)))


def elbo(x, encoder, decoder):
    q = encoder(x)
    z = q.rsample()
    value = decoder(z).log_prob(x).sum(dim=1).mean(dim=0)
    return value - kl_divergence(q, Normal(0, 1)).sum(dim=1).mean(dim=0)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=500)
    p.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's)")
    a = p.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    n, sigma = 20000, 0.1
    zs = torch.randn(n)
    xs = torch.column_stack([torch.cos(zs), torch.sin(zs)]) + sigma * torch.randn((n, 2))
    train = DataLoader(xs[: 3 * n // 4], batch_size=1000, shuffle=True)
    test = DataLoader(xs[3 * n // 4 :], batch_size=1000, shuffle=True)
    encoder, decoder = Encoder(), Decoder()
    opt = torch.optim.Adam(list(encoder.parameters()) + list(decoder.parameters()), lr=3e-4)
    t0 = time.perf_counter()
    for epoch in range(a.epochs):
        for x in train:
            opt.zero_grad()
            loss = -elbo(x, encoder, decoder)
            loss.backward()
            opt.step()
        with torch.no_grad():
            test_elbo = sum(elbo(x, encoder, decoder).item() * len(x) for x in test) / len(test.dataset)
        if epoch == 0 or (epoch + 1) % 100 == 0:
            print(f"epoch {epoch + 1:4d}  test ELBO {test_elbo:.4f}  ({time.perf_counter() - t0:.2f} s)")
    print(f"wall time of {a.epochs} epochs (training and test passes): {time.perf_counter() - t0:.2f} s, "
          f"torch {torch.__version__}, {torch.get_num_threads()} threads")


if __name__ == "__main__":
    main()
