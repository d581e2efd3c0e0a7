#!/usr/bin/env bash
# The real-GPU benchmark of vae-gpu as one command, for a machine with a GPU and a Vulkan driver
# that may have no Rust toolchain and no network: it runs a prebuilt binary, optionally with a
# copied-in Vulkan loader, and PyTorch eager on CUDA beside it when there is one.
#
#   tools/gpu_bench.sh [--bin PATH] [--loader DIR|FILE.deb] [--icd FILE.json] [--epochs 3]
#                      [--train-size N] [--test-size N] [--torch auto|cuda|cpu|none]
#                      [--allow-software] [--json FILE] [--readme FILE]
#
# Steps:
#   1. `vae-gpu devices`; a Vulkan adapter must be listed (a software one such as lavapipe only
#      with --allow-software: its times say nothing about a GPU).
#   2. For the default model (mlp: Kingma & Welling's Appendix C) and the conv model (`--arch conv
#      --likelihood gaussian --variance decoder`): `vae-gpu train --device vulkan`, --epochs
#      epochs (3), the summary the median epoch time excluding the first; dispatches per step,
#      submits per epoch and host seconds per step from its metrics.jsonl.
#   3. The same models in PyTorch eager (tools/torch_bench.py): on CUDA when
#      torch.cuda.is_available(); otherwise (--torch auto) on the CPU, labelled "cpu (no CUDA)" in
#      the table and `"cuda": false` in the JSON, so it is never read as a GPU number.
#   4. Everything into one JSON file (--json, default gpu_bench.json), a printed table, and the
#      README's table as Markdown (--readme, default gpu_bench_readme.md).
#
# What must be on the machine: this checkout's tools/ and data/mnist (PyTorch reads the IDX
# files; vae-gpu has MNIST compiled in), python3 (standard library for the vae-gpu side; torch and
# numpy for the PyTorch side), and the binary, built elsewhere with `cargo build --release` on a
# glibc no newer than the machine's (`ldd target/release/vae-gpu` lists only libc, libm, libgcc_s:
# wgpu opens libvulkan.so.1 at run time).
#
# The Vulkan loader: where `ldconfig -p | grep libvulkan` finds none, copy one in and name it with
# --loader: a directory holding libvulkan.so.1 (searched a few levels down, so the tree of
# `dpkg -x libvulkan1_*.deb DIR` works), a .deb, or a directory of .deb files such as
# libvulkan1 and libglvnd0 (which NVIDIA's ICD, libGLX_nvidia, needs); .deb files are unpacked
# into a temporary directory with dpkg-deb, no root needed. Its library directory goes first on
# LD_LIBRARY_PATH. The driver's manifest: --icd
# FILE, or VK_ICD_FILENAMES / VK_DRIVER_FILES as already set; with none of these, an NVIDIA
# manifest at one of the places container runtimes mount it (/usr/local/nvidia/share/vulkan/icd.d,
# /usr/share/vulkan/icd.d, /etc/vulkan/icd.d) is named explicitly, which the loader then uses
# whatever its search path.
#
# Environment: VAE_GPU_BIN (as --bin, default target/release/vae-gpu), VULKAN_LOADER (as
# --loader), PYTHON (default python3). Exit status 1 with one `error:` line for a missing or
# non-executable binary, a loader directory without libvulkan.so.1, an --icd file that is not
# there, no Vulkan adapter, or a failing run.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BIN="${VAE_GPU_BIN:-$ROOT/target/release/vae-gpu}"
LOADER="${VULKAN_LOADER:-}"
ICD=""
EPOCHS=3
TRAIN_SIZE=""
TEST_SIZE=10000
TORCH=auto
ALLOW_SOFTWARE=0
JSON=gpu_bench.json
README_MD=gpu_bench_readme.md
PYTHON="${PYTHON:-python3}"

die() { echo "error: $*" >&2; exit 1; }
usage() { sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'; }

while [ $# -gt 0 ]; do
  case "$1" in
    --bin) BIN="${2:?--bin needs a path}"; shift 2 ;;
    --loader) LOADER="${2:?--loader needs a directory or .deb}"; shift 2 ;;
    --icd) ICD="${2:?--icd needs a manifest file}"; shift 2 ;;
    --epochs) EPOCHS="${2:?}"; shift 2 ;;
    --train-size) TRAIN_SIZE="${2:?}"; shift 2 ;;
    --test-size) TEST_SIZE="${2:?}"; shift 2 ;;
    --torch) TORCH="${2:?}"; shift 2 ;;
    --allow-software) ALLOW_SOFTWARE=1; shift ;;
    --json) JSON="${2:?}"; shift 2 ;;
    --readme) README_MD="${2:?}"; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) die "unknown argument '$1' (see tools/gpu_bench.sh --help)" ;;
  esac
done

for v in EPOCHS TEST_SIZE ${TRAIN_SIZE:+TRAIN_SIZE}; do
  [[ "${!v}" =~ ^[1-9][0-9]*$ ]] || die "--$(echo "$v" | tr 'A-Z_' 'a-z-') must be a positive whole number, not '${!v}'"
done
[ -n "$TRAIN_SIZE" ] && [ "$TRAIN_SIZE" -lt 100 ] && die "--train-size must be at least one batch of 100 images"
case "$TORCH" in auto|cuda|cpu|none) ;; *) die "--torch must be auto, cuda, cpu or none, not '$TORCH'" ;; esac
command -v "$PYTHON" >/dev/null || die "$PYTHON not found; the benchmark needs Python 3 (set PYTHON=...)"
# The outputs are checked before the runs, so a typo does not cost the whole benchmark.
for f in "$JSON" "$README_MD"; do
  d="$(dirname "$f")"
  # A probe file, not `[ -w ]`, which root passes everywhere (even in /proc).
  probe="$(mkdir -p "$d" 2>/dev/null && mktemp "$d/.gpu_bench.XXXXXX" 2>/dev/null)" && rm -f "$probe" \
    && { [ ! -e "$f" ] || { [ -f "$f" ] && [ -w "$f" ]; }; } \
    || die "cannot write $f (pass --json / --readme a writable path)"
done

# --- the binary -----------------------------------------------------------------------------
[ -e "$BIN" ] || die "no vae-gpu binary at $BIN: build one with \`cargo build --release\` (on a machine with Rust) and copy it here, then pass --bin PATH or set VAE_GPU_BIN"
[ -f "$BIN" ] && [ -x "$BIN" ] || die "$BIN is not an executable file (chmod +x it, or pass --bin PATH)"
BIN="$(cd "$(dirname "$BIN")" && pwd)/$(basename "$BIN")"

# --- the Vulkan loader and driver -----------------------------------------------------------
TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT
if [ -n "$LOADER" ]; then
  debs=()
  if [ -f "$LOADER" ] && [[ "$LOADER" == *.deb ]]; then
    debs=("$LOADER")
  elif [ -d "$LOADER" ]; then
    shopt -s nullglob; debs=("$LOADER"/*.deb); shopt -u nullglob
  fi
  if [ ${#debs[@]} -gt 0 ]; then
    command -v dpkg-deb >/dev/null || die "--loader $LOADER holds .deb files but dpkg-deb is not here; unpack them elsewhere (dpkg -x FILE DIR) and pass the directory"
    for deb in "${debs[@]}"; do
      dpkg-deb -x "$deb" "$TMP/loader" || die "could not unpack $deb"
    done
    LOADER="$TMP/loader"
  fi
  [ -d "$LOADER" ] || die "--loader $LOADER is neither a directory nor a .deb file"
  lib="$(find "$LOADER" -maxdepth 5 -name 'libvulkan.so.1' -print -quit)"
  [ -n "$lib" ] || die "no libvulkan.so.1 under $LOADER (copy the Vulkan loader there: e.g. \`dpkg -x libvulkan1_*.deb $LOADER\`)"
  export LD_LIBRARY_PATH="$(dirname "$lib")${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  echo "Vulkan loader: $lib"
fi
if [ -n "$ICD" ]; then
  [ -f "$ICD" ] || die "--icd $ICD: no such file (the driver's manifest, e.g. nvidia_icd.json)"
  export VK_ICD_FILENAMES="$ICD" VK_DRIVER_FILES="$ICD"
elif [ -z "${VK_ICD_FILENAMES:-}${VK_DRIVER_FILES:-}" ]; then
  for f in /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json /usr/share/vulkan/icd.d/nvidia_icd.json \
           /etc/vulkan/icd.d/nvidia_icd.json; do
    if [ -f "$f" ]; then export VK_ICD_FILENAMES="$f" VK_DRIVER_FILES="$f"; break; fi
  done
fi
[ -n "${VK_ICD_FILENAMES:-}" ] && echo "Vulkan driver manifest: $VK_ICD_FILENAMES"
export NODEVICE_SELECT="${NODEVICE_SELECT:-1}"

# --- 1. the adapters ------------------------------------------------------------------------
echo "== $BIN devices"
"$BIN" devices >"$TMP/devices.txt" 2>"$TMP/devices.err" || {
  cat "$TMP/devices.err" >&2
  die "\`$BIN devices\` failed (a binary built for another system? try running it by hand)"
}
cat "$TMP/devices.txt"
grep -q '(Vulkan, ' "$TMP/devices.txt" || die "no Vulkan adapter: wgpu sees $(grep -c . "$TMP/devices.txt" || true) adapter(s), none on Vulkan. \
Is libvulkan.so.1 found (ldconfig -p | grep libvulkan; else copy it in and pass --loader DIR) and does the driver's manifest exist (pass --icd .../nvidia_icd.json)?"
if ! grep '(Vulkan, ' "$TMP/devices.txt" | grep -qv '(Vulkan, Cpu,'; then
  [ "$ALLOW_SOFTWARE" = 1 ] || die "the only Vulkan adapter is a software one ($(grep '(Vulkan, ' "$TMP/devices.txt" | head -1)): its times say nothing about a GPU. \
Check the GPU driver's Vulkan manifest (--icd FILE), or pass --allow-software to benchmark it anyway"
  echo "note: software Vulkan adapter only (--allow-software): these are not GPU numbers"
fi

# --- PyTorch: where it runs -----------------------------------------------------------------
TORCH_DEVICE=""
if [ "$TORCH" != none ]; then
  cuda="$("$PYTHON" -c 'import torch; print(int(torch.cuda.is_available()))' 2>/dev/null || echo missing)"
  case "$TORCH:$cuda" in
    *:missing) [ "$TORCH" = auto ] || die "--torch $TORCH, but $PYTHON cannot import torch"
               echo "note: $PYTHON has no torch: the PyTorch columns stay empty" ;;
    auto:1|cuda:1) TORCH_DEVICE=cuda ;;
    cuda:0) die "--torch cuda, but torch.cuda.is_available() is False here" ;;
    auto:0|cpu:*) TORCH_DEVICE=cpu
               [ "$cuda" = 1 ] && why="--torch cpu" || why="torch.cuda.is_available() is False"
               echo "note: PyTorch runs on the CPU ($why): labelled 'cpu (no CUDA)', not a GPU number" ;;
  esac
fi

# --- 2, 3. the runs -------------------------------------------------------------------------
for model in mlp conv; do
  size=(); [ -n "$TRAIN_SIZE" ] && size=(--train-size "$TRAIN_SIZE")
  echo "== $model: vae-gpu --device vulkan"
  "$PYTHON" "$ROOT/tools/torch_bench.py" --model "$model" --skip-torch --vae-gpu "$BIN" --vae-device vulkan \
    --epochs "$EPOCHS" --test-size "$TEST_SIZE" "${size[@]}" --json "$TMP/$model-vulkan.json" >"$TMP/$model-vulkan.log" 2>&1 \
    || { cat "$TMP/$model-vulkan.log" >&2; die "the vae-gpu $model run on Vulkan failed (above)"; }
  grep '^vae-gpu epoch' "$TMP/$model-vulkan.log"
  if [ -n "$TORCH_DEVICE" ]; then
    echo "== $model: PyTorch eager on $TORCH_DEVICE"
    "$PYTHON" "$ROOT/tools/torch_bench.py" --model "$model" --device "$TORCH_DEVICE" --epochs "$EPOCHS" \
      --test-size "$TEST_SIZE" "${size[@]}" --data "$ROOT/data/mnist" --json "$TMP/$model-torch.json" >"$TMP/$model-torch.log" 2>&1 \
      || { cat "$TMP/$model-torch.log" >&2; die "the PyTorch $model run on $TORCH_DEVICE failed (above)"; }
    grep '^torch' "$TMP/$model-torch.log"
  fi
done

# --- 4. one JSON, the table, the README's table ---------------------------------------------
"$PYTHON" - "$TMP" "$JSON" "$README_MD" "$BIN" "$ALLOW_SOFTWARE" "$ROOT" <<'EOF'
import json, os, platform, subprocess, sys, time
from pathlib import Path

tmp, out_json, out_md, binary = Path(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
software, root = sys.argv[5] == "1", sys.argv[6]
devices = [l for l in (tmp / "devices.txt").read_text().splitlines() if l.strip()]
try:  # the checkout's commit, when it is a git checkout and git is here
    commit = subprocess.run(["git", "-C", root, "describe", "--always", "--dirty"],
                            capture_output=True, text=True).stdout.strip() or None
except OSError:
    commit = None
version = subprocess.run([binary, "--version"], capture_output=True, text=True).stdout.strip()
gpu = None
try:
    gpu = subprocess.run(["nvidia-smi", "--query-gpu=name,driver_version", "--format=csv,noheader"],
                         capture_output=True, text=True, timeout=30).stdout.strip() or None
except (OSError, subprocess.SubprocessError):
    pass
res = {"date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "host": platform.node(),
       "cpu_count": os.cpu_count(), "nvidia_smi": gpu, "vae_gpu_binary": binary, "vae_gpu_version": version, "commit": commit,
       "adapters": devices, "software_adapter_only": software,
       "summary": "median epoch seconds excluding the first epoch", "models": {}}
for model in ("mlp", "conv"):
    vk = json.loads((tmp / f"{model}-vulkan.json").read_text())
    entry = {"config": vk["config"], "vae_gpu_vulkan": vk["vae_gpu"]}
    tp = tmp / f"{model}-torch.json"
    if tp.exists():
        t = json.loads(tp.read_text())["torch"]
        t["cuda"] = t["device"] == "cuda"
        if not t["cuda"]:
            t["note"] = "CPU fallback: torch.cuda.is_available() is False; not a GPU number"
        entry["torch"] = t
        entry["ratio_vae_gpu_over_torch"] = vk["vae_gpu"]["median_seconds"] / t["median_seconds"]
    res["models"][model] = entry
Path(out_json).write_text(json.dumps(res, indent=2) + "\n")

names = {"mlp": "default (MLP 784-500-2, Bernoulli)", "conv": "conv (Gaussian, σ²(z))"}
rows = []
for model, e in res["models"].items():
    v, t = e["vae_gpu_vulkan"], e.get("torch")
    steps = v["steps_per_epoch"]
    tcol = "—"
    if t:
        label = "CUDA" if t["cuda"] else "cpu (no CUDA)"
        tcol = f"{t['median_seconds']:.3f} ({label})"
    ratio = f"{e['ratio_vae_gpu_over_torch']:.2f}×" if "ratio_vae_gpu_over_torch" in e else "—"
    host = v.get("host_seconds_per_step")
    rows.append([names[model], f"{e['config']['train_size']:,}", f"{v['median_seconds']:.3f}",
                 f"{1e3 * v['median_seconds'] / steps:.3f}",
                 str(int(v["dispatches_per_step"])) if "dispatches_per_step" in v else "n/a",
                 str(int(v["submits"])) if "submits" in v else "n/a",
                 f"{1e3 * host:.3f}" if host is not None else "n/a",
                 tcol, ratio, f"{v['test_elbo']:.2f}" + (f" / {t['test_elbo']:.2f}" if t else "")])
head = ["model", "train images", "vae-gpu Vulkan s/epoch", "ms/step", "dispatches/step", "submits/epoch",
        "host ms/step", "PyTorch eager s/epoch", "vae-gpu / PyTorch", "test ELBO (vae-gpu / PyTorch)"]
adapter = next((d for d in devices if "(Vulkan, " in d and "(Vulkan, Cpu," not in d), devices[0] if devices else "?")
torch_dev = next((e["torch"]["device_name"] for e in res["models"].values() if "torch" in e), None)
epochs = next(iter(res["models"].values()))["config"]["epochs"]
md = [f"GPU training speed, measured {res['date'][:10]} with `tools/gpu_bench.sh` ({version}"
      + (f", commit {commit}" if commit else "") + f"): Vulkan adapter {adapter}"
      + (f"; PyTorch on {torch_dev}" if torch_dev else "") + f"; {res['cpu_count']} CPU cores. "
      f"Each number is the median epoch (training pass only) of {epochs}, the first excluded; "
      "ratio below 1: vae-gpu is faster." + (" SOFTWARE ADAPTER ONLY: not GPU numbers." if software else ""),
      "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
md += ["| " + " | ".join(r) + " |" for r in rows]
Path(out_md).write_text("\n".join(md) + "\n")
print("\n" + "\n".join(md))
print(f"\nwrote {out_json} and {out_md}")
EOF
