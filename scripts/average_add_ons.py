#!/usr/bin/env python3
"""Average the realism add-ons of several exports of one run (issue 14).

Usage: python scripts/average_add_ons.py OUT FOLDER FOLDER [FOLDER ...] [--force]

Each FOLDER is a model folder with a realism add-on (`--snapshot-every` snapshots and the
final export of one `--realism-phase` run, for example). OUT is the first folder with its
``realism.npz`` replaced by the element-wise mean of all of them: a uniform average of
weights along the run's trajectory, longer than `--realism-ema`'s (stochastic weight
averaging, Izmailov et al., UAI 2018). The folders must share the base model (fingerprint)
and the add-on's layout (``realism.json`` apart from its level scale); the level scale is the
first folder's (calibrate OUT afterwards with scripts/calibrate_realism.py).
"""

from __future__ import annotations

import argparse
import io
import json
import sys
from pathlib import Path

import numpy as np

from gancomp.errors import GancompError
from gancomp.runtime.models import read_model_folder, write_model_files
from gancomp.runtime.realism import (
    REALISM_JSON,
    REALISM_WEIGHTS,
    has_realism,
    load_realism_synthesis,
)


def _layout(folder: Path) -> dict:
    add_on = json.loads((folder / REALISM_JSON).read_text())
    add_on.pop("level_scale", None)
    return add_on


def average(out: Path, folders: list[Path], force: bool = False) -> str:
    """Write OUT (see the module docstring); returns its fingerprint."""
    if len(folders) < 2:
        raise GancompError("give at least two model folders to average")
    first = folders[0]
    models = [read_model_folder(f) for f in folders]
    for model in models:
        if not has_realism(model) or not (model.path / REALISM_WEIGHTS).is_file():
            raise GancompError(f"{model.path}: no realism add-on")
    prints = {model.fingerprint for model in models}
    if len(prints) != 1:
        raise GancompError(f"the folders' base models differ ({', '.join(sorted(prints))})")
    layout = _layout(first)
    for f in folders[1:]:
        if _layout(f) != layout:
            raise GancompError(f"{f}: its add-on's layout differs from {first}'s")
    arrays: list[dict[str, np.ndarray]] = []
    for f in folders:
        with np.load(f / REALISM_WEIGHTS) as z:
            arrays.append({k: z[k] for k in z.files})
    keys = arrays[0].keys()
    if any(a.keys() != keys for a in arrays):
        raise GancompError("the add-ons hold different weights")
    mean = {
        k: np.mean([a[k].astype(np.float64) for a in arrays], axis=0).astype(arrays[0][k].dtype)
        for k in keys
    }
    buf = io.BytesIO()
    np.savez(buf, **mean)
    files = {p.name: p.read_bytes() for p in first.iterdir() if p.name != "metadata.json"}
    files[REALISM_WEIGHTS] = buf.getvalue()
    meta = json.loads((first / "metadata.json").read_text())
    meta.pop("fingerprint", None)
    meta.setdefault("realism", {})["average_of"] = [str(f) for f in folders]
    fp = write_model_files(out, files, meta, force=force)
    with np.load(io.BytesIO(models[0].weights)) as z:
        load_realism_synthesis(read_model_folder(out), {k: z[k] for k in z.files})  # it works
    return fp


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("folders", type=Path, nargs="+")
    ap.add_argument("--force", action="store_true", help="replace OUT")
    args = ap.parse_args(argv)
    try:
        fp = average(args.out, args.folders, args.force)
    except (GancompError, OSError) as e:
        print(f"average_add_ons: {e}", file=sys.stderr)
        return 1
    print(f"wrote {args.out} (fingerprint {fp}, the mean of {len(args.folders)} add-ons)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
