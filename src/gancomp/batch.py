"""Compress and decompress many files at once: the engine under ``gancomp compress`` and
``gancomp decompress``, usable from Python with the same rules and guarantees.

Rules:

- Inputs are files or folders. A folder stands for its image files (compress) or ``.gcz``
  files (decompress), not searched recursively, hidden files skipped.
- Names: ``a.png`` compresses to ``a.gcz``; ``a.gcz`` decompresses to ``a.decoded.png``.
  One rule for one file and for many, so decoding never lands on the source image.
- Location: next to each input. ``output`` changes that: for one input file it names the
  output file (``.gcz`` for compress, an image extension for decompress), unless it is an
  existing folder or ends with a path separator; for several inputs, or a folder, it is the
  output folder (created if needed).
- Two inputs never share one output (``a.png`` and ``a.jpg`` -> ``a.gcz``): the first in input
  order keeps the name, the other fails, ``force`` or not.
- Nothing is lost: no existing file is replaced without ``force``; every output is written
  to a temporary file and renamed into place, so a failure or Ctrl-C leaves each output
  complete or absent.
- A problem with one file is reported in its :class:`FileResult` and the others go on. A
  problem with the whole run raises :class:`~gancomp.errors.GancompError`: an unknown model,
  an output that cannot fit the inputs (:class:`~gancomp.errors.UsageError`), a full disk
  (:class:`BatchStopped`, which carries the results of the files finished before).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeAlias

# UsageError lived here first: gancomp.batch.UsageError stays importable.
from gancomp.errors import GancompError, InputError, UsageError
from gancomp.io.files import NoSpaceError, check_writable_target

if TYPE_CHECKING:
    from gancomp.runtime.rate_control import RateTarget

StrPath: TypeAlias = "str | os.PathLike[str]"

#: Suffix of compressed files; decompressed files end in DECODED_SUFFIX.
GCZ_SUFFIX = ".gcz"
DECODED_SUFFIX = ".decoded.png"

_IO_THREADS = 4  # overlaps PNG coding and fsync waits; more threads only contend
_CHUNK_FILES = 256  # files per network call: bounds the memory a huge folder takes


@dataclass
class FileResult:
    """What happened to one input file.

    On success ``error`` is None and ``output`` is the file written. On failure ``error`` is a
    one-line message that names the input, ``exception`` the error itself, and the fields not
    known by then are None (``output`` is the output the input was meant to have).
    """

    path: Path
    output: Path | None = None
    output_bytes: int = 0  # bytes written (0 on failure)
    input_bytes: int = 0
    width: int | None = None
    height: int | None = None
    category: str | None = None
    quality: int | None = None
    bpp: float | None = None  # bits per pixel of the .gcz file, header included
    bit_depth_reduced: bool = False  # a 16-bit source stored with 8 bits per sample
    effort: str | None = None  # the encoder effort asked for (compress)
    realism: float | None = None  # decompress: the realism weight the generator ran at
    # Rate control (compress with a target; None otherwise):
    target: RateTarget | None = None
    target_met: bool | None = None  # False: the nearest file was written (``nearest``)
    psnr: float | None = None  # as `gancomp compare` measures it; computed for PSNR targets
    target_miss: str | None = None  # how far the nearest file is, when the target is missed
    error: str | None = None
    exception: BaseException | None = field(default=None, repr=False, compare=False)

    @property
    def ok(self) -> bool:
        return self.error is None


#: Called once per input when it is done (written or failed), in input order, with its
#: result and the number of input files.
ProgressCallback = Callable[[FileResult, int], None]


class BatchStopped(GancompError):
    """The run stopped before the end (a full disk); ``results`` holds the files done before."""

    def __init__(self, message: str, results: list[FileResult]):
        super().__init__(message)
        self.results = results


def compress_files(
    inputs: StrPath | Iterable[StrPath],
    category: str,
    quality: int | None = None,
    output: StrPath | None = None,
    force: bool = False,
    models_dir: StrPath | None = None,
    progress: ProgressCallback | None = None,
    *,
    target_bpp: float | None = None,
    target_bytes: int | None = None,
    target_psnr: float | None = None,
    nearest: bool = False,
    effort: str = "normal",
    effort_progress: bool = False,
) -> list[FileResult]:
    """Compress image files (or folders of them) to ``.gcz`` files; one result per input file.

    ``category`` names a model or is ``"auto"`` (a model per image, see
    :mod:`gancomp.runtime.auto`); ``quality`` is 1 (smallest) to 8 (best), 4 by default.
    Output names and places follow the module's rules. Same-size images go through the
    network in batches; if a batch fails, its files are retried one by one so that one bad
    file sinks only itself.

    Rate control (:mod:`gancomp.runtime.rate_control`), instead of ``quality``: at most one of
    ``target_bpp`` or ``target_bytes`` (each image gets the highest quality whose whole file
    is not larger) or ``target_psnr`` (the smallest file whose PSNR, as ``gancomp compare``
    measures it, is at least that many dB). An image that no level brings to its target fails
    with a message naming the nearest value (a
    :class:`~gancomp.runtime.rate_control.TargetUnreachable`), unless ``nearest``: the nearest
    file is written then (the smallest, or the highest PSNR), with ``target_met`` False.

    ``effort`` (:mod:`gancomp.refine`): ``"normal"`` is the encoder's single pass; ``"fast"``
    and ``"max"`` refine each image's latents (TensorFlow, the ``train`` extra; without it a
    GancompError before any work), with a target for every file the search tries.
    ``effort_progress`` shows a bar on stderr while latents are refined.

    Raises GancompError when nothing can be done (no model for ``category``, no images in
    the given folders, a bad ``output``), UsageError for a quality together with a target, an
    invalid target or ``nearest`` without one, and BatchStopped when the disk fills up.
    """
    from gancomp import refine
    from gancomp.io.files import atomic_write_bytes
    from gancomp.io.images import IMAGE_SUFFIXES, load_image
    from gancomp.runtime import codec as codec_mod
    from gancomp.runtime import rate_control
    from gancomp.runtime.models import available_categories

    target = rate_control.RateTarget.from_options(target_bpp, target_bytes, target_psnr)
    if target is not None and quality is not None:
        raise UsageError("a quality and a target exclude each other: give one")
    if nearest and target is None:
        raise UsageError("nearest applies to a target (bpp, bytes or PSNR) only")
    if quality is None:
        quality = codec_mod.DEFAULT_QUALITY
    refine.check_effort(effort)
    refine.require_refiner(effort)  # TensorFlow, when the effort needs it: before any work
    files, many = expand_inputs(inputs, IMAGE_SUFFIXES)
    if not files:
        if many:
            raise GancompError("no images found in the given folder(s)")
        return []
    if category == "auto":
        if not available_categories(models_dir):
            raise GancompError("no models available for --category auto")
    elif target is not None:  # an unknown model fails before any work
        codec_mod.load_codec(category, models_dir)
    else:  # an unknown model or quality fails before any work
        codec_mod.load_codec(category, models_dir).level_of(quality)
    targets = _plan_outputs(files, many, output, GCZ_SUFFIX, _check_gcz_name)

    def load(src: Path, out: Path) -> tuple[Any, int]:
        check_writable_target(out, force)
        image = load_image(src)
        return image, _input_size(src)

    def code(items: list[tuple[Any, int]]) -> list[_Coded | GancompError]:
        images = [image for image, _ in items]
        if target is not None:
            encoder = {}
            if refine.refines(effort):
                encoder["make_encoder"] = refine.effort_encoder(effort, progress=effort_progress)
            return [
                _Coded(c.data, c.category, c.quality, c)
                if c.met or nearest
                else rate_control.TargetUnreachable(c)
                for c in rate_control.compress_to_targets(
                    images, category, target, models_dir, **encoder
                )
            ]
        if refine.refines(effort):
            return [
                _Coded(data, chosen, quality)
                for data, chosen in refine.compress_many(
                    images, category, quality, effort, models_dir, progress=effort_progress
                )
            ]
        if category == "auto":
            from gancomp.runtime.auto import compress_auto

            return [
                _Coded(data, chosen, quality)
                for data, chosen in compress_auto(images, quality, models_dir)
            ]
        return [
            _Coded(data, category, quality)
            for data in codec_mod.compress_many(images, category, quality, models_dir)
        ]

    def write(src: Path, out: Path, item: tuple[Any, int], coded: _Coded) -> FileResult:
        image, in_bytes = item
        atomic_write_bytes(out, coded.data, force=force)
        rate = coded.choice
        return FileResult(
            path=src,
            output=out,
            output_bytes=len(coded.data),
            input_bytes=in_bytes,
            width=image.width,
            height=image.height,
            category=coded.category,
            quality=coded.quality,
            bpp=8 * len(coded.data) / (image.width * image.height),
            bit_depth_reduced=image.bit_depth_reduced,
            effort=effort,
            target=rate.target if rate else None,
            target_met=rate.met if rate else None,
            psnr=rate.psnr if rate else None,
            target_miss=rate.shortfall() if rate and not rate.met else None,
        )

    return _run(files, targets, load, code, lambda item: code([item])[0], write, progress)


@dataclass(frozen=True)
class _Coded:
    """One image's file, as the writer needs it."""

    data: bytes
    category: str
    quality: int
    choice: Any = None  # the rate_control.RateChoice, with a target


def decompress_files(
    inputs: StrPath | Iterable[StrPath],
    output: StrPath | None = None,
    force: bool = False,
    models_dir: StrPath | None = None,
    progress: ProgressCallback | None = None,
    realism: float = 0.0,
) -> list[FileResult]:
    """Decompress ``.gcz`` files (or folders of them) to images; one result per input file.

    Each file is decoded with the model named in its header, to ``<stem>.decoded.png``
    (or ``output``, whose extension picks the format: .png, .bmp, .tif, .webp, all lossless).
    Output names and places follow the module's rules. ``realism`` in [0, 1] is the
    decode-time realism weight (:func:`gancomp.runtime.codec.decompress`).

    Raises GancompError when nothing can be done (no .gcz files in the given folders, a bad
    ``output``) and BatchStopped when the disk fills up.
    """
    from gancomp.io.images import save_image
    from gancomp.runtime import codec as codec_mod
    from gancomp.runtime.realism import check_realism

    realism = check_realism(realism)
    files, many = expand_inputs(inputs, {GCZ_SUFFIX})
    if not files:
        if many:
            raise GancompError("no .gcz files found in the given folder(s)")
        return []
    targets = _plan_outputs(files, many, output, DECODED_SUFFIX, _check_image_name)

    def load(src: Path, target: Path) -> tuple[bytes, Any]:
        check_writable_target(target, force)
        data = read_input(src)
        return data, codec_mod.read_header(data)[0]

    def code(items: list[tuple[bytes, Any]]) -> list[Any]:
        return codec_mod.decompress_many([data for data, _ in items], models_dir, realism)

    def write(src: Path, target: Path, item: tuple[bytes, Any], image: Any) -> FileResult:
        (data, header) = item
        save_image(target, image.rgb, alpha=image.alpha, grayscale=image.grayscale, force=force)
        return FileResult(
            path=src,
            output=target,
            output_bytes=_output_size(target),
            input_bytes=len(data),
            width=header.width,
            height=header.height,
            category=header.category,
            quality=header.quality,
            bpp=8 * len(data) / (header.width * header.height),
            bit_depth_reduced=header.reduced_16bit,
            realism=image.realism,
        )

    return _run(files, targets, load, code, lambda item: code([item])[0], write, progress)


def file_info(path: StrPath) -> dict[str, Any]:
    """Every header field of a ``.gcz`` file, its payload size and bpp (no model needed).

    Raises GancompError (naming the file) if it cannot be read or is not a valid .gcz file.
    """
    from gancomp.runtime.codec import read_header

    src = Path(path)
    data = read_input(src)
    try:
        header, payload = read_header(data)
    except GancompError as exc:
        raise type(exc)(name_input(src, exc)) from exc
    return {
        "file": os.fspath(path),
        "format_version": header.version,
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


def expand_inputs(
    inputs: StrPath | Iterable[StrPath], suffixes: Collection[str]
) -> tuple[list[Path], bool]:
    """The input files, and whether there are several (several inputs, or any folder).

    A folder stands for its files whose suffix (lower-cased) is in ``suffixes``, sorted by
    name, hidden ones skipped. Other inputs are taken as files (a missing one fails later,
    as a per-file error).
    """
    names = [inputs] if isinstance(inputs, (str, os.PathLike)) else list(inputs)
    files: list[Path] = []
    many = len(names) > 1
    for name in names:
        path = Path(name)
        if path.is_dir():
            many = True
            files.extend(
                sorted(
                    f
                    for f in path.iterdir()
                    if f.suffix.lower() in suffixes and not f.name.startswith(".") and f.is_file()
                )
            )
        else:
            files.append(path)
    return files, many


def read_input(path: Path) -> bytes:
    """The bytes of an input file; InputError naming it if it cannot be read."""
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise InputError(f"cannot read '{path}': no such file") from None
    except IsADirectoryError:
        raise InputError(f"cannot read '{path}': is a directory") from None
    except OSError as exc:
        raise InputError(f"cannot read '{path}': {exc.strerror or exc}") from None


def name_input(path: Path, exc: BaseException) -> str:
    """``exc`` as one line that names the input ``path`` once."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if f"'{path}'" in text else f"{path}: {text}"


# -- output names ------------------------------------------------------------------


def _plan_outputs(
    files: list[Path],
    many: bool,
    output: StrPath | None,
    suffix: str,
    check_file_name: Callable[[Path], None],
) -> list[Path]:
    """The output of each input file (see the module's rules)."""
    if output is None:
        return [f.with_name(f.stem + suffix) for f in files]
    out = Path(output)
    names_folder = os.fspath(output).endswith(("/", os.sep))
    if many or names_folder or out.is_dir():
        _make_folder(out)
        return [out / (f.stem + suffix) for f in files]
    check_file_name(out)
    return [out]


def _make_folder(folder: Path) -> None:
    if folder.exists() and not folder.is_dir():
        raise UsageError(f"output '{folder}' is a file, but several inputs need an output folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise GancompError(f"cannot create folder '{folder}': {exc.strerror or exc}") from None


def _check_gcz_name(out: Path) -> None:
    if out.suffix.lower() != GCZ_SUFFIX:
        raise UsageError(
            f"output '{out}' must end in {GCZ_SUFFIX} (or name a folder): "
            "compress writes .gcz files"
        )


def _check_image_name(out: Path) -> None:
    from gancomp.io.images import output_format

    try:
        output_format(out)
    except GancompError as exc:
        raise UsageError(str(exc)) from None


def _input_size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError as exc:  # the file vanished after it was read
        raise InputError(f"cannot read '{path}': {exc.strerror or exc}") from None


def _output_size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:  # written, then removed by someone else: the write itself succeeded
        return 0


# -- the engine --------------------------------------------------------------------


@contextlib.contextmanager
def _io_pool() -> Iterator[ThreadPoolExecutor]:
    """Threads for file reads and atomic writes (PNG codecs and fsync release the GIL).

    On Ctrl-C or an error, writes not yet started are cancelled and those under way
    finish: every output is still either complete or absent.
    """
    pool = ThreadPoolExecutor(max_workers=_IO_THREADS, thread_name_prefix="gancomp-io")
    try:
        yield pool
    except BaseException:
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    pool.shutdown(wait=True)


def _attempt(fn: Callable[..., Any], *args: Any) -> Any:
    """``fn(*args)``, or the GancompError it raised (a per-file failure, as a value)."""
    try:
        return fn(*args)
    except GancompError as exc:
        return exc


def _failure(src: Path, target: Path | None, exc: BaseException) -> FileResult:
    return FileResult(path=src, output=target, error=name_input(src, exc), exception=exc)


def _code_chunk(
    code: Callable[[list[Any]], list[Any]], code_one: Callable[[Any], Any], items: list[Any]
) -> list[Any]:
    """Run the network on ``items``; per item its output or the GancompError it caused."""
    if not items:
        return []
    try:
        return code(items)
    except GancompError as exc:
        if len(items) == 1:
            return [exc]
        # One bad file must not sink the batch: code the files one by one.
        return [_attempt(code_one, item) for item in items]


def _run(
    files: Sequence[Path],
    targets: Sequence[Path],
    load: Callable[[Path, Path], Any],
    code: Callable[[list[Any]], list[Any]],
    code_one: Callable[[Any], Any],
    write: Callable[[Path, Path, Any, Any], FileResult],
    progress: ProgressCallback | None,
) -> list[FileResult]:
    """Load (pool), code (batched), write (pool) the files chunk by chunk, in input order."""
    total = len(files)
    results: list[FileResult] = []
    claimed: dict[str, Path] = {}

    def done(result: FileResult) -> None:
        results.append(result)
        if progress is not None:
            progress(result, total)

    with _io_pool() as pool:
        for start in range(0, total, _CHUNK_FILES):
            chunk = list(
                zip(files[start : start + _CHUNK_FILES], targets[start : start + _CHUNK_FILES])
            )
            failed: dict[int, FileResult] = {}
            jobs = []
            for i, (src, target) in enumerate(chunk):
                # Claimed in input order, so of two inputs with one output the first keeps it.
                key = os.path.normcase(os.path.abspath(target))
                if key in claimed:
                    error = GancompError(
                        f"output '{target}' is also the output of '{claimed[key]}'"
                    )
                    failed[i] = _failure(src, target, error)
                else:
                    claimed[key] = src
                    jobs.append(i)
            pairs = [chunk[i] for i in jobs]
            loaded = dict(zip(jobs, pool.map(_attempt, [load] * len(pairs), *zip(*pairs))))
            ready = []
            for i in jobs:
                if isinstance(loaded[i], GancompError):
                    failed[i] = _failure(*chunk[i], loaded[i])
                else:
                    ready.append(i)
            writes: dict[int, Future] = {}
            for i, coded in zip(ready, _code_chunk(code, code_one, [loaded[i] for i in ready])):
                if isinstance(coded, GancompError):
                    failed[i] = _failure(*chunk[i], coded)
                else:
                    writes[i] = pool.submit(_attempt, write, *chunk[i], loaded[i], coded)
            for i, (src, target) in enumerate(chunk):
                if i in failed:
                    done(failed[i])
                    continue
                outcome = writes[i].result()
                # A full disk stops the run; an unwritable folder does not. A full filesystem
                # fails every further write to it, or lets a few small files through at
                # random. Outputs go next to their inputs, so one run may write to many
                # folders, and one folder's permissions say nothing about the others: its files
                # fail one by one, before any coding (check_writable_target).
                if isinstance(outcome, NoSpaceError):
                    raise _stop(outcome, chunk, i, failed, writes, results, total, done)
                done(
                    _failure(src, target, outcome) if isinstance(outcome, GancompError) else outcome
                )
    return results


def _stop(
    cause: NoSpaceError,
    chunk: list[tuple[Path, Path]],
    at: int,
    failed: dict[int, FileResult],
    writes: dict[int, Future],
    results: list[FileResult],
    total: int,
    done: Callable[[FileResult], None],
) -> BatchStopped:
    """A full disk ends the run: every further write would fail too, or worse, succeed for
    some small files only. Cancel the writes not started, report those that finished."""
    for future in writes.values():
        future.cancel()
    wait(list(writes.values()))
    for i in range(at + 1, len(chunk)):
        if i in failed:
            done(failed[i])
        elif not writes[i].cancelled():
            outcome = writes[i].result()
            if isinstance(outcome, FileResult):
                done(outcome)
            elif not isinstance(outcome, NoSpaceError):
                done(_failure(*chunk[i], outcome))
    written = sum(r.ok for r in results)
    message = str(cause)
    if total > 1:
        message += f" (stopped after writing {written} of {total} files)"
    stopped = BatchStopped(message, results)
    stopped.__cause__ = cause
    return stopped
