"""``gancomp compare`` and ``gancomp bench``: how close a decoded image is, and how a model
does against classical codecs; the work is :mod:`gancomp.evaluation`."""

from __future__ import annotations

import json
import math
import sys

import click

from gancomp.commands.options import MODELS_DIR_OPTION


def _fmt_number(value: float, digits: int) -> str:
    if math.isinf(value):
        return "inf"
    return f"{value:.{digits}f}"


def _json_number(value: float) -> float | None:
    return None if math.isinf(value) or math.isnan(value) else value


@click.command()
@click.argument("image_a", metavar="A", type=click.Path(dir_okay=True))
@click.argument("image_b", metavar="B", type=click.Path(dir_okay=True))
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of a table.")
def compare(image_a: str, image_b: str, as_json: bool) -> None:
    """Compare two images of the same size and print distortion metrics.

    Both images are compared as RGB with values 0-255: grayscale is replicated to three
    channels and transparency is composited onto white. EXIF orientation is applied.

    \b
    MSE         mean squared difference over all pixels and channels
    PSNR        10*log10(255^2 / MSE), dB; inf if the images are identical
    MS-SSIM     multi-scale SSIM as tf.image.ssim_multiscale(max_val=255):
                11x11 Gaussian window (sigma 1.5), 5 scales; images with a short
                side < 161 px use fewer scales (weights renormalised)
    MS-SSIM dB  -10*log10(1 - MS-SSIM); inf if identical
    L1          mean absolute difference over all pixels and channels
    SAD         sum of absolute differences

    With --json, infinite values are written as null.
    """
    from gancomp.errors import InputError
    from gancomp.evaluation.metrics import compare as compare_arrays
    from gancomp.io.images import load_image, to_rgb_for_metrics

    img_a = load_image(image_a)
    img_b = load_image(image_b)
    if img_a.rgb.shape != img_b.rgb.shape:
        raise InputError(
            f"images differ in size: '{image_a}' is {img_a.width}x{img_a.height}, "
            f"'{image_b}' is {img_b.width}x{img_b.height}"
        )
    result = compare_arrays(to_rgb_for_metrics(img_a), to_rgb_for_metrics(img_b))
    sad = result["sad"]
    sad_out: float | int = int(sad) if float(sad).is_integer() else sad

    if as_json:
        out = {
            "a": image_a,
            "b": image_b,
            "width": result["width"],
            "height": result["height"],
            "identical": result["identical"],
            "mse": result["mse"],
            "psnr": _json_number(result["psnr"]),
            "ms_ssim": result["ms_ssim"],
            "ms_ssim_db": _json_number(result["ms_ssim_db"]),
            "ms_ssim_scales": result["ms_ssim_scales"],
            "l1": result["l1"],
            "sad": sad_out,
        }
        click.echo(json.dumps(out, allow_nan=False))
        return

    rows = [
        ("MSE", _fmt_number(result["mse"], 4), ""),
        ("PSNR", _fmt_number(result["psnr"], 2), "dB"),
        ("MS-SSIM", _fmt_number(result["ms_ssim"], 6), ""),
        ("MS-SSIM in dB", _fmt_number(result["ms_ssim_db"], 2), "dB"),
        ("MS-SSIM scales", str(result["ms_ssim_scales"]), ""),
        ("L1 (mean abs error)", _fmt_number(result["l1"], 4), ""),
        ("SAD", str(sad_out), ""),
    ]
    click.echo(f"{image_a} vs {image_b} ({result['width']}x{result['height']})")
    if result["identical"]:
        click.echo("images are identical")
    label_w = max(len(r[0]) for r in rows)
    value_w = max(len(r[1]) for r in rows)
    for label, value, unit in rows:
        click.echo(f"  {label:<{label_w}}  {value:>{value_w}} {unit}".rstrip())


def _levels_arg(ctx, param, value):
    from gancomp.evaluation.bench import parse_levels

    try:
        return parse_levels(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


def _efforts_arg(ctx, param, value):
    from gancomp.evaluation.bench import parse_efforts

    try:
        return parse_efforts(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


def _codecs_arg(ctx, param, value):
    from gancomp.evaluation.bench import parse_codecs

    try:
        return parse_codecs(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


@click.command()
@click.option("--category", "-c", required=True, help="Model to benchmark, e.g. airplane.")
@click.option(
    "--data",
    required=True,
    type=click.Path(),
    help="Folder of images (PNG, JPEG, WebP, BMP, TIFF, GIF), searched recursively.",
)
@click.option(
    "--codecs",
    default="jpeg,webp,avif",
    show_default=True,
    callback=_codecs_arg,
    help="Classical codecs to compare with (comma-separated).",
)
@click.option(
    "--levels",
    default="1-8",
    show_default=True,
    callback=_levels_arg,
    help="gancomp quality levels: a range (1-8), a list (1,3,5) or one level.",
)
@click.option(
    "--effort",
    "efforts",
    default="normal",
    show_default=True,
    callback=_efforts_arg,
    help="gancomp encoder effort, or several (normal,max): the first is compared with the "
    "codecs, each further one gets its own curve and its BD-rate against the first.",
)
@click.option("--json", "json_path", type=click.Path(), help="Write all results to this file.")
@click.option("--plot", "plot_path", type=click.Path(), help="Write rate-distortion curves (.png).")
@click.option("--limit", type=click.IntRange(1), help="Use only the first N images (by name).")
@click.option("--force", is_flag=True, help="Overwrite existing --json / --plot files.")
@click.option(
    "--anchors",
    "anchors_path",
    type=click.Path(),
    help="A --json file of an earlier bench on the same images: reuse its classical codecs' "
    "curves instead of encoding them again (those measured with the same quality sweep, "
    "options and library version).",
)
@MODELS_DIR_OPTION
def bench(
    category,
    data,
    codecs,
    levels,
    efforts,
    json_path,
    plot_path,
    limit,
    force,
    anchors_path,
    models_dir,
) -> None:
    """Rate-distortion benchmark of a model against JPEG, WebP and AVIF.

    Every codec compresses the images of --data in memory. For each setting the
    table shows mean bpp (whole file, headers included), PSNR, MS-SSIM, MSE, L1
    and coding times per image. The BD-rate (Bjontegaard, VCEG-M33) compares
    gancomp with each codec at equal PSNR and at equal MS-SSIM dB; negative means
    gancomp needs fewer bits.

    --effort fast or max refines the latents of every image (needs TensorFlow: pip install
    'gancomp[train]'); with several efforts (--effort normal,max) their curves sit side by side,
    with the BD-rate of each against the first.
    """
    from gancomp.evaluation import bench as bench_mod
    from gancomp.io.files import check_writable_target

    # Fail before the (long) run if an output cannot be written.
    if json_path:
        check_writable_target(json_path, force)
    if plot_path:
        bench_mod.check_plot_target(plot_path, force)
    anchors = bench_mod.read_anchors(anchors_path) if anchors_path else None
    files = bench_mod.list_images(data, limit)
    result = bench_mod.run_bench(
        category,
        bench_mod.load_rgb(files),
        codecs,
        levels,
        models_dir=models_dir,
        progress=sys.stderr.isatty(),
        efforts=efforts,
        anchors=anchors,
    )
    result["data"] = str(data)
    for name, reason in result["skipped"].items():
        click.echo(f"gancomp: warning: skipping {name}: {reason}", err=True)
    click.echo(bench_mod.format_tables(result))
    if json_path:
        bench_mod.write_json(result, json_path, force=force)
    if plot_path:
        bench_mod.write_plot(result, plot_path, force=force)
