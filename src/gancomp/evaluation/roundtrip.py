"""Rate-distortion of a model folder on a set of images, through the real bitstream."""

from __future__ import annotations

import os
import time
from collections.abc import Sequence

import numpy as np

from gancomp.evaluation import metrics


def evaluate_model(
    model_path: str | os.PathLike,
    images: Sequence[np.ndarray],
    levels: Sequence[int] | None = None,
) -> list[dict]:
    """Per level: mean bpp (whole .gcz file), PSNR, MS-SSIM, MSE, L1 and coding times."""
    from gancomp.coding.container import unpack
    from gancomp.runtime.codec import Codec

    codec = Codec.from_path(model_path)
    levels = list(levels or range(1, codec.levels + 1))
    rows = []
    for q in levels:
        t0 = time.perf_counter()
        blobs = codec.compress_arrays(list(images), q)
        t1 = time.perf_counter()
        decoded = codec.decode_payloads([unpack(b) for b in blobs])
        t2 = time.perf_counter()
        rows.append(summarise(q, images, [d.rgb for d in decoded], [len(b) for b in blobs]))
        rows[-1]["encode_s_per_image"] = (t1 - t0) / len(images)
        rows[-1]["decode_s_per_image"] = (t2 - t1) / len(images)
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
