"""Write the golden files: one .gcz per shipped category and the SHA-256 of its decoded pixels.

    python scripts/make_golden.py          # after changing a shipped model

tests/test_golden.py then pins both: the bitstream an image encodes to, and the
pixels the committed file decodes to.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

import gancomp
from gancomp.models import BUILTIN_CATEGORIES

ROOT = Path(__file__).resolve().parent.parent
SOURCES = {"airplane": "airplane_0.png", "automobile": "automobile_0.png", "flower": "flower_0.jpg"}
QUALITY = 4


def pixel_hash(pixels: np.ndarray) -> str:
    return hashlib.sha256(
        np.ascontiguousarray(pixels).tobytes() + str(pixels.shape).encode()
    ).hexdigest()


def main() -> None:
    out = ROOT / "tests" / "data" / "golden"
    out.mkdir(parents=True, exist_ok=True)
    record = {}
    for cat in BUILTIN_CATEGORIES:
        src = ROOT / "tests" / "data" / SOURCES[cat]
        data = gancomp.compress(src, category=cat, quality=QUALITY)
        (out / f"{cat}.gcz").write_bytes(data)
        record[cat] = {
            "source": f"tests/data/{SOURCES[cat]}",
            "quality": QUALITY,
            "gcz_sha256": hashlib.sha256(data).hexdigest(),
            "pixels_sha256": pixel_hash(gancomp.decompress(data)),
        }
        print(cat, len(data), "bytes")
    (out / "golden.json").write_text(json.dumps(record, indent=2) + "\n")


if __name__ == "__main__":
    main()
