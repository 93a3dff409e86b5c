"""scripts/shrink_model.py: a smaller folder that decodes like its source and keeps what
--init-from needs (the trainable densities)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image

import gancomp
from gancomp.runtime.models import read_model_folder

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "shrink_model.py"
DATA = Path(__file__).resolve().parent / "data"


def test_shrunk_folder_keeps_the_densities_and_decodes(models_dir, tmp_path):
    src = tmp_path / "src" / "flower"
    shutil.copytree(models_dir / "flower", src)
    density = src / "density.npz"
    np.savez(density, **{"gancodec/density/matrix_0": np.arange(6, dtype=np.float32)})
    out_root = tmp_path / "small"
    out = out_root / "flower"
    run = subprocess.run(
        [sys.executable, str(SCRIPT), str(src), str(out)], capture_output=True, text=True
    )
    assert run.returncode == 0, run.stderr
    assert (out / "density.npz").read_bytes() == density.read_bytes()
    assert len(read_model_folder(out).weights) < 0.6 * len(read_model_folder(src).weights)
    assert read_model_folder(out).fingerprint != read_model_folder(src).fingerprint
    img = np.asarray(Image.open(DATA / "flower_0.jpg").convert("RGB"))
    ref = gancomp.decompress(
        gancomp.compress(img, category="flower", quality=4, models_dir=src.parent),
        models_dir=src.parent,
    )
    got = gancomp.decompress(
        gancomp.compress(img, category="flower", quality=4, models_dir=out_root),
        models_dir=out_root,
    )
    diff = np.abs(got.astype(int) - ref.astype(int))
    assert diff.mean() < 1.0  # kernels rounded to float16: pixels barely move
    # An existing folder is not replaced without --force.
    again = subprocess.run(
        [sys.executable, str(SCRIPT), str(src), str(out)], capture_output=True, text=True
    )
    assert again.returncode != 0 and (out / "density.npz").exists()
