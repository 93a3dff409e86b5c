"""Measure channel-conditional context coding (gancomp.coding.context) on a shipped model.

Fits the context tables on training latents, then codes the latents of every image of a
folder at every level with both the model's factorized tables and the context tables,
with the real range coder, checks that each context payload decodes to the same latents,
and reports whole-file sizes: the factorized .gcz file's size with its payload swapped
for the context payload (header and CRC unchanged). The latents, and so the decoded
pixels and their PSNR, are the same; with ``--bench`` (a ``gancomp bench --json`` file
of the same model on the same folder) it also reports the BD-rate of both curves against
that file's classical anchors.

    python scripts/context_coding.py -c flower --train ../shared/data/flowers/train \
        --train-limit 150 --data ../shared/data/flowers/val \
        --bench docs/results/bench_flower.json --json out.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from gancomp.coding import container
from gancomp.coding.context import ContextCoder, fit_context_tables
from gancomp.evaluation.bench import bd_rate, list_images
from gancomp.io.images import load_image
from gancomp.runtime.codec import Codec

_codec: Codec | None = None


def _init(category: str, models_dir: str | None) -> None:
    global _codec
    _codec = Codec.load(category, models_dir)


def _latents(path: str) -> tuple[list[np.ndarray], int, list[int]]:
    """Quantized latents of every level, pixel count and factorized file sizes."""
    rgb = load_image(path).rgb
    out, sizes = [], []
    for q in range(1, _codec.levels + 1):
        y = _codec.quantized_latents([rgb], q)[0]
        out.append(y)
        header = container.Header(
            _codec.category, q, _codec.fingerprint, rgb.shape[1], rgb.shape[0]
        )
        # The .gcz file compress writes for this image (an RGB source: no alpha, no flags).
        sizes.append(len(container.pack(header, _codec.coder.encode(y, q - 1))))
    return out, rgb.shape[0] * rgb.shape[1], sizes


def collect(paths, category, models_dir, workers):
    with ProcessPoolExecutor(workers, initializer=_init, initargs=(category, models_dir)) as ex:
        return list(ex.map(_latents, [str(p) for p in paths], chunksize=4))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-c", "--category", required=True)
    ap.add_argument("--models-dir")
    ap.add_argument("--train", required=True, help="folder of training images")
    ap.add_argument("--train-limit", type=int, default=150, help="evenly spaced training images")
    ap.add_argument("--data", required=True, help="folder to measure on")
    ap.add_argument("--limit", type=int)
    ap.add_argument("--buckets", type=int, default=8)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--bench", help="gancomp bench --json of the same model and folder")
    ap.add_argument("--json", help="write the figures here")
    ap.add_argument("--tables", help="write the fitted context tables (.npz) here")
    args = ap.parse_args(argv)

    codec = Codec.load(args.category, args.models_dir)
    if codec.hyperprior:
        sys.exit("context coding applies to factorized models only")
    train = list_images(args.train)
    train = train[:: max(1, len(train) // args.train_limit)][: args.train_limit]
    data = list_images(args.data)[: args.limit]
    t0 = time.time()
    tr = collect(train, args.category, args.models_dir, args.workers)
    va = collect(data, args.category, args.models_dir, args.workers)
    print(f"latents of {len(tr)} + {len(va)} images in {time.time() - t0:.0f} s", flush=True)

    tables = fit_context_tables(
        [[t[0][q] for t in tr] for q in range(codec.levels)], codec.coder.tables, args.buckets
    )
    if args.tables:
        Path(args.tables).write_bytes(tables.to_bytes())
    ctx = ContextCoder(tables)
    rows = []
    for q in range(codec.levels):
        old, new = [], []  # whole-file bpp per image
        t0 = time.time()
        for lat, pixels, sizes in va:
            y = lat[q]
            fact = codec.coder.encode(y, q)
            payload = ctx.encode(y, q)
            if not np.array_equal(ctx.decode(payload, q, y.shape[:2]), y):
                sys.exit(f"level {q + 1}: a context payload did not decode to its latents")
            old.append(8 * sizes[q] / pixels)
            new.append(8 * (sizes[q] - len(fact) + len(payload)) / pixels)
        # As gancomp bench: the mean of the images' bpp.
        rows.append(
            {
                "quality": q + 1,
                "bpp_factorized": float(np.mean(old)),
                "bpp_context": float(np.mean(new)),
                "saving": 1 - float(np.mean(new)) / float(np.mean(old)),
                "code_and_decode_s_per_image": (time.time() - t0) / len(va),
            }
        )
        r = rows[-1]
        print(
            f"quality {q + 1}: {r['bpp_factorized']:.4f} -> {r['bpp_context']:.4f} bpp "
            f"({-100 * r['saving']:.1f}%), round trip verified",
            flush=True,
        )
    report = {
        "category": args.category,
        "model_fingerprint": codec.folder.fingerprint,
        "images": len(va),
        "train_images": len(tr),
        "buckets": args.buckets,
        "table_bytes": len(tables.to_bytes()),
        "levels": rows,
    }
    if args.bench:
        bench = json.loads(Path(args.bench).read_text())
        if bench["model_fingerprint"] != codec.folder.fingerprint or bench["images"] != len(va):
            sys.exit("the bench file is of another model or another image count")
        g = bench["curves"]["gancomp"]
        # The factorized files are the ones the bench wrote: the same bpp, to rounding.
        gap = max(abs(p["bpp"] - r["bpp_factorized"]) for p, r in zip(g, rows, strict=True))
        report["bench_bpp_max_difference"] = gap
        print(f"factorized bpp against the bench's: largest difference {gap:.2e}")
        psnr = [p["psnr"] for p in g]
        report["bd_rate"] = {}
        for name, curve in bench["curves"].items():
            if name == "gancomp":
                continue
            anchor = ([p["bpp"] for p in curve], [p["psnr"] for p in curve])
            fact = bd_rate(*anchor, [r["bpp_factorized"] for r in rows], psnr)
            new = bd_rate(*anchor, [r["bpp_context"] for r in rows], psnr)
            report["bd_rate"][name] = {"factorized": fact, "context": new}
            print(f"BD-rate (PSNR) vs {name}: factorized {fact:+.2f}%, context {new:+.2f}%")
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
