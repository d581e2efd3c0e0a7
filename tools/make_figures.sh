#!/usr/bin/env bash
# Regenerates every figure the documentation embeds (docs/figures/*.png) from named runs, so the
# figures and the code cannot disagree. Each stage trains its runs into $RUNS/<name> (a finished
# run is reused; FRESH=1 retrains it) and copies the figures it draws into docs/figures/.
#
#   tools/make_figures.sh                 # every stage, in order (about 35 minutes on 2 CPU cores, fresh)
#   tools/make_figures.sh default notes   # only these stages
#
# Stages: default (CSC412: the Appendix C model), early-stop, julia (the Julia/Flux solution's
# settings), tue (2AMU20 Homework 3: conv, Gaussian, the likelihood sweep), stats271 (HW6), notes
# (the lecture notes: circle, PCA, PPCA), gaps (the approximation and amortization gaps), vem
# (variational EM against amortized inference; needs `cargo build --release --example
# vem_figure`). Environment: VAE_GPU (the binary, default
# target/release/vae-gpu; build it first with `cargo build --release --bins --examples`), DEVICE (default cpu: the
# reference path, the same numbers on every machine), RUNS (default runs/figures).
# Each stage's printed output (ELBOs, tables) is kept in $RUNS/<stage>.log.
set -euo pipefail
cd "$(dirname "$0")/.."

BIN=${VAE_GPU:-target/release/vae-gpu}
DEVICE=${DEVICE:-cpu}
RUNS=${RUNS:-runs/figures}
FIG=docs/figures
export NODEVICE_SELECT=${NODEVICE_SELECT:-1}

[ -x "$BIN" ] || { echo "error: $BIN not found; run cargo build --release first" >&2; exit 1; }
mkdir -p "$RUNS" "$FIG"

# train NAME FLAGS…: one run into $RUNS/NAME, unless it already finished (the .done marker).
train() {
  local name=$1; shift
  local dir=$RUNS/$name
  if [ -f "$dir/.done" ] && [ "${FRESH:-0}" != 1 ]; then
    echo "== reusing $dir"
    return
  fi
  echo "== vae-gpu train $* --out $dir"
  "$BIN" train --device "$DEVICE" "$@" --out "$dir" --force
  touch "$dir/.done"
}

# fig SRC NAME: copy one drawn figure into docs/figures under the name the docs embed.
fig() {
  [ -f "$1" ] || { echo "error: $1 was not drawn" >&2; exit 1; }
  cp "$1" "$FIG/$2"
  echo "   $FIG/$2"
}

ck() { echo "$RUNS/$1/checkpoint.safetensors"; }

stage_default() {
  # CSC412 Assignment 3: the Appendix C model, 10 epochs on all 60,000 training images.
  train default --epochs 10
  local f=$RUNS/default/figs
  "$BIN" grid-posterior --checkpoint "$(ck default)" --device "$DEVICE" --images 10 --out "$f"
  "$BIN" samples --checkpoint "$(ck default)" --device "$DEVICE" --out "$f"
  "$BIN" reconstructions --checkpoint "$(ck default)" --device "$DEVICE" --out "$f"
  "$BIN" latent-scatter --checkpoint "$(ck default)" --device "$DEVICE" --out "$f"
  "$BIN" lattice --checkpoint "$(ck default)" --device "$DEVICE" --size 20 --out "$f"
  "$BIN" interpolate --checkpoint "$(ck default)" --device "$DEVICE" --out "$f"
  "$BIN" svi --checkpoint "$(ck default)" --device "$DEVICE" --images 5 --observe top --out "$f"
  "$BIN" estimators --checkpoint "$(ck default)" --device "$DEVICE" --image 0 --out "$f"
  fig "$f/posterior.png" posterior.png
  fig "$f/posterior_top_half.png" posterior_top_half.png
  fig "$f/prior_samples.png" prior_samples.png
  fig "$f/reconstructions.png" reconstructions.png
  fig "$f/latent_scatter.png" latent_scatter.png
  fig "$f/lattice.png" lattice.png
  fig "$f/interpolation.png" interpolation.png
  fig "$f/svi_top.png" svi_top.png
  fig "$f/svi_posterior_top.png" svi_posterior_top.png
  fig "$f/estimators_encoder.png" estimators_encoder.png
  # The assignment's own split and length: 10,000 training images, 200 epochs.
  train a3 --train-size 10000 --epochs 200
  "$BIN" curves --metrics "$RUNS/a3/metrics.jsonl" --out "$RUNS/a3/figs"
  fig "$RUNS/a3/figs/training_curves.png" training_curves.png
}

stage_early_stop() {
  # 50,000 / 10,000 split, the full training ELBO every epoch, stop after 10 epochs without a
  # better validation ELBO (about 55 epochs).
  train early-stop --train-size 50000 --val-size 10000 --epochs 500 --early-stop 10 --eval-train
  "$BIN" curves --metrics "$RUNS/early-stop/metrics.jsonl" --out "$RUNS/early-stop/figs"
  fig "$RUNS/early-stop/figs/training_curves.png" early_stop_curves.png
}

stage_julia() {
  # The Julia/Flux solution's settings: 100 epochs on 1,000 and on 10,000 training images; its
  # printed number is the ELBO of the first test batch (100 images), so both are evaluated there
  # and on the whole test set.
  train julia-1000 --train-size 1000 --epochs 100
  train julia-10000 --train-size 10000 --epochs 100
  for n in 1000 10000; do
    echo "== julia-$n: first test batch (100 images)"
    "$BIN" eval --checkpoint "$(ck julia-$n)" --device "$DEVICE" --test-size 100
  done
  local f=$RUNS/julia-10000/figs
  "$BIN" samples --checkpoint "$(ck julia-10000)" --device "$DEVICE" --out "$f"
  "$BIN" latent-scatter --checkpoint "$(ck julia-10000)" --device "$DEVICE" --out "$f"
  "$BIN" interpolate --checkpoint "$(ck julia-10000)" --device "$DEVICE" --out "$f"
  "$BIN" svi --checkpoint "$(ck julia-10000)" --device "$DEVICE" --images 5 --observe top --out "$f"
  fig "$f/prior_samples.png" julia_prior_samples.png
  fig "$f/latent_scatter.png" julia_latent_scatter.png
  fig "$f/interpolation.png" julia_interpolation.png
  fig "$f/svi_top.png" julia_svi_top.png
  fig "$f/svi_posterior_top.png" julia_svi_posterior_top.png
}

stage_tue() {
  # Task 1: the convolutional VAE with a Gaussian p(x|z) of learned σ²(z), 50,000 / 10,000,
  # the ELBO over all 50,000 training images every epoch (2 epochs: about 50 s each on 2 cores).
  train tue-conv --arch conv --likelihood gaussian --variance decoder \
    --train-size 50000 --val-size 10000 --epochs 2 --eval-train
  local f=$RUNS/tue-conv/figs
  "$BIN" curves --metrics "$RUNS/tue-conv/metrics.jsonl" --out "$f"
  "$BIN" reconstructions --checkpoint "$(ck tue-conv)" --device "$DEVICE" --out "$f"
  "$BIN" samples --checkpoint "$(ck tue-conv)" --device "$DEVICE" --out "$f"
  fig "$f/training_curves.png" tue_conv_curves.png
  fig "$f/reconstruction_grid.png" tue_conv_reconstruction_grid.png
  fig "$f/sample_grid.png" tue_conv_samples.png
  # Tasks 3 and 4 on the MLP with the same likelihood (2-D latent), and K = 10 for Task 3b.
  train tue-gauss --likelihood gaussian --variance decoder --train-size 50000 --val-size 10000
  train tue-gauss-k10 --likelihood gaussian --variance decoder --latent-dim 10 \
    --train-size 50000 --val-size 10000
  f=$RUNS/tue-gauss/figs
  "$BIN" latent-scatter --checkpoint "$(ck tue-gauss)" --device "$DEVICE" --n 1000 --out "$f"
  "$BIN" latent-scatter --checkpoint "$(ck tue-gauss-k10)" --device "$DEVICE" --n 1000 --out "$f/k10"
  "$BIN" interpolate --checkpoint "$(ck tue-gauss)" --device "$DEVICE" --sampled --out "$f"
  "$BIN" svi --checkpoint "$(ck tue-gauss)" --device "$DEVICE" --images 5 --observe all \
    --window 400 --max-steps 8000 --out "$f"
  "$BIN" svi --checkpoint "$(ck tue-gauss)" --device "$DEVICE" --images 5 --observe left \
    --window 400 --max-steps 8000 --out "$f"
  fig "$f/latent_scatter.png" tue_latent_scatter.png
  fig "$f/k10/latent_scatter.png" tue_latent_scatter_k10.png
  fig "$f/interpolation_sampled.png" tue_interpolation.png
  fig "$f/svi_all.png" tue_svi_all.png
  fig "$f/svi_left.png" tue_svi_left.png
  fig "$f/svi_posterior_left.png" tue_svi_posterior_left.png
  # Task 2: which likelihood models MNIST best, one sweep and one comparison (every point has
  # bits/dim, so the curves are drawn on that one scale).
  "$BIN" sweep --out "$RUNS/task2e" --jobs 2 \
    --config gaussian="--likelihood gaussian --variance decoder --pixels dequantize" \
    --config beta="--likelihood beta --pixels dequantize" \
    --config categorical-4="--likelihood categorical --bins 4" \
    --config categorical-16="--likelihood categorical --bins 16" \
    --config continuous-bernoulli="--likelihood continuous-bernoulli --pixels dequantize" \
    --config discretized-logistic="--likelihood discretized-logistic" \
    --grid seed=0,1,2 -- --epochs 5 --train-size 10000 --device "$DEVICE"
  "$BIN" compare "$RUNS/task2e" --device "$DEVICE"
  fig "$RUNS/task2e/compare_curves.png" task2e_curves.png
  fig "$RUNS/task2e/compare_samples.png" task2e_samples.png
  fig "$RUNS/task2e/compare_reconstructions.png" task2e_reconstructions.png
}

stage_stats271() {
  # HW6: 512 ReLU, N(0, 0.01) init, Gaussian with sigmoid means and a learned diagonal Σ.
  train stats271 --likelihood gaussian --mean sigmoid --variance learned \
    --hidden 512 --activation relu --init normal:0.01
  # Problem 4a: a Laplace prior (and posterior), reparameterized.
  train stats271-laplace --likelihood gaussian --mean sigmoid --variance learned \
    --hidden 512 --activation relu --init normal:0.01 --prior laplace --posterior laplace
  local f=$RUNS/stats271/figs
  "$BIN" samples --checkpoint "$(ck stats271)" --device "$DEVICE" --out "$f"
  "$BIN" latent-scatter --checkpoint "$(ck stats271)" --device "$DEVICE" --out "$f"
  "$BIN" lattice --checkpoint "$(ck stats271)" --device "$DEVICE" --size 20 --out "$f"
  "$BIN" samples --checkpoint "$(ck stats271-laplace)" --device "$DEVICE" --out "$f/laplace"
  fig "$f/sample_grid.png" stats271_samples.png
  fig "$f/latent_scatter.png" stats271_latent_scatter.png
  fig "$f/lattice.png" stats271_lattice.png
  fig "$f/laplace/sample_grid.png" stats271_laplace_samples.png
}

stage_notes() {
  # The circle: z ~ N(0, 1), x = (cos z, sin z) + 0.1·noise, a 1-D latent, 500 epochs.
  train circle --dataset circle --latent-dim 1 --hidden 20,20 --activation relu \
    --likelihood gaussian --variance fixed:0.1 --kl analytic --lr 3e-4 --batch-size 1000 \
    --epochs 500
  local f=$RUNS/circle/report
  "$BIN" report --checkpoint "$(ck circle)" --device "$DEVICE" --out "$f"
  fig "$f/data.png" circle_data.png
  fig "$f/decoder_curve.png" circle_decoder_curve.png
  fig "$f/posterior.png" circle_posterior.png
  fig "$f/encoder_map.png" circle_encoder_map.png
  fig "$f/latent_scatter.png" circle_latent_scatter.png
  # PCA and probabilistic PCA of grayscale MNIST, and PPCA of the circle.
  f=$RUNS/linear
  "$BIN" pca --components 10 --out "$f/pca"
  "$BIN" ppca --components 2 --out "$f/ppca"
  "$BIN" ppca --dataset circle --components 1 --out "$f/ppca-circle"
  fig "$f/pca/pca_scatter.png" pca_scatter.png
  fig "$f/pca/pca_reconstructions.png" pca_reconstructions.png
  fig "$f/ppca/ppca_samples.png" ppca_samples.png
  fig "$f/ppca-circle/ppca_samples.png" ppca_circle_samples.png
}

# resume NAME FROM EPOCHS: continue run FROM for EPOCHS more epochs into $RUNS/NAME (FROM stays
# as it was: resuming into another --out copies the run's history).
resume() {
  local name=$1 from=$2 epochs=$3
  local dir=$RUNS/$name
  if [ -f "$dir/.done" ] && [ "${FRESH:-0}" != 1 ]; then
    echo "== reusing $dir"
    return
  fi
  rm -rf "$dir"
  echo "== vae-gpu train --resume $(ck "$from") --epochs $epochs --out $dir"
  "$BIN" train --device "$DEVICE" --resume "$(ck "$from")" --epochs "$epochs" --out "$dir"
  touch "$dir/.done"
}

stage_gaps() {
  # The approximation and amortization gaps of the default model (Dz = 2, grid) and a Dz = 20
  # model (IWAE, K = 5000) after 10 and 100 epochs, on 100 test images each (about 45 s a run).
  train default --epochs 10
  resume default-e100 default 90
  train dz20 --epochs 10 --latent-dim 20
  resume dz20-e100 dz20 90
  local run
  for run in default default-e100 dz20 dz20-e100; do
    "$BIN" gaps --checkpoint "$(ck "$run")" --device "$DEVICE" --images 100 --out "$RUNS/$run/gaps"
  done
  fig "$RUNS/default/gaps/gaps.png" gaps_dz2_e10.png
  fig "$RUNS/default-e100/gaps/gaps.png" gaps_dz2_e100.png
  fig "$RUNS/dz20/gaps/gaps.png" gaps_dz20_e10.png
  fig "$RUNS/dz20-e100/gaps/gaps.png" gaps_dz20_e100.png
  "$BIN" eval --checkpoint "$(ck default)" --device "$DEVICE" --refine 50 --images 100 \
    --out "$RUNS/default/refine"
}

stage_vem() {
  # Amortized inference against variational EM on 10,000 training images: test log p(x) by the
  # grid after 1, 2, 5, 10 and 20 epochs (tools/vem_experiment.sh), drawn by tools/vem_figure.rs.
  local d=$RUNS/vem-experiment ex=target/release/examples/vem_figure
  [ -x "$ex" ] || { echo "error: $ex not found; run cargo build --release --example vem_figure" >&2; exit 1; }
  local p
  for p in amortized vem vem-s20 vem-lr5e-3; do
    VAE_GPU="$BIN" tools/vem_experiment.sh "$p" "$d"
  done
  RUNS="amortized vem vem-s20 vem-lr5e-3" VAE_GPU="$BIN" tools/vem_experiment.sh grid "$d"
  "$ex" "$d" "$d/figs"
  fig "$d/figs/logpx_vs_epochs.png" vem_logpx_vs_epochs.png
  fig "$d/figs/logpx_vs_seconds.png" vem_logpx_vs_seconds.png
}

stages=("$@")
[ ${#stages[@]} -gt 0 ] || stages=(default early-stop julia tue stats271 notes gaps vem)
for s in "${stages[@]}"; do
  declare -F "stage_${s//-/_}" >/dev/null ||
    { echo "error: unknown stage $s (default early-stop julia tue stats271 notes gaps vem)" >&2; exit 1; }
done
for s in "${stages[@]}"; do
  fn=stage_${s//-/_}
  echo "=== stage $s"
  start=$SECONDS
  "$fn" 2>&1 | tee "$RUNS/$s.log"
  echo "=== stage $s: $((SECONDS - start)) s"
done
