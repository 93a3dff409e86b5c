"""The hyperprior's training likelihood charges every residual what the coder writes.

For integer residuals, -log2 of :func:`coded_likelihood` is compared with the frozen scale
tables' own estimate (:meth:`IndexedCoder.estimate_bits`, which counts escape codes), on
both sides of each table's range.
"""

from __future__ import annotations

import numpy as np
import pytest

from gancomp.coding import entropy
from gancomp.coding import hyperprior_spec as spec

pytestmark = pytest.mark.train


@pytest.fixture(scope="module")
def coder() -> entropy.IndexedCoder:
    tables = entropy.gaussian_scale_tables(spec.scale_table())
    return entropy.IndexedCoder(tables, tight_escapes=True)


def _training_bits(residuals: np.ndarray, index: int) -> np.ndarray:
    import tensorflow as tf

    from gancomp.training.hyperprior import coded_likelihood

    v = tf.constant(residuals, tf.float32)
    lik = coded_likelihood(v, tf.fill(v.shape, float(index))).numpy()
    return -np.log2(lik.astype(np.float64))


@pytest.mark.parametrize("index", [0, 10, 24, 40, spec.SCALE_COUNT - 1])
def test_training_bits_are_the_coders_bits(coder, index):
    half = entropy.scale_half_range(float(spec.scale_table()[index]))
    residuals = np.concatenate([np.arange(-half - 40, half + 41), [300, -5000, 70000]])
    training = _training_bits(residuals, index)
    coded = np.array([coder.estimate_bits(np.array([v]), np.array([index])) for v in residuals])
    inside = np.abs(residuals) <= half
    # Inside: the same Gaussian, the tables' 20-bit rounding apart (most at rare bins).
    assert np.abs(training[inside] - coded[inside]).max() < 1.0
    # Beyond: the tail bin plus the escape code (at the smallest scales 25 bits and more,
    # which a likelihood bounded at one bin's smallest probability, 20 bits, undercharged).
    assert np.abs(training[~inside] - coded[~inside]).max() < 0.5
    # Over a spread of residuals wider than the scale, the totals agree (to the tables'
    # rounding of rare bins, 1.1% at the smallest scale).
    rng = np.random.default_rng(index)
    scale = float(spec.scale_table()[index])
    sample = np.rint(rng.laplace(0, 1.5 * scale + 0.5, 2000))
    total = _training_bits(sample, index).sum()
    expected = coder.estimate_bits(sample, np.full(sample.shape, index))
    assert abs(total - expected) <= 0.02 * expected, (total, expected)


def test_an_escape_pulls_its_scale_up():
    """Where the tail holds more than the tables' smallest probability (not at the tiniest
    scales, whose tail bin costs a flat 20 bits), an escaping residual's gradient asks for a
    larger scale, as a coded zero's asks for a smaller one."""
    import tensorflow as tf

    from gancomp.training.hyperprior import coded_likelihood

    index = 40
    half = entropy.scale_half_range(float(spec.scale_table()[index]))
    indexes = tf.Variable([float(index)] * 2)
    with tf.GradientTape() as tape:
        bits = -tf.math.log(coded_likelihood(tf.constant([0.0, half + 5.0]), indexes))
    grad = tape.gradient(bits, indexes).numpy()
    assert grad[1] < 0, grad
    assert grad[0] > 0, grad
