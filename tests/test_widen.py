"""`gancomp train --init-from MODEL --channels N`: a wider model that starts as the source.

The source's weights fill the leading channels and old channels read new ones through zeros
(gancomp.training.widen), so before any step the wider model gives the source's
reconstruction and rates, while its new channels carry activity of their own.
"""

from __future__ import annotations

import numpy as np
import pytest

from gancomp.errors import InputError
from helpers import assert_same_outputs, init_from_trainer

pytestmark = pytest.mark.train


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


def test_the_wider_model_computes_what_the_source_did(source, images, tmp_path):
    same = init_from_trainer(images, source, tmp_path / "same")
    wide = init_from_trainer(images, source, tmp_path / "wide", channels=12)
    assert wide.cfg.channels == 12 and same.cfg.channels == 8
    assert_same_outputs(same.model, wide.model, images)
    # The new channels are not dead: the new filters that read the image are fresh, non-zero.
    conv0 = next(v for v in wide.model.transform_weights() if v.path.endswith("conv0/kernel"))
    assert conv0.shape[-1] == 12 and np.abs(conv0.numpy()[..., 8:]).sum() > 0


def test_narrowing_and_a_realism_phase_are_refused(source, images, tmp_path):
    with pytest.raises(InputError, match="widen a model, not narrow it"):
        init_from_trainer(images, source, tmp_path / "narrow", channels=4)
    with pytest.raises(InputError, match="cannot change --channels"):
        init_from_trainer(images, source, tmp_path / "r", channels=12, realism_phase=True)
