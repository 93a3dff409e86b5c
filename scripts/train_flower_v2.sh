#!/usr/bin/env bash
# Long training of the flower hyperprior model (issues 11 and 12), in resumable pieces.
#   scripts/train_flower_v2.sh [DATA_ROOT] [OUT_ROOT] [STEPS]
# Stage 1 (scripts/train_hyperprior_frozen.sh flower): the shipped v1 flower model's encoder,
# generator and gains stay frozen while h_a, h_s and the z density learn (12,000 steps).
# Stage 2 (this script): everything trains jointly from the stage-1 export, in bfloat16
# (3.1x the float32 step rate here, docs/PERFORMANCE.md), patch 256 so that z sees 4x4
# positions, a low learning rate (the transforms are already trained; the rate dropped 10x
# for the last 10% of --steps). Rate-distortion only (--rd-steps = --steps).
# Later pieces resume from OUT_ROOT/flower_j.ckpt when it is still there (a larger STEPS
# moves the learning-rate drop); otherwise start again with INIT_FROM=<last exported model>.
set -euo pipefail
data=${1:-../shared/data}
out=${2:-runs/v2f}
steps=${3:-8000}
common=(--category flower --data "$data/flowers/train" --val-data "$data/flowers/val"
  --val-limit 40 --checkpoint-every 250 --steps "$steps" --rd-steps "$steps"
  --cache-dir runs/cache --output "$out/flower_j")
if [ -f "$out/flower_j.ckpt/checkpoint.npz" ]; then
  exec gancomp train "${common[@]}" --resume
fi
exec gancomp train "${common[@]}" --init-from "${INIT_FROM:-$out/flower_hpf}" \
  --batch-size 8 --patch-size 256 --lr 1e-4 --precision mixed_bfloat16
