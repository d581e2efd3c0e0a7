#!/usr/bin/env python3
"""CPU training time of the conv VAE, PyTorch eager against `vae-gpu --device cpu`: the
`--model conv` case of tools/torch_bench.py, kept under its old name and flags.

    cargo build --release
    python tools/torch_conv.py [--threads 2] [--train-size 50000] [--epochs 1] [--vae-gpu PATH]

is `python tools/torch_bench.py --model conv --vae-gpu target/release/vae-gpu --test-size 1000`
with these defaults; any other torch_bench.py flag (--json FILE, --device cuda, ...) passes
through. The model, the timers and the output are described in tools/torch_bench.py.
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import torch_bench  # noqa: E402

DEFAULTS = {"--train-size": "50000", "--epochs": "1", "--test-size": "1000",
            "--vae-gpu": str(torch_bench.ROOT / "target" / "release" / "vae-gpu")}

if __name__ == "__main__":
    args = sys.argv[1:]
    given = {a.split("=")[0] for a in args}
    extra = [x for k, v in DEFAULTS.items() if k not in given for x in (k, v)]
    sys.exit(torch_bench.main(["--model", "conv", *extra, *args]))
