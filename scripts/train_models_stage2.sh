#!/usr/bin/env bash
# Stage 2 of the shipped models: continue the stage-1 runs of scripts/train_models.sh with
# re-targeted lambdas (level 1 near 24 dB on CIFAR, 26 dB on flowers) and more steps.
# Usage: scripts/train_models_stage2.sh DATA_ROOT OUT_ROOT   (OUT_ROOT holds the stage-1 runs)
# --lambdas with --resume keeps the weights and re-targets each level (the gains adapt).
# Every command is a resume, so stopping one (Ctrl-C / SIGTERM) and re-running it continues.
# These are the commands that produced models/ (session of 2026-11-30); the CIFAR runs were
# pinned to one core (taskset -c 1) so that the flower run kept the other.
set -euo pipefail
data=${1:-../shared/data}
out=${2:-runs/final}
cifar_a=0.0015,0.0032,0.0068,0.0145,0.031,0.066,0.1407,0.3
cifar_b=0.001,0.0032,0.0068,0.0145,0.031,0.066,0.1407,0.3 # level 1 lowered once more
flower=0.0015,0.003,0.0061,0.0122,0.0246,0.0496,0.0998,0.2
cifar() { # category, extra args...
  local cat=$1
  shift
  taskset -c 1 gancomp train --category "$cat" \
    --data "$data/cifar10/$cat/train" --val-data "$data/cifar10/$cat/val" --val-limit 200 \
    --patch-size 32 --checkpoint-every 500 --resume "$@"
}

# Flower (both cores): from step 1,977 at the new lambdas; stopped with SIGTERM at step
# 7,297 (the session's time budget), then finished with the learning-rate drop
# (at 90% of --steps) and 197 GAN steps.
flower_run() {
  gancomp train --category flower --data "$data/flowers/train" --val-data "$data/flowers/val" \
    --val-limit 40 --checkpoint-every 250 --batch-size 8 --patch-size 128 \
    --output "$out/flower" --log-dir "$out/flower.tb" --resume "$@"
}
flower_run --steps 16000 --rd-steps 15500 --lambdas "$flower" & # stopped at 7,297
# ... after `kill -TERM` at step 7,297:
#   flower_run --steps 7997 --rd-steps 7800

# Airplane: 12,000 -> 19,000 rate-distortion, 19,000 -> 20,000 GAN (beta 0.01), then
# 1,000 more GAN steps with level 1 lowered. (That last resume ran at the default batch
# of 32: before this session's fix, --resume did not keep a run's batch size.)
cifar airplane --output "$out/airplane" --log-dir "$out/airplane.tb" \
  --steps 20000 --rd-steps 19000 --lambdas "$cifar_a" --batch-size 16
cifar airplane --output "$out/airplane" --log-dir "$out/airplane.tb" \
  --steps 21000 --lambdas "$cifar_b" --batch-size 32

# Automobile: 12,000 -> 15,200 rate-distortion, 15,200 -> 16,000 GAN.
cifar automobile --output "$out/automobile" --log-dir "$out/automobile.tb" \
  --steps 16000 --rd-steps 15200 --lambdas "$cifar_a" --batch-size 16

# The beta = 0 ablation: the airplane checkpoint as it stood at step 19,000 (end of the
# rate-distortion phase, copied while the run was in its GAN phase), then the same steps
# as the shipped run with beta = 0. Its first 1,000 steps ran at batch 32, the shipped
# run's at 16 (the same --resume slip).
#   cp -r "$out/airplane.ckpt" "$out/airplane_beta0.ckpt"   # holding step 19,000
cifar airplane --output "$out/airplane_beta0" --log-dir "$out/airplane_beta0.tb" \
  --steps 20000 --beta 0 --batch-size 32
cifar airplane --output "$out/airplane_beta0" --log-dir "$out/airplane_beta0.tb" \
  --steps 21000 --lambdas "$cifar_b" --beta 0 --batch-size 32
wait
