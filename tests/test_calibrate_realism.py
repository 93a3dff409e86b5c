"""scripts/calibrate_realism.py: the per-level realism scale chosen from a sweep and written
into realism.json, on a tiny model with random realism branches."""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

import gancomp
from conftest import DATA, TINY_MODELS
from gancomp.runtime.models import read_model_folder
from test_realism import add_random_realism

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "calibrate_realism.py"


@pytest.fixture(scope="module")
def calibrate():
    spec = importlib.util.spec_from_file_location("calibrate_realism", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def row(level: int, r: float, accuracy: float, hf: float, psnr: float) -> dict:
    return {
        "level": level,
        "codec": "gancomp",
        "setting": f"r={r:g}",
        "psnr": psnr,
        "hf_ratio": hf,
        "two_sample": {"accuracy": accuracy},
    }


def test_the_least_detectable_admissible_weight_wins(calibrate):
    rows = [
        row(1, 0, 0.99, 0.5, 23.0),
        row(1, 0.5, 0.70, 0.85, 22.5),
        row(1, 0.8, 0.60, 1.30, 22.0),  # HF above 1.2: not admissible
        row(1, 1, 0.75, 1.05, 21.0),
        row(2, 0, 0.90, 0.7, 27.0),
        row(2, 0.6, 0.64, 0.90, 24.4),  # costs 2.6 dB: not admissible
        row(2, 1, 0.80, 0.95, 24.6),
        row(3, 0, 0.80, 0.8, 29.0),
        row(3, 0.5, 0.70, 0.70, 28.0),  # HF below 0.8: none admissible at level 3
        {
            "level": 1,
            "codec": "webp",
            "setting": "q=0",
            "psnr": 30.0,
            "hf_ratio": 1.0,
            "two_sample": {"accuracy": 0.5},
        },
    ]
    scales, lines = calibrate.choose_scales(rows, [1.0, 0.5, 1.0, 0.0])
    assert scales == [0.5, 0.5, 1.0, 0.0]  # level 2: r = 1 of scale 0.5 stays 0.5
    assert len(lines) == 3 and "no admissible r" in lines[2]


def test_a_tie_within_the_standard_error_keeps_the_most_realism(calibrate):
    def timed(level, r, accuracy, hf, se):
        out = row(level, r, accuracy, hf, 28.0)
        out["two_sample"]["standard_error"] = se
        return out

    rows = [
        timed(1, 0, 0.96, 0.3, 0.01),
        timed(1, 0.8, 0.850, 0.80, 0.017),
        timed(1, 1, 0.859, 0.94, 0.017),  # 0.009 worse: within the error, so r = 1
        timed(2, 0, 0.96, 0.3, 0.01),
        timed(2, 0.6, 0.800, 0.85, 0.010),
        timed(2, 1, 0.850, 1.00, 0.010),  # 0.05 worse: a real difference, so r = 0.6
    ]
    scales, _ = calibrate.choose_scales(rows, [1.0, 1.0])
    assert scales == [1.0, 0.6]


def test_a_sweep_without_r_zero_is_refused(calibrate):
    with pytest.raises(ValueError, match="r = 0"):
        calibrate.choose_scales([row(1, 0.5, 0.7, 1.0, 22.0)], [1.0])


def test_calibrated_r_one_decodes_as_the_chosen_weight_did(calibrate, tmp_path, capsys):
    folder = tmp_path / "airplane"
    shutil.copytree(TINY_MODELS / "airplane", folder)
    add_random_realism(folder)
    data = gancomp.compress(DATA / "airplane_1.png", "airplane", 1, models_dir=tmp_path)
    at_half = gancomp.decompress(data, tmp_path, realism=0.5)
    assert not np.array_equal(at_half, gancomp.decompress(data, tmp_path, realism=1.0))
    sweep = tmp_path / "sweep.json"
    sweep.write_text(
        json.dumps(
            {
                "model_fingerprint": read_model_folder(folder).fingerprint,
                "rows": [
                    row(1, 0, 0.99, 0.5, 23.0),
                    row(1, 0.5, 0.6, 1.0, 22.5),
                    row(1, 1, 0.8, 1.1, 21.0),
                ],
            }
        )
    )
    meta = json.loads((folder / "metadata.json").read_text())
    meta["realism"] = {"branches": 2, "level_scale": [1.0] * 8}  # as a trained add-on's
    (folder / "metadata.json").write_text(json.dumps(meta))
    before = (folder / "realism.json").read_bytes()
    assert calibrate.main([str(sweep), str(folder)]) == 1  # no --force: nothing written
    assert (folder / "realism.json").read_bytes() == before
    assert calibrate.main([str(sweep), str(folder), "--force"]) == 0
    assert json.loads((folder / "realism.json").read_text())["level_scale"][0] == 0.5
    meta = json.loads((folder / "metadata.json").read_text())["realism"]
    assert meta["level_scale"][0] == 0.5 and "r = 0.5" in meta["calibration"]["levels"][0]
    assert np.array_equal(gancomp.decompress(data, tmp_path, realism=1.0), at_half)
    assert sorted(p.name for p in folder.iterdir() if p.name.startswith(".")) == []


def test_a_calibration_that_keeps_the_scales_is_recorded(calibrate, tmp_path):
    folder = tmp_path / "airplane"
    shutil.copytree(TINY_MODELS / "airplane", folder)
    add_random_realism(folder)
    sweep = tmp_path / "sweep.json"
    rows = [row(1, 0, 0.99, 0.5, 23.0), row(1, 1, 0.8, 1.1, 22.0)]  # r = 1 keeps scale 1
    fingerprint = read_model_folder(folder).fingerprint
    sweep.write_text(json.dumps({"model_fingerprint": fingerprint, "rows": rows}))
    meta = json.loads((folder / "metadata.json").read_text())
    meta["realism"] = {"branches": 2, "level_scale": [1.0] * 8}
    (folder / "metadata.json").write_text(json.dumps(meta))
    before = (folder / "realism.json").read_bytes()
    assert calibrate.main([str(sweep), str(folder)]) == 0  # nothing to change, nothing written
    assert "calibration" not in json.loads((folder / "metadata.json").read_text())["realism"]
    assert calibrate.main([str(sweep), str(folder), "--force"]) == 0
    assert (folder / "realism.json").read_bytes() == before
    meta = json.loads((folder / "metadata.json").read_text())["realism"]
    assert "r = 1" in meta["calibration"]["levels"][0]


def test_a_sweep_of_another_model_is_refused(calibrate, tmp_path, capsys):
    folder = tmp_path / "airplane"
    shutil.copytree(TINY_MODELS / "airplane", folder)
    add_random_realism(folder)
    sweep = tmp_path / "sweep.json"
    sweep.write_text(json.dumps({"model_fingerprint": "00000000", "rows": []}))
    assert calibrate.main([str(sweep), str(folder), "--force"]) == 1
    assert "belongs to" in capsys.readouterr().err
