"""scripts/average_add_ons.py: the mean of several add-ons of one base model; the base
model's files and fingerprint stay, mismatched folders are refused."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import gancomp
from gancomp.runtime.models import read_model_folder
from test_realism import add_random_realism

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "average_add_ons.py"


def _run(*args) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(SCRIPT), *map(str, args)], capture_output=True, text=True, timeout=120
    )


def _add_ons(models_dir: Path, tmp_path: Path, name: str, seeds) -> list[Path]:
    out = []
    for seed in seeds:
        folder = tmp_path / f"seed{seed}" / name
        shutil.copytree(models_dir / name, folder)
        add_random_realism(folder, seed=seed)
        out.append(folder)
    return out


def _weights(folder: Path) -> dict[str, np.ndarray]:
    with np.load(folder / "realism.npz") as z:
        return {k: z[k] for k in z.files}


def test_the_mean_of_the_add_ons_on_the_same_base(models_dir, tmp_path, data_dir):
    folders = _add_ons(models_dir, tmp_path, "airplane", (0, 1, 2))
    out = tmp_path / "out" / "airplane"
    run = _run(out, *folders)
    assert run.returncode == 0, run.stderr
    each = [_weights(f) for f in folders]
    mean = _weights(out)
    assert mean.keys() == each[0].keys()
    for k, v in mean.items():
        assert v.dtype == each[0][k].dtype
        expected = sum(e[k].astype(np.float64) for e in each) / 3
        np.testing.assert_allclose(v, expected, rtol=1e-6, atol=1e-8)
    assert any(not np.array_equal(mean[k], each[0][k]) for k in mean)
    for name in ("config.json", "weights.npz", "tables.npz", "realism.json"):
        assert (out / name).read_bytes() == (folders[0] / name).read_bytes()
    assert read_model_folder(out).fingerprint == read_model_folder(folders[0]).fingerprint
    meta = json.loads((out / "metadata.json").read_text())
    assert meta["realism"]["average_of"] == [str(f) for f in folders]
    blob = gancomp.compress(data_dir / "airplane_1.png", "airplane", 2, models_dir=out.parent)
    at_one = gancomp.decompress(blob, models_dir=out.parent, realism=1.0)
    at_zero = gancomp.decompress(blob, models_dir=out.parent, realism=0.0)
    assert at_one.shape == at_zero.shape and not np.array_equal(at_one, at_zero)
    # OUT is never replaced without --force.
    again = _run(out, *folders)
    assert again.returncode == 1 and "exists" in again.stderr
    assert _run(out, *folders, "--force").returncode == 0


@pytest.mark.parametrize("case", ["other base", "no add-on", "one folder"])
def test_mismatched_folders_are_refused(models_dir, tmp_path, case):
    (a, b) = _add_ons(models_dir, tmp_path, "airplane", (0, 1))
    if case == "other base":
        (b,) = _add_ons(models_dir, tmp_path / "f", "flower", (1,))
        args, message = (a, b), "base models differ"
    elif case == "no add-on":
        (b / "realism.npz").unlink()
        args, message = (a, b), "no realism add-on"
    else:
        args, message = (a,), "at least two"
    out = tmp_path / "out" / "airplane"
    run = _run(out, *args)
    assert run.returncode == 1 and message in run.stderr, run.stderr
    assert "Traceback" not in run.stderr and not out.exists()
