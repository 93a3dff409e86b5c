"""Compress-then-decode through the real bitstream, and its rate-distortion summary.

:func:`round_trip` is the one compress-then-decode of the package: :func:`evaluate_model`
(the validation table of ``gancomp train``), ``gancomp bench`` and the scripts in
``scripts/`` all go through it.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from gancomp.coding.container import unpack
from gancomp.evaluation import metrics
from gancomp.runtime.codec import Codec


@dataclass
class RoundTrip:
    """The ``.gcz`` files of a batch of images, their decoded pixels and the coding times."""

    blobs: list[bytes]  # whole .gcz files, headers included
    decoded: list[np.ndarray]  # HxWx3 uint8, the size of the originals
    encode_seconds: float  # for the whole batch
    decode_seconds: float

    @property
    def sizes(self) -> list[int]:
        return [len(b) for b in self.blobs]


def round_trip(codec: Codec, images: Sequence[np.ndarray], quality: int) -> RoundTrip:
    """Compress HxWx3 uint8 ``images`` with ``codec`` at ``quality`` and decode the files."""
    t0 = time.perf_counter()
    blobs = codec.compress_arrays(list(images), quality)
    t1 = time.perf_counter()
    decoded = codec.decode_payloads([unpack(b) for b in blobs])
    t2 = time.perf_counter()
    return RoundTrip(blobs, [d.rgb for d in decoded], t1 - t0, t2 - t1)


def evaluate_model(
    model_path: str | os.PathLike,
    images: Sequence[np.ndarray],
    levels: Sequence[int] | None = None,
) -> list[dict]:
    """Per level: mean bpp (whole .gcz file), PSNR, MS-SSIM, MSE, L1 and coding times."""
    codec = Codec.from_path(model_path)
    rows = []
    for q in list(levels or range(1, codec.levels + 1)):
        rt = round_trip(codec, images, q)
        row = summarise(q, images, rt.decoded, rt.sizes)
        row["encode_s_per_image"] = rt.encode_seconds / len(images)
        row["decode_s_per_image"] = rt.decode_seconds / len(images)
        rows.append(row)
    return rows


def summarise(
    quality, originals: Sequence[np.ndarray], decoded: Sequence[np.ndarray], sizes: Sequence[int]
) -> dict:
    """Means over images of bpp and the four metrics (PSNR averaged per image, in dB)."""
    # An exact reconstruction has infinite PSNR; it is counted and capped at 100 dB
    # for the mean, so one flat image cannot make a level's mean infinite.
    bpp, psnr, ssim, mse, l1 = [], [], [], [], []
    for a, b, n in zip(originals, decoded, sizes):
        bpp.append(8.0 * n / (a.shape[0] * a.shape[1]))
        m = metrics.mse(a, b)
        mse.append(m)
        psnr.append(min(metrics.psnr_from_mse(m), 100.0) if m > 0 else 100.0)
        ssim.append(metrics.ms_ssim(a, b)[0])
        l1.append(metrics.l1(a, b))
    return {
        "quality": quality,
        "images": len(sizes),
        "bpp": float(np.mean(bpp)),
        "psnr": float(np.mean(psnr)),
        "ms_ssim": float(np.mean(ssim)),
        "ms_ssim_db": float(metrics.ms_ssim_db(float(np.mean(ssim)))),
        "mse": float(np.mean(mse)),
        "l1": float(np.mean(l1)),
        "exact": int(sum(m == 0 for m in mse)),
    }
