"""`gancomp train --init-from MODEL --revive-latents`: dead latent channels restart.

The source is a tiny random factorized model with one latent channel killed the way training
kills them (a gain far below 1 at every level, so it always rounds to 0, and a density that
puts all its mass on 0). Revival must find exactly that channel, give it fresh encoder
weights and the live channels' mean gains, and leave the reconstruction unchanged.
"""

from __future__ import annotations

import numpy as np
import pytest

from gancomp.errors import InputError
from gancomp.runtime.models import weights_to_bytes
from helpers import (
    init_from_trainer,
    model_outputs,
    random_factorized_folder,
    tiny_train_settings,
)

pytestmark = pytest.mark.train

DEAD = 2  # the killed latent channel
LATENT = 8


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    folder = tmp_path_factory.mktemp("src") / "airplane"
    cfg = random_factorized_folder(folder, latent_channels=LATENT)
    with np.load(folder / "weights.npz") as z:
        weights = {k: z[k] for k in z.files}
    weights["gancodec/log_gain"][:, DEAD] = -12.0  # rounds to 0 whatever E gives
    (folder / "weights.npz").write_bytes(weights_to_bytes(weights))
    with np.load(folder / "density.npz") as z:
        density = {k: z[k] for k in z.files}
    rows = np.arange(cfg.levels) * LATENT + DEAD
    # softplus(20): a CDF so steep that its random biases keep the mass on 0
    density["density/matrix0"][rows] = 20.0
    np.savez(folder / "density.npz", **density)
    return folder


def _outputs(model, x, level):
    """(reconstruction, bits, scaled latent)."""
    from gancomp.training._tf import tf as import_tf

    tf = import_tf()
    y = model.scaled_latent(tf.constant(x), tf.constant([level] * len(x))).numpy()
    return (*model_outputs(model, x, level), y)


def test_the_dead_channel_revives_and_the_reconstruction_stays(source, images, tmp_path):
    from PIL import Image

    from gancomp.training import revive

    plain = init_from_trainer(images, source, tmp_path / "plain")
    revived = init_from_trainer(images, source, tmp_path / "revived", revive_latents=True)
    assert list(revive.dead_channels(plain.model)) == [DEAD]
    assert revived.revived_channels == [DEAD]
    assert list(revive.dead_channels(revived.model)) == []  # fresh densities are wide
    x = np.stack(
        [np.asarray(Image.open(f).convert("RGB")) for f in sorted(images.glob("*.png"))[:3]]
    ).astype(np.float32) / np.float32(255)
    for level in (0, 7):
        x_plain, bits_plain, y_plain = _outputs(plain.model, x, level)
        x_rev, bits_rev, y_rev = _outputs(revived.model, x, level)
        np.testing.assert_allclose(x_rev, x_plain, atol=1e-6)
        live = [c for c in range(LATENT) if c != DEAD]
        assert not np.round(y_plain[..., DEAD]).any()
        # As active as a live channel, and it pays for that.
        assert np.abs(y_rev[..., DEAD]).mean() > 0.2 * np.abs(y_rev[..., live]).mean()
        assert bits_rev > bits_plain
        np.testing.assert_allclose(y_rev[..., live], y_plain[..., live])
    assert np.round(y_rev[..., DEAD]).any()  # the top level codes it
    gain = revived.model.log_gain.numpy()
    np.testing.assert_allclose(gain[:, DEAD], gain[:, live].mean(axis=1), rtol=1e-6)
    _, reader = revive.latent_layers(revived.model)
    kernel = reader.kernel.numpy()
    assert not kernel[:, :, DEAD, :].any() and kernel[:, :, live, :].any()


def test_revival_needs_a_factorized_init_from_model(source, images, tmp_path):
    from gancomp.training.trainer import Trainer

    with pytest.raises(InputError, match="--init-from"):
        Trainer(tiny_train_settings(images, tmp_path / "a", revive_latents=True))
    with pytest.raises(InputError, match="hyperprior"):
        init_from_trainer(
            images, source, tmp_path / "b", revive_latents=True, entropy_model="hyperprior"
        )
