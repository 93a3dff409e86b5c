"""Compare refinement schedules of ``--effort``: BD-rate (PSNR) of each against ``normal``.

Used to choose the iterations, learning rate and temperature of the ``fast`` and ``max``
schedules (src/gancomp/refine.py). Every schedule refines the same images at the same levels
with the shipped decoder and entropy model; files are kept only where they are cheaper in the
level's rate + lambda x MSE (as ``gancomp compress`` does), so a schedule that diverges shows
as 0%.

    python scripts/effort_schedules.py -c airplane --data ../shared/data/cifar10/airplane/val \
        --limit 24 --schedule iterations=500,learning_rate=0.03 \
        --schedule iterations=500,learning_rate=0.01

Needs the ``train`` extra (TensorFlow). Prints one line per schedule: BD-rate, the curve (bpp
and mean PSNR per level) and the process CPU seconds it took.
"""

from __future__ import annotations

import argparse
import dataclasses
import time

import numpy as np

from gancomp.coding.container import unpack
from gancomp.evaluation.bench import bd_rate, list_images, load_rgb, parse_levels
from gancomp.evaluation.metrics import psnr_from_mse
from gancomp.refine import Schedule, compress_images
from gancomp.runtime.codec import load_codec


def parse_schedule(text: str) -> Schedule:
    fields = {f.name: f.type for f in dataclasses.fields(Schedule)}
    values: dict[str, float | int] = {}
    for item in text.split(","):
        key, _, value = item.partition("=")
        if key not in fields:
            raise argparse.ArgumentTypeError(f"unknown schedule field {key!r}")
        values[key] = int(value) if key == "iterations" else float(value)
    return Schedule(**values)


def curve(codec, images, levels, schedule: Schedule | None) -> tuple[list[float], list[float]]:
    """Mean whole-file bpp and mean PSNR per level."""
    pixels = sum(a.shape[0] * a.shape[1] for a in images)
    rates, psnrs = [], []
    for quality in levels:
        effort = "normal" if schedule is None else "max"
        files = compress_images(codec, images, quality, effort, schedule=schedule)
        decoded = codec.decode_payloads([unpack(f) for f in files])
        errors = [
            float(np.mean((a.astype(np.float64) - d.rgb.astype(np.float64)) ** 2))
            for a, d in zip(images, decoded)
        ]
        rates.append(8.0 * sum(map(len, files)) / pixels)
        psnrs.append(float(np.mean([psnr_from_mse(m) for m in errors])))
    return rates, psnrs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-c", "--category", required=True)
    ap.add_argument("--data", required=True)
    ap.add_argument("--limit", type=int, default=24, help="the first N images by name")
    ap.add_argument("--levels", default="1,3,5,7")
    ap.add_argument("--schedule", type=parse_schedule, action="append", required=True)
    args = ap.parse_args()
    codec = load_codec(args.category)
    images = load_rgb(list_images(args.data, args.limit))
    levels = parse_levels(args.levels)
    base = curve(codec, images, levels, None)
    print(f"normal: bpp {[round(r, 3) for r in base[0]]} PSNR {[round(p, 2) for p in base[1]]}")
    for schedule in args.schedule:
        t0 = time.process_time()
        rates, psnrs = curve(codec, images, levels, schedule)
        bd = bd_rate(*base, rates, psnrs)
        shown = "n/a (curves do not overlap)" if bd is None else f"{bd:+.2f}%"
        print(
            f"{schedule}: BD-rate {shown} bpp {[round(r, 3) for r in rates]} "
            f"PSNR {[round(p, 2) for p in psnrs]} CPU {time.process_time() - t0:.0f} s",
            flush=True,
        )


if __name__ == "__main__":
    main()
