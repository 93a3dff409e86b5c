"""``gancomp train``: options and the summary; the work is :mod:`gancomp.training.trainer`,
imported when the command runs (TensorFlow is the ``train`` extra)."""

from __future__ import annotations

import sys

import click


def _float_list(ctx, param, value):
    if value is None:
        return None
    try:
        vals = tuple(float(v) for v in value.split(","))
    except ValueError:
        raise click.BadParameter("expected comma-separated numbers, e.g. 0.01,0.02") from None
    if not 1 <= len(vals) <= 8 or any(v <= 0 for v in vals):
        raise click.BadParameter("1 to 8 positive values")
    return vals


def default_precision(cpuinfo: str = "/proc/cpuinfo") -> str:
    """mixed_bfloat16 where the CPU has BF16 instructions (3.1x the float32 step rate of the
    flower model on AVX-512 BF16, the same rate-distortion; docs/PERFORMANCE.md), else
    float32 (TensorFlow emulates bfloat16 at a fraction of float32's speed)."""
    try:
        with open(cpuinfo) as f:
            flags = set(f.read().split())
    except OSError:
        return "float32"
    return "mixed_bfloat16" if flags & {"avx512_bf16", "amx_bf16"} else "float32"


def realism_weight(name: str, default: float, help: str):
    """A non-negative weight of the realism phase's loss, as a click option."""
    return click.option(
        name,
        type=click.FloatRange(0),
        default=default,
        show_default=True,
        help=f"Realism phase: {help}",
    )


@click.command()
@click.option(
    "--category", "-c", required=True, help="Category name (built-in or new, e.g. 'ship')."
)
@click.option(
    "--data",
    required=True,
    type=click.Path(),
    help="Training images: a folder (searched recursively for PNG, JPEG, WebP, BMP, TIFF) or a CIFAR-10 python-batches folder.",
)
@click.option(
    "--val-data",
    type=click.Path(),
    help="Validation images (same kinds as --data) for the final table and TensorBoard images.",
)
@click.option(
    "--cifar-class",
    help="Class to take from a CIFAR-10 batches folder (default: the category name).",
)
@click.option(
    "--steps",
    type=click.IntRange(1),
    help="Total training steps (default 20000; with --resume, the run's own).",
)
@click.option(
    "--rd-steps",
    type=click.IntRange(0),
    help="Rate-distortion warm-up steps before the GAN phase (default: 80% of --steps).",
)
@click.option(
    "--beta",
    type=click.FloatRange(0),
    help="Weight of the adversarial loss (default 0.01; 0 disables the GAN phase).",
)
@click.option(
    "--lambdas",
    callback=_float_list,
    help="Comma-separated lambda per quality level (distortion weight on MSE of 0-255 pixels). With --resume: re-targets the levels of the checkpoint.",
)
@click.option(
    "--batch-size",
    type=click.IntRange(1),
    help="Images per step (default 32; with --resume, the run's own).",
)
@click.option(
    "--patch-size",
    type=click.IntRange(8),
    help="Random crop size (default: 32 for CIFAR-size images, else 128; with --resume, the "
    "run's own).",
)
@click.option(
    "--lr",
    type=click.FloatRange(0, min_open=True),
    default=5e-4,
    show_default=True,
    help="Learning rate of the encoder/generator.",
)
@click.option(
    "--channels",
    type=click.IntRange(4),
    help="Hidden channels of E and G (default 96). With --init-from, a larger value widens "
    "the source model: it starts computing exactly what the source did.",
)
@click.option(
    "--residual-blocks",
    type=click.IntRange(1),
    help="Residual blocks of G at the latent resolution (default 1). With --init-from, a "
    "larger value deepens the source model: it starts computing exactly what the source did.",
)
@click.option(
    "--latent-channels",
    type=click.IntRange(4),
    help="Latent channels M (default 128). With --init-from a factorized model, a larger "
    "value widens its latent: the new channels start with fresh encoder filters, the live "
    "channels' mean gains and fresh densities, and the generator reads them through small "
    "fresh weights (with --revive-latents, the dead channels restart the same way).",
)
@click.option(
    "--revive-latents",
    is_flag=True,
    help="With --init-from a factorized model: give its dead latent channels (coding only 0 "
    "at every level) fresh encoder filters, the live channels' mean gains and fresh "
    "densities; the generator's weights that read them start at zero, so the model starts "
    "reconstructing exactly what the source did.",
)
@click.option(
    "--num-down",
    type=click.IntRange(1, 6),
    help="Stride-2 stages (default: 3 for images <= 64 px, else 4).",
)
@click.option(
    "--hyper-channels",
    type=click.IntRange(4),
    help="Channels of z and of h_a / h_s for a new hyperprior (default 128; 64 suits "
    "32x32 images, whose index path then costs half).",
)
@click.option(
    "--output",
    "-o",
    type=click.Path(),
    help="Model folder to write (default: ./trained/<category>). Checkpoints go to <output>.ckpt.",
)
@click.option("--resume", is_flag=True, help="Continue from the checkpoint of --output.")
@click.option(
    "--init-from",
    type=click.Path(),
    help="Start from an exported model folder's encoder, generator and gains (fresh optimizer).",
)
@click.option(
    "--entropy-model",
    type=click.Choice(["factorized", "hyperprior"]),
    help="Prior of the latents: factorized (one density per level and channel) or hyperprior "
    "(mean-scale, Minnen et al. 2018). Default: the --init-from model's, else factorized. "
    "With --init-from a factorized model, hyperprior keeps its encoder and generator.",
)
@click.option(
    "--freeze-transforms",
    is_flag=True,
    help="Train only the hyperprior (h_a, h_s and the z density); the encoder, generator and "
    "gains stay as --init-from loaded them. Cheap steps that give a trained factorized "
    "model's latents a conditional prior. A resumed run keeps this setting.",
)
@click.option(
    "--realism-phase",
    is_flag=True,
    help="With --init-from: add realism branches to the model's generator and train only "
    "them and the discriminator (PSNR lost against the fidelity decoder + r x "
    "(adversarial + feature matching + texture), r drawn per example in [0, 1]); encoder, entropy model, gains and generator "
    "stay frozen, so the model writes and reads the same files and decompress --realism R "
    "chooses per decode.",
)
@click.option(
    "--realism-branches",
    type=click.IntRange(1, 6),
    help="Realism branches: after the last residual block, then after each upsampling stage "
    "(default 2).",
)
@realism_weight(
    "--feature-matching",
    1.0,
    "weight of the discriminator feature matching term (the "
    "adversarial weight is --beta, default 0.5 in this phase).",
)
@realism_weight(
    "--texture",
    1.0,
    "weight of the texture term, the gap between the local energy of "
    "the high frequencies of the original and of the reconstruction, relative to the "
    "fidelity decoder's gap (detail as strong as the original's, wherever it sits).",
)
@realism_weight(
    "--whole-image",
    0.0,
    "adversarial weight of an unconditional whole-image critic trained "
    "with the patch discriminator (0: none).",
)
@click.option(
    "--realism-pixel-branch",
    is_flag=True,
    help="Realism phase: one more branch, in pixel space after the generator's RGB output "
    "(three 3x3 convolutions at full resolution), for detail the feature branches cannot "
    "reach through the frozen last layer.",
)
@click.option(
    "--realism-noise",
    type=click.IntRange(0, 16),  # gancomp.runtime.noise.MAX_NOISE_PLANES
    default=0,
    show_default=True,
    help="Realism phase, with --realism-pixel-branch: planes of noise the pixel branch "
    "reads (random in training; at decode a hash of the pixel's position, the same on "
    "every machine), so its texture can vary where the features do not.",
)
@click.option(
    "--disc-weight-by-realism",
    is_flag=True,
    help="Realism phase: weight each example's discriminator loss by 2r, so the critic "
    "learns most from the reconstructions the adversarial term acts on (default: every r "
    "alike, which spends it on blurred low-r decodes).",
)
@realism_weight(
    "--r1",
    0.0,
    "weight gamma of the R1 penalty, gamma / 2 times the squared "
    "gradient of the discriminators' logits with respect to the original image (Mescheder "
    "et al. 2018), a smooth critic that cannot overpower the generator (0: none; measured "
    "on CIFAR: 0.1 works, 1 silences the critics).",
)
@click.option(
    "--realism-ema",
    type=click.FloatRange(0, 1, max_open=True),
    help="Realism phase: export the moving average of the trained weights with this decay "
    "(e.g. 0.999: about the last 1,000 steps) instead of the last step's; adversarial "
    "training leaves the weights wandering around a point, their average is steadier "
    "(default 0: off; with --resume, the run's own unless given).",
)
@click.option(
    "--snapshot-every",
    type=click.IntRange(1),
    help="Realism phase: also write the model folder as it would be exported (with the "
    "moving average when --realism-ema is on) every N steps, to OUTPUT.snapshots/step-N, so "
    "that exports of one run can be measured and one chosen (default: none; not kept on "
    "--resume, give it again).",
)
@click.option(
    "--realism-from",
    type=click.Path(exists=True, file_okay=False),
    help="Realism phase: start the branches from this model folder's realism add-on (a warm "
    "start when the base model was trained further; same branches and pixel branch).",
)
@click.option(
    "--realism-levels",
    type=click.IntRange(1),
    help="Realism phase: train on the lowest N quality levels only (default: all).",
)
@click.option(
    "--disc-lr",
    type=click.FloatRange(0, min_open=True),
    help="Learning rate of the discriminator (default 1e-4; 4e-4 in the realism phase; "
    "with --resume, the run's own).",
)
@click.option(
    "--checkpoint-every",
    type=click.IntRange(1),
    default=500,
    show_default=True,
    help="Steps between checkpoints (one is also written on Ctrl-C).",
)
@click.option("--log-dir", type=click.Path(), help="TensorBoard log folder.")
@click.option(
    "--strategy",
    type=click.Choice(["default", "mirrored", "multi-worker"]),
    default="default",
    show_default=True,
    help="tf.distribute strategy: mirrored = all local devices; multi-worker uses TF_CONFIG.",
)
@click.option(
    "--seed", type=int, default=0, show_default=True, help="Seed of weights, crops and order."
)
@click.option(
    "--val-limit",
    type=click.IntRange(1),
    default=100,
    show_default=True,
    help="Validation images used for the final table.",
)
@click.option(
    "--context-images",
    type=click.IntRange(0),
    help="Training images (evenly spaced) the exported model's channel-context tables are "
    "fitted on, for .gcz format version 3 (about 10% fewer bits, same pixels). Default: "
    "1000 small images or 150 photos; 0: none (format version 1). Factorized models only.",
)
@click.option(
    "--precision",
    type=click.Choice(["auto", "float32", "mixed_bfloat16"]),
    help="Arithmetic of the convolutional networks: mixed_bfloat16 computes them in bfloat16 "
    "(float32 weights, rate terms and losses; for CPUs with AVX-512 BF16 or AMX). Models and "
    "checkpoints are the same either way. Default (auto): mixed_bfloat16 on CPUs with "
    "BF16 instructions, else float32; with --resume, the run's own.",
)
@click.option("--jit", is_flag=True, help="Compile the training steps with XLA (jit_compile=True).")
@click.option(
    "--onednn",
    is_flag=True,
    help="Use oneDNN's kernels in float32 too (2x on an AVX-512 CPU, slower on an AVX2-only "
    "one: measure first; float results then depend on the thread count). mixed_bfloat16 "
    "always uses them.",
)
@click.option(
    "--cache-dir",
    type=click.Path(file_okay=False),
    help="Patch cache: decode the training and validation images once into this folder "
    "(uint8, about 3 bytes per pixel) and memory-map them in later runs; rebuilt when the "
    "image files change. May be shared by runs and data folders.",
)
@click.option(
    "--intra-op-threads",
    type=click.IntRange(1),
    help="Threads of one TensorFlow operation (default: TensorFlow's, one per core).",
)
@click.option(
    "--inter-op-threads",
    type=click.IntRange(1),
    help="TensorFlow operations run at once (default: TensorFlow's, one per core).",
)
def train(output, **options) -> None:
    """Train a category model from a folder of images.

    Rate + lambda * MSE for every quality level, then an adversarial phase with
    the latent-conditioned discriminator (HiFiC style). Checkpoints are written
    every --checkpoint-every steps and on Ctrl-C; --resume continues. The result
    is a model folder that compress/decompress use with --models-dir (its parent).
    """
    from pathlib import Path

    from gancomp.training.trainer import TrainSettings
    from gancomp.training.trainer import train as run_training

    out = Path(output) if output else Path("trained") / options["category"]
    if options["precision"] == "auto" or (options["precision"] is None and not options["resume"]):
        options["precision"] = default_precision()
    settings = TrainSettings(**options, output=str(out), progress=sys.stderr.isatty())
    result = run_training(settings)
    click.echo(
        f"model written to {result['output']} (fingerprint {result['fingerprint']}, {result['steps']} steps)"
    )
    if result.get("skipped"):
        click.echo(f"skipped {len(result['skipped'])} unreadable files", err=True)
    if result.get("realism_validation"):
        click.echo("quality  realism    PSNR")
        for row in result["realism_validation"]:
            click.echo(f"{row['quality']:>7} {row['realism']:8.2f} {row['psnr']:7.2f}")
    if result.get("validation"):
        click.echo("quality    bpp    PSNR  MS-SSIM")
        for row in result["validation"]:
            click.echo(
                f"{row['quality']:>7} {row['bpp']:6.3f} {row['psnr']:7.2f} {row['ms_ssim']:8.4f}"
            )
