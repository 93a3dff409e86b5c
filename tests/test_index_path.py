"""The hyperprior's scale-index path: exact integers, identical on every machine.

The training model (TensorFlow, float32) and the decoder (NumPy, float64 holding
integers) must give the same index for every element, and the decoder's indexes
must not move with BLAS threads, the dtype of the surrounding transforms, or
float noise below the rounding step of its integer inputs.
"""

from __future__ import annotations

import numpy as np
import pytest

from gancomp.coding import hyperprior_spec as spec
from gancomp.runtime import blas
from gancomp.runtime.index_path import IntegerLayer, ScaleIndexNetwork


def _random_network(seed: int, z_channels: int = 24, hidden: int = 32, m: int = 40):
    """Integer weights of the size training produces (|w| ~ 0.05, i.e. ~50 integer units)."""
    rng = np.random.default_rng(seed)
    a_bits = spec.ACTIVATION_BITS

    def ints(shape, scale):
        return np.rint(rng.normal(0, scale, shape))

    layers = [
        IntegerLayer(
            ints((5, 5, hidden, z_channels), 60),
            ints((hidden,), 2**10),
            spec.division_shift(0, a_bits),
            spec.ACTIVATION_MAX,
            True,
        ),
        IntegerLayer(
            ints((5, 5, hidden, hidden), 20),
            ints((hidden,), 2**14),
            spec.division_shift(a_bits, a_bits),
            spec.ACTIVATION_MAX,
            True,
        ),
        IntegerLayer(
            ints((3, 3, hidden, m), 400),
            ints((m,), 2**16) + 24 * 2**16,
            spec.division_shift(a_bits, 0),
            spec.SCALE_COUNT - 1,
            False,
        ),
    ]
    return ScaleIndexNetwork(layers)


def _z(seed: int, shape=(2, 5, 7, 24)) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.rint(rng.laplace(0, 3, shape)).astype(np.int32)


def test_indexes_span_the_table_and_have_the_grid_of_y():
    net = _random_network(0)
    idx = net(_z(1))
    assert idx.shape == (2, 20, 28, 40) and idx.dtype == np.int32
    assert idx.min() >= 0 and idx.max() <= spec.SCALE_COUNT - 1
    assert len(np.unique(idx)) > 20  # a real spread, not a constant


def test_indexes_do_not_move_with_threads_dtype_or_noise():
    net = _random_network(2)
    z = _z(3)
    reference = net(z)
    # Float32 transforms around the path hand it float32 z: same indexes.
    assert np.array_equal(net(z.astype(np.float32)), reference)
    # Noise below the rounding step of the integer inputs changes nothing.
    rng = np.random.default_rng(4)
    assert np.array_equal(net(z + rng.uniform(-0.49, 0.49, z.shape)), reference)
    # Every layer's integer input, perturbed below its rounding step: same output.
    a = np.asarray(z, np.float64)
    for layer in net.layers:
        out = layer(a)
        assert np.array_equal(layer(a + rng.uniform(-0.49, 0.49, a.shape)), out)
        a = out
    # One or two BLAS threads (OpenBLAS splits the sums differently): same indexes.
    if blas.blas_is_controlled():
        saved = blas._BLAS.get()
        try:
            for n in (1, 2):
                blas._BLAS.set(n)
                assert np.array_equal(net(z), reference)
        finally:
            blas._BLAS.set(saved)


def test_weights_that_could_overflow_exact_sums_are_refused():
    big = np.full((5, 5, 8, 8), float(2**40))
    with pytest.raises(ValueError, match="exact"):
        ScaleIndexNetwork([IntegerLayer(big, np.zeros(8), 4, 255, True)])


@pytest.mark.train
def test_training_simulation_matches_the_integer_decoder():
    """The TF model's straight-through integer layers give the decoder's indexes exactly."""
    from gancomp import architecture
    from gancomp.training._tf import tf as import_tf
    from gancomp.training.hyperprior import integer_layer_arrays
    from gancomp.training.model import OpNetwork

    tf = import_tf()
    tf.random.set_seed(5)
    config = {"hyper_channels": 32, "latent_channels": 40, "hyper_down": 2}
    ops = architecture.hyper_synthesis_scale(config)
    net = OpNetwork(ops, name="h_s_scale")
    z = _z(6, (3, 4, 6, 24))
    initial = net(tf.constant(z, tf.float32)).numpy()
    # Move the weights off their initial values like training would.
    for v in net.weights:
        v.assign(v + tf.random.normal(v.shape, stddev=0.3))
    expected = net(tf.constant(z, tf.float32)).numpy()
    assert not np.array_equal(expected, initial) and len(np.unique(expected)) > 5
    arrays = {}
    for layer in net.sublayers:
        arrays.update(integer_layer_arrays(layer, layer.name))
    decoder = ScaleIndexNetwork.from_ops(ops, arrays, 24, 40)
    assert np.array_equal(decoder(z), expected.astype(np.int32))
