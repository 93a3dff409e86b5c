"""``--category auto``: pick, per image, the model that codes it best."""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np

from gancomp.errors import GancompError


def compress_auto(
    images: Sequence,
    quality: int,
    models_dir: str | os.PathLike | None = None,
    categories: Sequence[str] | None = None,
) -> list[tuple[bytes, str]]:
    """Compress each image with every candidate model; keep one file and its category per image.

    ``images`` are :class:`gancomp.io.images.Image` objects or HxWx3 uint8 arrays.
    """
    from gancomp.evaluation import metrics
    from gancomp.io.images import Image
    from gancomp.runtime import codec as codec_mod
    from gancomp.runtime.models import available_categories

    cats = list(categories) if categories is not None else available_categories(models_dir)
    if not cats:
        raise GancompError("no models available for --category auto")
    if len(cats) == 1:
        return [(b, cats[0]) for b in codec_mod.compress_many(images, cats[0], quality, models_dir)]
    rgb = [im.rgb if isinstance(im, Image) else np.asarray(im) for im in images]
    candidates = {c: codec_mod.compress_many(images, c, quality, models_dir) for c in cats}
    decoded = {c: codec_mod.decompress_many(candidates[c], models_dir) for c in cats}
    out = []
    for i, im in enumerate(rgb):
        psnr = {c: metrics.psnr(im, decoded[c][i].rgb) for c in cats}
        best = max(psnr.values())
        ok = [c for c in cats if psnr[c] >= best - 0.1]
        chosen = min(ok, key=lambda c: (len(candidates[c][i]), c))
        out.append((candidates[chosen][i], chosen))
    return out
