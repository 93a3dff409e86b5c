#!/usr/bin/env python
"""Range coding alone: seconds of CPU to encode and to decode one model's latents.

Takes the first ``--count`` images of a folder of CIFAR-size PNGs (repeated if the folder has
fewer), computes their quantized latents at ``--quality`` once, then times
``LatentCoder.encode`` and ``LatentCoder.decode`` over all of them (best of ``--repeat``,
process CPU time, so the networks and file I/O are not in the figure) and checks that the
bytes and the decoded latents stay the same on every run.

Usage (from a checkout; pin it to an idle core for figures worth recording)::

    taskset -c 1 python scripts/bench_range_coding.py ../shared/data/cifar10/airplane/val
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from PIL import Image

from gancomp.runtime.codec import Codec


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("data", type=Path, help="folder of CIFAR-size PNG images")
    ap.add_argument("--category", default="airplane")
    ap.add_argument("--models-dir", type=Path, default=Path("models"))
    ap.add_argument("--count", type=int, default=1000)
    ap.add_argument("--quality", type=int, default=4)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()

    files = sorted(args.data.glob("*.png"))
    if not files:
        ap.error(f"no PNG files in {args.data}")
    files = [files[i % len(files)] for i in range(args.count)]
    images = [np.asarray(Image.open(f).convert("RGB")) for f in files]
    codec = Codec.load(args.category, args.models_dir)
    if codec.hyperprior:
        ap.error("this script times the factorized prior's coder")
    level = codec.level_of(args.quality)
    symbols = codec.quantized_latents(images, args.quality)
    payloads = [codec.coder.encode(s, level) for s in symbols]

    best_encode = best_decode = float("inf")
    for _ in range(args.repeat):
        t = time.process_time()
        again = [codec.coder.encode(s, level) for s in symbols]
        best_encode = min(best_encode, time.process_time() - t)
        assert again == payloads, "encoding is not deterministic"
        t = time.process_time()
        decoded = [codec.coder.decode(p, level, s.shape[:2]) for p, s in zip(payloads, symbols)]
        best_decode = min(best_decode, time.process_time() - t)
        assert all(np.array_equal(a, b) for a, b in zip(decoded, symbols)), "decode mismatch"
    size = sum(map(len, payloads))
    print(
        f"{args.category} q{args.quality}, {len(images)} images, {size} payload bytes: "
        f"encode {best_encode:.3f} s, decode {best_decode:.3f} s (CPU, best of {args.repeat})"
    )


if __name__ == "__main__":
    main()
