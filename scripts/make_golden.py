"""Write the golden files: one .gcz per shipped category, its decoded latents and pixels.

    python scripts/make_golden.py          # after changing a shipped model

tests/test_golden.py then pins what is exact on every machine exactly (the bytes an
image encodes to on this machine's kernels, the latents a file decodes to) and the
decoded pixels within a stated tolerance: the generator runs in float32, and
OpenBLAS picks other kernels on other CPUs (see docs/FORMAT.md, "Determinism").
"""

from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path

import numpy as np
from PIL import Image

import gancomp
from gancomp.coding.container import unpack
from gancomp.runtime.codec import load_codec
from gancomp.runtime.models import BUILTIN_CATEGORIES

ROOT = Path(__file__).resolve().parent.parent
SOURCES = {"airplane": "airplane_0.png", "automobile": "automobile_0.png", "flower": "flower_0.jpg"}
QUALITY = 4


def array_hash(a: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(a).tobytes() + str(a.shape).encode()).hexdigest()


def golden_latents(data: bytes) -> np.ndarray:
    header, payload = unpack(data)
    return load_codec(header.category).decode_latents([(header, payload)])[0]


def main() -> None:
    argparse.ArgumentParser(
        description="Rewrite tests/data/golden from the shipped models (no options)."
    ).parse_args()
    out = ROOT / "tests" / "data" / "golden"
    out.mkdir(parents=True, exist_ok=True)
    record = {}
    for cat in BUILTIN_CATEGORIES:
        src = ROOT / "tests" / "data" / SOURCES[cat]
        data = gancomp.compress(src, category=cat, quality=QUALITY)
        (out / f"{cat}.gcz").write_bytes(data)
        pixels = gancomp.decompress(data)
        Image.fromarray(pixels).save(out / f"{cat}.decoded.png")
        record[cat] = {
            "source": f"tests/data/{SOURCES[cat]}",
            "quality": QUALITY,
            "gcz_sha256": hashlib.sha256(data).hexdigest(),
            "latents_sha256": array_hash(golden_latents(data)),
            "pixels_sha256": array_hash(pixels),  # on the machine that wrote the files
        }
        print(cat, len(data), "bytes")
    (out / "golden.json").write_text(json.dumps(record, indent=2) + "\n")


if __name__ == "__main__":
    main()
