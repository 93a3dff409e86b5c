"""``--category auto``: pick, per image, the model that codes it best.

Every candidate model compresses the image; the file with the smallest
rate-distortion cost is kept::

    J = bpp + lambda_q * MSE

with ``bpp`` the whole ``.gcz`` file's bits per pixel (header included: that is
what the user stores) and ``MSE`` the mean squared error of the decoded RGB
pixels on the 0-255 scale. This is the loss the models were trained to minimise
(``rate_bpp + lambda * MSE_255``, see :mod:`gancomp.training.trainer`), so
``lambda_q`` is the price, in bits per pixel, of one unit of MSE at quality
``q``: a model wins by being smaller for the same error or better for the same
size, not by spending more bits. (The previous rule, highest PSNR, favoured the
model that spends the most bits: it gave a flower photo the airplane model's
file, twice the size of the flower model's.)

Which lambda: each model has its own trained table (``config.json``
``"lambdas"``), and ranking every candidate by its own lambda would compare
costs measured in different currencies (tried on 100 automobile val images at
level 1: the airplane model, trained at lambda 0.001 against the automobile
model's 0.0015, then won every one of them). All candidates are scored with one
lambda per quality, the geometric mean of the candidates' lambdas at that level.
Why the geometric mean: lambdas are scales (the tables are geometric ladders),
so their natural average is the geometric one; it equals the trained lambda
when the models agree, and it stays within their range when they do not (the
shipped tables differ by at most 1.5x at any level). The price is that adding a
model to the candidate set can move lambda_q slightly; the candidates of one
call are scored with the same lambda, so the choice never depends on which
other images share the call. Ties (equal cost) go to the smaller file, then to
the first category name.

The choice follows the models' curves, not the image's kind: the shipped flower
model's upper levels flatten near 31 dB, so from about quality 5 on the CIFAR
models code most flower photos at a lower cost (docs/RESULTS.md, "Choosing the
category automatically").
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from gancomp.errors import GancompError, InputError


@dataclass(frozen=True)
class Candidate:
    """One model's result on one image."""

    category: str
    data: bytes  # the .gcz file
    bpp: float  # whole file, header included
    mse: float  # decoded RGB against the source RGB, 0-255 scale
    cost: float  # bpp + lambda * mse


@dataclass(frozen=True)
class AutoChoice:
    """The choice for one image: the chosen candidate and all of them, in category order."""

    chosen: Candidate
    candidates: tuple[Candidate, ...]


def scoring_lambda(lambdas: Sequence[float]) -> float:
    """The one lambda all candidates are scored with: the geometric mean of theirs."""
    if not lambdas or any(not (v > 0 and math.isfinite(v)) for v in lambdas):
        raise GancompError(f"cannot score with lambdas {list(lambdas)}: need positive values")
    return math.exp(sum(math.log(v) for v in lambdas) / len(lambdas))


def rd_cost(bpp: float, mse: float, lam: float) -> float:
    return bpp + lam * mse


def trained_lambda(codec, quality: int) -> float:
    """The lambda the model was trained with at ``quality`` (from its config.json)."""
    lambdas = codec.folder.config.get("lambdas")
    level = codec.level_of(quality)
    if not isinstance(lambdas, list) or len(lambdas) != codec.levels:
        raise GancompError(f"model folder {codec.folder.path}: config.json has no lambda table")
    return float(lambdas[level])


def _rgb(im) -> np.ndarray:
    from gancomp.io.images import Image

    return im.rgb if isinstance(im, Image) else np.asarray(im)


def choose_auto(
    images: Sequence,
    quality: int,
    models_dir: str | os.PathLike | None = None,
    categories: Sequence[str] | None = None,
) -> tuple[float, list[AutoChoice]]:
    """Score every candidate model on every image; returns (lambda used, one choice per image).

    ``images`` are :class:`gancomp.io.images.Image` objects or HxWx3 uint8 arrays.
    Candidates are ``categories`` (default: every available model) that have the
    requested quality level.
    """
    from gancomp.coding import container
    from gancomp.io.images import load_image
    from gancomp.runtime import codec as codec_mod
    from gancomp.runtime.models import available_categories

    cats = list(categories) if categories is not None else available_categories(models_dir)
    if not cats:
        raise GancompError("no models available for --category auto")
    codecs = {c: codec_mod.load_codec(c, models_dir) for c in cats}
    usable = [c for c in cats if 1 <= quality <= codecs[c].levels]
    if not usable:  # no model has this level: the first one says why
        codecs[cats[0]].level_of(quality)
        raise InputError(f"no model for --category auto has quality {quality}")
    lam = scoring_lambda([trained_lambda(codecs[c], quality) for c in usable])
    images = [load_image(im) if isinstance(im, (str, Path)) else im for im in images]
    rgb = [_rgb(im) for im in images]
    per_cat: dict[str, list[Candidate]] = {}
    for c in usable:
        blobs = codec_mod.compress_many(images, c, quality, models_dir)
        # Decode with this very codec: a file's header names the model's own category,
        # which need not be the folder name it was found under.
        decoded = codecs[c].decode_payloads([container.unpack(b) for b in blobs])
        row = []
        for src, data, dec in zip(rgb, blobs, decoded):
            diff = src.astype(np.float64) - dec.rgb.astype(np.float64)
            mse = float(np.mean(diff * diff))
            bpp = 8.0 * len(data) / (src.shape[0] * src.shape[1])
            row.append(Candidate(c, data, bpp, mse, rd_cost(bpp, mse, lam)))
        per_cat[c] = row
    choices = []
    for i in range(len(rgb)):
        cands = tuple(per_cat[c][i] for c in usable)
        best = min(cands, key=lambda k: (k.cost, len(k.data), k.category))
        choices.append(AutoChoice(best, cands))
    return lam, choices


def compress_auto(
    images: Sequence,
    quality: int,
    models_dir: str | os.PathLike | None = None,
    categories: Sequence[str] | None = None,
) -> list[tuple[bytes, str]]:
    """Compress each image with the model of smallest rate-distortion cost.

    Returns one ``(gcz bytes, category)`` per image. ``images`` are
    :class:`gancomp.io.images.Image` objects or HxWx3 uint8 arrays.
    """
    from gancomp.runtime import codec as codec_mod
    from gancomp.runtime.models import available_categories

    cats = list(categories) if categories is not None else available_categories(models_dir)
    if len(cats) == 1:  # nothing to choose: skip the decoding
        return [(b, cats[0]) for b in codec_mod.compress_many(images, cats[0], quality, models_dir)]
    _, choices = choose_auto(images, quality, models_dir, cats)
    return [(ch.chosen.data, ch.chosen.category) for ch in choices]
