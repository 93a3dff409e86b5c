"""Command line interface: ``gancomp COMMAND ...``.

Commands are registered on the ``main`` group with ``@main.command()``. Errors are handled
centrally by :class:`GancompGroup`: a :class:`GancompError` becomes one line on stderr and exit
status 1, Ctrl-C exits 130, and anything else is reported as an internal error (exit 1). A
traceback is printed only with ``gancomp --debug``. Heavy modules (numpy, TensorFlow) are
imported inside the commands so that ``gancomp --help`` stays fast.
"""

from __future__ import annotations

import os

# Must happen before anything can import TensorFlow.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import json  # noqa: E402
import math  # noqa: E402
import sys  # noqa: E402
import traceback  # noqa: E402
from typing import Any  # noqa: E402

import click  # noqa: E402

from gancomp import __version__  # noqa: E402
from gancomp.errors import GancompError  # noqa: E402

EXIT_ERROR = 1
EXIT_INTERRUPTED = 130


def _one_line(text: str) -> str:
    return " ".join(text.splitlines()).strip()


def _report(ctx: click.Context, message: str, code: int) -> None:
    if ctx.find_root().params.get("debug"):
        traceback.print_exc(file=sys.stderr)
    click.echo(f"gancomp: {_one_line(message)}", err=True)
    ctx.exit(code)


class GancompGroup(click.Group):
    """A click group that turns exceptions from its commands into one-line messages."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.ClickException, click.Abort):
            raise
        except GancompError as exc:
            _report(ctx, f"error: {exc}", exc.exit_code)
        except KeyboardInterrupt:
            _report(ctx, "interrupted", EXIT_INTERRUPTED)
        except Exception as exc:
            detail = str(exc) or "(no message)"
            hint = "" if ctx.params.get("debug") else " (run with --debug for a traceback)"
            _report(ctx, f"internal error: {type(exc).__name__}: {detail}{hint}", EXIT_ERROR)


@click.group(cls=GancompGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--debug", is_flag=True, help="Show Python tracebacks for errors.")
@click.version_option(__version__, "-V", "--version", prog_name="gancomp")
def main(debug: bool) -> None:
    """gancomp: compress images with category-specialised learned (GAN) codecs."""


def _fmt_number(value: float, digits: int) -> str:
    if math.isinf(value):
        return "inf"
    return f"{value:.{digits}f}"


def _json_number(value: float) -> float | None:
    return None if math.isinf(value) or math.isnan(value) else value


@main.command()
@click.argument("image_a", metavar="A", type=click.Path(dir_okay=True))
@click.argument("image_b", metavar="B", type=click.Path(dir_okay=True))
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of a table.")
def compare(image_a: str, image_b: str, as_json: bool) -> None:
    """Compare two images of the same size and print distortion metrics.

    Both images are compared as RGB with values 0-255: grayscale is replicated to three
    channels and transparency is composited onto white. Pixels are taken as stored (EXIF
    orientation is ignored).

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
    from gancomp.imageio import load_image, to_rgb_for_metrics
    from gancomp.metrics import compare as compare_arrays

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
