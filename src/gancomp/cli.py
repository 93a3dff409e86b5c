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


def _expand_inputs(inputs: tuple[str, ...], suffixes: set[str] | None) -> tuple[list, bool]:
    """Files named on the command line; directories expand to their matching files."""
    from pathlib import Path

    files: list[Path] = []
    many = len(inputs) > 1
    for name in inputs:
        p = Path(name)
        if p.is_dir():
            many = True
            found = sorted(
                f
                for f in p.iterdir()
                if f.is_file() and (suffixes is None or f.suffix.lower() in suffixes)
            )
            files.extend(found)
        else:
            files.append(p)
    return files, many


def _progress(total: int, desc: str):
    """A progress bar on stderr for many files; silent when stderr is not a terminal."""
    from tqdm import tqdm

    return tqdm(
        total=total,
        desc=desc,
        unit="file",
        disable=total < 2 or not sys.stderr.isatty(),
        file=sys.stderr,
    )


_IO_THREADS = 4  # overlaps PNG coding and fsync waits; more threads only contend


@contextlib.contextmanager
def _io_pool():
    """Threads for file reads and atomic writes (PNG codecs and fsync release the GIL).

    On Ctrl-C or an error, writes not yet started are cancelled and those under way
    finish: every output is still either complete or absent.
    """
    from concurrent.futures import ThreadPoolExecutor

    pool = ThreadPoolExecutor(max_workers=_IO_THREADS, thread_name_prefix="gancomp-io")
    try:
        yield pool
    except BaseException:
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    pool.shutdown(wait=True)


def _claim_target(claimed: dict, target, src) -> None:
    """Two inputs must not write one output (a.png and a.jpg both -> a.gcz)."""
    key = os.path.abspath(target)
    if key in claimed:
        raise GancompError(f"output '{target}' is also the output of '{claimed[key]}'")
    claimed[key] = src


def _finish(failures: list[tuple[str, str]], total: int) -> None:
    if failures:
        for name, msg in failures:
            click.echo(f"gancomp: error: {name}: {msg}", err=True)
        if total > 1:
            click.echo(f"gancomp: {len(failures)} of {total} files failed", err=True)
        sys.exit(EXIT_ERROR)


def _target(out: str | None, src, many: bool, suffix: str):
    from pathlib import Path

    if many:
        folder = Path(out) if out else Path(".")
        return folder / (src.stem + suffix)
    return Path(out) if out else src.with_name(src.stem + suffix)


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
    "-o", "--output", "out", type=click.Path(), help="Output file, or folder for several inputs."
)
@click.option("--force", is_flag=True, help="Overwrite existing outputs.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object per file.")
@_MODELS_DIR_OPTION
def compress(inputs, category, quality, out, force, as_json, models_dir) -> None:
    """Compress images to .gcz files.

    One INPUT writes OUT (default: INPUT with the suffix .gcz). Several inputs or a
    folder write OUT/<stem>.gcz for each (OUT defaults to the current folder).
    Same-size images go through the network in batches.

    --category auto encodes with every available model and keeps the smallest
    file whose PSNR is within 0.1 dB of the best one.
    """
    from pathlib import Path

    from gancomp.io.files import atomic_write_bytes, check_writable_target
    from gancomp.io.images import IMAGE_SUFFIXES, load_image
    from gancomp.runtime import codec as codec_mod
    from gancomp.runtime.models import available_categories

    files, many = _expand_inputs(inputs, IMAGE_SUFFIXES)
    if not files:
        raise GancompError("no images found in the given folder(s)")
    if many and out:
        Path(out).mkdir(parents=True, exist_ok=True)
    if category != "auto":
        codec_mod.load_codec(category, models_dir)  # a missing model fails before any work
        cats = [category]
    else:
        cats = available_categories(models_dir)
        if not cats:
            raise GancompError("no models available for --category auto")
    failures: list[tuple[str, str]] = []
    claimed: dict = {}

    def load(job):
        f, target = job
        try:
            check_writable_target(target, force)
            im = load_image(f)
            return (f, im, target, f.stat().st_size)
        except GancompError as exc:
            return exc
        except OSError as exc:  # the file vanished after it was read
            return GancompError(f"cannot read '{f}': {exc.strerror or exc}")

    # Batches of same-size images; bounded so huge folders don't sit in memory at once.
    step = 256
    with _io_pool() as pool, _progress(len(files), "compress") as bar:
        for start in range(0, len(files), step):
            jobs = []
            for f in files[start : start + step]:
                try:  # in input order, so of two inputs with one output the first wins
                    target = _target(out, f, many, ".gcz")
                    _claim_target(claimed, target, f)
                    jobs.append((f, target))
                except GancompError as exc:
                    failures.append((str(f), str(exc)))
                    bar.update(1)
            part = []
            for (f, _), item in zip(jobs, pool.map(load, jobs)):
                if isinstance(item, GancompError):
                    failures.append((str(f), str(item)))
                    bar.update(1)
                else:
                    part.append(item)
            if not part:
                continue
            try:
                results = _compress_part(
                    codec_mod, [item[1] for item in part], cats, quality, models_dir
                )
            except GancompError as exc:
                failures.extend((str(item[0]), str(exc)) for item in part)
                bar.update(len(part))
                continue
            writes = [
                pool.submit(atomic_write_bytes, item[2], data, force=force)
                for item, (data, _) in zip(part, results)
            ]
            lines = []  # one write per batch: a terminal write per file costs more than coding
            for (f, im, target, in_bytes), (data, chosen), done in zip(part, results, writes):
                try:
                    done.result()
                except GancompError as exc:
                    failures.append((str(f), str(exc)))
                else:
                    auto = category == "auto"
                    lines.append(
                        _report_compress(f, in_bytes, im, target, data, chosen, auto, as_json)
                    )
                bar.update(1)
            if lines:
                click.echo("\n".join(lines))
    _finish(failures, len(files))


def _compress_part(codec_mod, images, cats, quality, models_dir):
    from gancomp.runtime.auto import compress_auto

    if len(cats) == 1:
        blobs = codec_mod.compress_many(images, cats[0], quality, models_dir)
        return [(b, cats[0]) for b in blobs]
    return compress_auto(images, quality, models_dir, categories=cats)


def _report_compress(src, in_bytes, im, target, data, chosen, auto, as_json) -> str:
    bpp = 8 * len(data) / (im.width * im.height)
    ratio = in_bytes / len(data)
    if as_json:
        return json.dumps(
            {
                "input": str(src),
                "output": str(target),
                "category": chosen,
                "input_bytes": in_bytes,
                "output_bytes": len(data),
                "bpp": bpp,
                "ratio": ratio,
                "width": im.width,
                "height": im.height,
            }
        )
    notes = []
    if auto:
        notes.append(f"category {chosen}")
    if im.bit_depth_reduced:
        notes.append("16-bit input reduced to 8 bits")
    extra = f" ({'; '.join(notes)})" if notes else ""
    return f"{src} -> {target}: {in_bytes} -> {len(data)} bytes, {bpp:.3f} bpp, ratio {ratio:.1f}{extra}"


@main.command()
@click.argument("inputs", nargs=-1, required=True, type=click.Path())
@click.option(
    "-o", "--output", "out", type=click.Path(), help="Output image, or folder for several inputs."
)
@click.option("--force", is_flag=True, help="Overwrite existing outputs.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object per file.")
@_MODELS_DIR_OPTION
def decompress(inputs, out, force, as_json, models_dir) -> None:
    """Decompress .gcz files to images of the original size.

    One INPUT writes OUT, by default INPUT's name with '.gcz' replaced by
    '.decoded.png' (so 'img.gcz' next to 'img.png' never touches 'img.png').
    Several inputs or a folder write OUT/<stem>.png (OUT defaults to the current
    folder). The output format follows OUT's extension: .png, .bmp, .tif, .webp
    (lossless). Existing files are never overwritten without --force.
    """
    from pathlib import Path

    from gancomp.io.files import check_writable_target
    from gancomp.io.images import output_format, save_image
    from gancomp.runtime import codec as codec_mod

    files, many = _expand_inputs(inputs, {".gcz"})
    if not files:
        raise GancompError("no .gcz files found in the given folder(s)")
    if many and out:
        Path(out).mkdir(parents=True, exist_ok=True)
    elif out:
        output_format(out)  # an unsupported extension is a usage problem: fail first
    failures: list[tuple[str, str]] = []
    jobs = []
    claimed: dict = {}
    for f in files:
        try:
            target = _target(out, f, many, ".png" if many else ".decoded.png")
            _claim_target(claimed, target, f)
            check_writable_target(target, force)
            data = _read_input(f)
            jobs.append((f, target, data, codec_mod.read_header(data)))
        except GancompError as exc:
            failures.append((str(f), str(exc)))

    def write(target, img):
        if isinstance(img, GancompError):
            raise img
        save_image(target, img.rgb, alpha=img.alpha, grayscale=img.grayscale, force=force)

    step = 256
    with _io_pool() as pool, _progress(len(jobs), "decompress") as bar:
        for start in range(0, len(jobs), step):
            part = jobs[start : start + step]
            try:
                images = codec_mod.decompress_many([j[2] for j in part], models_dir)
            except GancompError:
                # One bad file must not sink the batch: retry the files one by one.
                images = []
                for j in part:
                    try:
                        images.append(codec_mod.decompress(j[2], models_dir))
                    except GancompError as exc:
                        images.append(exc)
            writes = [pool.submit(write, j[1], img) for j, img in zip(part, images)]
            lines = []
            for (f, target, _, (header, _)), done in zip(part, writes):
                bar.update(1)
                try:
                    done.result()
                except GancompError as exc:
                    failures.append((str(f), str(exc)))
                    continue
                row = {
                    "input": str(f),
                    "output": str(target),
                    "width": header.width,
                    "height": header.height,
                    "category": header.category,
                    "quality": header.quality,
                }
                if as_json:
                    lines.append(json.dumps(row))
                else:
                    lines.append(
                        f"{f} -> {target}: {header.width}x{header.height}, "
                        f"{header.category} quality {header.quality}"
                    )
            if lines:
                click.echo("\n".join(lines))
    _finish(failures, len(files))


def _read_input(path) -> bytes:
    from gancomp.errors import InputError

    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise InputError(f"cannot read '{path}': no such file") from None
    except IsADirectoryError:
        raise InputError(f"cannot read '{path}': is a directory") from None
    except OSError as exc:
        raise InputError(f"cannot read '{path}': {exc.strerror}") from None


@main.command()
@click.argument("file", type=click.Path())
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def info(file, as_json) -> None:
    """Show every header field of a .gcz file, its payload size and bpp."""
    from pathlib import Path

    from gancomp.coding.container import VERSION
    from gancomp.runtime.codec import read_header

    data = _read_input(Path(file))
    header, payload = read_header(data)
    fields = {
        "file": file,
        "format_version": VERSION,
        "category": header.category,
        "quality": header.quality,
        "model_fingerprint": header.fingerprint.hex(),
        "width": header.width,
        "height": header.height,
        "grayscale": header.grayscale,
        "alpha": header.alpha is not None,
        "alpha_bytes": len(header.alpha) if header.alpha is not None else 0,
        "reduced_from_16bit": header.reduced_16bit,
        "file_bytes": len(data),
        "payload_bytes": len(payload),
        "overhead_bytes": len(data) - len(payload),
        "bpp": 8 * len(data) / (header.width * header.height),
    }
    if as_json:
        click.echo(json.dumps(fields))
        return
    w = max(len(k) for k in fields)
    for k, v in fields.items():
        click.echo(f"{k:<{w}}  {v:.4f}" if isinstance(v, float) else f"{k:<{w}}  {v}")


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
@click.option("--checkpoint-every", type=click.IntRange(1), default=500, show_default=True)
@click.option("--log-dir", type=click.Path(), help="TensorBoard log folder.")
@click.option(
    "--strategy",
    type=click.Choice(["default", "mirrored", "multi-worker"]),
    default="default",
    show_default=True,
    help="tf.distribute strategy: mirrored = all local devices; multi-worker uses TF_CONFIG.",
)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option(
    "--val-limit",
    type=click.IntRange(1),
    default=100,
    show_default=True,
    help="Validation images used for the final table.",
)
def train(
    category,
    data,
    val_data,
    cifar_class,
    steps,
    rd_steps,
    beta,
    lambdas,
    batch_size,
    patch_size,
    lr,
    channels,
    latent_channels,
    num_down,
    output,
    resume,
    init_from,
    checkpoint_every,
    log_dir,
    strategy,
    seed,
    val_limit,
) -> None:
    """Train a category model from a folder of images.

    Rate + lambda * MSE for every quality level, then an adversarial phase with
    the latent-conditioned discriminator (HiFiC style). Checkpoints are written
    every --checkpoint-every steps and on Ctrl-C; --resume continues. The result
    is a model folder that compress/decompress use with --models-dir (its parent).
    """
    from pathlib import Path

    from gancomp.training.trainer import TrainSettings
    from gancomp.training.trainer import train as run_training

    out = Path(output) if output else Path("trained") / category
    settings = TrainSettings(
        category=category,
        data=data,
        output=str(out),
        val_data=val_data,
        cifar_class=cifar_class,
        steps=steps,
        batch_size=batch_size,
        patch_size=patch_size,
        rd_steps=rd_steps,
        beta=beta,
        lambdas=lambdas,
        lr=lr,
        channels=channels,
        latent_channels=latent_channels,
        num_down=num_down,
        seed=seed,
        checkpoint_every=checkpoint_every,
        log_dir=log_dir,
        resume=resume,
        init_from=init_from,
        strategy=strategy,
        val_limit=val_limit,
        progress=sys.stderr.isatty(),
    )
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
    help="Folder of images (PNG, JPEG, WebP, BMP, TIFF; not searched recursively).",
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
