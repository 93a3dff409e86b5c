#!/usr/bin/env python
"""Give a factorized model channel-context coding: fit its context tables on training images.

    python scripts/add_context_tables.py models/flower ../shared/data/flowers/train \
        --limit 150 -o runs/ctx/flower

The output folder is SOURCE's model with the same weights and config and a ``tables.npz``
that adds the context tables (:mod:`gancomp.coding.context`) to the factorized ones, so it
has a new fingerprint and writes ``.gcz`` version 3 files; the decoded pixels of an image
are the ones SOURCE decodes (same latents, same generator), only the files are smaller.
SOURCE's realism add-on comes along unchanged but for its ``base_fingerprint`` (the
generator is the same, so its measures still hold), and so does ``density.npz``.

``gancomp train`` fits them itself when it exports a factorized model (``--context-images``);
this script is for a model folder that has none, or to refit. The tables are fitted on the
quantized latents of ``--limit`` evenly spaced images of
TRAIN at every level (one analysis pass per image serves all levels). Refitting a model
that already has context tables starts again from its factorized tables.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from gancomp.errors import GancompError
from gancomp.evaluation.bench import list_images
from gancomp.io.images import load_image
from gancomp.runtime.codec import Codec
from gancomp.runtime.context_fit import evenly_spaced, fit_from_latents, latents_all_levels
from gancomp.runtime.models import FILES, fingerprint_of, read_model_folder, write_model_files
from gancomp.runtime.realism import REALISM_JSON, REALISM_WEIGHTS

_codec: Codec | None = None


def _init(source: str) -> None:
    global _codec
    _codec = Codec.from_path(source)


def _latents(path: str) -> list[np.ndarray]:
    """One image's quantized latents at every level (the factorized model's)."""
    return latents_all_levels(_codec, load_image(path).rgb)


def add_context_tables(
    source: Path,
    images: list[Path],
    out: Path,
    buckets: int = 8,
    workers: int = 1,
    force: bool = False,
) -> str:
    """Write ``out`` (see the module docstring); returns its fingerprint."""
    model = read_model_folder(source)
    codec = Codec(model)
    if codec.hyperprior:
        raise GancompError(f"{source} is a hyperprior model: context tables code factorized ones")
    if not images:
        raise GancompError("no training images")
    if workers > 1:
        with ProcessPoolExecutor(workers, initializer=_init, initargs=(str(source),)) as ex:
            per_image = list(ex.map(_latents, [str(p) for p in images], chunksize=2))
    else:
        _init(str(source))
        per_image = [_latents(str(p)) for p in images]
    tables = fit_from_latents(codec, per_image, buckets)
    files = {name: (source / name).read_bytes() for name in FILES}
    files["tables.npz"] = tables.add_to_model_tables(files["tables.npz"])
    meta = dict(model.metadata)
    meta.pop("fingerprint", None)
    meta["context_tables"] = {
        "fitted_for": model.fingerprint,
        "train_images": len(images),
        "buckets": buckets,
    }
    realism_json = source / REALISM_JSON
    if realism_json.is_file() and (source / REALISM_WEIGHTS).is_file():
        # The fingerprint is a hash of the three files, known before the folder is written.
        description = json.loads(realism_json.read_text())
        description["base_fingerprint"] = fingerprint_of(files)
        files[REALISM_JSON] = (json.dumps(description, sort_keys=True, indent=2) + "\n").encode()
        files[REALISM_WEIGHTS] = (source / REALISM_WEIGHTS).read_bytes()
    fp = write_model_files(out, files, meta, force=force)
    if (source / "density.npz").is_file():
        shutil.copyfile(source / "density.npz", out / "density.npz")
    return fp


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("source", type=Path, help="factorized model folder")
    ap.add_argument("train", type=Path, help="folder of training images")
    ap.add_argument("-o", "--output", type=Path, required=True, help="new model folder")
    ap.add_argument("--limit", type=int, default=150, help="evenly spaced training images")
    ap.add_argument("--buckets", type=int, default=8, help="context tables per channel")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--force", action="store_true", help="replace OUTPUT")
    args = ap.parse_args(argv)
    try:
        images = evenly_spaced(list_images(args.train), args.limit)
        fp = add_context_tables(
            args.source, images, args.output, args.buckets, args.workers, args.force
        )
    except GancompError as exc:
        print(f"add_context_tables.py: {exc}", file=sys.stderr)
        return 1
    size = sum(f.stat().st_size for f in args.output.iterdir()) / 1e6
    print(f"{args.output}: model {fp}, context tables from {len(images)} images, {size:.1f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
