"""Command line interface: ``gancomp COMMAND ...``.

This module holds the ``main`` group and the codec commands (compress, decompress, info); the
others live in :mod:`gancomp.commands` and are registered on ``main`` at the end. The work is
done by the package (``gancomp.batch`` for the codec commands): the commands hold options,
calls and formatting. Errors are handled centrally by :class:`GancompGroup`: a :class:`GancompError`
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
from gancomp.commands.options import MODELS_DIR_OPTION  # noqa: E402
from gancomp.errors import GancompError  # noqa: E402
from gancomp.refine import DEFAULT_EFFORT, EFFORTS  # noqa: E402

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


# -- codec commands ----------------------------------------------------------------

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
        fields = ("category", "input_bytes", "output_bytes", "bpp", "effort")
        row = {"input": str(r.path), "output": str(r.output)}
        row.update({k: getattr(r, k) for k in fields})
        row.update(ratio=ratio, width=r.width, height=r.height)
        if r.target is not None:
            exact = r.psnr is not None and math.isinf(r.psnr)
            row.update(
                quality=r.quality,
                psnr=None if exact else r.psnr,  # null: not computed, or identical (below)
                target_kind=r.target.kind,
                target=r.target.value,
                target_met=r.target_met,
            )
            if exact:
                row["identical"] = True
        return json.dumps(row)
    notes = [f"category {r.category}"] if auto else []
    if r.bit_depth_reduced:
        notes.append("16-bit input reduced to 8 bits")
    if r.target is not None and r.target_met:
        psnr = f", {r.psnr:.2f} dB" if r.psnr is not None else ""
        notes.append(f"quality {r.quality}{psnr}, target {r.target.describe()} met")
    elif r.target is not None:
        notes.append(f"target missed, nearest written: {r.target_miss}")
    extra = f" ({'; '.join(notes)})" if notes else ""
    return (
        f"{r.path} -> {r.output}: {r.input_bytes} -> {r.output_bytes} bytes, "
        f"{r.bpp:.3f} bpp, ratio {ratio:.1f}{extra}"
    )


class _PositiveNumber(click.ParamType):
    """A positive finite float (click.FloatRange lets NaN and inf through)."""

    name = "number"

    def convert(self, value, param, ctx):
        if isinstance(value, float):
            number = value
        else:
            try:
                number = float(value)
            except ValueError:
                self.fail(f"{value!r} is not a number", param, ctx)
        if not math.isfinite(number) or number <= 0:
            self.fail(f"{value!r} is not a positive finite number", param, ctx)
        return number


class _UnitInterval(click.ParamType):
    """A finite float in [0, 1] (click.FloatRange lets NaN through)."""

    name = "number"

    def convert(self, value, param, ctx):
        try:
            number = value if isinstance(value, float) else float(value)
        except ValueError:
            self.fail(f"{value!r} is not a number", param, ctx)
        if not (math.isfinite(number) and 0.0 <= number <= 1.0):
            self.fail(f"{value!r} is not in the range 0<=x<=1", param, ctx)
        return number


_TARGET_OPTIONS = ("target_bpp", "target_bytes", "target_psnr")


def _option_name(name: str) -> str:
    return "--" + name.replace("_", "-")


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
    "--target-bpp",
    type=_PositiveNumber(),
    metavar="BPP",
    help="Per image, the highest quality whose whole .gcz file is at most BPP bits per pixel.",
)
@click.option(
    "--target-bytes",
    type=click.IntRange(min=1),
    metavar="N",
    help="Per image, the highest quality whose whole .gcz file is at most N bytes.",
)
@click.option(
    "--target-psnr",
    type=_PositiveNumber(),
    metavar="DB",
    help="Per image, the smallest file whose PSNR (as 'gancomp compare' measures the "
    "decoded image) is at least DB.",
)
@click.option(
    "--nearest",
    is_flag=True,
    help="When no quality reaches the target, write the nearest file (the smallest, or the "
    "highest PSNR) instead of failing that image.",
)
@click.option(
    "--effort",
    type=click.Choice(EFFORTS),
    default=DEFAULT_EFFORT,
    show_default=True,
    help="Encoder effort: normal is one pass; fast and max refine each image's latents for "
    "fewer bits at the same quality (slower; needs TensorFlow: pip install 'gancomp[train]').",
)
@click.option(
    "-o", "--output", "out", type=click.Path(), help="Output .gcz file, or folder to write into."
)
@_FORCE_OPTION
@_JSON_OPTION
@MODELS_DIR_OPTION
@click.pass_context
def compress(
    ctx,
    inputs,
    category,
    quality,
    target_bpp,
    target_bytes,
    target_psnr,
    nearest,
    effort,
    out,
    force,
    as_json,
    models_dir,
) -> None:
    """Compress images (or folders of images) to .gcz files.

    Each image writes <stem>.gcz next to it. With -o: one image writes OUT (a name ending
    in .gcz), or into OUT if it is a folder; several inputs or a folder write
    OUT/<stem>.gcz (the folder is created if needed). Existing files are never overwritten
    without --force, and two inputs never share one output (a.png, a.jpg). Same-size images
    go through the network in batches.

    --category auto tries every available model and keeps, per image, the one that codes
    it best.

    Rate control, instead of --quality: --target-bpp or --target-bytes (the whole file,
    header and alpha included) writes, per image, the highest quality whose file is not
    larger; --target-psnr the smallest file that reaches that PSNR. An image that no quality
    brings to its target is reported with the nearest value reached and not written (exit
    status 1; the other images go on), unless --nearest. With --category auto the model is
    chosen as auto does at quality 4, then its qualities are searched. --json adds quality,
    psnr (PSNR targets), target_kind, target and target_met.

    --effort fast or max optimises each image's latents for the level's rate-distortion
    trade-off before coding them (stochastic Gumbel annealing; 100 and 500 gradient
    steps), and keeps the normal file where that is not better. The files decode as any
    other. The bytes depend only on the image, the model and the effort (on one machine).
    """
    from click.core import ParameterSource

    from gancomp.batch import compress_files

    params = ctx.params
    given = [_option_name(n) for n in _TARGET_OPTIONS if params[n] is not None]
    if len(given) > 1:
        raise click.UsageError(f"{' and '.join(given)} exclude each other: give one target")
    if given and ctx.get_parameter_source("quality") is not ParameterSource.DEFAULT:
        raise click.UsageError(f"--quality and {given[0]} exclude each other: give one")
    if nearest and not given:
        raise click.UsageError("--nearest needs --target-bpp, --target-bytes or --target-psnr")

    auto = category == "auto"
    _run_batch(
        lambda progress: compress_files(
            inputs,
            category,
            None if given else quality,
            out,
            force,
            models_dir,
            progress=progress,
            target_bpp=target_bpp,
            target_bytes=target_bytes,
            target_psnr=target_psnr,
            nearest=nearest,
            effort=effort,
            effort_progress=sys.stderr.isatty(),
        ),
        _Reporter("compress", lambda r: _compress_line(r, auto, as_json)),
    )


def _decompress_line(r, as_json: bool, asked_realism: float = 0.0) -> str:
    if as_json:
        row = {"input": str(r.path), "output": str(r.output)}
        keys = ("width", "height", "category", "quality", "realism")
        row.update({k: getattr(r, k) for k in keys})
        return json.dumps(row)
    line = f"{r.path} -> {r.output}: {r.width}x{r.height}, {r.category} quality {r.quality}"
    if asked_realism > 0:
        line += f", realism {r.realism:.3g}"
        if r.realism == 0:
            line += " (the model's realism control does not act at this quality)"
    return line


@main.command()
@click.argument("inputs", nargs=-1, required=True, type=click.Path())
@click.option(
    "-o", "--output", "out", type=click.Path(), help="Output image, or folder to write into."
)
@click.option(
    "--realism",
    type=_UnitInterval(),
    default=0.0,
    show_default=True,
    metavar="R",
    help="0 = the most faithful image ... 1 = the most realistic (sharp, plausible detail); "
    "needs a model with realism branches when above 0.",
)
@_FORCE_OPTION
@_JSON_OPTION
@MODELS_DIR_OPTION
def decompress(inputs, out, realism, force, as_json, models_dir) -> None:
    """Decompress .gcz files (or folders of them) to images of the original size.

    Each file writes <stem>.decoded.png next to it ('img.gcz' -> 'img.decoded.png', so
    decoding never lands on 'img.png'). With -o: one file writes OUT, or into OUT if it is
    a folder; several inputs or a folder write OUT/<stem>.decoded.png (the folder is
    created if needed). OUT's extension picks the format: .png, .bmp, .tif, .webp
    (lossless). Existing files are never overwritten without --force.

    --realism R chooses, per decode, between the most faithful reconstruction (0) and the
    most realistic one (1): the same file decodes at any R. Models trained with
    'gancomp train --realism-phase' have the control; others decode at 0 only.
    """
    from gancomp.batch import decompress_files

    _run_batch(
        lambda progress: decompress_files(
            inputs, out, force, models_dir, progress=progress, realism=realism
        ),
        _Reporter("decompress", lambda r: _decompress_line(r, as_json, realism)),
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


# The other commands: cheap to import (their heavy imports are inside them).
from gancomp.commands.evaluate import bench, compare  # noqa: E402
from gancomp.commands.train import train  # noqa: E402

for _command in (compare, train, bench):
    main.add_command(_command)
