#!/usr/bin/env bash
# Stage 3 of the shipped models (issue 12, sessions of 2026-12-01): rate-distortion training
# only, continuing stage 2 (scripts/train_models_stage2.sh) in resumable pieces.
# Usage: scripts/train_models_stage3.sh DATA_ROOT   (run from the repository root)
# Each piece checkpoints to runs/ (ignored by git); a stopped piece (Ctrl-C / SIGTERM) goes on
# with the same command plus --resume (it keeps its own steps, batch and patch size). When
# runs/ is lost, --init-from the committed model folder is the resume point of last resort.
# The lr drops 10x for the last 10% of each piece's --steps. --precision defaults to
# mixed_bfloat16 on CPUs with BF16 instructions, float32 elsewhere (the last pieces ran on
# an AVX2-only machine: float32).
set -euo pipefail
data=${1:-../shared/data}
cifar() { # category, extra args...
  local cat=$1
  shift
  gancomp train --category "$cat" \
    --data "$data/cifar10/$cat/train" --val-data "$data/cifar10/$cat/val" --val-limit 500 \
    --patch-size 32 --checkpoint-every 500 --intra-op-threads 1 --inter-op-threads 1 "$@"
}
flower() {
  gancomp train --category flower --data "$data/flowers/train" --val-data "$data/flowers/val" \
    --val-limit 40 --checkpoint-every 250 --batch-size 8 --patch-size 128 \
    --cache-dir runs/cache --intra-op-threads 1 --inter-op-threads 1 "$@"
}

# The realism add-on recipes shipped since 2026-12-02 (docs/RESULTS.md, "Decode-time realism"):
# the flower recipe, and TTUR (a faster discriminator) for the CIFAR models.
flower_addon() { # extra args (--init-from, --steps, --output, ...)
  flower --realism-phase --realism-levels 3 --beta 2 --texture 2 --whole-image 2 \
    --realism-pixel-branch --lr 1e-3 --batch-size 8 --patch-size 64 "$@"
}
# A trained flower export shipped with the shipped add-on carried: shrunk to float16 (PREFIX1),
# context tables refitted on 150 photos (PREFIX2), add-on carried, golden files regenerated.
ship_flower_export() { # export folder, prefix of the work folders
  python scripts/shrink_model.py "$1" "${2}1"
  python scripts/add_context_tables.py "${2}1" "$data/flowers/train" --limit 150 -o "${2}2"
  python scripts/carry_realism.py models/flower "${2}2" "${2}ship/flower"
  rm -rf models/flower && cp -r "${2}ship/flower" models/flower
  python scripts/make_golden.py
}
cifar_addon() { # category, extra args...
  local cat=$1
  shift
  cifar "$cat" --batch-size 32 --realism-phase --realism-levels 3 --beta 2 --texture 2 \
    --whole-image 2 --lr 5e-4 --disc-lr 2e-3 "$@"
}

# Morning of 2026-12-01 (bfloat16): the CIFAR runs continued stage 2's checkpoints at
# batch 32, lr 2e-4, in several --resume pieces (each piece's own lr drop; the last piece's
# settings are in the model's metadata.json): airplane to 32,000 steps, automobile to
# 40,000, top lambda 0.4. The last pieces, as run:
cifar airplane --resume --output runs/v1c/airplane --steps 32000 --rd-steps 32000 \
  --batch-size 32 --lambdas 0.0008,0.0032,0.0068,0.0145,0.031,0.066,0.1407,0.4 &
cifar automobile --resume --output runs/v1c/automobile --steps 40000 --rd-steps 40000 \
  --batch-size 32 --lambdas 0.0015,0.0032,0.0068,0.0145,0.031,0.066,0.1407,0.4 &
wait
# The flower model continued from models/flower (factorized v1) for 14,000 steps.
flower --init-from models/flower --output runs/v1f/flower --steps 14000 --rd-steps 14000 \
  --lr 5e-4

# Afternoon of 2026-12-01 (float32, one core each): airplane 15,000 more steps from the
# shipped model; flower 6,000 more with the level span widened at both ends (run as pieces
# resumed with --resume --steps 6000; the same schedule).
cifar airplane --init-from models/airplane --output runs/v1c/airplane2 \
  --steps 15000 --rd-steps 15000 --lr 2e-4 &
flower --init-from models/flower --output runs/v1f/flower3 --steps 6000 --rd-steps 6000 \
  --lr 5e-4 --lambdas 0.001,0.0021,0.0046,0.01,0.0225,0.05,0.115,0.3 &
wait

# 2026-12-01, evening (float32, one core each): flower 7,000 more steps, resuming flower3's
# checkpoint with a new total (lr back to 5e-4, dropping at step 11,700); automobile 15,000
# more from the shipped model.
flower --resume --output runs/v1f/flower3 --steps 13000 &
cifar automobile --init-from models/automobile --output runs/v1c/automobile2 \
  --steps 15000 --rd-steps 15000 --lr 2e-4 &
wait
# Then the realism add-ons of the new automobile and flower models (decoder side only).
cifar automobile --init-from models/automobile --realism-phase --realism-levels 3 --beta 2 \
  --texture 4 --lr 1e-3 --steps 4500 --output runs/realism/automobile_v2 &
flower --init-from models/flower --realism-phase --realism-levels 3 --beta 2 --texture 4 \
  --lr 1e-3 --steps 3000 --batch-size 8 --patch-size 64 --output runs/realism/flower_v1 &
wait

# 2026-12-01, late and night (float32, one core each): both CIFAR models widened to 128
# channels (Net2Net zero-output widening: each starts as the model it widens). The airplane
# ran 14,000 steps, then --resume --steps 20000 --rd-steps 20000 (lr back to 3e-4, drop at
# 18,000); the automobile 12,000 steps in one piece.
cifar airplane --init-from models/airplane --channels 128 --batch-size 32 \
  --steps 14000 --rd-steps 14000 --lr 3e-4 --output runs/v1w/airplane128 &
cifar automobile --init-from models/automobile --channels 128 --batch-size 32 \
  --steps 12000 --rd-steps 12000 --lr 3e-4 --output runs/v1w/automobile128 &
wait
cifar airplane --resume --output runs/v1w/airplane128 --steps 20000 --rd-steps 20000
# Their realism add-ons (texture term in Y/Cb/Cr since a762ee5).
cifar airplane --init-from runs/v1w/airplane128 --realism-phase --realism-levels 3 --beta 2 \
  --texture 4 --lr 1e-3 --steps 3000 --output runs/realism/airplane128_v2 &
cifar automobile --init-from runs/v1w/automobile128 --realism-phase --realism-levels 3 \
  --beta 2 --texture 4 --lr 1e-3 --steps 3000 --output runs/realism/automobile128_v1 &
wait

# 2026-12-01, late night (float32, one core each): the automobile model 6,000 more steps
# (lr back to 3e-4, drop at 16,200) and the flower model 6,000 more (resumed from its
# 13,000-step checkpoint with its Adam state; first as --steps 20000, stopped at 13,714
# and continued as --steps 19000 so that the lr drop, at 17,100, fitted the session).
cifar automobile --resume --output runs/v1w/automobile128 --steps 18000 --rd-steps 18000 &
flower --resume --output runs/v1f/flower3 --steps 19000 &
wait
# Their realism add-ons.
cifar automobile --init-from runs/v1w/automobile128 --realism-phase --realism-levels 3 \
  --beta 2 --texture 4 --lr 1e-3 --steps 3000 --output runs/realism/automobile128_v2 &
flower --init-from runs/v1f/flower3 --realism-phase --realism-levels 3 --beta 2 --texture 4 \
  --lr 1e-3 --steps 3000 --batch-size 8 --patch-size 64 --output runs/realism/flower_v2 &
wait

# 2026-12-02, night (float32, one core): the automobile model 6,000 more steps again, for the
# own-class margin (lr back to 3e-4, drop at 21,600), and its realism add-on with the
# whole-image critic (texture weight halved).
cifar automobile --resume --output runs/v1w/automobile128 --steps 24000 --rd-steps 24000
cifar automobile --init-from runs/v1w/automobile128 --realism-phase --realism-levels 3 \
  --beta 2 --texture 2 --whole-image 2 --lr 1e-3 --steps 2500 \
  --output runs/realism/automobile128_v3
# The airplane add-on with the same recipe (shipped).
cifar airplane --init-from models/airplane --realism-phase --realism-levels 3 --beta 2 \
  --texture 2 --whole-image 2 --lr 1e-3 --steps 2500 --output runs/realism/airplane128_v3

# 2026-12-02, morning (float32, one core each): the airplane model 6,000 more steps (lr
# back to 3e-4, drop at 23,400), then its add-on with the pixel-space branch; beside it,
# the flower model to 25,000 steps (resumed at 20,101), then a flower add-on with the
# pixel branch and the whole-image critic on the shipped flower model.
(
  cifar airplane --resume --output runs/v1w/airplane128 --steps 26000 --rd-steps 26000
  cifar airplane --init-from runs/v1w/airplane128 --realism-phase --realism-levels 3 --beta 2 \
    --texture 2 --whole-image 2 --realism-pixel-branch --lr 1e-3 --steps 2500 \
    --output runs/realism/airplane26k_px
) &
(
  flower --resume --output runs/v1f/flower3 --steps 25000
  flower --init-from models/flower --realism-phase --realism-levels 3 --beta 2 --texture 2 \
    --whole-image 2 --realism-pixel-branch --lr 1e-3 --steps 3000 --batch-size 8 \
    --patch-size 64 --output runs/realism/flower_px
) &
wait

# 2026-12-02, late morning (float32, one core each; runs/ of the session before was lost,
# so every piece starts from the committed models): the flower pixel-branch add-on again on
# the shipped flower model (shipped); the airplane model 12,000 more steps from the shipped
# one (fresh Adam, lr 3e-4, drop at 10,800).
flower_addon --init-from models/flower --steps 3000 --output runs/realism/flower_px &
cifar airplane --init-from models/airplane --batch-size 32 --steps 12000 --rd-steps 12000 \
  --lr 3e-4 --output runs/v1w/airplane_s &
wait
# Then (not shipped: the automobile margin fell to 4.6-4.7%): two add-ons for the new
# airplane model, from zero and warm-started from the shipped add-on, and 6,000 automobile
# steps meant to restore the margin.
cifar airplane --init-from runs/v1w/airplane_s --realism-phase --realism-levels 3 --beta 2 \
  --texture 2 --whole-image 2 --lr 1e-3 --steps 2500 --output runs/realism/airplane_s_v3 &
cifar airplane --init-from runs/v1w/airplane_s --realism-from models/airplane \
  --realism-phase --realism-levels 3 --beta 2 --texture 2 --whole-image 2 --lr 5e-4 \
  --steps 1000 --output runs/realism/airplane_s_warm
cifar automobile --init-from models/automobile --batch-size 32 --steps 6000 \
  --rd-steps 6000 --lr 3e-4 --output runs/v1w/automobile_s
wait

# 2026-12-02, afternoon (bfloat16, one core each; runs/ lost again, so from the committed
# models): the flower model 12,000 more steps from the shipped one (shipped as 1afaf5ca)
# and an add-on warm-started from the shipped add-on (not shipped: too little detail; the
# shipped one is below); the airplane model with
# its dead latent channels revived (not shipped: no better than without); an airplane
# add-on with doubled adversarial weights (not shipped: r = 1 overshoots).
flower --init-from models/flower --lr 5e-4 --steps 12000 --rd-steps 12000 \
  --output runs/v1f/flower5 &
cifar airplane --init-from models/airplane --revive-latents --batch-size 32 --steps 12000 \
  --rd-steps 12000 --lr 3e-4 --output runs/v1w/airplane_rev &
wait
flower --init-from runs/v1f/flower5 --realism-from models/flower --realism-phase \
  --realism-levels 3 --beta 2 --texture 2 --whole-image 2 --realism-pixel-branch --lr 5e-4 \
  --steps 1000 --batch-size 8 --patch-size 64 --output runs/realism/flower5_warm &
cifar airplane --init-from models/airplane --realism-from models/airplane --realism-phase \
  --realism-levels 3 --beta 4 --texture 2 --whole-image 4 --lr 5e-4 --steps 1500 \
  --output runs/realism/air_b4w4 &
wait
# The flower add-on that shipped with 1afaf5ca: the shipped recipe from zero (the warm start
# above kept too little detail).
flower_addon --init-from models/flower --steps 3000 --output runs/realism/flower5_zero

# 2026-12-02, evening (bfloat16, one core each; runs/ survived): the flower piece resumed to
# 24,000 steps (shipped as 8301f442) and the airplane piece to 24,000 (83edd086, waits for
# the automobile margin); realism add-ons with a faster discriminator (TTUR) and with the
# discriminator weighted by 2r; the flower add-on shipped with 8301f442 (shipped recipe),
# calibrated afterwards with scripts/calibrate_realism.py; an automobile piece (stopped at
# 3,584: resume it with --resume).
flower --resume --output runs/v1f/flower5 --steps 24000 --rd-steps 24000 &
cifar airplane --resume --output runs/v1w/airplane_b --steps 24000 --rd-steps 24000 &
wait
cifar_addon airplane --init-from runs/v1w/airplane_b --steps 4000 \
  --output runs/realism/air83_ttur &
cifar_addon airplane --init-from runs/v1w/airplane_b --disc-weight-by-realism --steps 4000 \
  --output runs/realism/air83_ttur_w &
flower_addon --init-from runs/v1f/flower5 --steps 3000 --output runs/realism/f8301_zero &
wait
cifar automobile --init-from models/automobile --batch-size 32 --lr 3e-4 --steps 24000 --rd-steps 24000 \
  --output runs/v1w/automobile_c

# 2026-12-02 night: the automobile piece resumed to 24,000 steps (e4ef5078) restored the
# own-class margin with airplane 83edd086, so both ship; the flower model 12,000 steps
# further (a1e9549f, shipped). Add-ons: TTUR for the CIFAR models, the flower recipe for the
# flower model; an airplane add-on with the R1 penalty (measured worse). Each shipped
# add-on was then calibrated with scripts/calibrate_realism.py (see docs/RESULTS.md).
cifar automobile --resume --output runs/v1w/automobile_c --steps 24000 --rd-steps 24000 &
flower --init-from models/flower --lr 5e-4 --steps 12000 --rd-steps 12000 --output runs/v1f/flower6 &
wait
cifar_addon automobile --init-from runs/v1w/automobile_c --steps 4000 \
  --output runs/realism/auto24_ttur &
cifar_addon airplane --init-from runs/v1w/airplane_b --r1 1 --steps 4000 \
  --output runs/realism/air83_r1 &
flower_addon --init-from runs/v1f/flower6 --steps 3000 --output runs/realism/fa1e_zero &
wait

# 2026-12-03 (bfloat16, one core each): the flower model 12,000 steps further from a1e9549f
# (stopped at 9,786 by the end of a session, resumed with --resume; shipped), an airplane
# piece of 24,000 steps from 83edd086 (measured: -28.5% against WebP, not shipped), the
# flower add-on for the new flower model (the recipe shipped before; replaced), and add-ons
# with R1 0.1 and a longer phase, all three shipped (the airplane one is the 4,000-step
# trial of 2026-12-02 night, runs/realism/air83_r01, trained 2.5x longer).
flower --init-from models/flower --lr 5e-4 --steps 12000 --rd-steps 12000 --output runs/v1f/flower7 &
cifar airplane --init-from models/airplane --batch-size 32 --lr 3e-4 --steps 24000 --rd-steps 24000 \
  --output runs/v1w/airplane_d &
wait
cifar_addon airplane --init-from models/airplane --r1 0.1 --steps 10000 \
  --output runs/realism/air83_r01_10k &
flower_addon --init-from runs/v1f/flower7 --steps 3000 --output runs/realism/f7_zero &
wait
cifar_addon automobile --init-from models/automobile --r1 0.1 --steps 10000 \
  --output runs/realism/auto_r01_10k &
flower_addon --init-from runs/v1f/flower7 --r1 0.1 --steps 7000 --output runs/realism/f7_long &
wait
# Each add-on was then calibrated with scripts/calibrate_realism.py (docs/RESULTS.md).

# 2026-12-03 (bfloat16, one core each): the generators deepened to three residual blocks
# (--residual-blocks 3: the new blocks start as the identity). Airplane: 24,000 steps from
# 83edd086 at lr 3e-4 (stopped at 11,295 by the end of a session, resumed with --resume;
# 80729f64, WebP -29.1%, not shipped: decoding is about 20% slower); its R1 add-on was
# stopped at 6,859 when the model was not shipped. Flower: 12,000 steps from 744ddf3e (not
# shipped). Then a plain flower piece, and the shipped automobile add-on 10,000 steps further.
cifar airplane --init-from models/airplane --residual-blocks 3 --batch-size 32 --lr 3e-4 \
  --steps 24000 --rd-steps 24000 --output runs/v1w/airplane_deep &
flower --init-from models/flower --residual-blocks 3 --lr 5e-4 --steps 12000 --rd-steps 12000 \
  --output runs/v1f/flower_deep &
wait
cifar_addon airplane --init-from runs/v1w/airplane_deep --r1 0.1 --steps 10000 \
  --output runs/realism/airdeep_r01_10k &
flower --init-from models/flower --lr 5e-4 --steps 12000 --rd-steps 12000 --output runs/v1f/flower8 &
wait
cifar automobile --resume --output runs/realism/auto_r01_10k --steps 20000

# 2026-12-03 afternoon (bfloat16, one core each): the flower add-on for the new flower model
# runs/v1f/flower8 (31fe1e2a; shipped with it, calibrated with scales 1), a hyperprior on
# its frozen transforms (not ahead: +35% bits at level 1, -2 to -3% at levels 5-8), and the
# next plain flower piece (runs/v1f/flower9, stopped at 2,825 for the hyperprior run and
# resumed with --resume).
flower_addon --init-from runs/v1f/flower8 --r1 0.1 --steps 7000 --output runs/realism/f8_r01 &
flower --init-from runs/v1f/flower8 --entropy-model hyperprior --freeze-transforms \
  --patch-size 256 --steps 8000 --rd-steps 8000 --lr 3e-4 --output runs/v2f/flower8_hpf &
wait
flower --init-from runs/v1f/flower8 --lr 5e-4 --steps 12000 --rd-steps 12000 --output runs/v1f/flower9

# 2026-12-03 evening (bfloat16, one core each; runs/ had been lost, so both start from the
# shipped flower model 31fe1e2a): the next plain flower piece, and the flower model widened
# to 112 hidden channels (Net2Net zero-output widening, as the CIFAR models were widened).
flower --init-from models/flower --lr 5e-4 --steps 12000 --rd-steps 12000 --output runs/v1f/flower9 &
flower --init-from models/flower --channels 112 --lr 5e-4 --steps 12000 --rd-steps 12000 \
  --output runs/v1w/flower112 &
wait
# The widened model (e31ae422) shipped as 0205ba67: its kernels stored as float16
# (scripts/shrink_model.py runs/v1w/flower112 runs/v1w/flower112s), its add-on trained on
# that folder and calibrated (level scales 1); then the widened run's next piece.
flower_addon --init-from runs/v1w/flower112s --r1 0.1 --steps 7000 --output runs/realism/f112_r01 &
flower --resume --output runs/v1w/flower112 --steps 24000 &
wait
# The widened run's next piece (108f2039) shipped as deaf4094 (kernels float16:
# scripts/shrink_model.py runs/v1w/flower112 runs/v1w/flower112b_s) with its own add-on;
# beside it, the widened model widened again to 128 channels (runs/v1w/flower128, 4d374303,
# not shipped) and that run's next piece.
flower --init-from runs/v1w/flower112 --channels 128 --lr 5e-4 --steps 12000 --rd-steps 12000 \
  --output runs/v1w/flower128 &
flower_addon --init-from runs/v1w/flower112b_s --r1 0.1 --steps 7000 --output runs/realism/f112b_r01
# (--realism-from: models/flower as of 5819e42, the add-on of 0205ba67)
flower_addon --init-from runs/v1w/flower112b_s --realism-from models/flower --r1 0.1 --steps 3000 \
  --output runs/realism/f112b_warm
wait
flower --resume --output runs/v1w/flower128 --steps 24000

# 2026-12-03 late night (bfloat16, one core each): the 128-channel run's third piece
# (bb2c311f, shipped as 63bb3ae8: scripts/shrink_model.py runs/v1w/flower128
# runs/v1w/flower128d_s) with its own add-on; beside it the latent of the second piece's
# export (95dde44e, copied to runs/v1w/flower128_24k) widened from 128 to 256 channels
# (9b93e37a, not shipped: the new channels died), and the 112-channel control piece resumed
# (stopped at 12,647 for the widened run).
flower --resume --output runs/v1w/flower112c --steps 24000 &
flower --resume --output runs/v1w/flower128 --steps 36000 &
wait
flower --init-from runs/v1w/flower128_24k --latent-channels 256 --lr 5e-4 --steps 12000 \
  --rd-steps 12000 --output runs/v1w/flower128m256 &
flower_addon --init-from runs/v1w/flower128d_s --r1 0.1 --steps 7000 --output runs/realism/f128d_r01
wait
# Each flower add-on below was swept on the first 100 flowers/train photos, calibrated, and
# copied with its model into models/flower (ADDON: its output folder; EVAL: a folder whose
# flower/ is ADDON):
#   python scripts/realism.py ../shared/data/flowers/train --limit 100 --category flower \
#     --models-dir EVAL --levels 1,2 --realism 0,0.6,0.8,1 --codecs webp --json sweep.json
#   python scripts/calibrate_realism.py sweep.json ADDON --force

# 2026-12-04 (bfloat16, one core each): the 128-channel run's fourth piece, and
# the same start at patch 256 for the same pixels (6,000 steps of 4x the pixels).
cp -r runs/v1w/flower128 runs/v1w/flower128_36k
flower --resume --output runs/v1w/flower128 --steps 48000 &
flower --init-from runs/v1w/flower128_36k --patch-size 256 --steps 6000 --rd-steps 6000 \
  --output runs/v1w/flower128p256 &
wait
# Then a longer add-on for 63bb3ae8 (shipped 2026-12-04 in place of the one above).
flower_addon --init-from runs/v1w/flower128d_s --r1 0.1 --steps 14000 --output runs/realism/f128d_r01_14k

# 2026-12-04 evening, on the AVX2-only kind (float32, both cores, TensorFlow's default
# threads, 0.14-0.16 steps/s): the patch-256 piece from the committed 63bb3ae8 (runs/ was
# lost), stopped and resumed with a shorter --steps so its lr drop lands before the session
# ends; kept as a resume point (resume/flower, not shipped). Continue it with
#   gancomp train -c flower ... --patch-size 256 --init-from resume/flower --steps 6000 \
#     --rd-steps 6000 --output runs/v1w/flower128p256b
gancomp train --category flower --data "$data/flowers/train" --val-data "$data/flowers/val" \
  --val-limit 40 --checkpoint-every 250 --batch-size 8 --patch-size 256 --cache-dir runs/cache \
  --init-from models/flower --steps 6000 --rd-steps 6000 --output runs/v1w/flower128p256
# stopped at step 483 (SIGTERM: checkpoint), then to the end with the lr drop at 756:
gancomp train --category flower --data "$data/flowers/train" --val-data "$data/flowers/val" \
  --val-limit 40 --checkpoint-every 250 --cache-dir runs/cache --resume --steps 840 \
  --rd-steps 840 --output runs/v1w/flower128p256
python scripts/shrink_model.py runs/v1w/flower128p256 runs/v1w/flower128p256_s --force  # 3fb63946
mkdir -p resume/flower && cp runs/v1w/flower128p256_s/*.json runs/v1w/flower128p256_s/*.npz resume/flower/

# 2026-12-04 night, the AVX2-only kind again (float32, one core, 0.46 steps/s): a realism
# add-on for resume/flower, warm-started from the shipped add-on (a 14,000-step phase from
# zero would take 8.5 hours here); its files are committed to resume/flower.
flower_addon --init-from resume/flower --realism-from models/flower --lr 5e-4 --r1 0.1 \
  --steps 2000 --output runs/realism/f3fb_warm
cp runs/realism/f3fb_warm/realism.* runs/realism/f3fb_warm/metadata.json resume/flower/

# 2026-12-04 late night: 3fb63946 ships with the add-on of 63bb3ae8 carried over unchanged
# (its branches measured as well on 3fb63946 as on 63bb3ae8; docs/RESULTS.md).
python scripts/carry_realism.py models/flower resume/flower runs/carried/flower
rm -rf models/flower && cp -r runs/carried/flower models/flower
python scripts/make_golden.py
# The patch-256 run continues from its checkpoint (step 840, Adam state kept), both cores:
gancomp train --category flower --data "$data/flowers/train" --val-data "$data/flowers/val" \
  --val-limit 40 --checkpoint-every 250 --cache-dir runs/cache --resume --steps 6000 \
  --rd-steps 6000 --output runs/v1w/flower128p256

# 2026-12-05: channel-context coding (.gcz version 3). The shipped flower model gets context
# tables fitted on 150 evenly spaced training photos (same weights: c7dfce76) and ships; the
# CIFAR models with context tables (feee469c, 5d0f50b2) were measured and not shipped
# (docs/RESULTS.md, "Does the matching model win?").
python scripts/add_context_tables.py models/flower "$data/flowers/train" --limit 150 -o runs/ctx/flower
rm -rf models/flower && cp -r runs/ctx/flower models/flower
python scripts/make_golden.py
python scripts/add_context_tables.py models/airplane "$data/cifar10/airplane/train" --limit 1000 \
  -o runs/ctx/airplane
python scripts/add_context_tables.py models/automobile "$data/cifar10/automobile/train" --limit 1000 \
  -o runs/ctx/automobile
# The patch-256 run from the shipped weights again (its checkpoint was lost with the machine),
# both cores, bfloat16 on the AVX-512 kind (about 2 steps/s alone); stopped at step 2,855
# and resumed with --steps 3600 (lr drop at 3,240) to finish within the session:
gancomp train --category flower --data "$data/flowers/train" --val-data "$data/flowers/val" \
  --val-limit 40 --checkpoint-every 250 --cache-dir runs/cache --batch-size 8 --patch-size 256 \
  --init-from runs/ctx/flower --steps 6000 --rd-steps 6000 --precision mixed_bfloat16 \
  --output runs/v1w/flower128p256b
# An automobile piece to widen its own-class margin for the context-coded pair:
cifar automobile --init-from models/automobile --batch-size 32 --lr 3e-4 --steps 24000 \
  --rd-steps 24000 --precision mixed_bfloat16 --output runs/v1w/automobile_d
python scripts/add_context_tables.py runs/v1w/automobile_d "$data/cifar10/automobile/train" --limit 1000 \
  -o runs/ctx/automobile_d  # b217c6c7
# Its realism add-on: a 3,000-step phase warm-started from the shipped one (which did not
# carry over), calibrated on 500 training images; then the CIFAR pair ships.
cifar automobile --init-from runs/ctx/automobile_d --realism-from models/automobile --realism-phase \
  --realism-levels 3 --beta 2 --texture 2 --whole-image 2 --lr 5e-4 --disc-lr 2e-3 --r1 0.1 \
  --batch-size 32 --steps 3000 --precision mixed_bfloat16 --output runs/realism/auto_b217
mkdir -p runs/ship && cp -r runs/realism/auto_b217 runs/ship/automobile  # a folder named as its category
python scripts/realism.py "$data/cifar10/automobile/train" --limit 500 --category automobile \
  --models-dir runs/ship --levels 1,2,3 --realism 0,0.3,0.4,0.5,0.6,0.7,0.8,1 --codecs webp \
  --json runs/ctx/sweep_auto.json --force
python scripts/calibrate_realism.py runs/ctx/sweep_auto.json runs/ship/automobile --force
rm -rf models/airplane models/automobile
cp -r runs/ctx/airplane models/airplane && cp -r runs/ship/automobile models/automobile
python scripts/make_golden.py
# A flower realism add-on phase for issue 14 (texture 4), warm-started from the shipped add-on;
# 20,000 steps at the end of the session of 2026-12-05; uncalibrated on 200 val photos r = 1
# accuracy 0.776 / 0.795 at levels 1 / 2 (shipped add-on 0.798 / 0.798); not shipped yet:
flower --init-from models/flower --realism-from models/flower --realism-phase --realism-levels 3 \
  --beta 2 --texture 4 --whole-image 2 --realism-pixel-branch --lr 1e-3 --disc-lr 4e-4 --r1 0.1 \
  --steps 20000 --patch-size 64 --intra-op-threads 2 --output runs/realism/fc7d_tex4
# 2026-12-05 (second session): the flower ladder widened downwards (level 1 lambda 0.001 ->
# 0.0005, the levels between spread geometrically; the top stays 0.3), from the shipped
# weights at patch 256, both cores, bfloat16; stopped at step 2,246 and resumed with
# --steps 6000 (lr drop at 5,400) to finish within the session. `gancomp train` now fits the
# context tables itself at export (150 photos).
gancomp train --category flower --data "$data/flowers/train" --val-data "$data/flowers/val" \
  --val-limit 40 --checkpoint-every 250 --cache-dir runs/cache --batch-size 8 --patch-size 256 \
  --init-from models/flower --lambdas 0.0005,0.00125,0.0031,0.0078,0.0194,0.0483,0.12,0.3 \
  --lr 5e-4 --steps 6000 --rd-steps 6000 --precision mixed_bfloat16 --output runs/v1w/flower_wide
# 2026-12-05 (second session, continued in the third): the ladder widened downwards once more
# (level 1 lambda 0.0005 -> 0.0003, the levels between spread geometrically; top 0.3), resuming
# the run above's checkpoint (step 6,000) with the new lambdas; planned for 12,000 steps,
# stopped at 6,166 and resumed with --steps 9000 (lr drop at 8,100). Export 31477b19, shrunk to
# float16 and refitted (68de2177), shipped 2026-12-05 with the add-on carried:
gancomp train --category flower --data "$data/flowers/train" --val-data "$data/flowers/val" \
  --val-limit 40 --checkpoint-every 250 --cache-dir runs/cache --resume \
  --lambdas 0.0003,0.000805,0.00216,0.0058,0.01556,0.04175,0.112,0.3 --steps 12000 \
  --rd-steps 12000 --output runs/v1w/flower_wide
gancomp train --category flower --data "$data/flowers/train" --val-data "$data/flowers/val" \
  --val-limit 40 --checkpoint-every 250 --cache-dir runs/cache --resume --steps 9000 \
  --rd-steps 9000 --output runs/v1w/flower_wide
python scripts/shrink_model.py runs/v1w/flower_wide runs/wide/t1
python scripts/add_context_tables.py runs/wide/t1 "$data/flowers/train" --limit 150 --workers 2 \
  -o runs/wide/t2
python scripts/carry_realism.py models/flower runs/wide/t2 runs/wide/ship2/flower
rm -rf models/flower && cp -r runs/wide/ship2/flower models/flower
python scripts/make_golden.py
# 2026-12-05 (third session): 4,000 more steps on the same ladder, resuming that checkpoint
# (planned for 16,000, stopped at 10,771 and resumed with --steps 13000: lr drop at 11,700).
# Export 29f29e2b, shrunk and refitted (9e5c7ffd), shipped with the add-on carried:
gancomp train --category flower --data "$data/flowers/train" --val-data "$data/flowers/val" \
  --val-limit 40 --checkpoint-every 250 --cache-dir runs/cache --resume --steps 13000 \
  --rd-steps 13000 --output runs/v1w/flower_wide
cp -r runs/v1w/flower_wide runs/v1w/flower_wide_13k
ship_flower_export runs/v1w/flower_wide_13k runs/wide/u
# The same export with the ladder stretched upwards (top lambda 0.3 -> 1.0), to see whether the
# top level can rise towards 38 dB (planned 6,000 steps, stopped at 1,281 and resumed with
# --steps 5000): 8e262569, level 8 at 35.19 dB on val-40; not shipped (docs/RESULTS.md).
gancomp train --category flower --data "$data/flowers/train" --val-data "$data/flowers/val" \
  --val-limit 40 --checkpoint-every 250 --cache-dir runs/cache --batch-size 8 --patch-size 256 \
  --init-from runs/v1w/flower_wide_13k \
  --lambdas 0.0003,0.000956,0.003045,0.0097,0.0309,0.0985,0.3138,1.0 --lr 5e-4 --steps 6000 \
  --rd-steps 6000 --precision mixed_bfloat16 --output runs/v1w/flower_top
# 2026-12-05 (fourth session): the same run on to 20,000 steps (resumed at 14,292; lr drop at
# 18,000). Export a3ba3082, shrunk and refitted (f1bfbed1), shipped with the add-on carried:
gancomp train --category flower --data "$data/flowers/train" --val-data "$data/flowers/val" \
  --val-limit 40 --checkpoint-every 250 --cache-dir runs/cache --resume --steps 20000 \
  --rd-steps 20000 --output runs/v1w/flower_wide
ship_flower_export runs/v1w/flower_wide runs/s4/t
# Issue 14, the same session: a flower add-on from zero for f1bfbed1 (texture 4, the recipe of
# fc7d_tex4), 12,000 steps then resumed to 20,000 (lr back to 1e-3, drop at 18,000), one core:
gancomp train --category flower --data "$data/flowers/train" --val-data "$data/flowers/val" \
  --val-limit 40 --checkpoint-every 250 --cache-dir runs/cache --init-from runs/s4/t1 \
  --realism-phase --realism-levels 3 --beta 2 --texture 4 --whole-image 2 --realism-pixel-branch \
  --lr 1e-3 --disc-lr 4e-4 --r1 0.1 --batch-size 8 --patch-size 64 --steps 12000 \
  --precision mixed_bfloat16 --intra-op-threads 1 --inter-op-threads 1 --output runs/realism/s4_tex4
gancomp train --category flower --data "$data/flowers/train" --val-data "$data/flowers/val" \
  --val-limit 40 --checkpoint-every 250 --cache-dir runs/cache --resume --steps 20000 \
  --intra-op-threads 1 --inter-op-threads 1 --output runs/realism/s4_tex4
# Beside it, the automobile add-on from zero on b217c6c7 (not shipped: 0.717 / 0.697 on val
# against the shipped 0.727 / 0.668):
cifar_addon automobile --init-from models/automobile --r1 0.1 --steps 10000 \
  --precision mixed_bfloat16 --output runs/realism/auto_s4
# The 20,000-step flower add-on ships with f1bfbed1 (its files unchanged, the add-on replaced):
python scripts/carry_realism.py runs/realism/s4_tex4 runs/s4/t2 runs/s4/ship_tex4_20k/flower
rm -rf models/flower && cp -r runs/s4/ship_tex4_20k/flower models/flower

# 2026-12-05, fifth session. Issue 12: f1bfbed1's run resumed from step 23,974 to 27,000
# (lr 5e-4, drop at 24,300; both cores), export 978009c0 -> shipped as 0996ba11 with the
# shipped add-on carried (WebP -25.2%, JPEG -52.9%, AVIF -3.7% on all 500 val photos):
gancomp train --category flower --data "$data/flowers/train" --val-data "$data/flowers/val" \
  --val-limit 40 --checkpoint-every 250 --cache-dir runs/cache --resume --steps 27000 \
  --rd-steps 27000 --output runs/v1w/flower_wide
ship_flower_export runs/v1w/flower_wide runs/s5/t
# Issue 14: the automobile add-on's own run (3,000 steps, runs/realism/auto_b217) resumed with
# its discriminators to 9,000 steps, swept on 500 train images and calibrated, shipped:
cp -r runs/realism/auto_b217 runs/realism/auto_b217x
cp -r runs/realism/auto_b217.ckpt runs/realism/auto_b217x.ckpt
gancomp train -c automobile --data "$data/cifar10/automobile/train" \
  --val-data "$data/cifar10/automobile/val" --resume --steps 9000 \
  --output runs/realism/auto_b217x --intra-op-threads 1 --inter-op-threads 1
python scripts/realism.py "$data/cifar10/automobile/train" --limit 500 --category automobile \
  --models-dir DIR_HOLDING_auto_b217x --levels 1,2,3 --realism 0,0.5,0.7,0.85,1 --codecs webp \
  --json sweep.json
python scripts/calibrate_realism.py sweep.json DIR_HOLDING_auto_b217x/automobile --force
cp DIR_HOLDING_auto_b217x/automobile/{realism.json,realism.npz,metadata.json} models/automobile/
# Issue 14: a flower add-on with noise for the pixel branch, from zero on f1bfbed1, carried to
# 0996ba11 and shipped (val, 200 photos, r = 1: 0.729 / 0.827 at levels 1 / 2):
gancomp train --category flower --data "$data/flowers/train" --val-data "$data/flowers/val" \
  --val-limit 40 --checkpoint-every 250 --cache-dir runs/cache --init-from models/flower \
  --realism-phase --realism-levels 3 --beta 2 --texture 4 --whole-image 2 --realism-pixel-branch \
  --realism-noise 4 --lr 1e-3 --disc-lr 4e-4 --r1 0.1 --batch-size 8 --patch-size 64 \
  --steps 20000 --precision mixed_bfloat16 --intra-op-threads 1 --inter-op-threads 1 \
  --output runs/realism/noise4
python scripts/carry_realism.py runs/realism/noise4 runs/s5/t2 runs/s5/noiseship/flower
rm -rf models/flower && cp -r runs/s5/noiseship/flower models/flower
# 2026-12-05, sixth session. Issue 14 (none shipped; docs/RESULTS.md): flower noise add-ons
# from zero on 0996ba11 (4 planes as shipped; 8 planes with --beta 3), both one core:
for variant in "4 2 fl0996_n4" "8 3 fl0996_n8b3"; do
  set -- $variant
  gancomp train --category flower --data "$data/flowers/train" --val-data "$data/flowers/val" \
    --val-limit 40 --checkpoint-every 250 --cache-dir runs/cache --init-from models/flower \
    --realism-phase --realism-levels 3 --beta "$2" --realism-noise "$1" --texture 4 \
    --whole-image 2 --realism-pixel-branch --lr 1e-3 --disc-lr 4e-4 --r1 0.1 --batch-size 8 \
    --patch-size 64 --steps 20000 --precision mixed_bfloat16 --intra-op-threads 1 \
    --inter-op-threads 1 --output "runs/realism/$3" &
done
wait
# The shipped add-on's own run resumed with its discriminators (stopped at 22,494, exported
# with --steps 22494), carried to 0996ba11:
cp -r runs/realism/noise4 runs/realism/noise4x && cp -r runs/realism/noise4.ckpt runs/realism/noise4x.ckpt
gancomp train --category flower --data "$data/flowers/train" --val-data "$data/flowers/val" \
  --val-limit 40 --checkpoint-every 250 --cache-dir runs/cache --resume --steps 30000 \
  --intra-op-threads 1 --inter-op-threads 1 --output runs/realism/noise4x
python scripts/carry_realism.py runs/realism/noise4x models/flower runs/s5/n4x/flower
# CIFAR add-ons with stronger adversarial weights (cifar_addon sets --beta 2 --whole-image 2;
# these later flags win):
for cat in airplane automobile; do
  cifar_addon "$cat" --init-from "models/$cat" --beta 3 --whole-image 3 --r1 0.1 --steps 10000 \
    --precision mixed_bfloat16 --disc-lr 2e-3 --output "runs/realism/${cat}_b3w3" &
done
wait
# The two flower runs resumed with the new moving average of the branch weights:
gancomp train --category flower --data "$data/flowers/train" --val-data "$data/flowers/val" \
  --val-limit 40 --checkpoint-every 250 --cache-dir runs/cache --resume --steps 30000 \
  --realism-ema 0.999 --intra-op-threads 1 --inter-op-threads 1 --output runs/realism/noise4x &
gancomp train --category flower --data "$data/flowers/train" --val-data "$data/flowers/val" \
  --val-limit 40 --checkpoint-every 250 --cache-dir runs/cache --resume --steps 28000 \
  --realism-ema 0.999 --intra-op-threads 1 --inter-op-threads 1 --output runs/realism/fl0996_n8b3 &
wait
# Shipped: the averaged add-on of runs/realism/noise4x (30,000 steps), carried to 0996ba11.
python scripts/carry_realism.py runs/realism/noise4x models/flower runs/s6/n4x_ema/flower
cp runs/s6/n4x_ema/flower/{realism.json,realism.npz,metadata.json} models/flower/
python scripts/realism_grid.py --category flower --levels 1,2 --out docs/results --force
# 2026-12-05, seventh session. Shipped: the automobile add-on's run at 9,000 steps resumed to
# 17,000 with the moving average, swept on 500 train images and calibrated:
cp -r runs/realism/auto_b217x9k runs/realism/auto_b217x9e
cp -r runs/realism/auto_b217x9k.ckpt runs/realism/auto_b217x9e.ckpt
cifar automobile --resume --steps 17000 --realism-ema 0.999 --output runs/realism/auto_b217x9e
python scripts/realism.py "$data/cifar10/automobile/train" --limit 500 --category automobile \
  --models-dir runs/realism/auto_9e17_eval --levels 1,2,3 --realism 0,0.5,0.7,0.85,1 \
  --codecs webp --json runs/realism/auto_9e17_sweep.json --force  # the export copied in first
python scripts/calibrate_realism.py runs/realism/auto_9e17_sweep.json \
  runs/realism/auto_9e17_eval/automobile --force
cp runs/realism/auto_9e17_eval/automobile/{realism.json,realism.npz,metadata.json} models/automobile/
python scripts/realism_grid.py --category automobile --levels 1,2 --out docs/results --force
# Shipped the same session: the airplane warm-started continuation (runs/realism/air_cont,
# fifth session) resumed to 14,000 steps with the moving average, swept, calibrated and
# copied in the same way (runs/realism/air_cont14e_eval):
cp -r runs/realism/air_cont runs/realism/air_cont_e
cp -r runs/realism/air_cont.ckpt runs/realism/air_cont_e.ckpt
cifar airplane --resume --steps 14000 --realism-ema 0.999 --output runs/realism/air_cont_e
python scripts/realism_grid.py --category airplane --levels 1,2 --out docs/results --force
# The same run on with snapshots (--snapshot-every, new); each snapshot swept and calibrated
# on 500 train images; the 22,000 one ships (better at levels 1 and 2 on train):
cp -r runs/realism/air_cont_e runs/realism/air_cont_f
cp -r runs/realism/air_cont_e.ckpt runs/realism/air_cont_f.ckpt
cifar airplane --resume --steps 22000 --snapshot-every 2000 --output runs/realism/air_cont_f
python scripts/realism.py "$data/cifar10/airplane/train" --limit 500 --category airplane \
  --models-dir runs/realism/air_cont_f_step-22000_eval --levels 1,2,3 \
  --realism 0,0.5,0.7,0.85,1 --codecs webp --json runs/realism/air_cont_f_step-22000_sweep.json \
  --force  # runs/realism/air_cont_f.snapshots/step-22000 copied in first
python scripts/calibrate_realism.py runs/realism/air_cont_f_step-22000_sweep.json \
  runs/realism/air_cont_f_step-22000_eval/airplane --force
cp runs/realism/air_cont_f_step-22000_eval/airplane/{realism.json,realism.npz,metadata.json} \
  models/airplane/
python scripts/realism_grid.py --category airplane --levels 1,2 --out docs/results --force
# (automobile, not shipped: cifar automobile --resume --steps 23000 --snapshot-every 2000
#  --output runs/realism/auto_9g, from a copy of runs/realism/auto_b217x9e at 17,000)
# Not shipped: uniform averages of each run's exports (scripts/average_add_ons.py), e.g.
python scripts/average_add_ons.py runs/s7/soup_air/airplane runs/realism/air_cont_e \
  runs/realism/air_cont_f.snapshots/step-{16000,18000,20000,22000}
