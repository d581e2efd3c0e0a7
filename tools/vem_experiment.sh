#!/usr/bin/env bash
# Amortized inference against variational EM (docs/variational-em.md): the default model (Dz = 2)
# on 10,000 training images, checkpoints after 1, 2, 5, 10 and 20 epochs, each scored by test
# log p(x) on a latent grid (grid-posterior). Usage: tools/vem_experiment.sh PHASE [DIR]
#   PHASE: amortized | vem | vem-s20 | vem-lr5e-3 | vem-decay | grid  (each well under 10 minutes on 2 cores)
#   grid scores the runs named in $RUNS (default: amortized vem; the docs also score vem-s20 vem-lr5e-3).
set -euo pipefail
phase=$1
dir=${2:-runs/vem-experiment}
bin=${VAE_GPU:-target/release/vae-gpu}
common=(--device cpu --train-size 10000 --test-size 1000 --quiet)
marks=(1 2 5 10 20)
train_to_marks() { # name, extra flags...
  local name=$1; shift
  local out=$dir/$name done=0
  for m in "${marks[@]}"; do
    if [ -f "$out/epoch$m.safetensors" ]; then done=$m; continue; fi
    if [ "$done" -eq 0 ]; then
      "$bin" train "${common[@]}" "$@" --epochs "$m" --out "$out" --force
    else
      "$bin" train "${common[@]}" --resume "$out/checkpoint.safetensors" --epochs $((m - done)) --out "$out"
    fi
    cp "$out/checkpoint.safetensors" "$out/epoch$m.safetensors"
    done=$m
  done
}
case $phase in
  amortized) train_to_marks amortized ;;
  vem) train_to_marks vem --inference vem --e-lr 0.001 ;;
  vem-s20) train_to_marks vem-s20 --inference vem --e-steps 20 --e-lr 0.001 ;;
  vem-lr5e-3) train_to_marks vem-lr5e-3 --inference vem --e-lr 0.005 ;;
  vem-decay) train_to_marks vem-decay --inference vem --e-lr 0.05 --step-decay 0.5 ;;  # diverges in epoch 1
  grid)
    for name in ${RUNS:-amortized vem}; do
      for m in "${marks[@]}"; do
        g=$dir/$name/grid$m
        [ -f "$g/done" ] && continue
        "$bin" grid-posterior --checkpoint "$dir/$name/epoch$m.safetensors" --device cpu \
          --images 100 --plot-images 1 --out "$g" > "$g.txt"
        touch "$g/done"
      done
    done ;;
  *) echo "unknown phase $phase" >&2; exit 2 ;;
esac
