"""The NumPy runtime (gancomp.runtime.transforms) against the Keras definition it ports.

The comparisons with TensorFlow and Keras are marked ``train``: the runtime-only CI step,
which has no TensorFlow, skips them.
"""

import json

import numpy as np
import pytest

from gancomp.runtime.transforms import Transforms, conv2d, conv2d_transpose


def _tf():
    from gancomp.training._tf import tf

    return tf()


@pytest.mark.train
@pytest.mark.parametrize("k,stride,h,w", [(5, 2, 16, 24), (5, 2, 7, 9), (3, 1, 5, 8), (5, 1, 6, 6)])
@pytest.mark.parametrize("cin", [3, 20])
def test_conv2d_matches_tensorflow(k, stride, h, w, cin):
    tf = _tf()
    rng = np.random.default_rng(k * 100 + h)
    x = rng.normal(size=(2, h, w, cin)).astype(np.float32)
    kern = rng.normal(size=(k, k, cin, 7)).astype(np.float32)
    bias = rng.normal(size=7).astype(np.float32)
    want = tf.nn.conv2d(x, kern, stride, "SAME").numpy() + bias
    got = conv2d(x, kern, bias, stride)
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-4)


@pytest.mark.train
@pytest.mark.parametrize("cout", [3, 11])
@pytest.mark.parametrize("h,w", [(4, 6), (1, 1), (5, 3)])
def test_conv2d_transpose_matches_keras(cout, h, w):
    tf = _tf()
    import keras

    rng = np.random.default_rng(h * 10 + w + cout)
    x = rng.normal(size=(2, h, w, 13)).astype(np.float32)
    layer = keras.layers.Conv2DTranspose(cout, 5, strides=2, padding="same")
    layer.build((None, h, w, 13))
    kern = rng.normal(size=layer.kernel.shape).astype(np.float32)
    bias = rng.normal(size=cout).astype(np.float32)
    layer.set_weights([kern, bias])
    want = layer(tf.constant(x)).numpy()
    got = conv2d_transpose(x, kern, bias)
    assert got.shape == want.shape == (2, 2 * h, 2 * w, cout)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-4)


def _scatter_transpose(x, kernel, bias, stride):
    """The definition: input pixel i adds kernel[t] to output pixel i * stride + t - pad,
    tap by tap in order; the result the runtime's wide layers must match bit for bit."""
    n, h, w, _ = x.shape
    k, _, cout, _ = kernel.shape
    pad = ((k - stride) // 2, (k - stride) // 2)
    full = np.zeros((n, (h - 1) * stride + k, (w - 1) * stride + k, cout), np.float32)
    for ty in range(k):
        for tx in range(k):
            contrib = (x.reshape(-1, x.shape[-1]) @ kernel[ty, tx].T).reshape(n, h, w, cout)
            full[:, ty : ty + stride * h : stride, tx : tx + stride * w : stride] += contrib
    out = np.ascontiguousarray(full[:, pad[0] : pad[0] + h * stride, pad[1] : pad[1] + w * stride])
    return out + bias


@pytest.mark.parametrize("k", [3, 5])
@pytest.mark.parametrize("h,w", [(1, 1), (4, 6), (5, 3), (8, 8)])
def test_wide_conv2d_transpose_is_the_scatter_bit_for_bit(k, h, w):
    # By output phase (runtime.transforms): each pixel adds the same products in the same
    # tap order. Whether BLAS rounds a row's products alike wherever the row sits in the
    # matrix depends on its kernel (an AVX2-only machine's did not), so the exact check
    # uses small integers, whose sums are exact in float32 in any order: it catches any
    # wrong tap, offset or phase on any CPU. Real-valued data agrees to rounding.
    rng = np.random.default_rng(k * 100 + h * 10 + w)
    x = rng.integers(-8, 9, size=(3, h, w, 24)).astype(np.float32)
    kernel = rng.integers(-8, 9, size=(k, k, 40, 24)).astype(np.float32)
    bias = rng.integers(-8, 9, size=40).astype(np.float32)
    got = conv2d_transpose(x, kernel, bias)
    assert got.shape == (3, 2 * h, 2 * w, 40)
    assert np.array_equal(got, _scatter_transpose(x, kernel, bias, 2))
    x, kernel, bias = (rng.normal(size=a.shape).astype(np.float32) for a in (x, kernel, bias))
    want = _scatter_transpose(x, kernel, bias, 2)
    np.testing.assert_allclose(conv2d_transpose(x, kernel, bias), want, rtol=1e-5, atol=1e-5)


@pytest.mark.train
@pytest.mark.parametrize("num_down", [2, 3])
def test_transforms_match_keras_model(num_down):
    """E and G of a GANModel with scrambled weights give the same outputs in NumPy."""
    tf = _tf()
    from gancomp.training.model import GANModel, ModelConfig
    from gancomp.training.trainer import inference_weights

    cfg = ModelConfig(
        category="t", num_down=num_down, channels=12, latent_channels=10, disc_channels=4
    )
    model = GANModel(cfg, name="gancodec")
    model.build_all()
    rng = np.random.default_rng(num_down)
    for v in model.encoder.weights + model.generator.weights:
        scale = 0.3 if "kernel" in v.path else 0.1
        noise = rng.normal(scale=scale, size=v.shape)
        # GDN parameters stay near their (positive) initial values, as in training.
        if "beta" in v.path or "gamma" in v.path:
            noise = v.numpy() + np.abs(noise)
        v.assign(noise.astype(np.float32))
    net = Transforms(inference_weights(model), json.loads(cfg.to_json()))
    s = cfg.stride
    x = rng.random((3, 3 * s, 5 * s, 3), dtype=np.float32)
    y_keras = model.encoder(tf.constant(x)).numpy()
    _close(net.analysis(x), y_keras)
    yq = np.round(y_keras * 4).astype(np.float32)
    _close(net.synthesis(yq), model.generator(tf.constant(yq)).numpy())


def _close(got: np.ndarray, want: np.ndarray) -> None:
    # float32 sums in a different order: agreement relative to the output's scale.
    assert got.shape == want.shape
    assert np.abs(want).max() > 0.1
    assert np.abs(got - want).max() <= 1e-5 * np.abs(want).max()


def test_missing_weight_is_reported():
    from gancomp.runtime.transforms import ModelError

    weights = {"gancodec/encoder/conv0/kernel": np.zeros((5, 5, 3, 4), np.float32)}
    config = {"num_down": 1, "latent_channels": 4, "channels": 4}
    with pytest.raises(ModelError, match="missing weight conv0/bias"):
        Transforms(weights, config)


def test_network_calls_pin_blas_to_one_thread():
    """OpenBLAS sums a product differently with 2 threads than with 1 (checked here), so the
    codec's network calls must give the same floats whatever the process' BLAS setting."""
    from gancomp.runtime import blas as blas_mod
    from gancomp.runtime import codec as codec_mod
    from gancomp.runtime import tiling

    if not blas_mod.blas_is_controlled():
        pytest.skip("NumPy is not linked to OpenBLAS")
    blas = blas_mod._BLAS
    net = codec_mod.load_codec("airplane")
    net._build()
    rng = np.random.default_rng(0)
    y = rng.integers(-3, 4, (64, 8, 8, net._net.latent_channels)).astype(np.float32)
    saved = blas.get()
    try:
        raw, pinned = [], []
        for n in (1, 2):
            blas.set(n)
            raw.append(net._net.synthesis(y))
            out = []
            tiling._run_calls(
                lambda b, _o: net._net.synthesis(b), [(lambda: y, out.append, (0, 0))]
            )
            pinned.append(out[0])
            assert blas.get() == n  # restored after the calls
    finally:
        blas.set(saved)
    # On the development machine raw[0] != raw[1] (the pin matters); the pinned calls agree.
    assert np.array_equal(pinned[0], pinned[1]) and np.array_equal(pinned[0], raw[0])
