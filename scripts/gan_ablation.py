#!/usr/bin/env python
"""GAN ablation: two model folders (e.g. adversarial weight beta=0.01 vs beta=0) on one data set.

Both models code the images at every quality level through the real bitstream. Prints one
row per level with bpp, PSNR, MS-SSIM, MSE and L1 of both models side by side, plus the
BD-rate of model B against model A; writes OUT/gan_ablation.json and OUT/gan_ablation_grid.png
(a few images: original | A and B at the --grid-levels, small images upscaled with nearest
neighbour, large ones centre-cropped, each tile labelled with its bpp and PSNR).

Usage::

    python scripts/gan_ablation.py --model-a runs/final/airplane --model-b runs/airplane_beta0 \\
        --label-a "beta=0.01" --label-b "beta=0" --data ../shared/data/cifar10/airplane/val
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np

from _results_common import (
    DATA_SETS,
    add_common_options,
    display_tile,
    fmt_db,
    load_images,
    markdown_table,
    models_dir,
    render_grid,
    save_png,
    spread,
    write_json,
)
from gancomp.evaluation.metrics import psnr


def evaluate(
    path: Path, images: list[np.ndarray], keep: list[int], grid_levels: list[int]
) -> tuple[dict[str, Any], list[dict[str, Any]], dict[int, list[tuple[np.ndarray, int]]]]:
    """Model info, per-level summary rows, and (decoded, bytes) of the ``keep`` images."""
    from gancomp.evaluation.roundtrip import round_trip, summarise
    from gancomp.runtime.codec import Codec

    codec = Codec.from_path(path)
    rows, kept = [], {}
    for q in range(1, codec.levels + 1):
        coded = round_trip(codec, images, q)
        rows.append(summarise(q, images, coded.decoded, coded.sizes))
        if q in grid_levels:
            kept[q] = [(coded.decoded[i], coded.sizes[i]) for i in keep]
    info = {"path": str(path), "fingerprint": codec.folder.fingerprint, "category": codec.category}
    return info, rows, kept


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_common_options(parser)
    parser.add_argument("--model-a", type=Path, help="default: MODELS_DIR/airplane")
    parser.add_argument(
        "--model-b", type=Path, help="default: $ABLATION_MODEL, else MODELS_DIR/../airplane_beta0"
    )
    parser.add_argument("--label-a", help="default: model A's folder name")
    parser.add_argument("--label-b", help="default: model B's folder name")
    parser.add_argument("--data", type=Path, help="image folder (default: model A's val split)")
    parser.add_argument("--grid-images", type=int, default=6)
    parser.add_argument("--grid-levels", default="1,2", help="levels shown in the grid")
    args = parser.parse_args()

    from gancomp.evaluation.bench import bd_rate_report, parse_levels
    from gancomp.runtime.models import read_model_folder

    mdir = models_dir(args.models_dir)
    path_a = args.model_a or mdir / "airplane"
    path_b = args.model_b or Path(
        os.environ.get("ABLATION_MODEL") or mdir.parent / "airplane_beta0"
    )
    label_a, label_b = args.label_a or path_a.name, args.label_b or path_b.name
    data = args.data or args.data_root / DATA_SETS[read_model_folder(path_a).category]
    grid_levels = parse_levels(args.grid_levels)

    files, images = load_images(data, args.limit)
    keep = spread(len(images), args.grid_images)
    print(f"{label_a}: {path_a}\n{label_b}: {path_b}\n{len(images)} images", file=sys.stderr)
    info_a, rows_a, grid_a = evaluate(path_a, images, keep, grid_levels)
    info_b, rows_b, grid_b = evaluate(path_b, images, keep, grid_levels)

    # -- table ----------------------------------------------------------------------------
    metrics = [
        ("bpp", "bpp", "{:.3f}"),
        ("psnr", "PSNR", "{:.2f}"),
        ("ms_ssim", "MS-SSIM", "{:.4f}"),
    ]
    metrics += [("mse", "MSE", "{:.1f}"), ("l1", "L1", "{:.2f}")]
    head = ["level"] + [f"{name} {lab}" for lab in (label_a, label_b) for _, name, _ in metrics]
    table = [
        [str(a["quality"])] + [f.format(r[k]) for r in (a, b) for k, _, f in metrics]
        for a, b in zip(rows_a, rows_b)
    ]
    print(f"{data} ({len(images)} images); means per image, bpp of whole .gcz files\n")
    print(markdown_table(head, table))
    bd = {}
    print(f"\nBD-rate of {label_b} vs {label_a} (negative = {label_b} needs fewer bits):")
    for m, name in (("psnr", "PSNR"), ("ms_ssim_db", "MS-SSIM dB")):
        bd[m] = bd_rate_report(
            [r["bpp"] for r in rows_a], [r[m] for r in rows_a],
            [r["bpp"] for r in rows_b], [r[m] for r in rows_b],
        )  # fmt: skip
        v = bd[m]["bd_rate"]
        print(f"- {name}: " + (f"{v:+.1f}%" if v is not None else f"n/a ({bd[m]['reason']})"))

    # -- grid -----------------------------------------------------------------------------
    headers = ["original"] + [
        f"{lab}\nlevel {q}" for q in grid_levels for lab in (label_a, label_b)
    ]
    grid_rows = []
    for j, i in enumerate(keep):
        orig = images[i]
        h, w = orig.shape[:2]
        row = [(display_tile(orig), f"{files[i].stem[:18]}\n{w}x{h}")]
        for q in grid_levels:
            for g in (grid_a, grid_b):
                dec, n = g[q][j]
                row.append(
                    (display_tile(dec), f"{8 * n / (h * w):.2f} bpp\n{fmt_db(psnr(orig, dec))} dB")
                )
        grid_rows.append(row)
    k = display_tile(images[keep[0]]).shape[0] // images[keep[0]].shape[0]
    how = f"nearest-neighbour upscaled x{k}" if k > 1 else "centre crops"
    title = f"GAN ablation on {data.parent.name}/{data.name}: {how}"
    grid_path = args.out / "gan_ablation_grid.png"
    save_png(render_grid(headers, grid_rows, title), grid_path)

    write_json(
        {
            "data": str(data),
            "images": len(images),
            "model_a": {"label": label_a, **info_a, "levels": rows_a},
            "model_b": {"label": label_b, **info_b, "levels": rows_b},
            "bd_rate_b_vs_a": bd,
            "grid_images": [str(files[i]) for i in keep],
            "grid_levels": grid_levels,
        },
        args.out / "gan_ablation.json",
    )
    print(f"wrote {args.out / 'gan_ablation.json'} and {grid_path}", file=sys.stderr)


if __name__ == "__main__":
    main()
