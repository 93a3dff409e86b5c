#!/usr/bin/env bash
# Long training of the flower hyperprior model (issues 11 and 12), in resumable pieces.
#   scripts/train_flower_v2.sh [DATA_ROOT] [OUT_ROOT]
# First piece: the shipped v1 flower model's encoder, generator and gains start the run
# (--init-from, --entropy-model hyperprior); h_a, h_s and the z density start fresh.
# Later pieces resume from OUT_ROOT/flower_hp.ckpt when it is still there; otherwise
# start again with --init-from from the last exported (committed) hyperprior model.
# Rate-distortion only (--rd-steps = --steps): the GAN phase comes with issue 14.
set -euo pipefail
data=${1:-../shared/data}
out=${2:-runs/v2}
flower=0.0015,0.003,0.0061,0.0122,0.0246,0.0496,0.0998,0.2
common=(--category flower --data "$data/flowers/train" --val-data "$data/flowers/val"
  --val-limit 40 --checkpoint-every 250 --batch-size 8 --patch-size 128
  --steps 200000 --rd-steps 200000 --output "$out/flower_hp" --log-dir "$out/flower_hp.tb")
if [ -f "$out/flower_hp.ckpt/checkpoint.npz" ]; then
  exec gancomp train "${common[@]}" --resume
fi
exec gancomp train "${common[@]}" --lambdas "$flower" --init-from "${INIT_FROM:-models/flower}" \
  --entropy-model hyperprior
