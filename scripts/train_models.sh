#!/usr/bin/env bash
# Reproduce the shipped models (models/airplane, models/automobile, models/flower).
# Usage: scripts/train_models.sh DATA_ROOT OUT_ROOT   (DATA_ROOT holds cifar10/ and flowers/)
# Two stages: stage 1 (below) trains from scratch; stage 2 (scripts/train_models_stage2.sh)
# continues each run with re-targeted lambdas and is what models/ ships.
# The three runs share the machine; each writes OUT_ROOT/<category> (+ .ckpt, .log, .tb).
# Interrupted runs continue with the same command plus --resume.
set -euo pipefail
data=${1:-../shared/data}
out=${2:-runs/final}
mkdir -p "$out"
cifar_lambdas=0.004,0.0088,0.0193,0.0424,0.093,0.205,0.45,1.0
flower_lambdas=0.003,0.0055,0.0101,0.0186,0.0342,0.0629,0.1156,0.2126

for cat in airplane automobile; do
  nohup gancomp train --category "$cat" \
    --data "$data/cifar10/$cat/train" --val-data "$data/cifar10/$cat/val" \
    --steps 12000 --rd-steps 10000 --beta 0.01 --lambdas "$cifar_lambdas" \
    --batch-size 16 --patch-size 32 --lr 7e-4 --num-down 2 --channels 96 --latent-channels 64 \
    --checkpoint-every 500 --val-limit 200 \
    --output "$out/$cat" --log-dir "$out/$cat.tb" > "$out/$cat.log" 2>&1 &
done
nohup gancomp train --category flower \
  --data "$data/flowers/train" --val-data "$data/flowers/val" \
  --steps 4000 --rd-steps 3400 --beta 0.01 --lambdas "$flower_lambdas" \
  --batch-size 8 --patch-size 128 --lr 7e-4 --num-down 4 --channels 96 --latent-channels 128 \
  --checkpoint-every 250 --val-limit 40 \
  --output "$out/flower" --log-dir "$out/flower.tb" > "$out/flower.log" 2>&1 &
wait

# What was actually run for the shipped flower model (to fit one 3-hour session beside
# the CIFAR runs): the run above was stopped at step 1561 (SIGTERM, checkpoint), resumed
# with --steps 2700 --rd-steps 2400, stopped again at step 1739, resumed with
#   gancomp train --category flower --data "$data/flowers/train" --val-data "$data/flowers/val" \
#     --steps 2100 --rd-steps 1900 --val-limit 40 --checkpoint-every 250 \
#     --output "$out/flower" --log-dir "$out/flower.tb" --resume
# (learning-rate drop at step 1890), stopped at step 1977 (77 GAN steps) and exported
# with the same command and --steps 1977. A longer run is the first thing to try for
# a better flower model.
# The beta = 0 ablation branches the airplane run at the end of its warm-up (step 10000):
#   cp -r "$out/airplane.ckpt" ablation/airplane_beta0.ckpt   # taken at step 10000
#   gancomp train --category airplane --data "$data/cifar10/airplane/train" \
#     --val-data "$data/cifar10/airplane/val" --steps 12000 --beta 0 --val-limit 200 \
#     --resume --output ablation/airplane_beta0 --log-dir ablation/airplane_beta0.tb
