"""BD-rate of the issue-11 pilot models against each other from their export validation tables
(whole .gcz files through the runtime, the first --val-limit images of flowers/val).

    python scripts/pilot_compare.py runs/pilot/factorized runs/pilot/hyperprior
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from gancomp.evaluation.bench import bd_rate


def table(folder: str) -> list[dict]:
    meta = json.loads((Path(folder) / "metadata.json").read_text())
    return meta["validation"]


def main() -> int:
    anchor, test = sys.argv[1], sys.argv[2]
    a, b = table(anchor), table(test)
    print(
        "| quality | "
        + " | ".join(f"{Path(f).name} bpp / PSNR / MS-SSIM dB" for f in (anchor, test))
        + " |"
    )
    print("|---|---|---|")
    for ra, rb in zip(a, b):
        cells = [f"{r['bpp']:.3f} / {r['psnr']:.2f} / {r['ms_ssim_db']:.2f}" for r in (ra, rb)]
        print(f"| {ra['quality']} | " + " | ".join(cells) + " |")
    for metric in ("psnr", "ms_ssim_db"):
        d = bd_rate(
            [r["bpp"] for r in a],
            [r[metric] for r in a],
            [r["bpp"] for r in b],
            [r[metric] for r in b],
        )
        print(
            f"BD-rate ({metric}) of {Path(test).name} against {Path(anchor).name}: "
            + ("n/a" if d is None else f"{d:+.1f}%")
            + f" ({a[0]['images']} images)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
