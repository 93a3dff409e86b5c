"""Golden tests: the shipped models' bitstreams and decoded pixels are pinned."""

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import gancomp
from gancomp.models import BUILTIN_CATEGORIES, available_categories
from helpers import run_cli

ROOT = Path(__file__).resolve().parent
GOLDEN = ROOT / "data" / "golden"
RECORD = json.loads((GOLDEN / "golden.json").read_text())


def pixel_hash(pixels: np.ndarray) -> str:
    # Same definition as scripts/make_golden.py.
    return hashlib.sha256(
        np.ascontiguousarray(pixels).tobytes() + str(pixels.shape).encode()
    ).hexdigest()


def test_shipped_models_are_installed():
    assert set(BUILTIN_CATEGORIES) <= set(available_categories())


@pytest.mark.parametrize("category", BUILTIN_CATEGORIES)
def test_golden_file_decodes_to_pinned_pixels(category):
    data = (GOLDEN / f"{category}.gcz").read_bytes()
    assert pixel_hash(gancomp.decompress(data)) == RECORD[category]["pixels_sha256"]


@pytest.mark.parametrize("category", BUILTIN_CATEGORIES)
def test_encoder_reproduces_golden_bitstream(category):
    rec = RECORD[category]
    data = gancomp.compress(ROOT.parent / rec["source"], category=category, quality=rec["quality"])
    assert hashlib.sha256(data).hexdigest() == rec["gcz_sha256"]


@pytest.mark.parametrize("threads", ["1", "2"])
def test_golden_flower_in_a_fresh_process_with_threads(tmp_path, threads):
    """The real flower model is big enough for multi-threaded BLAS: results must not move."""
    rec = RECORD["flower"]
    env = {"OPENBLAS_NUM_THREADS": threads, "OMP_NUM_THREADS": threads}
    gcz, png = tmp_path / "f.gcz", tmp_path / "f.png"
    r = run_cli(
        "compress",
        ROOT.parent / rec["source"],
        "-c",
        "flower",
        "-q",
        rec["quality"],
        "-o",
        gcz,
        env=env,
    )
    assert r.returncode == 0, r.stderr
    assert hashlib.sha256(gcz.read_bytes()).hexdigest() == rec["gcz_sha256"]
    r = run_cli("decompress", GOLDEN / "flower.gcz", "-o", png, env=env)
    assert r.returncode == 0, r.stderr
    assert pixel_hash(np.asarray(Image.open(png))) == rec["pixels_sha256"]
