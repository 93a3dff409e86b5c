#!/usr/bin/env python
"""Where a hyperprior model's bits go, per level: z and y bits, and the scale indexes.

    python scripts/hyperprior_diagnosis.py MODEL --data ../shared/data/flowers/val --every 25

MODEL is an exported model folder or a training checkpoint folder (``<output>.ckpt``,
exported first: needs the ``train`` extra). For every level, over the images (every
``--every``-th of the sorted folder): bits per pixel of z and of y under the frozen tables
(what the coder writes, escapes included, without the container), the mean scale index,
the fractions of y's elements at the first and the last index, and the mean |round(y -
mean)|. A model whose indexes pile up at the last index (scale 256) pays for that scale's
flat table on every such element: the sign of an index path that training left unstable.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

from gancomp.coding import hyperprior_spec as spec
from gancomp.evaluation.bench import list_images, load_rgb
from gancomp.runtime.codec import Codec


def level_rows(codec: Codec, images: list[np.ndarray]) -> list[dict]:
    rows = []
    codec._build()
    pixels = sum(im.shape[0] * im.shape[1] for im in images)
    for quality in range(1, codec.levels + 1):
        level = codec.level_of(quality)
        ys = codec.scaled_latents(images, quality)
        z_bits = y_bits = 0.0
        hist = np.zeros(spec.SCALE_COUNT, np.int64)
        abs_sum = 0.0
        zs = codec.hyper_latents(ys, level)  # with the level's z gain, as compress codes it
        for y, z_float in zip(ys, zs):
            z = np.round(z_float).astype(np.int32)
            mean = codec._hyper_means([z], [y.shape[:2]])[0]
            index = codec._scale_indexes([z], [y.shape[:2]])[0]
            residual = np.round(y - mean).astype(np.int32)
            z_bits += codec.z_coder.estimate_bits(z, level)
            y_bits += codec.y_coder.estimate_bits(residual, index.ravel())
            hist += np.bincount(index.ravel(), minlength=spec.SCALE_COUNT)
            abs_sum += float(np.abs(residual).sum())
        n = hist.sum()
        rows.append(
            {
                "quality": quality,
                "z_bpp": z_bits / pixels,
                "y_bpp": y_bits / pixels,
                "mean_index": float((np.arange(spec.SCALE_COUNT) * hist).sum() / n),
                "at_first": float(hist[0] / n),
                "at_last": float(hist[-1] / n),
                "mean_abs_residual": abs_sum / n,
            }
        )
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("model", type=Path)
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--every", type=int, default=25, help="take every N-th image")
    a = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        folder = a.model
        if (a.model / "checkpoint.npz").exists():
            sys.path.insert(0, str(Path(__file__).resolve().parent))
            from learning_curve import export_checkpoint

            folder = Path(tmp) / "model"
            step = export_checkpoint(a.model, folder)
            print(f"checkpoint step {step}")
        codec = Codec.from_path(folder)
        if not codec.hyperprior:
            sys.exit("the model has no hyperprior")
        images = load_rgb(list_images(a.data)[:: a.every])
        print(f"{len(images)} images")
        print("quality  z bpp  y bpp  mean index  at 0  at 63  mean |residual|")
        for r in level_rows(codec, images):
            print(
                f"{r['quality']:7} {r['z_bpp']:6.3f} {r['y_bpp']:6.3f} {r['mean_index']:11.1f} "
                f"{r['at_first']:5.1%} {r['at_last']:6.1%} {r['mean_abs_residual']:16.3f}"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
