#!/usr/bin/env python3
"""Evaluate a vae-gpu checkpoint's test ELBO independently, in PyTorch, for any model of the family.

    pip install torch safetensors numpy
    python tools/torch_elbo.py runs/latest/checkpoint.safetensors [--data data/mnist] [--n 10000]
        [--samples 1] [--seed 0]

Independence: this script shares no code with vae-gpu. It reads only what
docs/reference/checkpoint.md documents: the checkpoint's `config` metadata (the model specification) and its tensors by their
documented names, in PyTorch's nn.Linear layout (weight [out, in]). From those alone it rebuilds
the model as torch modules, evaluates the densities with `torch.distributions` (except the two
written out below: the bernoulli-ce cross-entropy, which is no distribution, and the continuous
Bernoulli), and computes in float64. What it checks, for every member of the family:

- encoder: hidden layers as model.encoder lists them: a number is an nn.Linear of that width
  (encoder.fc1, fc2, ...), {"conv2d": {out, kernel, stride, padding}} an nn.Conv2d (encoder.conv1,
  ...; the input is viewed as model.image [C, H, W]), {"reshape": [C, H, W]} a view; activation
  model.activation (tanh | relu | sigmoid) after each layer with parameters; a linear layer
  flattens its input (NCHW order); heads encoder.mean and encoder.logvar (Gaussian q,
  sigma = exp(head/2)) or encoder.logscale (Laplace q, b = exp(head)).
- decoder: model.decoder the same way, with {"conv_transpose2d": {...}} an nn.ConvTranspose2d
  (decoder.deconv1, ...); one that ends the list without `out` is the output layer, with as many
  channels as the heads below (k for the categorical) and named after them joined by "_"
  (decoder.mean_variance: channel 0 the mean, 1 the variance); else linear output heads by
  likelihood: bernoulli (decoder.logits on pixels > 127; a `stochastic` run is evaluated with the
  threshold too, and the script says so), bernoulli-ce (decoder.logits, cross-entropy on pixel/255:
  not a density), continuous-bernoulli (decoder.logits, on pixel/255; the density written out
  with log C(l) = log(l / tanh(l/2)), because torch.distributions.ContinuousBernoulli clamps the
  probability and so caps log C at log 36.7 for |logit| > 36.7; the script prints how much its
  log_prob would differ), gaussian (decoder.mean with
  identity or sigmoid mean; sigma fixed, or sigma^2 = 1e-4 + softplus of decoder.pixel_variance (or of the one decoder.shared_variance)
  (learned) or of the head decoder.variance (decoder); on pixel/255), beta (alpha, beta =
  1e-3 + softplus of the heads decoder.alpha, decoder.beta; on (pixel + 1/2)/256), categorical
  (k bins: decoder.logits has k*784 outputs, row c*784 + p is bin c of pixel p; byte v falls in bin
  floor(v*k/256)), discretized-logistic (heads decoder.mean and decoder.log_scale, the log-scale
  floored at -7 as in PixelCNN++; P(byte k) = CDF((k+1)/256) - CDF(k/256) of the logistic, with
  CDF(1/256) and 1 - CDF(255/256) for the edge bins, evaluated on the side of the logistic where
  the CDF differences are small, so float64 keeps the tails, and PixelCNN++'s midpoint density
  where even that underflows). log p(x|z) is summed over the 784
  pixels.
- the encoder's input: the binarized pixels for bernoulli, pixel/255 (the `grayscale` data) for
  every other likelihood, whatever transform that likelihood applies to its own target.
- prior: N(0, scale^2) or Laplace(0, scale) per latent dimension.
- `vae-gpu/1` checkpoints (model {"input", "hidden", "latent"}) are the Kingma & Welling Appendix C
  model: one tanh layer of `hidden`, Bernoulli p(x|z), Gaussian q, N(0, 1) prior.

It prints

- the Monte Carlo ELBO, log p(x|z) + log p(z) - log q(z|x) at a reparameterized z ~ q(z|x),
  averaged over --samples draws per image, and its mean over images +- the standard error,
- the same ELBO with KL(q || p) in closed form where torch.distributions.kl_divergence has the
  pair (Normal||Normal, Laplace||Laplace, Laplace||Normal, Normal||Laplace): a second estimator of
  the same ELBO, whose noise comes from log p(x|z) alone,
- when the checkpoint's `metrics` has a test_elbo (vae-gpu's number, over the first `test_size`
  test images with one fixed noise draw per image, using the estimator of the run's `kl` setting),
  the difference from it in standard errors. Expect agreement within a few noise-only standard
  errors (printed with --samples 2 or more), not to the last digit.

A checkpoint this script cannot interpret (unknown likelihood, posterior, activation or field, a
missing or misshapen tensor) ends with one `error:` line and exit status 1.
"""

import argparse
import gzip
import json
import math
import sys
from pathlib import Path

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import load_file
from torch import distributions as D
from torch import nn
from torch.nn import functional as F

PIXELS = 784
ACTIVATIONS = {"tanh": torch.tanh, "relu": torch.relu, "sigmoid": torch.sigmoid}
LIKELIHOODS = ("bernoulli", "bernoulli-ce", "continuous-bernoulli", "gaussian", "beta", "categorical",
               "discretized-logistic")
FAMILIES = ("gaussian", "laplace")
MODEL_FIELDS = {"input", "image", "hidden", "encoder", "decoder", "activation", "latent", "posterior",
                "prior", "kl", "likelihood", "init"}
LAYER_KINDS = ("conv2d", "conv_transpose2d", "reshape")


class CheckpointError(Exception):
    """A checkpoint this script cannot interpret; reported as one `error:` line, exit status 1."""


# ---------------------------------------------------------------------------------------------
# The model specification, from the checkpoint's `config` (documented defaults for missing fields)


def spec_from_config(model, fmt):
    """The model specification with every field filled in and checked."""
    if not isinstance(model, dict):
        raise CheckpointError("config.model is not a JSON object")
    unknown = sorted(set(model) - MODEL_FIELDS)
    if unknown:
        raise CheckpointError(f"unknown model field(s) {unknown}: this script does not know what they mean")
    if fmt == "vae-gpu/1":
        # The Kingma & Welling Appendix C model, the only one format 1 could hold.
        hidden = model.get("hidden", 500)
        model = {"input": model.get("input", PIXELS), "encoder": [hidden], "decoder": [hidden],
                 "latent": model.get("latent", 2)}
    s = {}
    s["input"] = model.get("input", PIXELS)
    if s["input"] != PIXELS:
        raise CheckpointError(f"model.input is {s['input']}, but the MNIST test images have {PIXELS} pixels")
    hidden = model.get("hidden")
    s["image"] = model.get("image")
    if s["image"] is not None and (len(s["image"]) != 3 or math.prod(s["image"]) != PIXELS):
        raise CheckpointError(f"model.image is {s['image']!r}, not [channels, height, width] of {PIXELS} pixels")
    s["encoder"] = list(model.get("encoder", [hidden] if hidden else [500]))
    s["decoder"] = list(model.get("decoder", [hidden] if hidden else s["encoder"][::-1]))
    for side in ("encoder", "decoder"):
        for layer in s[side]:
            ok = (isinstance(layer, int) and layer > 0) or (
                isinstance(layer, dict) and len(layer) == 1 and next(iter(layer)) in LAYER_KINDS)
            if not ok:
                raise CheckpointError(f"model.{side} has the layer {layer!r}: not a width or one of {LAYER_KINDS}")
    s["latent"] = model.get("latent", 2)
    if not isinstance(s["latent"], int) or s["latent"] < 1:
        raise CheckpointError(f"model.latent is {s['latent']!r}")
    s["activation"] = model.get("activation", "tanh")
    if s["activation"] not in ACTIVATIONS:
        raise CheckpointError(f"unknown activation {s['activation']!r} (known: {', '.join(ACTIVATIONS)})")
    s["posterior"] = model.get("posterior", "gaussian")
    if s["posterior"] not in FAMILIES:
        raise CheckpointError(f"unknown posterior {s['posterior']!r} (known: {', '.join(FAMILIES)})")
    prior = model.get("prior", {})
    s["prior"] = {"family": prior.get("family", "gaussian"), "scale": float(prior.get("scale", 1.0))}
    if s["prior"]["family"] not in FAMILIES:
        raise CheckpointError(f"unknown prior family {s['prior']['family']!r} (known: {', '.join(FAMILIES)})")
    if not s["prior"]["scale"] > 0:
        raise CheckpointError(f"prior scale {s['prior']['scale']} is not positive")
    s["kl"] = model.get("kl", "mc")
    if s["kl"] not in ("mc", "analytic"):
        raise CheckpointError(f"unknown kl mode {s['kl']!r} (known: mc, analytic)")
    lik = dict(model.get("likelihood", {"kind": "bernoulli"}))
    kind = lik.get("kind")
    if kind not in LIKELIHOODS:
        raise CheckpointError(f"unknown likelihood {kind!r} (known: {', '.join(LIKELIHOODS)})")
    if kind == "gaussian":
        if lik.get("mean") not in ("identity", "sigmoid"):
            raise CheckpointError(f"unknown Gaussian mean {lik.get('mean')!r} (known: identity, sigmoid)")
        var = lik.get("variance")
        vkind = var.get("kind") if isinstance(var, dict) else None
        if vkind not in ("fixed", "learned", "shared", "decoder"):
            raise CheckpointError(f"unknown Gaussian variance {var!r} (known kinds: fixed, learned, shared, decoder)")
        if vkind == "fixed" and not (isinstance(var.get("sigma"), (int, float)) and var["sigma"] > 0):
            raise CheckpointError(f"Gaussian variance {var!r}: sigma must be a positive number")
    if kind == "categorical":
        bins = lik.get("bins")
        if not (isinstance(bins, int) and 2 <= bins <= 256):
            raise CheckpointError(f"categorical bins {bins!r} is not an integer from 2 to 256")
    s["likelihood"] = lik
    return s


def heads(s):
    """The decoder's output heads: name -> width; and the free decoder tensors: name -> shape."""
    lik = s["likelihood"]
    kind = lik["kind"]
    if kind in ("bernoulli", "bernoulli-ce", "continuous-bernoulli"):
        return {"logits": PIXELS}, {}
    if kind == "categorical":
        return {"logits": lik["bins"] * PIXELS}, {}
    if kind == "beta":
        return {"alpha": PIXELS, "beta": PIXELS}, {}
    if kind == "discretized-logistic":
        return {"mean": PIXELS, "log_scale": PIXELS}, {}
    # gaussian
    vkind = lik["variance"]["kind"]
    if vkind == "decoder":
        return {"mean": PIXELS, "variance": PIXELS}, {}
    if vkind == "learned":
        return {"mean": PIXELS}, {"pixel_variance": (PIXELS,)}
    if vkind == "shared":
        return {"mean": PIXELS}, {"shared_variance": (1,)}
    return {"mean": PIXELS}, {}


def describe(s):
    """The model in one line, e.g. "Beta p(x|z), 784-500-2 tanh, Gaussian q, N(0,1) prior"."""
    lik = s["likelihood"]
    kind = lik["kind"]
    if kind == "bernoulli":
        l = "Bernoulli p(x|z)"
    elif kind == "bernoulli-ce":
        l = "Bernoulli cross-entropy on grayscale (not a density)"
    elif kind == "continuous-bernoulli":
        l = "continuous Bernoulli p(x|z)"
    elif kind == "beta":
        l = "Beta p(x|z)"
    elif kind == "categorical":
        l = f"categorical p(x|z) ({lik['bins']} bins)"
    elif kind == "discretized-logistic":
        l = "discretized logistic p(x|z) over the 256 pixel values"
    else:
        v = lik["variance"]
        var = {"fixed": f"fixed sigma {v.get('sigma')}", "learned": "learned per-pixel sigma^2", "shared": "one learned sigma^2",
               "decoder": "sigma^2(z) from the decoder"}[v["kind"]]
        l = f"Gaussian p(x|z) ({lik['mean']} mean, {var})"
    if any(not isinstance(l, int) for l in s["encoder"] + s["decoder"]):
        short = lambda l: str(l) if isinstance(l, int) else next(iter(l))
        net = (" ".join(short(l) for l in s["encoder"]) + f" -> {s['latent']} -> "
               + " ".join(short(l) for l in s["decoder"]))
    else:
        net = "-".join(str(w) for w in [s["input"], *s["encoder"], s["latent"]])
    if all(isinstance(l, int) for l in s["encoder"] + s["decoder"]) and s["decoder"] != s["encoder"][::-1]:
        net += " (decoder " + "-".join(str(w) for w in [s["latent"], *s["decoder"], s["input"]]) + ")"
    q = {"gaussian": "Gaussian q", "laplace": "Laplace q"}[s["posterior"]]
    fam, sc = s["prior"]["family"], s["prior"]["scale"]
    sc_txt = f"{sc:g}"
    p = f"N(0,{sc_txt}{'' if sc == 1 else '^2'}) prior" if fam == "gaussian" else f"Laplace(0,{sc_txt}) prior"
    return f"{l}, {net} {s['activation']}, {q}, {p}, KL {s['kl']}"


# ---------------------------------------------------------------------------------------------
# The model as torch modules, named as the checkpoint's tensors


class Net(nn.Module):
    """The spec's layers in order, each kind numbered on its own (fc1, conv1, deconv1, ...), the
    activation after every layer with parameters; then the heads (linear, or one transposed
    convolution whose channels are the heads when the spec ends with one without `out`)."""

    def __init__(self, in_shape, layers, activation, head_widths, head_channels=None):
        super().__init__()
        self.activation = ACTIVATIONS[activation]
        self.steps = []
        shape = tuple(in_shape)
        counts = {"fc": 0, "conv": 0, "deconv": 0}

        def add(prefix, module):
            counts[prefix] += 1
            name = f"{prefix}{counts[prefix]}"
            setattr(self, name, module)
            self.steps.append(("layer", name))

        self.conv_head = None
        for i, layer in enumerate(layers):
            if isinstance(layer, int):
                add("fc", nn.Linear(math.prod(shape), layer))
                shape = (layer,)
                continue
            (kind, c), = layer.items()
            if kind == "reshape":
                shape = tuple(c)
                self.steps.append(("reshape", shape))
                continue
            if len(shape) != 3:
                raise CheckpointError(f"layer {layer!r} gets a flat input of {shape[0]}")
            k, st, pd = c["kernel"], c.get("stride", 1), c.get("padding", 0)
            if kind == "conv2d":
                add("conv", nn.Conv2d(shape[0], c["out"], k, st, pd))
                size = lambda n: (n + 2 * pd - k) // st + 1
                shape = (c["out"], size(shape[1]), size(shape[2]))
            elif "out" in c:
                add("deconv", nn.ConvTranspose2d(shape[0], c["out"], k, st, pd))
                size = lambda n: (n - 1) * st - 2 * pd + k
                shape = (c["out"], size(shape[1]), size(shape[2]))
            elif i + 1 == len(layers) and head_channels is not None:
                self.conv_head = "_".join(head_widths)
                setattr(self, self.conv_head, nn.ConvTranspose2d(shape[0], head_channels, k, st, pd))
            else:
                raise CheckpointError(f"layer {layer!r} has no `out` and does not end the decoder")
        self.in_shape = tuple(in_shape)
        self.head_names = list(head_widths)
        if self.conv_head is None:
            for name, w in head_widths.items():
                setattr(self, name, nn.Linear(math.prod(shape), w))

    def forward(self, x):
        h = x.view(x.shape[0], *self.in_shape)
        for kind, what in self.steps:
            if kind == "reshape":
                h = h.reshape(h.shape[0], *what)
                continue
            module = getattr(self, what)
            if isinstance(module, nn.Linear):
                h = h.flatten(1)
            h = self.activation(module(h))
        if self.conv_head is not None:
            out = getattr(self, self.conv_head)(h)
            if len(self.head_names) == 1:
                return {self.head_names[0]: out.flatten(1)}
            return {name: out[:, c].flatten(1) for c, name in enumerate(self.head_names)}
        h = h.flatten(1)
        return {name: getattr(self, name)(h) for name in self.head_names}


class VAE(nn.Module):
    def __init__(self, s):
        super().__init__()
        self.spec = s
        scale_head = {"gaussian": "logvar", "laplace": "logscale"}[s["posterior"]]
        self.encoder = Net(s["image"] or (s["input"],), s["encoder"], s["activation"],
                           {"mean": s["latent"], scale_head: s["latent"]})
        dec_heads, free = heads(s)
        kind = s["likelihood"]["kind"]
        channels = s["likelihood"]["bins"] if kind == "categorical" else len(dec_heads)
        self.decoder = Net((s["latent"],), s["decoder"], s["activation"], dec_heads, channels)
        for name, shape in free.items():
            self.decoder.register_parameter(name, nn.Parameter(torch.zeros(shape)))

    def posterior(self, x):
        """q(z|x), one independent distribution per latent dimension."""
        out = self.encoder(x)
        if self.spec["posterior"] == "gaussian":
            return D.Normal(out["mean"], (0.5 * out["logvar"]).exp())
        return D.Laplace(out["mean"], out["logscale"].exp())

    def prior(self, like):
        loc = torch.zeros_like(like)
        scale = torch.full_like(like, self.spec["prior"]["scale"])
        return D.Normal(loc, scale) if self.spec["prior"]["family"] == "gaussian" else D.Laplace(loc, scale)

    def log_likelihood(self, z, pixels):
        """log p(x|z) summed over pixels; `pixels` are the raw bytes (0..255) as float."""
        lik = self.spec["likelihood"]
        kind = lik["kind"]
        out = self.decoder(z)
        if kind == "bernoulli":
            x = (pixels > 127).to(z.dtype)
            lp = D.Bernoulli(logits=out["logits"]).log_prob(x)
        elif kind == "bernoulli-ce":
            x, l = pixels / 255, out["logits"]
            lp = x * F.logsigmoid(l) + (1 - x) * F.logsigmoid(-l)
        elif kind == "continuous-bernoulli":
            x, l = pixels / 255, out["logits"]
            # torch.distributions.ContinuousBernoulli(logits=l).log_prob(x) clamps λ = σ(l) to
            # [eps, 1 - eps] before its normaliser, which caps log C at log 36.7 (float64) for
            # |l| > 36.7, where the true log C(l) ≈ log |l| keeps growing; a trained model has
            # such logits on MNIST's always-0 border. So the density is written out, from
            # Loaiza-Ganem & Cunningham: C(λ) = 2 atanh(1 - 2λ)/(1 - 2λ) = l / tanh(l/2) in terms
            # of the logit, exact in float64 for every l != 0 (ln 2 + l²/12 near 0), and torch's
            # value is kept to report the difference.
            small = l.abs() < 1e-4
            safe = torch.where(small, torch.ones_like(l), l)
            log_c = torch.where(small, math.log(2) + l**2 / 12, torch.log(safe / torch.tanh(safe / 2)))
            lp = log_c - F.binary_cross_entropy_with_logits(l, x, reduction="none")
            self.torch_cb_gap = (D.ContinuousBernoulli(logits=l).log_prob(x) - lp).sum(-1)
        elif kind == "gaussian":
            mu = out["mean"] if lik["mean"] == "identity" else torch.sigmoid(out["mean"])
            v = lik["variance"]
            if v["kind"] == "fixed":
                sd = torch.full_like(mu, float(v["sigma"]))
            elif v["kind"] == "learned":
                sd = (1e-4 + F.softplus(self.decoder.pixel_variance)).sqrt().expand_as(mu)
            elif v["kind"] == "shared":
                sd = (1e-4 + F.softplus(self.decoder.shared_variance)).sqrt().expand_as(mu)
            else:
                sd = (1e-4 + F.softplus(out["variance"])).sqrt()
            lp = D.Normal(mu, sd).log_prob(pixels / 255)
        elif kind == "beta":
            a = 1e-3 + F.softplus(out["alpha"])
            b = 1e-3 + F.softplus(out["beta"])
            lp = D.Beta(a, b).log_prob((pixels + 0.5) / 256)
        elif kind == "discretized-logistic":
            mu, s = out["mean"], out["log_scale"].clamp(min=-7.0)
            inv = torch.exp(-s)
            upper = inv * ((pixels + 1) / 256 - mu)
            lower = inv * (pixels / 256 - mu)
            # sigma(upper) - sigma(lower) = sigma(-lower) - sigma(-upper): the form whose terms are
            # small, so the difference does not cancel in the tails; where even that underflows
            # float64, PixelCNN++'s midpoint density times the bin width.
            inside = torch.where(lower > 0, torch.sigmoid(-lower) - torch.sigmoid(-upper),
                                 torch.sigmoid(upper) - torch.sigmoid(lower))
            mid = inv * ((pixels + 0.5) / 256 - mu)
            midpoint = mid - s - 2 * F.softplus(mid) - math.log(256)
            interior = torch.where(inside > 1e-300, torch.log(inside.clamp(min=1e-300)), midpoint)
            lp = torch.where(pixels == 0, F.logsigmoid(upper),
                             torch.where(pixels == 255, F.logsigmoid(-lower), interior))
        else:  # categorical
            k = lik["bins"]
            logits = out["logits"].view(-1, k, PIXELS).transpose(1, 2)  # [B, 784, k]
            observed = torch.div(pixels.long() * k, 256, rounding_mode="floor")
            lp = D.Categorical(logits=logits).log_prob(observed)
        return lp.sum(-1)


def load(path):
    """The model (float64) with the checkpoint's parameters, its specification and its metadata."""
    try:
        with safe_open(path, framework="pt") as f:
            meta = f.metadata() or {}
        tensors = load_file(path)
    except FileNotFoundError:
        raise CheckpointError(f"{path}: no such file")
    except Exception as e:  # not a safetensors file
        raise CheckpointError(f"{path}: cannot read it as safetensors ({e})")
    fmt = meta.get("format")
    if fmt not in ("vae-gpu/1", "vae-gpu/2"):
        raise CheckpointError(f"{path}: not a vae-gpu checkpoint (format {fmt!r}; known: vae-gpu/1, vae-gpu/2)")
    try:
        config = json.loads(meta["config"])
    except (KeyError, json.JSONDecodeError) as e:
        raise CheckpointError(f"{path}: metadata `config` is missing or not JSON ({e})")
    if not isinstance(config, dict) or "model" not in config:
        raise CheckpointError(f"{path}: config has no `model`")
    try:
        s = spec_from_config(config["model"], fmt)
    except CheckpointError as e:
        raise CheckpointError(f"{path}: {e}")
    model = VAE(s)
    # Adam's or Adagrad's state (optimizer.*) is in the file too; the module takes only its parameters.
    params = {k: v for k, v in tensors.items() if not k.startswith("optimizer.")}
    expected = model.state_dict()
    missing = sorted(set(expected) - set(params))
    if missing:
        raise CheckpointError(f"{path}: missing tensor(s) {missing} for the model {describe(s)}")
    extra = sorted(set(params) - set(expected))
    if extra:
        raise CheckpointError(f"{path}: unexpected tensor(s) {extra} for the model {describe(s)}")
    for k, v in expected.items():
        if tuple(params[k].shape) != tuple(v.shape):
            raise CheckpointError(f"{path}: tensor {k} has shape {list(params[k].shape)}, expected {list(v.shape)}")
    model.load_state_dict(params, strict=True)
    return model.double().eval(), config, meta


def test_images(data_dir, n):
    """The first n MNIST test images as raw bytes 0..255 in float64 rows (IDX: 16-byte big-endian header)."""
    path = Path(data_dir) / "t10k-images-idx3-ubyte.gz"
    try:
        raw = gzip.open(path).read()
    except OSError as e:
        raise CheckpointError(f"cannot read the MNIST test images {path}: {e}")
    count, rows, cols = (int(v) for v in np.frombuffer(raw[4:16], dtype=">u4"))
    if rows * cols != PIXELS:
        raise CheckpointError(f"{path}: images are {rows}x{cols}, expected 28x28")
    if n > count:
        raise CheckpointError(f"--n {n}: the test set has only {count} images")
    pixels = np.frombuffer(raw[16:], dtype=np.uint8).reshape(count, rows * cols)[:n]
    return torch.from_numpy(pixels.astype(np.float64))


@torch.no_grad()
def elbos(model, pixels, samples, batch=500):
    """Per-image ELBOs, one row per noise draw ([samples, n]): with the KL term by Monte Carlo, and
    with it in closed form (None where torch has no closed form for KL(q || p))."""
    mc, analytic, have_kl, gap = [], [], True, []
    for start in range(0, pixels.shape[0], batch):
        x = pixels[start:start + batch]
        q = model.posterior(x / 255 if model.spec["likelihood"]["kind"] != "bernoulli" else (x > 127).double())
        p = model.prior(q.mean)
        kl = None
        if have_kl:
            try:
                kl = D.kl_divergence(q, p).sum(-1)
            except NotImplementedError:
                have_kl = False
        rows, rows_kl = [], []
        for _ in range(samples):
            z = q.rsample()
            loglik = model.log_likelihood(z, x)
            if hasattr(model, "torch_cb_gap"):
                gap.append(model.torch_cb_gap / samples)
            rows.append(loglik + p.log_prob(z).sum(-1) - q.log_prob(z).sum(-1))
            if kl is not None:
                rows_kl.append(loglik - kl)
        mc.append(torch.stack(rows))
        if kl is not None:
            analytic.append(torch.stack(rows_kl))
    # Continuous Bernoulli only: how much lower torch.distributions.ContinuousBernoulli's log_prob
    # would make the mean ELBO (see VAE.log_likelihood).
    model.torch_cb_gap_mean = torch.cat(gap).sum().item() / pixels.shape[0] if gap else None
    return torch.cat(mc, 1), (torch.cat(analytic, 1) if have_kl else None)


def main():
    torch.set_num_threads(1)
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("checkpoint")
    p.add_argument("--data", default=Path(__file__).resolve().parent.parent / "data" / "mnist")
    p.add_argument("--n", type=int, default=10_000, help="first N test images")
    p.add_argument("--samples", type=int, default=1, help="noise draws per image")
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args()
    if a.n < 2 or a.samples < 1:
        p.error("--n must be at least 2 and --samples at least 1")
    torch.manual_seed(a.seed)
    try:
        model, config, meta = load(a.checkpoint)
        x = test_images(a.data, a.n)
    except CheckpointError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(1)
    s = model.spec
    kind = s["likelihood"]["kind"]
    data = config.get("data", {"kind": "mnist"}).get("kind", "mnist")
    if data != "mnist" or config.get("binarize") == "dequantize":
        what = f"the {data} data set" if data != "mnist" else "dequantized pixels"
        print(f"error: {a.checkpoint} was trained on {what}; this script rebuilds MNIST test images as "
              "pixel/255 or binarized pixels only", file=sys.stderr)
        sys.exit(1)
    print(f"checkpoint: {a.checkpoint} ({meta.get('format')}, epoch {meta.get('epoch', '?')})")
    print(f"model: {describe(s)}")
    if kind == "bernoulli" and config.get("binarize", "threshold") != "threshold":
        print(f"note: the run used {config.get('binarize')!r} binarization; evaluating with the threshold (pixel > 127), "
              "while vae-gpu's test_elbo used one fixed stochastic binarization, so the two are not directly comparable")
    if kind == "bernoulli-ce":
        print("note: bernoulli-ce is a cross-entropy on grayscale targets, not a normalised density: its ELBO bounds no log p(x)")
    draws, draws_kl = elbos(model, x, a.samples)
    n = len(x)
    se = lambda v: v.std().item() / math.sqrt(len(v))
    # The s.e. over images mostly measures how images differ. Another evaluation of the same
    # images (vae-gpu's, with other noise) differs from this one only by the noise, whose s.e.
    # needs two or more draws per image to estimate.
    noise_var = lambda d: d.var(0).mean().item() if a.samples >= 2 else None
    noise_txt = lambda d: (f"; noise-only ± {math.sqrt(noise_var(d) / a.samples / n):.3f}" if a.samples >= 2 else "")
    mc = draws.mean(0)
    print(f"test ELBO (Monte Carlo KL, {a.samples} sample(s)): {mc.mean().item():.3f} nats/image "
          f"({n} images; ± {se(mc):.3f} s.e. over images{noise_txt(draws)})")
    if model.torch_cb_gap_mean is not None:
        print(f"note: torch.distributions.ContinuousBernoulli.log_prob would give {model.torch_cb_gap_mean:+.3f} nats/image "
              "(it clamps the probability to [eps, 1-eps], capping log C(λ) at log 36.7 for |logit| > 36.7); "
              "the exact density l/tanh(l/2)·λ^x(1-λ)^(1-x) is used here")
    if draws_kl is not None:
        analytic = draws_kl.mean(0)
        print(f"test ELBO (analytic KL): {analytic.mean().item():.3f} nats/image "
              f"(± {se(analytic):.3f} s.e. over images{noise_txt(draws_kl)})")
    else:
        print(f"test ELBO (analytic KL): not available (torch has no closed form for KL({s['posterior']} q ‖ {s['prior']['family']} prior))")
    if a.samples < 2:
        print("(--samples 2 or more also prints the noise-only s.e., the spread between evaluations of these images)")

    try:
        metrics = json.loads(meta["metrics"]) if "metrics" in meta else {}
    except json.JSONDecodeError:
        metrics = {}
    ref = metrics.get("test_elbo") if isinstance(metrics, dict) else None
    if ref is None:
        print("(the checkpoint has no vae-gpu test_elbo to compare with)")
        return
    # vae-gpu's number uses the run's own KL estimator, with one noise draw per image.
    if s["kl"] == "analytic" and draws_kl is not None:
        ours_draws, name = draws_kl, "analytic KL"
    else:
        ours_draws, name = draws, "Monte Carlo KL"
    ours = ours_draws.mean(0)
    test_size = int(meta.get("test_size", 10_000))
    diff = ours.mean().item() - ref
    print(f"vae-gpu test_elbo (epoch {metrics.get('epoch', '?')}, first {test_size} images, 1 draw, kl {s['kl']}): {ref:.3f}")
    line = f"torch ({name}) - vae-gpu: {diff:+.3f} nats = {diff / se(ours):+.2f} s.e. over images"
    if n == test_size and a.samples >= 2:
        # Same images: the two estimates differ by noise only; vae-gpu used one draw per image.
        sd = math.sqrt(noise_var(ours_draws) * (1 + 1 / a.samples) / n)
        line += f" = {diff / sd:+.2f} noise-only s.e. of the difference (same images: the one to judge by)"
    print(line)
    if n != test_size:
        print(f"caution: torch used the first {n} test images, vae-gpu the first {test_size}: different images, "
              "and the leading ones are not a random sample (MNIST's first 5,000 test digits are the neater "
              f"ones), so the difference is not a check; use --n {test_size} (and --samples 2 or more)")


if __name__ == "__main__":
    main()
