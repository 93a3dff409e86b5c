#!/usr/bin/env python
"""Set a realism add-on's per-level scale so that r = 1 is its most realistic setting
(issue 14).

An add-on is trained with r drawn from [0, 1], but its branches need not be most plausible at
full strength: on CIFAR the fresh critic of ``scripts/realism.py`` often tells r = 1 from
the originals more easily than r = 0.5 (the branches overshoot into an artefact). The
decoder runs the branches at r x s_q, where s_q is the level's ``level_scale`` in
realism.json; this script picks each level's s_q from a sweep of ``scripts/realism.py`` over
r, measured on **training** images (so the val split stays a clean test), and writes it.

    python scripts/realism.py ../shared/data/cifar10/airplane/train --limit 500 \\
        --category airplane --levels 1,2,3 --realism 0,0.3,0.4,0.5,0.6,0.7,0.8,1 \\
        --codecs webp --json sweep.json
    python scripts/calibrate_realism.py sweep.json models/airplane --force

Rule, per swept level: among the r whose high-frequency energy ratio lies in [0.8, 1.2]
and whose PSNR is at most 2.5 dB below r = 0's (the issue's bounds; the sweep must include
r = 0), take the one with the lowest two-sample accuracy; among the r within that
accuracy's standard error of it (a tie the critic cannot resolve), take the largest. s_q
becomes that r times the level's current s_q (the sweep ran at the current scale). A level
without an admissible r keeps its scale, and so do levels not swept. realism.json (and the
add-on's entry in metadata.json, which records the calibration even when it keeps the
scales) are rewritten atomically, and only with --force. A realism phase started from a
calibrated add-on (``--realism-from``) with ``--realism-levels`` trains at the full scale
again, so its result needs a sweep of its own.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from gancomp.io.files import atomic_write_bytes

HF_RANGE = (0.8, 1.2)
MAX_PSNR_COST_DB = 2.5


def realism_of(setting: str) -> float | None:
    """0.5 from "r=0.5"; None for settings that are not a realism weight."""
    if not setting.startswith("r="):
        return None
    return float(setting[2:])


def choose_scales(rows: list[dict], current: list[float]) -> tuple[list[float], list[str]]:
    """The new level_scale and one line of explanation per swept level."""
    scales = list(current)
    lines = []
    by_level: dict[int, dict[float, dict]] = {}
    for row in rows:
        r = realism_of(row.get("setting", "")) if row.get("codec") == "gancomp" else None
        if r is not None:
            by_level.setdefault(int(row["level"]), {})[r] = row
    for level, sweep in sorted(by_level.items()):
        if level > len(scales):
            raise ValueError(f"the sweep has level {level}, the add-on {len(scales)} levels")
        if 0.0 not in sweep:
            raise ValueError(f"level {level}: the sweep lacks r = 0 (add 0 to --realism)")
        base_psnr = sweep[0.0]["psnr"]
        admissible = {
            r: row
            for r, row in sweep.items()
            if r > 0
            and HF_RANGE[0] <= row["hf_ratio"] <= HF_RANGE[1]
            and base_psnr - row["psnr"] <= MAX_PSNR_COST_DB
        }
        if scales[level - 1] == 0:
            lines.append(f"level {level}: scale 0 (fidelity only) kept")
            continue
        if not admissible:
            lines.append(f"level {level}: no admissible r, scale kept at {scales[level - 1]:g}")
            continue
        best = min(admissible, key=lambda r: admissible[r]["two_sample"]["accuracy"])
        # Accuracies within the best's standard error are a tie: keep the most realism.
        test = admissible[best]["two_sample"]
        bound = test["accuracy"] + test.get("standard_error", 0.0)
        best = max(r for r, row in admissible.items() if row["two_sample"]["accuracy"] <= bound)
        row = admissible[best]
        old = scales[level - 1]
        scales[level - 1] = round(best * old, 4)
        lines.append(
            f"level {level}: r = {best:g} (accuracy {row['two_sample']['accuracy']:.3f}, "
            f"HF {row['hf_ratio']:.2f}, cost {base_psnr - row['psnr']:.2f} dB): "
            f"scale {old:g} -> {scales[level - 1]:g}"
        )
    return scales, lines


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("sweep", type=Path, help="JSON written by scripts/realism.py --json")
    p.add_argument("model", type=Path, help="model folder holding realism.json")
    p.add_argument("--force", action="store_true", help="rewrite realism.json")
    a = p.parse_args(argv)
    target = a.model / "realism.json"
    try:
        sweep = json.loads(a.sweep.read_text())
        description = json.loads(target.read_text())
    except (OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if sweep.get("model_fingerprint") != description.get("base_fingerprint"):
        print(
            f"error: the sweep measured model {sweep.get('model_fingerprint')}, the add-on "
            f"belongs to {description.get('base_fingerprint')}",
            file=sys.stderr,
        )
        return 1
    levels = int(json.loads((a.model / "config.json").read_text())["levels"])
    current = description.get("level_scale", [1.0] * levels)
    try:
        scales, lines = choose_scales(sweep["rows"], current)
    except (KeyError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print("\n".join(lines))
    print(f"level_scale {current} -> {scales}")
    if not a.force:
        if scales == current:
            return 0
        print(f"not written: add --force to rewrite {target}", file=sys.stderr)
        return 1
    if scales != current:
        description["level_scale"] = scales
        write_json_atomically(target, description)
        print(f"wrote {target}")
    # With --force the calibration is recorded even when it keeps the scales.
    # The model's metadata.json records the add-on (its "realism" entry): keep it in step.
    meta_path = a.model / "metadata.json"
    try:
        meta = json.loads(meta_path.read_text())
    except (OSError, ValueError):
        return 0
    if isinstance(meta.get("realism"), dict):
        meta["realism"]["level_scale"] = scales
        meta["realism"]["calibration"] = {
            "sweep_folder": sweep.get("folder"),
            "sweep_images": sweep.get("images"),
            "rule": (
                f"lowest accuracy (ties within its standard error: largest r) with HF in "
                f"{list(HF_RANGE)}, cost <= {MAX_PSNR_COST_DB} dB"
            ),
            "levels": lines,
        }
        write_json_atomically(meta_path, meta)
        print(f"wrote {meta_path}")
    return 0


def write_json_atomically(path: Path, value: dict) -> None:
    data = (json.dumps(value, indent=2, sort_keys=True) + "\n").encode()
    atomic_write_bytes(path, data, force=True)


if __name__ == "__main__":
    sys.exit(main())
