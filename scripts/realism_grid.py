#!/usr/bin/env python
"""Side-by-side grid of the decode-time realism control: original | gancomp at each
realism weight r | WebP | AVIF, the codecs at no more bytes than the .gcz file.

A few images of a folder (spread evenly over it, as ``sample_grid.py`` picks them) are
coded with the CATEGORY model at each --levels level; the one .gcz file of each image is
decoded at every --realism weight (realism is the receiver's choice: the file is the same
for every r). WebP and AVIF (``gancomp bench``'s save options) each get the highest quality
whose file is not larger than the .gcz file; when even quality 0 is larger, quality 0 is
shown and the tile says "over budget". AVIF is left out when Pillow cannot write it.

One PNG holds a block per level (rows = images, columns as above). Tiles are small
images upscaled with nearest neighbour (x4 for 32x32) or 128x128 centre crops of larger
ones; bytes are whole files, bpp over the whole image, PSNR over the whole image. Writes
OUT/realism_<category>.png and OUT/realism_<category>.json (refuses to overwrite either
without --force). Needs a model with realism branches (``realism.npz``); no TensorFlow.

Usage::

    python scripts/realism_grid.py --category airplane --models-dir runs/realism_models \\
        --levels 1,2 --out docs/results
"""

from __future__ import annotations

import argparse
import io
import sys
from pathlib import Path
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
    render_grid,
    spread,
)
from realism import parse_realism
from sample_grid import match_size, pillow_encode

#: Pillow codecs of the last columns, by their ``gancomp bench`` name.
OTHER_CODECS = {"webp": "WebP", "avif": "AVIF"}
DEFAULT_REALISM = "0,0.5,1"


def bpp(n_bytes: int, a: np.ndarray) -> float:
    return 8.0 * n_bytes / (a.shape[0] * a.shape[1])


def stack_blocks(blocks: list[Image.Image], gap: int = 12) -> Image.Image:
    """The level blocks one under another on a white sheet, ``gap`` pixels apart."""
    width = max(b.width for b in blocks)
    height = sum(b.height for b in blocks) + gap * (len(blocks) - 1)
    sheet = Image.new("RGB", (width, height), "white")
    y = 0
    for block in blocks:
        sheet.paste(block, (0, y))
        y += block.height + gap
    return sheet


def level_block(
    codec: Any,
    level: int,
    files: list[Path],
    images: list[np.ndarray],
    weights: list[float],
    others: dict[str, Any],
) -> tuple[list[list[tuple[np.ndarray, str]]], list[dict[str, Any]]]:
    """The grid rows of one level and their records (the JSON's numbers)."""
    from gancomp.coding.container import unpack
    from gancomp.evaluation.metrics import psnr
    from gancomp.evaluation.roundtrip import round_trip

    coded = round_trip(codec, images, level)
    items = [unpack(b) for b in coded.blobs]
    # One file per image, decoded at every r (r = 0 is the fidelity decode of round_trip).
    at = {
        r: coded.decoded if r == 0 else [d.rgb for d in codec.decode_payloads(items, realism=r)]
        for r in weights
    }
    rows, records = [], []
    for i, (f, a, blob) in enumerate(zip(files, images, coded.blobs)):
        h, w = a.shape[:2]
        size = len(blob)
        row = [(display_tile(a), f"{f.stem[:18]}\n{w}x{h}")]
        decodes = []
        for r in weights:
            dec = at[r][i]
            p = psnr(a, dec)
            row.append((display_tile(dec), f"{size} B, {bpp(size, a):.2f} bpp\n{fmt_db(p)} dB"))
            diff = np.abs(dec.astype(np.int16) - coded.decoded[i].astype(np.int16))
            decodes.append({"realism": r, "psnr": p, "mean_abs_diff_vs_r0": float(diff.mean())})
        record: dict[str, Any] = {
            "file": str(f),
            "width": w,
            "height": h,
            "gancomp": {"bytes": size, "bpp": bpp(size, a), "decodes": decodes},
        }
        for name, encode in others.items():
            fit = match_size(encode, a, size)
            over = ", over budget" if fit["over_budget"] else ""
            text = (
                f"q={fit['quality']}, {fit['bytes']} B, {bpp(fit['bytes'], a):.2f} bpp\n"
                f"{fmt_db(fit['psnr'])} dB{over}"
            )
            row.append((display_tile(fit["rgb"]), text))
            record[name] = {k: v for k, v in fit.items() if k != "rgb"}
            record[name]["bpp"] = bpp(fit["bytes"], a)
        rows.append(row)
        records.append(record)
    return rows, records


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_common_options(parser)
    parser.add_argument("--category", required=True, help="model (and default data set) to show")
    parser.add_argument(
        "--data", type=Path, help="image folder (default: the category's val split)"
    )
    parser.add_argument("--levels", default="1,2", help="gancomp levels (default: %(default)s)")
    parser.add_argument(
        "--realism",
        type=parse_realism,
        default=parse_realism(DEFAULT_REALISM),
        help=f"decode-time realism weights in [0, 1] (default: {DEFAULT_REALISM})",
    )
    parser.add_argument("--count", type=int, default=4, help="number of images (rows per level)")
    parser.add_argument("--force", action="store_true", help="overwrite the PNG and JSON files")
    args = parser.parse_args()

    from gancomp.errors import GancompError
    from gancomp.evaluation.bench import CODECS, codec_available, parse_levels, write_json
    from gancomp.io.files import atomic_write_bytes, check_writable_target
    from gancomp.runtime.codec import load_codec
    from gancomp.runtime.realism import no_realism_error

    cat = args.category
    if not args.data and cat not in CATEGORIES:
        parser.error(f"--data is needed for category {cat!r}")
    if args.count < 1:
        parser.error("--count must be at least 1")
    try:
        levels = parse_levels(args.levels)
    except ValueError as exc:
        parser.error(str(exc))
    data = args.data or data_folder(args.data_root, cat)
    png = args.out / f"realism_{cat}.png"
    json_path = args.out / f"realism_{cat}.json"
    try:
        codec = load_codec(cat, args.models_dir)
        if any(r > 0 for r in args.realism) and not codec.has_realism:
            raise no_realism_error(codec.folder)
        bad = [q for q in levels if not 1 <= q <= codec.levels]
        if bad:
            parser.error(f"level {bad[0]}: the {cat!r} model has levels 1-{codec.levels}")
        args.out.mkdir(parents=True, exist_ok=True)
        for target in (png, json_path):
            check_writable_target(target, args.force)
        files, images = load_images(data, args.limit)
    except (GancompError, OSError) as exc:
        sys.exit(f"error: {exc}")
    pick = spread(len(images), args.count)
    files, images = [files[i] for i in pick], [images[i] for i in pick]

    skipped = {n: why for n in OTHER_CODECS if (why := codec_available(n))}
    for name, why in skipped.items():
        print(f"{OTHER_CODECS[name]} column left out: {why}", file=sys.stderr)
    others = {
        n: pillow_encode(CODECS[n]["format"], CODECS[n]["options"])
        for n in OTHER_CODECS
        if n not in skipped
    }
    fp = codec.folder.fingerprint
    headers = [
        "original",
        *(f"gancomp r={r:g}" for r in args.realism),
        *(f"{OTHER_CODECS[n]} <= .gcz bytes" for n in others),
    ]
    side = display_tile(images[0]).shape[0]
    k = side // images[0].shape[0]
    how = f"x{k} nearest-neighbour" if k > 1 else "128x128 centre crops"

    blocks, level_records = [], []
    try:
        for n, level in enumerate(levels):
            rows, records = level_block(codec, level, files, images, args.realism, others)
            mean_bpp = np.mean([rec["gancomp"]["bpp"] for rec in records])
            title = f"{cat} level {level} (model {fp}): one .gcz file per image, mean {mean_bpp:.2f} bpp"
            if n == 0:
                title += (
                    f"\ndecoded at each realism r; {', '.join(OTHER_CODECS[c] for c in others)} "
                    f"at the highest quality not above its bytes; {how}; bytes: whole file, "
                    "PSNR: whole image"
                )
            blocks.append(render_grid(headers, rows, title))
            level_records.append(
                {"level": level, "mean_gcz_bpp": float(mean_bpp), "images": records}
            )
            table = [
                [Path(rec["file"]).name, f"{rec['gancomp']['bytes']} B"]
                + [fmt_db(d["psnr"]) for d in rec["gancomp"]["decodes"]]
                + [
                    f"q={rec[c]['quality']}, {rec[c]['bytes']} B, {fmt_db(rec[c]['psnr'])} dB"
                    + (" (over budget)" if rec[c]["over_budget"] else "")
                    for c in others
                ]
                for rec in records
            ]
            print(f"\n{cat} level {level} (model {fp}), PSNR in dB\n")
            print(
                markdown_table(
                    ["image", ".gcz", *(f"r={r:g}" for r in args.realism)]
                    + [OTHER_CODECS[c] for c in others],
                    table,
                )
            )
    except GancompError as exc:  # e.g. a damaged realism add-on
        sys.exit(f"error: {exc}")

    buf = io.BytesIO()
    stack_blocks(blocks).save(buf, "PNG", optimize=True)
    result = {
        "category": cat,
        "model_fingerprint": fp,
        "model_folder": str(codec.folder.path),
        "data": str(data),
        "realism": args.realism,
        "columns": headers,
        "tile": {"side": side, "how": how},
        "codecs": {
            n: {"format": CODECS[n]["format"], "options": CODECS[n]["options"]} for n in others
        },
        "skipped": skipped,
        "levels": level_records,
    }
    try:
        atomic_write_bytes(png, buf.getvalue(), force=args.force)
        write_json(result, json_path, force=args.force)
    except GancompError as exc:
        sys.exit(f"error: {exc}")
    print(f"wrote {png} and {json_path}", file=sys.stderr)


if __name__ == "__main__":
    main()
