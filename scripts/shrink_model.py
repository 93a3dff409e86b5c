#!/usr/bin/env python
"""Write a copy of a model folder whose convolution kernels are stored as float16 (and integer
kernels as int16), about half the bytes, so a model fits the 10 MB budget of ``models/``.

    python scripts/shrink_model.py runs/v2/export/flower models/flower --force

The runtime computes in float32 either way; only the kernels are rounded. Measure what it
costs with scripts/learning_curve.py on both folders (docs/RESULTS.md records it).
"""

from __future__ import annotations

import argparse
import io
import json
import shutil
import sys
from pathlib import Path

import numpy as np

from gancomp.runtime.models import shrink_weights, write_model_folder


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("source", type=Path)
    ap.add_argument("out", type=Path)
    ap.add_argument("--force", action="store_true", help="replace OUT")
    args = ap.parse_args()
    src = args.source
    with np.load(io.BytesIO((src / "weights.npz").read_bytes())) as z:
        weights = {k: z[k] for k in z.files}
    meta = json.loads((src / "metadata.json").read_text())
    meta["shrunk_from"] = meta.get("fingerprint")
    meta["weights_storage"] = "convolution kernels float16, integer kernels int16"
    fp = write_model_folder(
        args.out,
        (src / "config.json").read_text(),
        shrink_weights(weights),
        (src / "tables.npz").read_bytes(),
        meta,
        force=args.force,
    )
    # The trainable densities (for --init-from; neither fingerprinted nor read by the runtime).
    if (src / "density.npz").exists():
        shutil.copyfile(src / "density.npz", args.out / "density.npz")
    size = sum(f.stat().st_size for f in args.out.iterdir())
    print(f"{args.out}: fingerprint {fp}, {size / 1e6:.1f} MB (from {meta['shrunk_from']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
