"""`gancomp train --init-from`: the entropy model's densities (density.npz).

A model folder's fingerprinted files hold no trainable density, so before density.npz
every --init-from run started from a random density. The export now writes the densities
to density.npz (outside the fingerprint, never read by the runtime), --init-from loads them,
and a folder without them (every folder exported before) gets a density warm-up: the first
steps train the densities alone.

Marked ``train`` (TensorFlow); the tests that run training steps are also ``slow``.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import gancomp
from gancomp.errors import InputError
from gancomp.runtime.models import FILES, read_model_folder, weights_to_bytes
from gancomp.training.trainer import (
    DENSITY_FILE,
    Trainer,
    TrainSettings,
    density_warmup_default,
    init_model_folder,
)
from helpers import tiny_train_settings

pytestmark = pytest.mark.train


def ModelConfig(**fields):  # noqa: N802 - stands in for the class, imported when called
    # training.model imports Keras: importing it here at collection time would break the
    # runtime-only CI step, which collects this module before deselecting it.
    from gancomp.training.model import ModelConfig as config

    return config(**fields)


DATA = Path(__file__).parent / "data"
TINY = {"num_down": 3, "channels": 8, "latent_channels": 8, "disc_channels": 8}


def _settings(images, output, **kw) -> TrainSettings:
    return tiny_train_settings(images, output, **kw)


@pytest.fixture(scope="module")
def trained(tmp_path_factory, images):
    """A tiny factorized model trained a few steps and exported: its densities are not the
    initial ones."""
    out = tmp_path_factory.mktemp("src") / "models" / "airplane"
    trainer = Trainer(_settings(images, out, extra={"config": TINY}))
    trainer.run()
    return trainer, out


def _batch():
    return (
        np.stack(
            [np.asarray(Image.open(DATA / f"airplane_{i}.png").convert("RGB")) for i in range(3)]
        ).astype(np.float32)[:, :32, :32]
        / 255.0
    )


def _bits(model) -> np.ndarray:
    """The model's estimated bits of each image of a batch (rounded latents), levels 0-2."""
    from gancomp.training._tf import tf as import_tf

    tf = import_tf()
    out = model(tf.constant(_batch()), tf.constant([0, 1, 2]), training=False)
    return sum(
        -tf.reduce_sum(tf.math.log(lik), axis=[1, 2, 3]).numpy() / np.log(2)
        for lik in out["likelihoods"].values()
    )


def _densities(model) -> dict[str, np.ndarray]:
    return {v.path: v.numpy().copy() for v in model.density.trainable_weights}


def _copy_without_densities(folder, dest):
    shutil.copytree(folder, dest)
    (dest / DENSITY_FILE).unlink()
    return dest


@pytest.mark.slow
def test_export_writes_the_densities_outside_the_fingerprint(trained, tmp_path, images):
    trainer, folder = trained
    with np.load(folder / DENSITY_FILE) as z:
        stored = {k: z[k] for k in z.files}
    model_densities = _densities(trainer.model)
    assert sorted(stored) == sorted(model_densities) and stored
    for name, a in stored.items():
        assert a.dtype == np.float32 and np.array_equal(a, model_densities[name]), name

    # The fingerprint is the one of the three fingerprinted files alone.
    fp = read_model_folder(folder).fingerprint
    without = _copy_without_densities(folder, tmp_path / "without" / "airplane")
    assert read_model_folder(without).fingerprint == fp
    assert read_model_folder(folder).metadata["fingerprint"] == fp
    # The runtime neither needs nor reads it: without it, or with garbage in it, the same bytes.
    garbage = shutil.copytree(folder, tmp_path / "garbage" / "airplane")
    (garbage / DENSITY_FILE).write_bytes(b"not a zip")
    image = images / "airplane_0.png"
    data = gancomp.compress(image, "airplane", 3, models_dir=folder.parent)
    pixels = gancomp.decompress(data, folder.parent)
    for other in (without, garbage):
        assert gancomp.compress(image, "airplane", 3, models_dir=other.parent) == data
        assert np.array_equal(gancomp.decompress(data, other.parent), pixels)


@pytest.mark.slow
def test_init_from_starts_from_the_exported_densities(trained, tmp_path, images, capsys):
    """At step 0 the model estimates the source model's bits; without density.npz (before this
    change, always) the density was a fresh one and so were the bits."""
    trainer, folder = trained
    capsys.readouterr()
    copy = Trainer(_settings(images, tmp_path / "copy", steps=10, init_from=str(folder)))
    assert "start fresh" not in capsys.readouterr().err
    assert copy.s.density_warmup_steps == 0
    source_bits = _bits(trainer.model)
    np.testing.assert_allclose(_bits(copy.model), source_bits, rtol=1e-6)

    without = _copy_without_densities(folder, tmp_path / "old" / "airplane")
    fresh = Trainer(_settings(images, tmp_path / "fresh", steps=10, init_from=str(without)))
    err = capsys.readouterr().err
    assert f"{without} has no density.npz" in err and len(err.strip().splitlines()) == 1
    assert fresh.s.density_warmup_steps == density_warmup_default(10) == 1
    assert not np.allclose(_bits(fresh.model), source_bits, rtol=1e-3)


@pytest.mark.slow
def test_without_densities_the_warm_up_trains_only_them(tmp_path, images, models_dir, capsys):
    """A folder exported before density.npz (the committed tiny models): the first steps train
    the densities alone; E, G and the gains move only after them, also across --resume."""
    source = models_dir / "airplane"
    assert not (source / DENSITY_FILE).exists()
    out = tmp_path / "models" / "airplane"
    settings = dict(density_warmup_steps=2, rd_steps=0, beta=0.0)
    first = Trainer(_settings(images, out, steps=2, init_from=str(source), **settings))
    assert "train alone for the first 2 steps" in capsys.readouterr().err
    transforms = {v.path: v.numpy().copy() for v in first.model.transform_weights()}
    densities = _densities(first.model)
    first.run()
    for v in first.model.transform_weights():
        assert np.array_equal(v.numpy(), transforms[v.path]), v.path
    for name, a in _densities(first.model).items():
        assert not np.array_equal(a, densities[name]), name
    assert (out / DENSITY_FILE).is_file()

    # The run keeps its warm-up on --resume; after it every variable trains.
    resumed = Trainer(_settings(images, out, steps=3, resume=True))
    assert resumed.s.density_warmup_steps == 2
    resumed.run()
    assert any(
        not np.array_equal(v.numpy(), transforms[v.path]) for v in resumed.model.transform_weights()
    )


def test_a_hyperprior_loads_only_a_hyperprior_sources_densities(tmp_path, images, capsys):
    """The z density comes from a hyperprior folder's density.npz; a factorized folder's y
    density (here of the very same shape) is not a z density: it starts fresh, warmed up."""
    hp = tmp_path / "hp" / "airplane"
    init_model_folder(
        ModelConfig(category="airplane", entropy_model="hyperprior", hyper_channels=8, **TINY), hp
    )
    with np.load(hp / DENSITY_FILE) as z:
        shifted = {k: z[k] + np.float32(0.25) for k in z.files}  # not what a fresh one is
    (hp / DENSITY_FILE).write_bytes(weights_to_bytes(shifted))
    loaded = Trainer(_settings(images, tmp_path / "a", init_from=str(hp)))
    assert loaded.s.density_warmup_steps == 0
    for name, a in _densities(loaded.model).items():
        assert np.array_equal(a, shifted[name]), name

    flat = tmp_path / "flat" / "airplane"
    init_model_folder(ModelConfig(category="airplane", **TINY), flat)
    with np.load(flat / DENSITY_FILE) as z:
        shifted = {k: z[k] + np.float32(0.25) for k in z.files}
    (flat / DENSITY_FILE).write_bytes(weights_to_bytes(shifted))
    capsys.readouterr()
    started = Trainer(
        _settings(
            images,
            tmp_path / "b",
            steps=100,
            init_from=str(flat),
            entropy_model="hyperprior",
            hyper_channels=8,
        )
    )
    assert "factorized source's density is not this model's" in capsys.readouterr().err
    assert started.s.density_warmup_steps == 10
    for name, a in _densities(started.model).items():
        assert a.shape == shifted[name].shape and not np.array_equal(a, shifted[name]), name


def test_a_density_file_that_does_not_fit_is_a_one_line_error(tmp_path, images):
    """Wrong shapes, missing densities or an unreadable file: an InputError, nothing written."""
    folder = tmp_path / "m" / "airplane"
    init_model_folder(ModelConfig(category="airplane", **TINY), folder)
    with np.load(folder / DENSITY_FILE) as z:
        good = {k: z[k] for k in z.files}
    name = sorted(good)[0]
    cases = {
        "has shape": {**good, name: np.zeros((3, 1, 1), np.float32)},
        "lacks 1 densities": {k: v for k, v in good.items() if k != name},
    }
    for i, (message, arrays) in enumerate(cases.items()):
        (folder / DENSITY_FILE).write_bytes(weights_to_bytes(arrays))
        out = tmp_path / f"out{i}"
        with pytest.raises(InputError, match=message) as info:
            Trainer(_settings(images, out, init_from=str(folder)))
        assert "\n" not in str(info.value) and DENSITY_FILE in str(info.value)
        assert not out.exists()
    (folder / DENSITY_FILE).write_bytes(b"not a zip file")
    with pytest.raises(InputError, match="density.npz is unreadable"):
        Trainer(_settings(images, tmp_path / "out", init_from=str(folder)))


@pytest.mark.slow
def test_the_realism_phase_keeps_the_densities(trained, tmp_path, images):
    _, folder = trained
    out = tmp_path / "models" / "airplane"
    trainer = Trainer(
        _settings(images, out, steps=1, rd_steps=None, init_from=str(folder), realism_phase=True)
    )
    assert trainer.s.density_warmup_steps == 0
    trainer.run()
    for name in (*FILES, DENSITY_FILE):
        assert (out / name).read_bytes() == (folder / name).read_bytes(), name
