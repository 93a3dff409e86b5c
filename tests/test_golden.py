"""Golden tests for the shipped models.

What is exact on every machine is pinned exactly: the latents a committed file
decodes to (integer range decoding with frozen tables), and the bytes the encoder
writes once its latents agree. The decoded pixels come from a float32 generator
whose sums depend on the BLAS kernels OpenBLAS picks for the CPU, so they are
pinned within a tolerance: at most 1 level of difference, on at most 0.1% of the
values, and PSNR against the golden pixels above 60 dB (docs/FORMAT.md,
"Determinism"). The golden pixels were written with OpenBLAS' Haswell kernels.
"""

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import gancomp
from gancomp.coding.container import unpack
from gancomp.evaluation.metrics import psnr
from gancomp.runtime.codec import load_codec
from gancomp.runtime.models import BUILTIN_CATEGORIES, available_categories
from helpers import run_cli

ROOT = Path(__file__).resolve().parent
GOLDEN = ROOT / "data" / "golden"
RECORD = json.loads((GOLDEN / "golden.json").read_text())


def array_hash(a: np.ndarray) -> str:
    # Same definition as scripts/make_golden.py.
    return hashlib.sha256(np.ascontiguousarray(a).tobytes() + str(a.shape).encode()).hexdigest()


def latents_of(data: bytes) -> np.ndarray:
    header, payload = unpack(data)
    return load_codec(header.category).decode_latents([(header, payload)])[0]


def assert_pixels_near_golden(pixels: np.ndarray, category: str) -> None:
    golden = np.asarray(Image.open(GOLDEN / f"{category}.decoded.png"))
    assert pixels.shape == golden.shape
    diff = np.abs(pixels.astype(np.int16) - golden.astype(np.int16))
    assert diff.max() <= 1, f"max difference {diff.max()}"
    assert np.count_nonzero(diff) <= 0.001 * diff.size
    assert pixels.ndim == 3 and (np.array_equal(pixels, golden) or psnr(pixels, golden) > 60)


def test_shipped_models_are_installed():
    assert set(BUILTIN_CATEGORIES) <= set(available_categories())


@pytest.mark.parametrize("category", BUILTIN_CATEGORIES)
def test_golden_file_decodes_to_pinned_latents_and_near_pinned_pixels(category):
    data = (GOLDEN / f"{category}.gcz").read_bytes()
    assert hashlib.sha256(data).hexdigest() == RECORD[category]["gcz_sha256"]
    assert array_hash(latents_of(data)) == RECORD[category]["latents_sha256"]
    assert_pixels_near_golden(gancomp.decompress(data), category)


@pytest.mark.parametrize("category", BUILTIN_CATEGORIES)
def test_encoder_reproduces_golden_bitstream(category):
    """The encoder is float32 too: a latent within rounding error of .5 may round the other
    way on other kernels. Any such latent may move by 1; the rest, and the coding, are exact."""
    rec = RECORD[category]
    data = gancomp.compress(ROOT.parent / rec["source"], category=category, quality=rec["quality"])
    golden = latents_of((GOLDEN / f"{category}.gcz").read_bytes())
    mine = latents_of(data)
    moved = np.abs(mine.astype(np.int64) - golden)
    assert moved.max() <= 1 and np.count_nonzero(moved) <= 0.001 * moved.size
    if not moved.any():  # same latents: the range coder must write the very same bytes
        assert hashlib.sha256(data).hexdigest() == rec["gcz_sha256"]


def test_the_pixel_tolerance_can_fail():
    """The check above is not vacuous: a decode with one value off by 2 fails it."""
    pixels = gancomp.decompress((GOLDEN / "airplane.gcz").read_bytes()).copy()
    pixels[0, 0, 0] = pixels[0, 0, 0] + 2 if pixels[0, 0, 0] < 128 else pixels[0, 0, 0] - 2
    with pytest.raises(AssertionError):
        assert_pixels_near_golden(pixels, "airplane")


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
    moved = np.abs(
        latents_of(gcz.read_bytes()).astype(np.int64)
        - latents_of((GOLDEN / "flower.gcz").read_bytes())
    )
    assert moved.max() <= 1 and np.count_nonzero(moved) <= 0.001 * moved.size
    r = run_cli("decompress", GOLDEN / "flower.gcz", "-o", png, env=env)
    assert r.returncode == 0, r.stderr
    assert_pixels_near_golden(np.asarray(Image.open(png)), "flower")
