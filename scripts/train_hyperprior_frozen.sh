#!/usr/bin/env bash
# Stage 1 of a v2 model (issues 11 and 12): a trained factorized model's encoder, generator and
# gains stay frozen (--freeze-transforms) while h_a, h_s and the z density learn on top.
# Cheap steps (no backward pass through E or G), large patches so z sees more than its
# border (patch 256: z is 4x4 on photos).
#   scripts/train_hyperprior_frozen.sh CATEGORY [DATA_ROOT] [OUT_ROOT]
# Resumes from OUT_ROOT/<category>_hpf.ckpt when it is there.
set -euo pipefail
cat=$1
data=${2:-../shared/data}
out=${3:-runs/v2f}
case $cat in
  flower) train=$data/flowers/train val=$data/flowers/val
    size=(--batch-size 8 --patch-size 256 --steps 12000 --lr 3e-4) ;;
  airplane|automobile) train=$data/cifar10/$cat/train val=$data/cifar10/$cat/val
    size=(--batch-size 32 --patch-size 32 --steps 20000 --lr 3e-4 --hyper-channels 64) ;;
  *) echo "unknown category $cat" >&2; exit 2 ;;
esac
common=(--category "$cat" --data "$train" --val-data "$val" --val-limit 100
  --checkpoint-every 500 --rd-steps 0 --output "$out/${cat}_hpf")
if [ -f "$out/${cat}_hpf.ckpt/checkpoint.npz" ]; then
  exec gancomp train "${common[@]}" "${size[@]}" --resume
fi
exec gancomp train "${common[@]}" "${size[@]}" --init-from "${INIT_FROM:-models/$cat}" \
  --entropy-model hyperprior --freeze-transforms
