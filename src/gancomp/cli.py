"""Command line interface: ``gancomp COMMAND ...``.

Commands are registered on the ``main`` group with ``@main.command()``; the work is done by the
package (``gancomp.batch`` for compress / decompress / info): this module holds options, calls
and formatting. Errors are handled centrally by :class:`GancompGroup`: a :class:`GancompError`
becomes one line on stderr and its exit status (1; 2 for usage errors; 130 for an interrupted
run, without the word "error"), Ctrl-C exits 130, a closed stdout pipe exits quietly, and
anything else is reported as an internal error (exit 1). A traceback is printed only with
``gancomp --debug``. Heavy modules (numpy, TensorFlow) are imported inside the commands so that
``gancomp --help`` stays fast.
"""

from __future__ import annotations

import os

# Must happen before anything can import TensorFlow.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import contextlib  # noqa: E402
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
# The status of a tool killed by SIGPIPE (128 + 13), which is how cat, grep or sort end when
# their reader goes away: `set -o pipefail` scripts see the same for gancomp as for them.
EXIT_BROKEN_PIPE = 141


def _one_line(text: str) -> str:
    return " ".join(text.splitlines()).strip()


def _debug() -> bool:
    ctx = click.get_current_context(silent=True)
    return bool(ctx and ctx.find_root().params.get("debug"))


def _report(ctx: click.Context, message: str, code: int) -> None:
    if _debug():
        traceback.print_exc(file=sys.stderr)
    click.echo(f"gancomp: {_one_line(message)}", err=True)
    ctx.exit(code)


def _stdout_closed(ctx: click.Context) -> None:
    """The reader of our output went away (`gancomp info F | head -1`): stop without a word."""
    # Point stdout at /dev/null so the interpreter's final flush has nowhere to fail.
    with contextlib.suppress(OSError, ValueError, AttributeError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    ctx.exit(EXIT_BROKEN_PIPE)


class GancompGroup(click.Group):
    """A click group that turns exceptions from its commands into one-line messages."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            result = super().invoke(ctx)
            sys.stdout.flush()  # a closed pipe shows up here, not as noise at interpreter exit
            return result
        except (click.exceptions.Exit, click.ClickException, click.Abort):
            raise
        except BrokenPipeError:
            _stdout_closed(ctx)
        except GancompError as exc:
            label = "" if exc.exit_code == EXIT_INTERRUPTED else "error: "
            _report(ctx, f"{label}{exc}", exc.exit_code)
        except KeyboardInterrupt:
            _report(ctx, "interrupted", EXIT_INTERRUPTED)
        except Exception as exc:
            detail = str(exc) or "(no message)"
            hint = "" if _debug() else " (run with --debug for a traceback)"
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


# -- codec commands ----------------------------------------------------------------

_MODELS_DIR_OPTION = click.option(
    "--models-dir",
    type=click.Path(file_okay=False),
    default=None,
    envvar="GANCOMP_MODELS",
    help="Folder of model folders (default: $GANCOMP_MODELS, else the shipped models).",
)
_FORCE_OPTION = click.option("--force", is_flag=True, help="Overwrite existing outputs.")
_JSON_OPTION = click.option(
    "--json", "as_json", is_flag=True, help="Print one JSON object per file."
)


class _Reporter:
    """The progress callback of a batch: a bar on stderr (terminals only, several files) and
    one stdout line per file written, printed in blocks (a terminal write per file costs
    more than coding a small image)."""

    def __init__(self, desc: str, line) -> None:
        self.desc, self.line = desc, line
        self.bar = None
        self.lines: list[str] = []
        self.count = 0

    def __call__(self, result, total: int) -> None:
        from tqdm import tqdm

        if self.bar is None:
            disable = total < 2 or not sys.stderr.isatty()
            self.bar = tqdm(total=total, desc=self.desc, unit="file", disable=disable)
        self.bar.update(1)
        self.count += 1
        if result.ok:
            self.lines.append(self.line(result))
        if len(self.lines) >= 256 or self.count == total:
            self.flush()

    def flush(self) -> None:
        if self.lines:
            click.echo("\n".join(self.lines))
            self.lines = []

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _print_failures(failures: list) -> None:
    """One line per failed file, after its traceback with --debug."""
    for result in failures:
        if _debug() and result.exception is not None:
            traceback.print_exception(result.exception, file=sys.stderr)
        click.echo(f"gancomp: error: {result.error}", err=True)


def _finish(failures: list, total: int) -> None:
    """Report per-file errors; exit 1 if there were any."""
    _print_failures(failures)
    if failures and total > 1:
        click.echo(f"gancomp: {len(failures)} of {total} files failed", err=True)
    if failures:
        sys.exit(EXIT_ERROR)


def _run_batch(run, reporter: _Reporter) -> None:
    from gancomp.batch import BatchStopped

    try:
        results = run(progress=reporter)
    except BatchStopped as exc:  # a full disk: what was written, what failed, then the cause
        reporter.flush()
        _print_failures([r for r in exc.results if not r.ok])
        raise
    finally:
        reporter.close()
    _finish([r for r in results if not r.ok], len(results))


def _compress_line(r, auto: bool, as_json: bool) -> str:
    ratio = r.input_bytes / r.output_bytes
    if as_json:
        fields = ("category", "input_bytes", "output_bytes", "bpp")
        row = {"input": str(r.path), "output": str(r.output)}
        row.update({k: getattr(r, k) for k in fields})
        row.update(ratio=ratio, width=r.width, height=r.height)
        return json.dumps(row)
    notes = [f"category {r.category}"] if auto else []
    if r.bit_depth_reduced:
        notes.append("16-bit input reduced to 8 bits")
    extra = f" ({'; '.join(notes)})" if notes else ""
    return (
        f"{r.path} -> {r.output}: {r.input_bytes} -> {r.output_bytes} bytes, "
        f"{r.bpp:.3f} bpp, ratio {ratio:.1f}{extra}"
    )


@main.command()
@click.argument("inputs", nargs=-1, required=True, type=click.Path())
@click.option(
    "--category",
    "-c",
    required=True,
    help="Model to use: airplane, automobile, flower, a trained category, or 'auto'.",
)
@click.option(
    "--quality",
    "-q",
    type=click.IntRange(1, 8),
    default=4,
    show_default=True,
    help="1 = smallest file ... 8 = best quality.",
)
@click.option(
    "-o", "--output", "out", type=click.Path(), help="Output .gcz file, or folder to write into."
)
@_FORCE_OPTION
@_JSON_OPTION
@_MODELS_DIR_OPTION
def compress(inputs, category, quality, out, force, as_json, models_dir) -> None:
    """Compress images (or folders of images) to .gcz files.

    Each image writes <stem>.gcz next to it. With -o: one image writes OUT (a name ending
    in .gcz), or into OUT if it is a folder; several inputs or a folder write
    OUT/<stem>.gcz (the folder is created if needed). Existing files are never overwritten
    without --force, and two inputs never share one output (a.png, a.jpg). Same-size images
    go through the network in batches.

    --category auto tries every available model and keeps, per image, the one that codes
    it best.
    """
    from gancomp.batch import compress_files

    auto = category == "auto"
    _run_batch(
        lambda progress: compress_files(
            inputs, category, quality, out, force, models_dir, progress=progress
        ),
        _Reporter("compress", lambda r: _compress_line(r, auto, as_json)),
    )


def _decompress_line(r, as_json: bool) -> str:
    if as_json:
        row = {"input": str(r.path), "output": str(r.output)}
        row.update({k: getattr(r, k) for k in ("width", "height", "category", "quality")})
        return json.dumps(row)
    return f"{r.path} -> {r.output}: {r.width}x{r.height}, {r.category} quality {r.quality}"


@main.command()
@click.argument("inputs", nargs=-1, required=True, type=click.Path())
@click.option(
    "-o", "--output", "out", type=click.Path(), help="Output image, or folder to write into."
)
@_FORCE_OPTION
@_JSON_OPTION
@_MODELS_DIR_OPTION
def decompress(inputs, out, force, as_json, models_dir) -> None:
    """Decompress .gcz files (or folders of them) to images of the original size.

    Each file writes <stem>.decoded.png next to it ('img.gcz' -> 'img.decoded.png', so
    decoding never lands on 'img.png'). With -o: one file writes OUT, or into OUT if it is
    a folder; several inputs or a folder write OUT/<stem>.decoded.png (the folder is
    created if needed). OUT's extension picks the format: .png, .bmp, .tif, .webp
    (lossless). Existing files are never overwritten without --force.
    """
    from gancomp.batch import decompress_files

    _run_batch(
        lambda progress: decompress_files(inputs, out, force, models_dir, progress=progress),
        _Reporter("decompress", lambda r: _decompress_line(r, as_json)),
    )


@main.command()
@click.argument("files", nargs=-1, required=True, type=click.Path())
@_JSON_OPTION
def info(files, as_json) -> None:
    """Show every header field of .gcz files, their payload size and bpp.

    One block (with --json, one line) per file; a file that cannot be read is reported,
    the others are still shown (exit status 1).
    """
    from pathlib import Path

    from gancomp.batch import FileResult, file_info

    failures, shown = [], 0
    for name in files:
        try:
            fields = file_info(name)
        except GancompError as exc:
            failures.append(FileResult(path=Path(name), error=str(exc), exception=exc))
            continue
        if as_json:
            click.echo(json.dumps(fields))
            continue
        w = max(len(k) for k in fields)
        block = [
            f"{k:<{w}}  {v:.4f}" if isinstance(v, float) else f"{k:<{w}}  {v}"
            for k, v in fields.items()
        ]
        click.echo("\n".join(([""] if shown else []) + block))  # blocks apart by a blank line
        shown += 1
    _finish(failures, len(files))


# -- training ----------------------------------------------------------------------


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


@main.command()
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
    default=20000,
    show_default=True,
    help="Total training steps.",
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
    help="Random crop size (default: 32 for CIFAR-size images, else 128).",
)
@click.option(
    "--lr",
    type=click.FloatRange(0, min_open=True),
    default=5e-4,
    show_default=True,
    help="Learning rate of the encoder/generator.",
)
@click.option("--channels", type=click.IntRange(4), help="Hidden channels of E and G (default 96).")
@click.option("--latent-channels", type=click.IntRange(4), help="Latent channels M (default 128).")
@click.option(
    "--num-down",
    type=click.IntRange(1, 6),
    help="Stride-2 stages (default: 3 for images <= 64 px, else 4).",
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
    settings = TrainSettings(**options, output=str(out), progress=sys.stderr.isatty())
    result = run_training(settings)
    click.echo(
        f"model written to {result['output']} (fingerprint {result['fingerprint']}, {result['steps']} steps)"
    )
    if result.get("skipped"):
        click.echo(f"skipped {len(result['skipped'])} unreadable files", err=True)
    if result.get("validation"):
        click.echo("quality    bpp    PSNR  MS-SSIM")
        for row in result["validation"]:
            click.echo(
                f"{row['quality']:>7} {row['bpp']:6.3f} {row['psnr']:7.2f} {row['ms_ssim']:8.4f}"
            )


# -- benchmark ---------------------------------------------------------------------


def _levels_arg(ctx, param, value):
    from gancomp.evaluation.bench import parse_levels

    try:
        return parse_levels(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


def _codecs_arg(ctx, param, value):
    from gancomp.evaluation.bench import parse_codecs

    try:
        return parse_codecs(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


@main.command()
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
@click.option("--json", "json_path", type=click.Path(), help="Write all results to this file.")
@click.option("--plot", "plot_path", type=click.Path(), help="Write rate-distortion curves (.png).")
@click.option("--limit", type=click.IntRange(1), help="Use only the first N images (by name).")
@click.option("--force", is_flag=True, help="Overwrite existing --json / --plot files.")
@_MODELS_DIR_OPTION
def bench(category, data, codecs, levels, json_path, plot_path, limit, force, models_dir) -> None:
    """Rate-distortion benchmark of a model against JPEG, WebP and AVIF.

    Every codec compresses the images of --data in memory. For each setting the
    table shows mean bpp (whole file, headers included), PSNR, MS-SSIM, MSE, L1
    and coding times per image. The BD-rate (Bjontegaard, VCEG-M33) compares
    gancomp with each codec at equal PSNR and at equal MS-SSIM dB; negative means
    gancomp needs fewer bits.
    """
    from gancomp.evaluation import bench as bench_mod
    from gancomp.io.files import check_writable_target

    # Fail before the (long) run if an output cannot be written.
    if json_path:
        check_writable_target(json_path, force)
    if plot_path:
        bench_mod.check_plot_target(plot_path, force)
    files = bench_mod.list_images(data, limit)
    result = bench_mod.run_bench(
        category,
        bench_mod.load_rgb(files),
        codecs,
        levels,
        models_dir=models_dir,
        progress=sys.stderr.isatty(),
    )
    result["data"] = str(data)
    for name, reason in result["skipped"].items():
        click.echo(f"gancomp: warning: skipping {name}: {reason}", err=True)
    click.echo(bench_mod.format_tables(result))
    if json_path:
        bench_mod.write_json(result, json_path, force=force)
    if plot_path:
        bench_mod.write_plot(result, plot_path, force=force)
