"""Training a hyperprior model: the rate the loss sees is the rate the coder writes.

A small hyperprior model trains for a few hundred real steps on the test images;
then, for real images at every level, the training model's bits (its likelihoods
of the rounded latents, -log2) are compared with the payload the runtime writes
for the exported model: within 1% plus a few bytes of range-coder flush (the
container's header and CRC are outside the payload).
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from PIL import Image

from gancomp.coding import container
from gancomp.runtime.codec import Codec
from gancomp.training.trainer import Trainer
from helpers import tiny_train_settings

pytestmark = [pytest.mark.train, pytest.mark.slow]


@pytest.fixture(scope="module")
def trained(tmp_path_factory, data_dir_module):
    tmp = tmp_path_factory.mktemp("hp")
    data = tmp / "imgs"
    data.mkdir()
    for f in data_dir_module.glob("flower_*.jpg"):
        shutil.copy(f, data / f.name)
    s = tiny_train_settings(
        data,
        tmp / "models" / "hp-test",
        category="hp-test",
        steps=400,
        rd_steps=400,
        batch_size=4,
        patch_size=64,
        lr=1e-3,
        entropy_model="hyperprior",
        extra={
            "config": {
                "num_down": 3,
                "channels": 24,
                "latent_channels": 24,
                "hyper_channels": 16,
                "disc_channels": 8,
            }
        },
    )
    trainer = Trainer(s)
    trainer.run()
    return trainer, tmp / "models" / "hp-test"


@pytest.fixture(scope="module")
def data_dir_module():
    from pathlib import Path

    return Path(__file__).parent / "data"


def _crops(data_dir) -> list[np.ndarray]:
    out = []
    for f in sorted(data_dir.glob("flower_*.jpg")):
        a = np.asarray(Image.open(f).convert("RGB"))
        out.append(np.ascontiguousarray(a[:128, :192]))
    return out


def test_estimated_bits_match_the_payload(trained, data_dir_module):
    from gancomp.training._tf import tf as import_tf

    tf = import_tf()
    trainer, folder = trained
    model = trainer.model
    codec = Codec.from_path(folder)
    assert json.loads((folder / "config.json").read_text())["entropy_model"] == "hyperprior"
    images = _crops(data_dir_module)
    # The barely trained index network sends many elements to the smallest scale, and at
    # quality 8 about 1.4% of the residuals fall beyond their table's range: the training
    # likelihood charges each escape its tail bin and Elias-gamma code, as the coder does
    # (bounded at one bin's 20 bits instead, the payload once came out 2.9% above the
    # estimate). A wrong rate model (a wrong scale table, say) misses by far more.
    tolerance = 0.01
    for quality in (1, 4, 8):
        level = quality - 1
        blobs = codec.compress_arrays(images, quality)
        for img, blob in zip(images, blobs):
            x = tf.constant(img[None].astype(np.float32) / 255.0)
            out = model(x, tf.constant([level]), training=False)
            bits = sum(
                float(-tf.reduce_sum(tf.math.log(lik)).numpy()) / np.log(2)
                for lik in out["likelihoods"].values()
            )
            payload = len(container.unpack(blob)[1])
            assert abs(8 * payload - bits) <= tolerance * bits + 8 * 8, (
                quality,
                8 * payload,
                bits,
            )


def test_exported_model_decodes_what_it_encodes(trained, data_dir_module):
    _, folder = trained
    codec = Codec.from_path(folder)
    images = _crops(data_dir_module)
    blobs = codec.compress_arrays(images, 5)
    decoded = codec.decode_payloads([container.unpack(b) for b in blobs])
    for img, d in zip(images, decoded):
        mse = np.mean((img.astype(np.float64) - d.rgb) ** 2)
        assert d.rgb.shape == img.shape and mse < 2000  # trained: far from noise


def test_init_from_a_factorized_model_keeps_its_transforms(tmp_path, trained, data_dir_module):
    """--init-from a hyperprior folder restores every weight, integer layers included."""
    trainer, folder = trained
    s = tiny_train_settings(
        data_dir_module,
        tmp_path / "copy",
        category="hp-copy",
        steps=1,
        rd_steps=None,
        patch_size=64,
        init_from=str(folder),
    )
    copy = Trainer(s)
    for a, b in zip(trainer.model.transform_weights(), copy.model.transform_weights()):
        if "h_s_scale" in a.path:  # restored from the exported integers: same integers
            continue
        assert np.array_equal(a.numpy(), b.numpy()), a.path
    for la, lb in zip(trainer.model.h_s_scale.sublayers, copy.model.h_s_scale.sublayers):
        wa, ba = la.integer_weights()
        wb, bb = lb.integer_weights()
        assert np.array_equal(wa.numpy(), wb.numpy()) and np.array_equal(ba.numpy(), bb.numpy())
    shutil.rmtree(tmp_path / "copy.ckpt", ignore_errors=True)


def test_freeze_transforms_trains_only_the_hyperprior(tmp_path, trained, data_dir_module):
    """--freeze-transforms: E, G and the gains keep their loaded values, the hyperprior moves,
    and a resumed run keeps the setting."""
    _, folder = trained
    out = tmp_path / "frozen"
    settings = dict(
        category="hp-frozen",
        patch_size=64,
        rd_steps=0,  # the GAN phase would train G: frozen runs have none
    )
    first = Trainer(
        tiny_train_settings(
            data_dir_module,
            out,
            **settings,
            steps=6,
            init_from=str(folder),
            freeze_transforms=True,
        )
    )
    frozen = {v.path: v.numpy().copy() for v in first.model.transform_weights()}
    first.run()
    hyper = {v.path for v in first.model.hyperprior_weights()}
    for v in first.model.transform_weights():
        same = np.array_equal(v.numpy(), frozen[v.path])
        assert same != (v.path in hyper), v.path
    resumed = Trainer(tiny_train_settings(data_dir_module, out, **settings, steps=8, resume=True))
    assert resumed.s.freeze_transforms
    resumed.run()
    before = {v.path: v.numpy() for v in first.model.transform_weights()}
    for v in resumed.model.transform_weights():
        if v.path not in hyper:
            assert np.array_equal(v.numpy(), before[v.path]), v.path


def test_freeze_transforms_needs_a_hyperprior(tmp_path, data_dir_module):
    from gancomp.errors import InputError

    s = tiny_train_settings(
        data_dir_module,
        tmp_path / "f",
        category="f",
        steps=1,
        rd_steps=None,
        patch_size=64,
        freeze_transforms=True,
        extra={"config": {"num_down": 3, "channels": 8, "latent_channels": 8}},
    )
    with pytest.raises(InputError, match="hyperprior"):
        Trainer(s)


def test_init_from_a_factorized_folder_gives_a_fresh_hyperprior_todays_settings(
    tmp_path, data_dir_module
):
    """A hyperprior started from a factorized folder (exported before the hyperprior's settings
    existed) gets this version's index bias scale, not the old-folder default of 1, which left
    the index layer's bias almost frozen; --hyper-channels sizes z."""
    from pathlib import Path

    from gancomp.training.model import ModelConfig

    source = Path(__file__).parent / "data" / "tiny_models" / "flower"
    assert "index_bias_scale" not in json.loads((source / "config.json").read_text())
    s = tiny_train_settings(
        data_dir_module,
        tmp_path / "hp",
        category="flower",
        steps=1,
        rd_steps=None,
        patch_size=64,
        init_from=str(source),
        entropy_model="hyperprior",
        hyper_channels=8,
    )
    cfg = Trainer(s).cfg
    assert cfg.index_bias_scale == ModelConfig(category="x").index_bias_scale > 1
    assert cfg.hyper_channels == 8
