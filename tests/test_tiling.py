"""Tiled encoding/decoding (used for big images) matches the one-pass result: forced here on a
small image with small tiles."""

from __future__ import annotations

import numpy as np
import pytest

from gancomp.coding import container
from gancomp.evaluation.metrics import psnr
from gancomp.evaluation.roundtrip import round_trip
from gancomp.runtime import codec, tiling
from gancomp.runtime.tiling import _tiles


def _photo_like(h: int, w: int, seed: int = 0) -> np.ndarray:
    """Smooth gradients plus noise: some structure for the encoder, not flat."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    base = np.stack(
        [128 + 100 * np.sin(x / 23), 128 + 90 * np.cos(y / 17), (x + y) * 255 / (h + w)], axis=-1
    )
    return np.clip(base + rng.normal(0, 12, (h, w, 3)), 0, 255).astype(np.uint8)


# Strides 8 and 16; hp-flower is a hyperprior (v2) model, whose small hyper networks
# always see the whole latent while E and G run in tiles.
@pytest.mark.parametrize("category", ["airplane", "flower", "hp-flower"])
def test_tiled_matches_untiled(models_dir, monkeypatch, category):
    c = codec.load_codec(category, models_dir)
    img = _photo_like(150, 230)  # neither side a multiple of the tile or the stride
    plain_run = round_trip(c, [img], 4)
    monkeypatch.setattr(tiling, "TILE_THRESHOLD", 0)  # every image is tiled
    monkeypatch.setattr(tiling, "TILE", 64)  # 3 x 4 tiles; 4 or 8 latent pixels when decoding
    plans = []
    real_plan = tiling._tile_plan
    monkeypatch.setattr(tiling, "_tile_plan", lambda *a: plans.append(real_plan(*a)) or plans[-1])
    tiled_run = round_trip(c, [img], 4)
    # Encoder and generator really ran in tiles (a shadowed flag once turned tiling off).
    assert len(plans) == 2 and all(len(p) > 1 for p in plans)
    (plain_data,), (plain,) = plain_run.blobs, plain_run.decoded
    (tiled_data,), (tiled,) = tiled_run.blobs, tiled_run.decoded
    assert plain.shape == tiled.shape == img.shape
    assert container.unpack(tiled_data)[0].width == 230
    assert abs(psnr(img, tiled) - psnr(img, plain)) < 0.1
    # Either bitstream decodes the same way tiled or not (same latents, same generator).
    cross = c.decode_payloads([container.unpack(plain_data)])[0].rgb
    assert abs(psnr(img, cross) - psnr(img, plain)) < 0.1


@pytest.mark.parametrize("n", [1, 7, 64, 65, 200])
@pytest.mark.parametrize("tile", [1, 8, 64])
def test_tile_keep_ranges_cover_the_axis_once(n, tile):
    kept = []
    for start, stop, k0, k1 in _tiles(n, tile, margin=5):
        assert 0 <= start <= k0 < k1 <= stop <= n and k1 - k0 <= tile
        kept.extend(range(k0, k1))
    assert kept == list(range(n))


def test_each_tile_is_told_where_it_starts(monkeypatch):
    """With ``with_origin`` each call learns where its batch starts (position noise reads
    it): a network that returns its pixels' global positions assembles to the position map
    whether the array runs whole or in tiles."""
    latents = np.zeros((23, 37, 1), np.float32)
    scale = 4

    def positions(batch, origin):
        n, h, w, _ = batch.shape
        rows = (origin[0] * scale + np.arange(h * scale))[:, None]
        cols = (origin[1] * scale + np.arange(w * scale))[None, :]
        field = (rows * 1000 + cols).astype(np.float32)
        return np.broadcast_to(field[None, :, :, None], (n, h * scale, w * scale, 1))

    expected = positions(latents[None], (0, 0))[0]
    run = dict(scale=(scale, 1), tile=8, margin=2, with_origin=True)
    (whole,) = tiling.apply_network([latents], positions, **run)
    np.testing.assert_array_equal(whole, expected)
    monkeypatch.setattr(tiling, "TILE_THRESHOLD", 0)  # tiled: 3 x 5 tiles
    (tiled,) = tiling.apply_network([latents], positions, **run)
    np.testing.assert_array_equal(tiled, expected)
    # Without it the network is called as before, with the batch only.
    (plain,) = tiling.apply_network(
        [latents], lambda b: positions(b, (0, 0)), **{**run, "with_origin": False}
    )
    assert not np.array_equal(plain, expected)  # every tile thinks it is the top left
