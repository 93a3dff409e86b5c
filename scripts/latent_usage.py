#!/usr/bin/env python
"""How many latent channels a model uses, per level: the empirical entropy of each channel's
quantized latents over a folder's images (issue 12: is the latent what limits the flower
model's upper levels?).

    python scripts/latent_usage.py ../shared/data/flowers/val --category flower --every 50

Per level: mean bits per pixel implied by the per-channel entropies (an order-0 estimate,
not the coded rate), the number of channels above 0.05, 0.5 and 2 bits per latent value,
and the mean level gain of the channels that are dead at the top level (below 0.05 bits
there) against the others.
"""

from __future__ import annotations

import argparse
import io
import sys
from pathlib import Path

import numpy as np

from _bench_common import add_models_dir_option, markdown_table
from gancomp.evaluation.bench import list_images, load_rgb
from gancomp.runtime.codec import load_codec

DEAD_BITS = 0.05


def channel_entropies(latents: list[np.ndarray]) -> np.ndarray:
    """Order-0 entropy in bits of each channel (last axis) of integer latents."""
    flat = np.concatenate([y.reshape(-1, y.shape[-1]) for y in latents])
    out = np.empty(flat.shape[1])
    for c in range(flat.shape[1]):
        _, counts = np.unique(flat[:, c], return_counts=True)
        p = counts / counts.sum()
        out[c] = float(-(p * np.log2(p)).sum())
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("folder", type=Path)
    p.add_argument("--category", required=True)
    p.add_argument("--every", type=int, default=1, help="take every N-th image (sorted)")
    add_models_dir_option(p)
    a = p.parse_args(argv)
    codec = load_codec(a.category, a.models_dir)
    images = load_rgb(list_images(a.folder)[:: a.every])
    pixels = sum(im.shape[0] * im.shape[1] for im in images)
    per_level = {}
    for q in range(1, codec.levels + 1):
        ys = codec.quantized_latents(images, q)
        values = sum(y.shape[0] * y.shape[1] for y in ys)
        per_level[q] = (channel_entropies(ys), values)
    dead = per_level[codec.levels][0] < DEAD_BITS
    with np.load(io.BytesIO(codec.folder.weights)) as w:
        gains = np.exp(w["gancodec/log_gain"])  # (levels, latent channels), E's side
    rows = []
    for q, (h, values) in per_level.items():
        row = [
            q,
            f"{h.sum() * values / pixels:.3f}",
            int((h > DEAD_BITS).sum()),
            int((h > 0.5).sum()),
            int((h > 2).sum()),
            f"{h.mean():.2f}",
        ]
        row += [f"{gains[q - 1][dead].mean():.3f}", f"{gains[q - 1][~dead].mean():.3f}"]
        rows.append(row)
    head = ["level", "order-0 bpp", "> 0.05 bits", "> 0.5", "> 2", "mean bits"]
    head += ["gain (dead at top)", "gain (others)"]
    print(
        f"{codec.category} {codec.folder.fingerprint}: {len(images)} images, "
        f"{len(dead)} latent channels, {int(dead.sum())} dead at level {codec.levels}"
    )
    print(markdown_table(head, rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
