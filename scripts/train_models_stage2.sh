#!/usr/bin/env bash
# Stage 2 of the shipped models: continue the stage-1 runs of scripts/train_models.sh with
# re-targeted lambdas (level 1 near 24 dB on CIFAR, 26 dB on flowers) and more steps.
# Usage: scripts/train_models_stage2.sh DATA_ROOT OUT_ROOT (OUT_ROOT holds the stage-1 *.ckpt)
# --lambdas with --resume keeps the weights and re-targets each level (the gains adapt).
# Each command is a resume: stopping one (Ctrl-C / SIGTERM) and re-running it continues.
set -euo pipefail
data=${1:-../shared/data}
out=${2:-runs/final}
cifar_lambdas=0.0015,0.0032,0.0068,0.0145,0.031,0.066,0.1407,0.3
cifar_lambdas_2=0.001,0.0032,0.0068,0.0145,0.031,0.066,0.1407,0.3
flower_lambdas=0.0015,0.003,0.0061,0.0122,0.0246,0.0496,0.0998,0.2

# CIFAR: steps 12,000 -> 19,000 rate-distortion at the new lambdas, 19,000 -> 20,000 GAN
# (beta 0.01), then level 1 lowered once more for 1,000 GAN steps (21,000 in all).
# Each CIFAR run is pinned to one core (taskset) so the flower run keeps the other.
for cat in airplane automobile; do
  taskset -c 1 gancomp train --category "$cat" \
    --data "$data/cifar10/$cat/train" --val-data "$data/cifar10/$cat/val" \
    --steps 20000 --rd-steps 19000 --lambdas "$cifar_lambdas" --val-limit 200 \
    --batch-size 16 --patch-size 32 --checkpoint-every 500 \
    --output "$out/$cat" --log-dir "$out/$cat.tb" --resume
done
# The beta = 0 ablation branches the airplane run at step 19,000 (end of rate-distortion):
#   cp -r "$out/airplane.ckpt" "$out/airplane_beta0.ckpt"   # while it holds step 19,000
#   gancomp train --category airplane ... --steps 20000 --beta 0 --resume --output "$out/airplane_beta0"
# and then follows every later step of the shipped run with --beta 0.
