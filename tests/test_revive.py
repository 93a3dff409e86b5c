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


WIDE = 12  # the widened latent


def test_a_wider_latent_keeps_the_source_channels_and_starts_the_new_ones(
    source, images, tmp_path, monkeypatch
):
    """``--latent-channels 12`` on the 8-channel source: the old channels code what they did,
    the new ones start revived with the live channels' mean gains (the dead channel's tiny
    gains left out) and are read through small fresh weights; with those reads at 0 the
    reconstruction is exactly the source's."""
    from PIL import Image

    from gancomp.training import revive, widen

    plain = init_from_trainer(images, source, tmp_path / "plain")
    wide = init_from_trainer(images, source, tmp_path / "wide", latent_channels=WIDE)
    new = list(range(LATENT, WIDE))
    assert wide.cfg.latent_channels == WIDE and wide.revived_channels == new
    live = [c for c in range(LATENT) if c != DEAD]
    gain = wide.model.log_gain.numpy()
    np.testing.assert_allclose(gain[:, :LATENT], plain.model.log_gain.numpy())
    for c in new:
        np.testing.assert_allclose(gain[:, c], gain[:, live].mean(axis=1), rtol=1e-6)
    # The old channels' densities are the source's, row for row.
    pmf_plain = plain.model.density.pmf_table(-3, 3).reshape(8, LATENT, -1)
    pmf_wide = wide.model.density.pmf_table(-3, 3).reshape(8, WIDE, -1)
    np.testing.assert_allclose(pmf_wide[:, :LATENT], pmf_plain, rtol=1e-6)
    writer, reader = revive.latent_layers(wide.model)
    norms = np.sqrt(np.square(writer.kernel.numpy()).sum(axis=(0, 1, 2)))
    np.testing.assert_allclose(norms[new], np.median(norms[live]), rtol=1e-5)  # as large
    _, plain_reader = revive.latent_layers(plain.model)
    kernel = reader.kernel.numpy()
    np.testing.assert_array_equal(kernel[:, :, :LATENT, :], plain_reader.kernel.numpy())
    assert np.abs(kernel[:, :, LATENT:, :]).all()  # read from step one
    assert list(revive.dead_channels(wide.model)) == [DEAD]  # new densities are wide

    x = np.stack(
        [np.asarray(Image.open(f).convert("RGB")) for f in sorted(images.glob("*.png"))[:3]]
    ).astype(np.float32) / np.float32(255)
    monkeypatch.setattr(widen, "LATENT_READ_SCALE", 0.0)
    unread = init_from_trainer(images, source, tmp_path / "unread", latent_channels=WIDE)
    for level in (0, 7):
        x_plain, bits_plain, y_plain = _outputs(plain.model, x, level)
        x_wide, _, y_wide = _outputs(wide.model, x, level)
        x_unread, bits_unread, _ = _outputs(unread.model, x, level)
        # Equal up to rounding: a convolution with more output channels may sum in another
        # order on some CPUs (seen on an AVX2-only machine: 3e-7 apart).
        np.testing.assert_allclose(y_wide[..., :LATENT], y_plain, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(x_unread, x_plain, atol=1e-6)
        assert bits_unread > bits_plain  # the new channels pay
    assert np.round(y_wide[..., new]).any()  # the top level codes them
    assert not np.allclose(x_wide, x_plain, atol=1e-6)  # and the generator reads them


def test_a_wider_latent_with_revival_restarts_the_dead_channel_too(source, images, tmp_path):
    wide = init_from_trainer(
        images, source, tmp_path / "wide", latent_channels=WIDE, revive_latents=True
    )
    assert wide.revived_channels == [DEAD, *range(LATENT, WIDE)]


def test_a_wider_latent_trains_exports_and_codes(source, images, tmp_path):
    """The widened model trains, and its export compresses and decompresses."""
    from PIL import Image

    import gancomp

    out = tmp_path / "models" / "airplane"
    wide = init_from_trainer(images, source, out, latent_channels=WIDE)
    wide.run()
    image = np.asarray(Image.open(sorted(images.glob("*.png"))[0]).convert("RGB"))
    data = gancomp.compress(image, "airplane", quality=8, models_dir=out.parent)
    assert gancomp.decompress(data, models_dir=out.parent).shape == image.shape


def test_a_latent_cannot_narrow_nor_widen_a_hyperprior(source, images, tmp_path):
    with pytest.raises(InputError, match="narrow"):
        init_from_trainer(images, source, tmp_path / "a", latent_channels=4)
    with pytest.raises(InputError, match="hyperprior"):
        init_from_trainer(
            images, source, tmp_path / "b", latent_channels=WIDE, entropy_model="hyperprior"
        )
