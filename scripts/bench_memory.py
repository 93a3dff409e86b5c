#!/usr/bin/env python
"""Peak memory of compressing and decompressing a 16-Mpx photo, and a tiling quality check.

1. Makes a synthetic 4896x3264 photo-like image (smooth gradients + noise), runs
   ``gancomp compress`` and ``gancomp decompress`` on it, each in a fresh process, and reports
   wall time and peak RSS (``getrusage(RUSAGE_CHILDREN)`` of a helper that runs only that
   command).
2. Compresses a 1024x768 image (small enough for one pass) untiled and with tiling forced
   (``gancomp.runtime.tiling.TILE_THRESHOLD = 0``) and checks the PSNRs agree within 0.1 dB.

Usage (from a checkout)::

    python scripts/bench_memory.py                  # shipped models
    python scripts/bench_memory.py --random-model   # before any model is trained

Exit status 1 if the tiling check fails.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from _bench_common import add_model_options, gancomp_cmd, markdown_table, photo_like, prepare_models

# Runs argv[1:] and prints its wall time, CPU time and peak RSS (that one child only) as JSON.
_MEASURE = """
import json, resource, subprocess, sys, time
t = time.perf_counter()
r = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
u = resource.getrusage(resource.RUSAGE_CHILDREN)
print(json.dumps({"rc": r.returncode, "seconds": time.perf_counter() - t, "maxrss": u.ru_maxrss,
                  "cpu": u.ru_utime + u.ru_stime, "stderr": r.stderr}))
"""


def measure(cmd: Sequence[str]) -> tuple[float, float, float]:
    """Wall seconds, CPU seconds and peak RSS in MiB of ``cmd``, run in a fresh process."""
    out = subprocess.run(
        [sys.executable, "-c", _MEASURE, *map(str, cmd)],
        capture_output=True,
        text=True,
        check=True,
    )
    r = json.loads(out.stdout)
    if r["rc"] != 0:
        sys.exit(f"command failed ({r['rc']}): {' '.join(map(str, cmd))}\n{r['stderr']}")
    per_mib = 1024 * 1024 if sys.platform == "darwin" else 1024  # bytes on macOS, KiB on Linux
    return r["seconds"], r["cpu"], r["maxrss"] / per_mib


def size_arg(text: str) -> tuple[int, int]:
    w, _, h = text.lower().partition("x")
    return int(w), int(h)


def tiling_check(models: Path, category: str, quality: int, size: tuple[int, int]) -> list:
    """PSNR of one-pass and forced-tiled compression of the same image."""
    from gancomp.evaluation.metrics import psnr
    from gancomp.evaluation.roundtrip import round_trip
    from gancomp.runtime import codec, tiling

    w, h = size
    img = photo_like(h, w, seed=1)
    c = codec.Codec.load(category, models)
    c.compress_arrays([img[:64, :64]], quality)  # build the network outside the timings
    rows = []
    saved = tiling.TILE_THRESHOLD
    try:
        for label, threshold in (("one pass", 1 << 62), ("tiled", 0)):
            tiling.TILE_THRESHOLD = threshold
            rt = round_trip(c, [img], quality)
            out = rt.decoded[0]
            assert out.shape == img.shape, (out.shape, img.shape)
            seconds = rt.encode_seconds + rt.decode_seconds
            rows.append((label, rt.sizes[0], psnr(img, out), seconds))
    finally:
        tiling.TILE_THRESHOLD = saved
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_model_options(parser)
    parser.add_argument("--category", default="flower")
    parser.add_argument("--quality", type=int, default=4)
    parser.add_argument("--size", type=size_arg, default=(4896, 3264), help="WxH (4896x3264)")
    parser.add_argument("--tile-check-size", type=size_arg, default=(1024, 768), help="WxH")
    parser.add_argument("--workdir", type=Path, help="keep the files here (default: a temp dir)")
    args = parser.parse_args(argv)

    work = Path(args.workdir or tempfile.mkdtemp(prefix="gancomp-mem-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        return run(args, work)
    finally:
        if not args.workdir:
            shutil.rmtree(work, ignore_errors=True)


def run(args: argparse.Namespace, work: Path) -> int:
    from gancomp.evaluation.metrics import psnr

    models = prepare_models(args.models_dir, [args.category], args.random_model, work)
    w, h = args.size
    print(f"making a {w}x{h} image...", file=sys.stderr, flush=True)
    src, gcz, dec = work / "big.png", work / "big.gcz", work / "big.decoded.png"
    img = photo_like(h, w)
    Image.fromarray(img).save(src, compress_level=1)
    m = ["--models-dir", models]
    print("compress...", file=sys.stderr, flush=True)
    c_s, c_cpu, c_mib = measure(
        gancomp_cmd("compress", src, "-c", args.category, "-q", args.quality, "-o", gcz, *m)
    )
    print("decompress...", file=sys.stderr, flush=True)
    d_s, d_cpu, d_mib = measure(gancomp_cmd("decompress", gcz, "-o", dec, *m))
    quality_db = psnr(img, np.asarray(Image.open(dec).convert("RGB")))
    bpp = 8 * gcz.stat().st_size / (w * h)
    raw_mib = img.nbytes / 2**20

    kind = ", random" if args.random_model else ""
    print(
        f"## {w}x{h} photo-like image, {args.category} q{args.quality} (models: {models}{kind})\n"
    )
    rows = [
        ("compress", f"{c_s:.1f} s", f"{c_cpu:.1f} s", f"{c_mib:.0f} MiB"),
        ("decompress", f"{d_s:.1f} s", f"{d_cpu:.1f} s", f"{d_mib:.0f} MiB"),
    ]
    print(markdown_table(["step", "wall time", "CPU (user+sys)", "peak RSS"], rows))
    print(
        f"\nraw RGB {raw_mib:.1f} MiB; .gcz {gcz.stat().st_size} bytes ({bpp:.3f} bpp); "
        f"PSNR {quality_db:.2f} dB"
    )

    tw, th = args.tile_check_size
    print(f"tiling check at {tw}x{th}...", file=sys.stderr, flush=True)
    rows = tiling_check(models, args.category, args.quality, (tw, th))
    print(f"\n## Tiled vs one pass, {tw}x{th}\n")
    table = [(label, n, f"{db:.3f} dB", f"{s:.2f} s") for label, n, db, s in rows]
    print(markdown_table(["mode", "bytes", "PSNR", "time"], table))
    delta = abs(rows[0][2] - rows[1][2])
    ok = delta < 0.1
    print(f"\nPSNR difference {delta:.4f} dB: {'OK' if ok else 'FAIL'} (limit 0.1 dB)")
    if args.random_model:
        print("(random models: memory and time are representative, bpp and PSNR are not)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
