"""scripts/carry_realism.py: a model trained further gets its parent's realism add-on; the
model's files, fingerprint and r = 0 stay as they were."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import gancomp
from gancomp.runtime.models import read_model_folder, write_model_folder
from gancomp.runtime.realism import REALISM_JSON, REALISM_WEIGHTS
from test_realism import add_random_realism

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "carry_realism.py"


def _run(*args) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(SCRIPT), *map(str, args)], capture_output=True, text=True, timeout=120
    )


def _trained_further(parent: Path, out: Path) -> None:
    """``parent`` with its generator's kernels nudged: another fingerprint, same layout."""
    model = read_model_folder(parent)
    with np.load(io.BytesIO(model.weights)) as z:
        weights = {k: z[k] for k in z.files}
    for name in weights:
        if name.startswith("gancodec/generator/") and name.endswith("kernel"):
            weights[name] = (weights[name].astype(np.float32) * 1.05).astype(weights[name].dtype)
    write_model_folder(
        out, (parent / "config.json").read_text(), weights, model.tables, dict(model.metadata)
    )


@pytest.fixture
def folders(models_dir, tmp_path):
    source = tmp_path / "source" / "flower"
    shutil.copytree(models_dir / "flower", source)
    add_random_realism(source)
    meta = json.loads((source / "metadata.json").read_text())
    meta["realism"] = {"training": {"steps": 7}}
    meta["realism_validation"] = [{"quality": 1, "realism": 1.0, "psnr": 20.0}]
    (source / "metadata.json").write_text(json.dumps(meta))
    target = tmp_path / "target" / "flower"
    _trained_further(models_dir / "flower", target)
    return source, target, tmp_path / "out" / "flower"


def test_the_add_on_is_carried_over_and_r0_is_the_target(folders, data_dir):
    source, target, out = folders
    run = _run(source, target, out)
    assert run.returncode == 0, run.stderr
    src, dst, got = (read_model_folder(p) for p in (source, target, out))
    assert got.fingerprint == dst.fingerprint != src.fingerprint
    for name in ("config.json", "weights.npz", "tables.npz", REALISM_WEIGHTS):
        expected = (source if name == REALISM_WEIGHTS else target) / name
        assert (out / name).read_bytes() == expected.read_bytes()
    assert json.loads((out / REALISM_JSON).read_text())["base_fingerprint"] == dst.fingerprint
    assert got.metadata["realism"] == {"training": {"steps": 7}, "carried_from": src.fingerprint}
    assert "realism_validation" not in got.metadata  # measured on the source, not on this
    image = data_dir / "flower_0.jpg"
    data = gancomp.compress(image, "flower", 2, models_dir=target.parent)
    assert gancomp.compress(image, "flower", 2, models_dir=out.parent) == data
    fidelity = gancomp.decompress(data, target.parent)
    assert np.array_equal(gancomp.decompress(data, out.parent, realism=0.0), fidelity)
    assert not np.array_equal(gancomp.decompress(data, out.parent, realism=1.0), fidelity)


def test_refusals_are_one_line_and_write_nothing(folders, models_dir):
    source, target, out = folders
    no_add_on = _run(target, target, out)
    assert no_add_on.returncode == 1 and "has no realism add-on" in no_add_on.stderr
    other = _run(source, models_dir / "airplane", out)
    assert other.returncode == 1 and "different generators" in other.stderr
    for run in (no_add_on, other):
        assert len(run.stderr.strip().splitlines()) == 1
    assert not out.exists()
    assert _run(source, target, out).returncode == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    again = _run(source, models_dir / "flower", out)
    assert again.returncode == 1 and "--force" in again.stderr
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert _run(source, models_dir / "flower", out, "--force").returncode == 0
    assert (
        read_model_folder(out).fingerprint == read_model_folder(models_dir / "flower").fingerprint
    )
