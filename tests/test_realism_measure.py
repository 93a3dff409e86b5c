"""The realism measures: high-frequency energy ratio and the classifier two-sample test."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image, ImageFilter

from conftest import DATA
from gancomp.errors import InputError
from gancomp.evaluation.realism import (
    high_frequency_power,
    high_frequency_ratio,
    name_side,
    split_by_name,
    two_sample_accuracy,
)

IMAGES = ["airplane_0.png", "airplane_1.png", "automobile_2.png", "flower_0.jpg", "flower_1.jpg"]


def load(name: str) -> np.ndarray:
    with Image.open(DATA / name) as im:
        return np.asarray(im.convert("RGB"))


def blurred(a: np.ndarray, radius: float) -> np.ndarray:
    return np.asarray(Image.fromarray(a).filter(ImageFilter.GaussianBlur(radius)))


def noisy(a: np.ndarray, rng: np.random.Generator, sigma: float) -> np.ndarray:
    return np.clip(a + rng.normal(0.0, sigma, a.shape), 0, 255).round().astype(np.uint8)


@pytest.fixture(scope="module")
def originals() -> list[np.ndarray]:
    return [load(n) for n in IMAGES]


# -- high-frequency ratio --------------------------------------------------------------


def test_hf_ratio_is_one_for_identical_images(originals):
    assert high_frequency_ratio(originals, [a.copy() for a in originals]) == 1.0


def test_hf_ratio_falls_under_a_half_for_a_blurred_copy(originals):
    ratio = high_frequency_ratio(originals, [blurred(a, 1.5) for a in originals])
    assert 0 <= ratio < 0.5


def test_hf_ratio_rises_above_one_with_noise(originals):
    rng = np.random.default_rng(0)
    ratio = high_frequency_ratio(originals, [noisy(a, rng, 10.0) for a in originals])
    assert ratio > 1.0


def test_hf_power_counts_only_frequencies_above_half_nyquist():
    """A stripe at 0.2 cycles/pixel (below the 0.25 cut-off) has no high-frequency power, one
    at 0.375 has all its power there: H * W * amplitude^2 / 2 per channel (Parseval)."""
    h, w = 16, 40
    x = np.arange(w)
    low = np.tile(10 * np.cos(2 * np.pi * 0.2 * x), (h, 1))
    high = np.tile(10 * np.cos(2 * np.pi * 0.375 * x), (h, 1))
    assert high_frequency_power(low) == pytest.approx(0.0, abs=1e-9)
    assert high_frequency_power(high) == pytest.approx(h * w * 100 / 2)
    assert high_frequency_power(np.stack([high] * 3, axis=-1)) == pytest.approx(3 * h * w * 50)


def test_hf_ratio_of_flat_images():
    flat = [np.full((8, 8, 3), 100, np.uint8)]
    assert high_frequency_ratio(flat, flat) == 1.0
    stripes = [np.tile(np.array([0, 200], np.uint8), (8, 4))[..., None].repeat(3, axis=-1)]
    assert high_frequency_ratio(flat, stripes) == float("inf")


def test_hf_ratio_rejects_mismatched_pairs(originals):
    with pytest.raises(InputError, match="differ in shape"):
        high_frequency_ratio(originals[:1], [originals[3]])
    with pytest.raises(InputError, match="reconstructions"):
        high_frequency_ratio(originals, originals[:2])


# -- the split by name -----------------------------------------------------------------


def test_split_by_name_is_a_partition_and_keeps_each_name_on_one_side():
    names = [f"img_{i:04d}.png" for i in range(300)] + ["img_0007.png", "img_0123.png"]
    train, test = split_by_name(names)
    assert sorted(train + test) == list(range(len(names)))
    train_names = {names[i] for i in train}
    test_names = {names[i] for i in test}
    assert not train_names & test_names  # a repeated name lands where its first copy did
    assert 120 < len(train) < 180  # about half


def test_split_by_name_is_stable():
    """The side is a fixed function of the name (SHA-256), the same in every run and order."""
    names = ["aeroplane_s_000004.png", "c001_image_06739.jpg", "a", "b", "c", "g"]
    assert [name_side(n) for n in names] == [name_side(n) for n in reversed(names)][::-1]
    train, test = split_by_name(names)
    assert split_by_name(list(names)) == (train, test)
    # Pinned: changing the hash would silently change every published measure.
    assert [name_side(n) for n in names] == [0, 1, 0, 0, 0, 1]


def test_two_sample_accuracy_checks_its_input_before_training(originals):
    with pytest.raises(InputError, match="names"):
        two_sample_accuracy(originals, originals, ["a"])
    with pytest.raises(InputError, match="give a crop size"):
        two_sample_accuracy(originals, originals, IMAGES)
    with pytest.raises(InputError, match="smaller than"):
        two_sample_accuracy(originals, originals, IMAGES, crop=64)
    same_side = ["a", "b", "c"]  # all three hash to the training side
    assert [name_side(n) for n in same_side] == [0, 0, 0]
    with pytest.raises(InputError, match="give more images"):
        two_sample_accuracy(originals[:3], originals[:3], same_side, crop=16)


def test_importing_the_module_loads_no_tensorflow():
    code = (
        "import sys, json, gancomp.evaluation.realism\n"
        "print(json.dumps(sorted(m for m in sys.modules "
        "if m.split('.')[0] in ('tensorflow', 'keras') or m.startswith('gancomp.training'))))"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout.strip().splitlines()[-1]) == []


# -- the critic (TensorFlow) -----------------------------------------------------------


def flower_tiles(side: int = 48) -> tuple[list[np.ndarray], list[str]]:
    """The test flower photos cut into side x side tiles, each named as its own image."""
    tiles, names = [], []
    for n in ("flower_0.jpg", "flower_1.jpg", "flower_2.jpg"):
        a = load(n)
        for y in range(0, a.shape[0] - side + 1, side):
            for x in range(0, a.shape[1] - side + 1, side):
                tiles.append(a[y : y + side, x : x + side])
                names.append(f"{n}_{y}_{x}")
    return tiles, names


@pytest.mark.train
def test_critic_is_at_chance_when_both_sides_come_from_one_distribution():
    tiles, names = flower_tiles()
    rng = np.random.default_rng(1)
    a = [noisy(t, rng, 6.0) for t in tiles]
    b = [noisy(t, rng, 6.0) for t in tiles]
    result = two_sample_accuracy(a, b, names, crop=32, steps=150, seed=0)
    assert result["n_test"] == 2 * 4 * result["test_images"]
    assert result["train_images"] + result["test_images"] == len(tiles)
    assert result["n_train"] == 2 * result["train_images"]
    assert 0.35 <= result["accuracy"] <= 0.65
    assert 0 < result["standard_error"] < 0.05


@pytest.mark.train
def test_critic_tells_strongly_blurred_reconstructions_apart():
    tiles, names = flower_tiles()
    fake = [blurred(t, 2.0) for t in tiles]
    result = two_sample_accuracy(tiles, fake, names, crop=32, steps=150, seed=0)
    assert result["accuracy"] > 0.9


@pytest.mark.train
def test_critic_on_whole_images():
    """CIFAR-size images go in whole (no crop): every scored image counts twice."""
    small = [load(n) for n in IMAGES[:3]] * 4
    names = [f"{i}.png" for i in range(len(small))]
    fake = [blurred(a, 2.0) for a in small]
    result = two_sample_accuracy(small, fake, names, steps=5, seed=0)
    assert result["n_test"] == 2 * result["test_images"]
    assert 0.0 <= result["accuracy"] <= 1.0
