"""Position noise of realism branches (gancomp.runtime.noise): fixed values, a field of
the position only, and the statistics training assumed (uniform, mean 0, variance 1)."""

import numpy as np
import pytest

from gancomp.runtime.noise import position_noise


def test_the_values_are_pinned():
    """Integer arithmetic only, so these are the values on every machine; a change here
    changes what every noisy add-on decodes to."""
    field = position_noise(2, 3, 2, (5, 7), seed=1)
    assert field.dtype == np.float32 and field.shape == (2, 3, 2)
    bits = [f"{v:08x}" for v in field.ravel().view(np.uint32)]
    assert bits == PINNED


# float32 bit patterns of position_noise(2, 3, 2, (5, 7), seed=1): -0.8008, -0.0329, ...
PINNED = ["bf4cfeb2", "bd06c57a", "3fa66d87", "bfd6d134", "3f61bafa", "3fbfde7c"]
PINNED += ["befaf901", "bfb5b6e0", "beee2c12", "3fa3cc84", "bfc06276", "bf9a6947"]


def test_a_window_is_the_slice_of_the_whole_field():
    whole = position_noise(40, 50, 3, seed=2)
    np.testing.assert_array_equal(position_noise(10, 20, 3, (25, 17), seed=2), whole[25:35, 17:37])
    # Another seed is another field.
    assert not np.array_equal(position_noise(40, 50, 3, seed=3), whole)


@pytest.mark.parametrize("origin", [(0, 0), (1 << 20, 3 << 19)])
def test_it_is_uniform_with_unit_variance_and_uncorrelated(origin):
    field = position_noise(256, 256, 4, origin).astype(np.float64)
    half = np.sqrt(3.0)
    assert field.min() > -half and field.max() < half
    assert abs(field.mean()) < 0.01 and abs(field.var() - 1.0) < 0.01
    # Neighbours along rows, columns and planes, and the two diagonals: no correlation.
    pairs = [
        (field[1:], field[:-1]),
        (field[:, 1:], field[:, :-1]),
        (field[..., 1:], field[..., :-1]),
        (field[1:, 1:], field[:-1, :-1]),
        (field[1:, :-1], field[:-1, 1:]),
    ]
    for a, b in pairs:
        assert abs(np.corrcoef(a.ravel(), b.ravel())[0, 1]) < 0.01
    # No period: the field differs from itself shifted by any power of two up to 128.
    for k in range(8):
        shift = 1 << k
        assert np.mean(field[shift:] == field[:-shift]) < 1e-3
