#!/usr/bin/env python
"""Carry a model's realism add-on over to another model with the same generator layout.

    python scripts/carry_realism.py models/flower resume/flower runs/carried/flower

The output folder is TARGET's own files byte for byte, so it has the same fingerprint and
decodes every file TARGET wrote as before, plus SOURCE's realism branches with
``base_fingerprint`` set to TARGET's. This makes sense when TARGET is SOURCE's model
trained further: the branches only add to the generator's features
(:func:`gancomp.architecture.realism_synthesis`), and r = 0 never runs them. Whether they
still work on TARGET is a measurement (``scripts/realism.py`` on the output); the add-on
is not retrained. ``metadata.json`` keeps SOURCE's record of how the branches were trained
and adds ``"carried_from"``, SOURCE's fingerprint. The PSNR table that the training run
measured on SOURCE is left out, because it does not hold for TARGET.
"""

from __future__ import annotations

import argparse
import io
import json
import shutil
import sys
from pathlib import Path

import numpy as np

from gancomp.errors import GancompError
from gancomp.runtime.models import FILES, read_model_folder, write_model_files
from gancomp.runtime.realism import (
    REALISM_JSON,
    REALISM_WEIGHTS,
    has_realism,
    load_realism_synthesis,
)
from gancomp.runtime.transforms import architecture_of


def _arrays(weights: bytes) -> dict[str, np.ndarray]:
    with np.load(io.BytesIO(weights), allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def carry_realism(source: Path, target: Path, out: Path, force: bool = False) -> str:
    """Write ``out``: ``target``'s model plus ``source``'s realism add-on; returns the
    fingerprint (``target``'s). Raises :class:`GancompError` (one line) if ``source`` has no
    working add-on or the two generators differ."""
    src = read_model_folder(source)
    dst = read_model_folder(target)
    if not has_realism(src):
        raise GancompError(f"{source} has no realism add-on to carry over")
    load_realism_synthesis(src, _arrays(src.weights))  # the add-on must work where it came from
    if architecture_of(src.config)["synthesis"] != architecture_of(dst.config)["synthesis"]:
        raise GancompError(f"{source} and {target} have different generators")
    description = json.loads((source / REALISM_JSON).read_text())
    description["base_fingerprint"] = dst.fingerprint
    files = {name: (target / name).read_bytes() for name in FILES}
    files[REALISM_JSON] = (json.dumps(description, sort_keys=True, indent=2) + "\n").encode()
    files[REALISM_WEIGHTS] = (source / REALISM_WEIGHTS).read_bytes()
    meta = {k: v for k, v in dst.metadata.items() if k not in ("realism", "realism_validation")}
    meta["realism"] = {**src.metadata.get("realism", {}), "carried_from": src.fingerprint}
    fp = write_model_files(out, files, meta, force=force)
    # The trainable densities (for --init-from; neither fingerprinted nor read by the runtime).
    if (target / "density.npz").is_file():
        shutil.copyfile(target / "density.npz", out / "density.npz")
    load_realism_synthesis(read_model_folder(out), _arrays(dst.weights))
    return fp


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("source", type=Path, help="model folder with a realism add-on")
    ap.add_argument("target", type=Path, help="model folder to carry it over to")
    ap.add_argument("out", type=Path, help="new model folder: target plus the add-on")
    ap.add_argument("--force", action="store_true", help="replace OUT")
    args = ap.parse_args()
    try:
        fp = carry_realism(args.source, args.target, args.out, args.force)
    except GancompError as exc:
        print(f"carry_realism.py: {exc}", file=sys.stderr)
        return 1
    print(f"{args.out}: model {fp} with the realism add-on of {args.source}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
