"""`gancomp train --init-from MODEL --channels N`: a wider model that starts as the source.

The source's weights fill the leading channels and old channels read new ones through zeros
(gancomp.training.widen), so before any step the wider model gives the source's
reconstruction and rates, while its new channels carry activity of their own.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from gancomp.errors import InputError
from gancomp.runtime.models import weights_to_bytes
from helpers import tiny_model_config, tiny_train_settings

pytestmark = pytest.mark.train

DATA = Path(__file__).parent / "data"


def test_embed_zeroes_what_old_channels_read_from_new_ones():
    from gancomp import architecture
    from gancomp.training.widen import embed

    rng = np.random.default_rng(0)
    trained = rng.normal(size=(3, 3, 4, 5)).astype(np.float32)
    fresh = rng.normal(size=(3, 3, 6, 7)).astype(np.float32)
    out = embed("conv", trained, fresh)
    assert np.array_equal(out[:, :, :4, :5], trained)
    assert not out[:, :, 4:, :5].any()
    assert np.array_equal(out[:, :, :, 5:], fresh[:, :, :, 5:])  # new outputs: fresh

    out = embed("deconv", trained.transpose(0, 1, 3, 2), fresh.transpose(0, 1, 3, 2))
    assert np.array_equal(out[:, :, :5, :4], trained.transpose(0, 1, 3, 2))
    assert not out[:, :, :5, 4:].any()

    gamma = embed("gdn_gamma", np.full((4, 4), 0.5, np.float32), np.full((6, 6), 0.3, np.float32))
    assert np.all(gamma[4:, :4] == np.float32(np.sqrt(architecture.GDN_PEDESTAL)))
    assert np.all(gamma[:4, 4:] == 0.3) and np.all(gamma[:4, :4] == 0.5)

    assert np.array_equal(embed("vector", np.ones(2), np.zeros(3)), [1, 1, 0])
    with pytest.raises(ValueError):
        embed("conv", fresh, trained)  # narrower
    with pytest.raises(ValueError):
        embed("conv", np.zeros((5, 5, 4, 5)), fresh)  # another kernel size


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    """A tiny factorized model folder whose every weight is random (not an initial value:
    GDN's off-diagonal gammas and the biases are non-zero, so a wrong embedding shows)."""
    from gancomp.training.trainer import init_model_folder

    folder = tmp_path_factory.mktemp("src") / "airplane"
    cfg = tiny_model_config("factorized", category="airplane", channels=8, latent_channels=8)
    init_model_folder(cfg, folder)
    rng = np.random.default_rng(1)
    with np.load(folder / "weights.npz") as z:
        weights = {k: z[k] for k in z.files}
    for k, a in weights.items():
        if a.dtype.kind == "f" and ("/gamma" in k or "/beta" in k):
            weights[k] = (np.abs(a) + rng.uniform(0.05, 0.2, a.shape)).astype(a.dtype)
        elif a.dtype.kind == "f":
            weights[k] = (a + rng.normal(0, 0.05, a.shape)).astype(a.dtype)
    (folder / "weights.npz").write_bytes(weights_to_bytes(weights))
    return folder


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    folder = tmp_path_factory.mktemp("imgs")
    for f in DATA.glob("airplane_*.png"):
        shutil.copy(f, folder / f.name)
    return folder


def _trainer(images, source, out, **kw):
    from gancomp.training.trainer import Trainer

    return Trainer(tiny_train_settings(images, out, init_from=str(source), **kw))


def _outputs(model, x, level):
    from gancomp.training._tf import tf as import_tf

    tf = import_tf()
    out = model(tf.constant(x), tf.constant([level] * len(x)), training=False)
    bits = sum(float(-tf.reduce_sum(tf.math.log(v)).numpy()) for v in out["likelihoods"].values())
    return out["x_hat"].numpy(), bits


def test_the_wider_model_computes_what_the_source_did(source, images, tmp_path):
    from PIL import Image

    same = _trainer(images, source, tmp_path / "same")
    wide = _trainer(images, source, tmp_path / "wide", channels=12)
    assert wide.cfg.channels == 12 and same.cfg.channels == 8
    x = np.stack(
        [np.asarray(Image.open(f).convert("RGB")) for f in sorted(images.glob("*.png"))[:3]]
    ).astype(np.float32) / np.float32(255)
    for level in (0, 3):
        a, bits_a = _outputs(same.model, x, level)
        b, bits_b = _outputs(wide.model, x, level)
        np.testing.assert_allclose(b, a, atol=2e-5)
        np.testing.assert_allclose(bits_b, bits_a, rtol=1e-5)
    # The new channels are not dead: the new filters that read the image are fresh, non-zero.
    conv0 = next(v for v in wide.model.transform_weights() if v.path.endswith("conv0/kernel"))
    assert conv0.shape[-1] == 12 and np.abs(conv0.numpy()[..., 8:]).sum() > 0


def test_narrowing_and_a_realism_phase_are_refused(source, images, tmp_path):
    with pytest.raises(InputError, match="widen a model, not narrow it"):
        _trainer(images, source, tmp_path / "narrow", channels=4)
    with pytest.raises(InputError, match="cannot change --channels"):
        _trainer(images, source, tmp_path / "r", channels=12, realism_phase=True)
