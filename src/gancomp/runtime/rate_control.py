"""Rate control: per image, the quality level that meets a size or a quality target.

Targets (:class:`RateTarget`):

- ``bytes`` or ``bpp``: the highest quality whose whole ``.gcz`` file (header, alpha and all;
  bpp = 8 * file bytes / pixels) is not larger than the target;
- ``psnr``: the smallest file whose PSNR is at least the target, the PSNR that
  ``gancomp compare`` reports between the source and what ``gancomp decompress`` writes: 8-bit
  RGB, the decoded gray of a grayscale image being the rounded channel mean, alpha (lossless)
  composited on white, a 16-bit source scaled to 8 bits.

The search, and why it is exact. A model's levels are monotone in rate and distortion only
approximately: a level can write a larger file than the level above it, or decode worse. So
the search assumes no order among the levels' sizes or PSNRs; it skips only levels that
provably cannot be the answer, and every check is made on the very bytes that are written:

- Size targets scan the levels from the highest quality down and stop, per image, at the first
  whose file fits. Every level above it was encoded and did not fit, so it is the
  highest-quality file that fits, whatever the levels below it do. One batched encoder pass per
  level, over the images not yet settled; no decoding. (A bisection needs monotone sizes to be
  exact and would save a few of at most ``levels`` passes.)
- The PSNR target needs the size of every level (the smallest file that meets the target may
  be at any level), so every level is encoded, one batched pass each. The files are then
  decoded in increasing size (equal sizes: higher quality first) and the first whose PSNR meets
  the target is the answer: every smaller file was decoded and missed it. Decoding stops there,
  so a target met by small files costs few decodes.

Hence a size-target file never exceeds its target and a PSNR-target file always meets it, or
the target is reported unreachable (:class:`TargetUnreachable`) with the nearest file (the
smallest one, or the one of highest PSNR) at hand for callers that ask to write it. The PSNR is
that of this machine's decoding; decoded pixels are exact on one machine and within one level
across CPUs (docs/FORMAT.md), so another CPU may measure a PSNR a hair away.

The encoder is a parameter (:data:`LevelEncoder`: images and a quality in, ``.gcz`` files
out), so an encoder that spends more time per level plugs into the same search.

``category="auto"``: the category of each image is chosen as ``--category auto`` chooses it at
the default quality (4, the middle of the ladder; :func:`gancomp.runtime.auto.compress_auto`),
then that model's levels are searched. Searching every model's levels would multiply the
encoder passes by the number of models, and comparing files of different models under a size
target needs a distortion price that the auto policy only defines per level.
"""

from __future__ import annotations

import math
import numbers
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from gancomp.errors import InputError, UsageError

#: Target kinds, in the order options are named in messages.
KINDS = ("bpp", "bytes", "psnr")

#: Encodes images at one quality (1-based) to whole ``.gcz`` files, one per image.
LevelEncoder = Callable[[Sequence["Image"], int], list[bytes]]

if TYPE_CHECKING:
    from gancomp.io.images import Image
    from gancomp.runtime.codec import Codec


def file_bpp(size: int, width: int, height: int) -> float:
    """Bits per pixel of a ``size``-byte file: the expression every bpp of gancomp uses."""
    return 8 * size / (width * height)


@dataclass(frozen=True)
class RateTarget:
    """What to aim at: ``kind`` is ``"bpp"``, ``"bytes"`` or ``"psnr"`` (dB)."""

    kind: str
    value: float

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown target kind {self.kind!r} (use one of {', '.join(KINDS)})")
        v = self.value
        ok = isinstance(v, numbers.Real) and not isinstance(v, bool)
        if not ok or not math.isfinite(v) or v <= 0:
            raise UsageError(f"target {self.kind} must be a positive finite number, got {v!r}")
        if self.kind == "bytes" and v != int(v):
            raise UsageError(f"target bytes must be a whole number, got {v!r}")

    @classmethod
    def from_options(
        cls,
        target_bpp: float | None = None,
        target_bytes: int | None = None,
        target_psnr: float | None = None,
    ) -> RateTarget | None:
        """The one target given, or None; several are a UsageError."""
        given = [
            (kind, value)
            for kind, value in zip(KINDS, (target_bpp, target_bytes, target_psnr))
            if value is not None
        ]
        if len(given) > 1:
            names = " and ".join(f"target {kind}" for kind, _ in given)
            raise UsageError(f"{names} exclude each other: give one target")
        return cls(*given[0]) if given else None

    @property
    def is_size(self) -> bool:
        return self.kind != "psnr"

    def fits(self, size: int, width: int, height: int) -> bool:
        """Whether a ``size``-byte file of a ``width`` x ``height`` image meets a size target."""
        if self.kind == "bytes":
            return size <= self.value
        return file_bpp(size, width, height) <= self.value

    def describe(self) -> str:
        unit = {"bpp": "bpp", "bytes": "bytes", "psnr": "dB"}[self.kind]
        return f"{_number(self.value)} {unit}"


@dataclass(frozen=True)
class RateChoice:
    """The file chosen for one image, and whether it meets the target.

    When ``met`` is False, ``data`` is the nearest file: the smallest one for a size target,
    the one of highest PSNR for a PSNR target.
    """

    data: bytes  # the whole .gcz file
    category: str
    quality: int  # 1-based, as written in the file's header
    width: int
    height: int
    target: RateTarget
    met: bool
    psnr: float | None = None  # computed for PSNR targets only; inf for an exact decoding

    @property
    def size(self) -> int:
        return len(self.data)

    @property
    def bpp(self) -> float:
        return file_bpp(self.size, self.width, self.height)

    def shortfall(self) -> str:
        """One line saying how far the nearest file is from the target (when not met)."""
        target = self.target
        if target.kind == "bytes":
            return (
                f"smallest file is {self.size} bytes (quality {self.quality}), "
                f"above the target {target.describe()}"
            )
        if target.kind == "bpp":
            reached, shown = _apart(self.bpp, target.value)
            return (
                f"smallest file is {reached} bpp (quality {self.quality}, {self.size} bytes), "
                f"above the target {shown} bpp"
            )
        reached, shown = _apart(self.psnr, target.value)
        return (
            f"highest PSNR is {reached} dB (quality {self.quality}, {self.size} bytes), "
            f"below the target {shown} dB"
        )


class TargetUnreachable(InputError):
    """No level meets the target; ``choice`` holds the nearest file."""

    def __init__(self, choice: RateChoice):
        super().__init__(choice.shortfall())
        self.choice = choice


def _number(value: float) -> str:
    return format(value, ".15g")


def _apart(reached: float, target: float) -> tuple[str, str]:
    """``reached`` and ``target`` printed with the fewest decimals (at least 2) that tell
    them apart, so that a miss never reads as "0.30 above 0.30"."""
    for decimals in range(2, 16):
        a = f"{reached:.{decimals}f}"
        if a != f"{target:.{decimals}f}":
            return a, _number(target)
    return _number(reached), _number(target)


# -- the search ----------------------------------------------------------------------------


def standard_encoder(codec: Codec) -> LevelEncoder:
    """The codec's single encoder pass (what ``gancomp compress -q`` writes)."""

    def encode(images: Sequence[Image], quality: int) -> list[bytes]:
        return codec.compress_arrays(
            [im.rgb for im in images],
            quality,
            alphas=[im.alpha for im in images],
            grayscale=[im.grayscale for im in images],
            reduced_16bit=[im.bit_depth_reduced for im in images],
        )

    return encode


def search(
    images: Sequence[Image],
    target: RateTarget,
    codec: Codec,
    encode: LevelEncoder | None = None,
    category: str | None = None,
) -> list[RateChoice]:
    """The file meeting ``target`` for each image, or the nearest one (``met`` False).

    ``images`` are :class:`gancomp.io.images.Image` objects; ``encode`` defaults to the
    codec's own pass (:func:`standard_encoder`); ``category`` labels the choices (default: the
    codec's). Files are decoded with ``codec``. See the module's docstring for the search.
    """
    encode = encode or standard_encoder(codec)
    label = category or codec.category
    if not images:
        return []
    if target.is_size:
        return _search_size(images, target, codec.levels, encode, label)
    return _search_psnr(images, target, codec, encode, label)


def _search_size(
    images: Sequence[Image], target: RateTarget, levels: int, encode: LevelEncoder, label: str
) -> list[RateChoice]:
    chosen: list[RateChoice | None] = [None] * len(images)
    smallest: dict[int, tuple[int, bytes]] = {}  # image -> (quality, file) of the smallest file
    pending = list(range(len(images)))
    for quality in range(levels, 0, -1):
        if not pending:
            break
        files = encode([images[i] for i in pending], quality)
        still = []
        for i, data in zip(pending, files, strict=True):
            im = images[i]
            if target.fits(len(data), im.width, im.height):
                chosen[i] = _choice(im, data, label, quality, target, True)
                continue
            # Levels go down: a strict "<" keeps the higher quality of two equal sizes.
            if i not in smallest or len(data) < len(smallest[i][1]):
                smallest[i] = (quality, data)
            still.append(i)
        pending = still
    for i in pending:
        quality, data = smallest[i]
        chosen[i] = _choice(images[i], data, label, quality, target, False)
    return chosen  # type: ignore[return-value]


def _search_psnr(
    images: Sequence[Image], target: RateTarget, codec: Codec, encode: LevelEncoder, label: str
) -> list[RateChoice]:
    from gancomp.evaluation.metrics import psnr
    from gancomp.io.images import to_rgb_for_metrics

    n = len(images)
    files: list[dict[int, bytes]] = [{} for _ in range(n)]
    for quality in range(1, codec.levels + 1):
        for i, data in enumerate(encode(images, quality)):
            files[i][quality] = data
    order = [sorted(f, key=lambda q, f=f: (len(f[q]), -q)) for f in files]
    psnrs: list[dict[int, float]] = [{} for _ in range(n)]
    chosen: list[RateChoice | None] = [None] * n
    pending = list(range(n))
    step = 0
    while pending:
        # Round `step`: each unsettled image's step-th smallest file, decoded per level.
        by_level: dict[int, list[int]] = {}
        for i in pending:
            by_level.setdefault(order[i][step], []).append(i)
        for quality, idx in sorted(by_level.items()):
            views = decoded_views(codec, [files[i][quality] for i in idx])
            for i, view in zip(idx, views, strict=True):
                psnrs[i][quality] = psnr(to_rgb_for_metrics(images[i]), view)
        still = []
        for i in pending:
            quality = order[i][step]
            if psnrs[i][quality] >= target.value:
                chosen[i] = _choice(
                    images[i], files[i][quality], label, quality, target, True, psnrs[i][quality]
                )
            elif step + 1 == len(order[i]):  # every level decoded, none meets the target
                best = max(psnrs[i], key=lambda q, i=i: (psnrs[i][q], -len(files[i][q]), q))
                chosen[i] = _choice(
                    images[i], files[i][best], label, best, target, False, psnrs[i][best]
                )
            else:
                still.append(i)
        pending = still
        step += 1
    return chosen  # type: ignore[return-value]


def decoded_views(codec: Codec, files: Sequence[bytes]) -> list[np.ndarray]:
    """The HxWx3 uint8 pixels ``gancomp compare`` sees in what ``gancomp decompress`` writes
    for each file: the gray of a grayscale image is the rounded channel mean, alpha is
    composited on white."""
    from gancomp.coding import container
    from gancomp.io.images import from_array, to_array, to_rgb_for_metrics

    decoded = codec.decode_payloads([container.unpack(f) for f in files])
    return [to_rgb_for_metrics(from_array(to_array(d.rgb, d.alpha, d.grayscale))) for d in decoded]


def _choice(
    image: Image,
    data: bytes,
    label: str,
    quality: int,
    target: RateTarget,
    met: bool,
    psnr: float | None = None,
) -> RateChoice:
    return RateChoice(data, label, quality, image.width, image.height, target, met, psnr)


# -- categories and the public entry points -------------------------------------------------


def compress_to_targets(
    images: Sequence[Image],
    category: str,
    target: RateTarget,
    models_dir: str | os.PathLike | None = None,
    make_encoder: Callable[[Codec], LevelEncoder] = standard_encoder,
) -> list[RateChoice]:
    """:func:`search` for each image with the model ``category`` (or ``"auto"``: see the
    module's docstring); ``make_encoder`` builds the level encoder of a codec."""
    from gancomp.runtime.codec import DEFAULT_QUALITY, load_codec

    if category == "auto":
        from gancomp.runtime.auto import compress_auto

        categories = [cat for _, cat in compress_auto(images, DEFAULT_QUALITY, models_dir)]
    else:
        categories = [category] * len(images)
    out: list[RateChoice | None] = [None] * len(images)
    for cat in dict.fromkeys(categories):
        idx = [i for i, c in enumerate(categories) if c == cat]
        codec = load_codec(cat, models_dir)
        found = search([images[i] for i in idx], target, codec, make_encoder(codec), cat)
        for i, choice in zip(idx, found, strict=True):
            out[i] = choice
    return out  # type: ignore[return-value]


def compress_to_target(
    image: object,
    category: str,
    *,
    target_bpp: float | None = None,
    target_bytes: int | None = None,
    target_psnr: float | None = None,
    nearest: bool = False,
    models_dir: str | os.PathLike | None = None,
) -> RateChoice:
    """Compress one image to the file that meets one target; ``.data`` holds its bytes.

    ``image`` is what :func:`gancomp.compress` takes (a path, a PIL image or a uint8 array).
    Give exactly one of ``target_bpp`` (whole file), ``target_bytes`` (whole file) or
    ``target_psnr`` (dB, as ``gancomp compare`` measures the decoded image). Raises
    :class:`TargetUnreachable` (carrying the nearest file as ``.choice``) when no level meets
    the target, unless ``nearest`` is true: the nearest file is returned then, with ``met``
    False.
    """
    target = RateTarget.from_options(target_bpp, target_bytes, target_psnr)
    if target is None:
        raise UsageError("give one of target_bpp, target_bytes or target_psnr")
    [choice] = compress_to_targets([_as_image(image)], category, target, models_dir)
    if not choice.met and not nearest:
        raise TargetUnreachable(choice)
    return choice


def _as_image(image: object) -> Image:
    from gancomp.io.images import Image, from_array, from_pil, load_image

    if isinstance(image, Image):
        return image
    if isinstance(image, (str, os.PathLike)):
        return load_image(Path(image))
    if hasattr(image, "mode") and hasattr(image, "getbands"):  # a PIL image
        return from_pil(image)
    return from_array(np.asarray(image))
