#!/usr/bin/env python
"""The PSNR a model's transforms allow at each level when quantization costs nothing (issue 12:
does the flower model's top level stop at 35 dB for lack of bits, or of transform?).

    python scripts/transform_ceiling.py ../shared/data/flowers/val --category flower --every 10

Per level, the mean PSNR of the decoder fed the level's scaled latents rounded to the integer
grid (what a file carries), to a grid 2x and 4x finer, and not rounded at all. The last column
is the ceiling: no rate, however large, gets a level above it; if the rounded figure is already
near it, more bits cannot help and only the transforms (wider latent, less downsampling, a
larger decoder) can.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from _bench_common import add_models_dir_option, markdown_table
from gancomp.evaluation.bench import list_images, load_rgb
from gancomp.evaluation.metrics import psnr
from gancomp.runtime.codec import load_codec

#: Quantization grids, as steps relative to the file's integer grid (0 = not rounded).
STEPS = (1.0, 0.5, 0.25, 0.0)


def rounded(v: np.ndarray, step: float) -> np.ndarray:
    return v if step == 0 else np.round(v / step) * step


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("folder", type=Path)
    p.add_argument("--category", required=True)
    p.add_argument("--every", type=int, default=1, help="take every N-th image (sorted)")
    p.add_argument("--levels", default=None, help="levels, e.g. 1,4,8 (default: all)")
    add_models_dir_option(p)
    a = p.parse_args(argv)
    codec = load_codec(a.category, a.models_dir)
    images = load_rgb(list_images(a.folder)[:: a.every])
    levels = [int(q) for q in a.levels.split(",")] if a.levels else range(1, codec.levels + 1)
    rows = []
    for q in levels:
        ys = codec.scaled_latents(images, q)
        row: list[object] = [q]
        for step in STEPS:
            recs = codec.reconstruct([rounded(y, step) for y in ys], q)
            scores = [psnr(im, r[: im.shape[0], : im.shape[1]]) for im, r in zip(images, recs)]
            row.append(f"{np.mean(scores):.2f}")
        rows.append(row)
    head = ["level", "integer grid (the file)", "grid / 2", "grid / 4", "not rounded (ceiling)"]
    print(f"{codec.category} {codec.folder.fingerprint}: {len(images)} images, mean PSNR dB")
    print(markdown_table(head, rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
