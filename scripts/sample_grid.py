#!/usr/bin/env python
"""Sample images side by side: original | gancomp | WebP | JPEG at about the same file size.

A few images of a category's val split are coded with gancomp at --level; WebP (method 6)
and JPEG (optimize, 4:4:4 as in ``gancomp bench``) each get the highest quality whose file
is not larger than the .gcz file (binary search over quality 0-100; when even quality 0 is
larger, quality 0 is used and the tile says "over budget"). Bytes are whole files and PSNR
is over the whole image; tiles are small images upscaled with nearest neighbour (x4 for
32x32) or 128x128 centre crops of larger ones. Writes OUT/samples_<category>.png and
OUT/samples_<category>.json.

Usage::

    python scripts/sample_grid.py --category flower --models-dir runs/final --level 3
"""

from __future__ import annotations

import argparse
import io
import sys
from collections.abc import Callable
from typing import Any

import numpy as np
from PIL import Image

from _results_common import (
    CATEGORIES,
    add_common_options,
    data_folder,
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

DEFAULT_LEVEL = {"airplane": 2, "automobile": 2, "flower": 3}


def pillow_encode(fmt: str, options: dict[str, Any]) -> Callable[[np.ndarray, int], bytes]:
    def encode(a: np.ndarray, quality: int) -> bytes:
        buf = io.BytesIO()
        Image.fromarray(a, "RGB").save(buf, fmt, quality=quality, **options)
        return buf.getvalue()

    return encode


def match_size(
    encode: Callable[[np.ndarray, int], bytes], a: np.ndarray, budget: int
) -> dict[str, Any]:
    """The highest quality 0-100 whose file fits in ``budget`` bytes (binary search).

    Assumes the size grows with the quality (true but for rare small wiggles). If quality 0
    is already over the budget, quality 0 is returned with ``over_budget`` set.
    """
    lo, hi = 0, 100
    best = encode(a, lo)
    if len(best) <= budget:
        while lo < hi:  # invariant: size(lo) <= budget
            mid = (lo + hi + 1) // 2
            data = encode(a, mid)
            if len(data) <= budget:
                lo, best = mid, data
            else:
                hi = mid - 1
    with Image.open(io.BytesIO(best)) as im:
        rgb = np.asarray(im.convert("RGB"))
    return {
        "quality": lo,
        "bytes": len(best),
        "psnr": psnr(a, rgb),
        "over_budget": len(best) > budget,
        "rgb": rgb,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_common_options(parser)
    parser.add_argument("--category", required=True, help="model (and default data set) to show")
    parser.add_argument("--data", help="image folder (default: the category's val split)")
    parser.add_argument("--level", type=int, help="gancomp level (default: 2 CIFAR, 3 flower)")
    parser.add_argument("--images", type=int, default=4, help="number of images (rows)")
    args = parser.parse_args()

    from gancomp.evaluation.bench import CODECS
    from gancomp.evaluation.roundtrip import round_trip
    from gancomp.runtime.codec import load_codec

    cat = args.category
    if not args.data and cat not in CATEGORIES:
        parser.error(f"--data is needed for category {cat!r}")
    data = args.data or data_folder(args.data_root, cat)
    level = args.level or DEFAULT_LEVEL.get(cat, 2)
    codec = load_codec(cat, models_dir(args.models_dir))
    files, images = load_images(data, args.limit)
    pick = spread(len(images), args.images)
    sel = [images[i] for i in pick]
    coded = round_trip(codec, sel, level)
    blobs, decoded = coded.blobs, coded.decoded

    others = {
        "WebP": pillow_encode("WEBP", {"method": 6}),
        "JPEG": pillow_encode("JPEG", dict(CODECS["jpeg"]["options"])),  # optimize, 4:4:4
    }
    records, grid_rows, table = [], [], []
    for i, a, blob, dec in zip(pick, sel, blobs, decoded):
        h, w = a.shape[:2]
        g = {"bytes": len(blob), "psnr": psnr(a, dec)}
        res = {name: match_size(enc, a, len(blob)) for name, enc in others.items()}
        row = [
            (display_tile(a), f"{files[i].stem[:18]}\n{w}x{h}"),
            (display_tile(dec), f"{g['bytes']} B\n{fmt_db(g['psnr'])} dB"),
        ]
        cells = [files[i].name, f"{w}x{h}", f"{g['bytes']} B, {fmt_db(g['psnr'])} dB"]
        for r in res.values():
            over = ", over budget" if r["over_budget"] else ""
            text = f"q={r['quality']}, {r['bytes']} B\n{fmt_db(r['psnr'])} dB{over}"
            row.append((display_tile(r["rgb"]), text))
            cells.append(text.replace("\n", ", "))
        grid_rows.append(row)
        table.append(cells)
        records.append(
            {
                "file": str(files[i]),
                "width": w,
                "height": h,
                "gancomp": g,
                **{n: {k: v for k, v in r.items() if k != "rgb"} for n, r in res.items()},
            }
        )

    print(
        f"{cat} (model {codec.folder.fingerprint}), gancomp level {level}; WebP/JPEG at the "
        "highest quality not above the gancomp file size; bytes = whole file\n"
    )
    print(markdown_table(["image", "size", f"gancomp L{level}", "WebP", "JPEG"], table))
    for name in others:
        n = sum(r[name]["over_budget"] for r in records)
        if n:
            print(
                f"\n{name}: even quality 0 is larger than the .gcz file for {n} of {len(records)} images"
            )

    k = grid_rows[0][0][0].shape[0] // sel[0].shape[0]
    how = f"x{k} nearest-neighbour" if k > 1 else "128x128 centre crops"
    title = (
        f"{cat}: gancomp level {level} (model {codec.folder.fingerprint}) vs WebP and JPEG at "
        f"<= the same bytes\n{how}; bytes: whole file, PSNR: whole image"
    )
    headers = ["original", f"gancomp level {level}", "WebP (method 6)", "JPEG (optimize)"]
    png = args.out / f"samples_{cat}.png"
    save_png(render_grid(headers, grid_rows, title), png)
    write_json(
        {
            "category": cat,
            "model_fingerprint": codec.folder.fingerprint,
            "level": level,
            "data": str(data),
            "jpeg_options": CODECS["jpeg"]["options"],
            "webp_options": {"method": 6},
            "images": records,
        },
        args.out / f"samples_{cat}.json",
    )
    print(f"wrote {png} and {args.out / f'samples_{cat}.json'}", file=sys.stderr)


if __name__ == "__main__":
    main()
