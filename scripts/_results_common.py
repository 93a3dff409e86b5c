"""Helpers shared by the results scripts (cross_category, gan_ablation, sample_grid)."""

from __future__ import annotations

import argparse
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from _bench_common import (
    add_models_dir_option,
    markdown_table,  # noqa: F401  (re-exported for the scripts)
)

CATEGORIES = ("airplane", "automobile", "flower")
# Validation split of each category, relative to --data-root.
DATA_SETS = {
    "airplane": "cifar10/airplane/val",
    "automobile": "cifar10/automobile/val",
    "flower": "flowers/val",
}
TILE = 128  # side of a displayed tile (pixels)


def add_common_options(parser: argparse.ArgumentParser) -> None:
    add_models_dir_option(parser)
    parser.add_argument(
        "--data-root",
        type=Path,
        default=Path("../shared/data"),
        help="folder holding cifar10/ and flowers/ (default: %(default)s)",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=Path("docs/results"),
        help="output folder (default: %(default)s)",
    )
    parser.add_argument("--limit", type=int, help="use only the first N images of each data set")


def models_dir(arg: Path | None) -> Path:
    from gancomp.runtime.models import default_models_dir

    return Path(arg) if arg else default_models_dir()


def data_folder(data_root: Path, category: str) -> Path:
    return data_root / DATA_SETS[category]


def load_images(
    folder: str | os.PathLike, limit: int | None
) -> tuple[list[Path], list[np.ndarray]]:
    """The (first ``limit``) image files of ``folder`` and their RGB uint8 pixels."""
    from gancomp.evaluation.bench import list_images, load_rgb

    files = list_images(folder, limit)
    return files, load_rgb(files)


def spread(n_total: int, n: int) -> list[int]:
    """``n`` indices spread evenly over range(n_total) (variety: val sets are sorted by class)."""
    n = min(n, n_total)
    return [int(i * n_total / n) for i in range(n)]


def fmt_db(v: float) -> str:
    return "inf" if math.isinf(v) else f"{v:.2f}"


def write_json(obj: dict[str, Any], path: Path) -> None:
    from gancomp.evaluation.bench import write_json as _write

    path.parent.mkdir(parents=True, exist_ok=True)
    _write(obj, path, force=True)


# -- image grids ----------------------------------------------------------------------


def display_tile(a: np.ndarray, side: int = TILE) -> np.ndarray:
    """Small images upscaled (nearest neighbour) to about ``side``; large ones centre-cropped."""
    h, w = a.shape[:2]
    if max(h, w) <= side // 2:
        k = side // max(h, w)
        return np.repeat(np.repeat(a, k, axis=0), k, axis=1)
    y, x = max(0, (h - side) // 2), max(0, (w - side) // 2)
    return a[y : y + side, x : x + side]


def _font() -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    try:
        return ImageFont.load_default(size=12)  # Pillow's bundled font (needs FreeType)
    except (TypeError, OSError, ImportError):
        return ImageFont.load_default()


def render_grid(
    headers: Sequence[str],
    rows: Sequence[Sequence[tuple[np.ndarray, str]]],
    title: str = "",
    pad: int = 6,
) -> Image.Image:
    """A white sheet: ``title``, column ``headers``, then rows of (tile, label-above-tile).

    Labels and headers may hold several lines ("\\n"); column widths fit the widest text.
    """
    font = _font()
    probe = ImageDraw.Draw(Image.new("RGB", (1, 1)))

    def size(text: str) -> tuple[int, int]:
        if not text:
            return 0, 0
        x0, y0, x1, y1 = probe.multiline_textbbox((0, 0), text, font=font, spacing=2)
        return x1, y1

    ncol = len(headers)
    col_w = [
        max([size(headers[c])[0]] + [max(r[c][0].shape[1], size(r[c][1])[0]) for r in rows])
        for c in range(ncol)
    ]
    head_h = max(size(h)[1] for h in headers)
    title_h = size(title)[1] + pad if title else 0
    row_h = [max(size(t[1])[1] for t in r) + 3 + max(t[0].shape[0] for t in r) for r in rows]
    width = max(sum(col_w) + pad * (ncol + 1), size(title)[0] + 2 * pad)
    height = pad + title_h + head_h + pad + sum(h + pad for h in row_h)
    sheet = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(sheet)
    if title:
        draw.multiline_text((pad, pad), title, fill="black", font=font, spacing=2)
    xs = [pad + sum(col_w[:c]) + pad * c for c in range(ncol)]
    y = pad + title_h
    for c, h in enumerate(headers):
        draw.multiline_text((xs[c], y), h, fill="black", font=font, spacing=2)
    y += head_h + pad
    for r, rh in zip(rows, row_h):
        label_h = max(size(t[1])[1] for t in r)
        for c, (tile, label) in enumerate(r):
            draw.multiline_text((xs[c], y), label, fill=(60, 60, 60), font=font, spacing=2)
            sheet.paste(Image.fromarray(tile), (xs[c], y + label_h + 3))
        y += rh + pad
    return sheet


def save_png(img: Image.Image, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path, optimize=True)
