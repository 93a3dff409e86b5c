"""scripts/transform_ceiling.py: its integer-grid column is what a file decodes to, and the
finer grids approach the unrounded decoder."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np

import gancomp
from gancomp.evaluation.bench import load_rgb
from gancomp.evaluation.metrics import psnr

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "transform_ceiling.py"
DATA = Path(__file__).resolve().parent / "data"


def test_integer_grid_is_the_file_and_finer_grids_approach_the_ceiling(tmp_path):
    folder = tmp_path / "images"
    folder.mkdir()
    shutil.copy(DATA / "airplane_0.png", folder / "a.png")
    run = subprocess.run(
        [sys.executable, str(SCRIPT), str(folder), "--category", "airplane", "--levels", "1,8"],
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stderr
    rows = [
        line
        for line in run.stdout.splitlines()
        if line.startswith("| 1 ") or line.startswith("| 8 ")
    ]
    assert len(rows) == 2
    (image,) = load_rgb([folder / "a.png"])
    for row in rows:
        cells = [c.strip() for c in row.strip("|").split("|")]
        level, grid, half, quarter, ceiling = int(cells[0]), *map(float, cells[1:])
        decoded = gancomp.decompress(gancomp.compress(image, category="airplane", quality=level))
        assert abs(grid - psnr(image, np.asarray(decoded))) < 0.01
        # A finer grid loses less; the unrounded decoder bounds them all (within rounding).
        assert grid < half < ceiling + 0.05 and quarter < ceiling + 0.05
