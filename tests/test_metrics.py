import io
import math
from pathlib import Path

import numpy as np
import pytest
from PIL import Image as PILImage

from gancomp.errors import InputError
from gancomp.evaluation import metrics
from gancomp.io.images import load_image

DATA = Path(__file__).parent / "data"


def _jpeg(rgb: np.ndarray, quality: int) -> np.ndarray:
    buf = io.BytesIO()
    PILImage.fromarray(rgb).save(buf, format="JPEG", quality=quality)
    buf.seek(0)
    return np.asarray(PILImage.open(buf).convert("RGB"))


def _noisy(rgb: np.ndarray, sigma: float, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.clip(np.rint(rgb + rng.normal(0.0, sigma, rgb.shape)), 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def tf():
    """TensorFlow, the reference for MS-SSIM (tests using this fixture are marked ``train`` by
    conftest.py: the runtime-only CI step has no TensorFlow, the full step must have it)."""
    from gancomp.training._tf import tf as import_tf

    return import_tf()


def _tf_msssim(tf, a, b, power_factors=metrics.MSSSIM_WEIGHTS, filter_size=11) -> float:
    x = tf.constant(np.asarray(a, np.float32)[None])
    y = tf.constant(np.asarray(b, np.float32)[None])
    value = tf.image.ssim_multiscale(
        x, y, max_val=255.0, power_factors=list(power_factors), filter_size=filter_size
    )
    return float(value.numpy()[0])


def test_hand_computed_mse_l1_sad_psnr():
    a = np.zeros((2, 2, 3), np.uint8)
    b = a.copy()
    b[0, 0, 0] = 10  # one channel of one pixel off by 10
    b[1, 1, 2] = 2
    n = 12
    assert metrics.mse(a, b) == pytest.approx((100 + 4) / n)
    assert metrics.l1(a, b) == pytest.approx(12 / n)
    assert metrics.sad(a, b) == 12.0
    assert metrics.psnr(a, b) == pytest.approx(10 * math.log10(255**2 / (104 / n)))
    # Order of arguments does not matter, uint8 does not wrap around.
    assert metrics.mse(b, a) == metrics.mse(a, b)
    assert metrics.sad(b, a) == 12.0


def test_psnr_known_value():
    a = np.full((4, 4, 3), 100, np.uint8)
    b = np.full((4, 4, 3), 110, np.uint8)  # MSE 100
    assert metrics.psnr(a, b) == pytest.approx(10 * math.log10(650.25))
    assert metrics.psnr(a, b) == pytest.approx(28.1308036, abs=1e-6)


def test_identical_images():
    img = load_image(DATA / "flower_0.jpg").rgb
    assert metrics.psnr(img, img) == math.inf
    value, scales = metrics.ms_ssim(img, img)
    assert value == 1.0 and scales == 5
    result = metrics.compare(img, img.copy())
    assert result["identical"] is True
    assert result["psnr"] == math.inf
    assert result["ms_ssim_db"] == math.inf
    assert result["mse"] == 0.0 and result["sad"] == 0.0 and result["l1"] == 0.0


def test_ms_ssim_db():
    assert metrics.ms_ssim_db(0.9) == pytest.approx(10.0)
    assert metrics.ms_ssim_db(0.99) == pytest.approx(20.0)
    assert metrics.ms_ssim_db(1.0) == math.inf
    assert str(metrics.ms_ssim_db(0.0)) == "0.0"


def test_size_mismatch_names_both_sizes():
    with pytest.raises(InputError, match=r"32x16 vs 16x32"):
        metrics.compare(np.zeros((16, 32, 3)), np.zeros((32, 16, 3)))


@pytest.mark.parametrize(
    ("shape", "expected_scales", "expected_filter"),
    [
        ((250, 333), 5, 11),
        ((161, 900), 5, 11),
        ((160, 160), 4, 11),
        ((32, 32), 2, 11),
        ((21, 40), 2, 11),
        ((20, 20), 1, 11),
        ((11, 11), 1, 11),
        ((8, 8), 1, 8),
        ((5, 9), 1, 5),
    ],
)
def test_plan(shape, expected_scales, expected_filter):
    size, scales, weights = metrics.ms_ssim_plan(*shape)
    assert (size, scales) == (expected_filter, expected_scales)
    assert sum(weights) == pytest.approx(1.0)
    ref = np.array(metrics.MSSSIM_WEIGHTS[:scales])
    np.testing.assert_allclose(weights, ref / ref.sum())


def test_plan_32_is_two_renormalised_weights():
    _, _, weights = metrics.ms_ssim_plan(32, 32)
    assert weights == pytest.approx((0.0448 / 0.3304, 0.2856 / 0.3304))


@pytest.mark.parametrize("name", ["flower_0.jpg", "flower_1.jpg", "flower_2.jpg"])
def test_ms_ssim_matches_tensorflow_on_flowers(tf, name):
    ref = load_image(DATA / name).rgb  # odd sizes exercise TF's padding before pooling
    for distorted in (_jpeg(ref, 30), _noisy(ref, 12.0)):
        ours, scales = metrics.ms_ssim(ref, distorted)
        assert scales == 5
        assert ours == pytest.approx(_tf_msssim(tf, ref, distorted), abs=1e-4)
        assert 0.5 < ours < 1.0


def test_ms_ssim_matches_tensorflow_on_32x32(tf):
    for name in ("airplane_0.png", "automobile_1.png"):
        ref = load_image(DATA / name).rgb
        for distorted in (_jpeg(ref, 30), _noisy(ref, 8.0, seed=3)):
            ours, scales = metrics.ms_ssim(ref, distorted)
            assert scales == 2
            weights = (0.0448 / 0.3304, 0.2856 / 0.3304)
            assert ours == pytest.approx(_tf_msssim(tf, ref, distorted, weights), abs=1e-4)


@pytest.mark.parametrize("shape", [(8, 8), (5, 9), (44, 37), (1, 1)])
def test_ms_ssim_matches_tensorflow_small_and_odd(tf, shape):
    rng = np.random.default_rng(7)
    a = rng.integers(0, 256, (*shape, 3)).astype(np.uint8)
    b = _noisy(a, 20.0, seed=8)
    size, _, weights = metrics.ms_ssim_plan(*shape)
    ours, _ = metrics.ms_ssim(a, b)
    assert ours == pytest.approx(_tf_msssim(tf, a, b, weights, size), abs=1e-4)


def test_downsample_repeats_last_row_and_column():
    x = np.arange(9, dtype=np.float64).reshape(3, 3, 1)  # [[0 1 2] [3 4 5] [6 7 8]]
    out = metrics._downsample(x)[..., 0]
    # TF pads odd sizes 'SYMMETRIC' (edge row/column repeated), then 2x2 average pooling.
    np.testing.assert_allclose(out, [[2.0, 3.5], [6.5, 8.0]])
    assert metrics._downsample(np.ones((4, 6, 3))).shape == (2, 3, 3)


def test_ms_ssim_decreases_with_distortion():
    ref = load_image(DATA / "flower_1.jpg").rgb
    values = [metrics.ms_ssim(ref, _noisy(ref, s))[0] for s in (2.0, 8.0, 30.0)]
    assert values[0] > values[1] > values[2]


def test_uint8_and_float_inputs_agree_and_batch_matches():
    a = load_image(DATA / "airplane_0.png").rgb
    b = _noisy(a, 10.0)
    ra = metrics.compare(a, b)
    rf = metrics.compare(a.astype(np.float64), b.astype(np.float32))
    for key in ("mse", "psnr", "ms_ssim", "l1", "sad"):
        assert ra[key] == pytest.approx(rf[key], rel=1e-12)
    c = load_image(DATA / "airplane_1.png").rgb
    values, scales = metrics.ms_ssim_batch(np.stack([a, c, a]), np.stack([b, _noisy(c, 5.0), a]))
    assert scales == 2
    assert values[0] == pytest.approx(metrics.ms_ssim(a, b)[0], abs=1e-12)
    assert values[1] == pytest.approx(metrics.ms_ssim(c, _noisy(c, 5.0))[0], abs=1e-12)
    assert values[2] == 1.0


def test_compare_keys():
    a = load_image(DATA / "automobile_0.png").rgb
    result = metrics.compare(a, _noisy(a, 5.0))
    assert set(result) == {
        "mse",
        "psnr",
        "ms_ssim",
        "ms_ssim_db",
        "ms_ssim_scales",
        "l1",
        "sad",
        "identical",
        "width",
        "height",
    }
    assert result["identical"] is False
    assert (result["width"], result["height"]) == (32, 32)
    assert result["psnr"] == pytest.approx(metrics.psnr(a, _noisy(a, 5.0)))


@pytest.mark.train  # scikit-image comes with the test extra only
@pytest.mark.parametrize("name", ["airplane_0.png", "flower_0.jpg"])
def test_mse_psnr_match_scikit_image(name):
    from skimage.metrics import mean_squared_error, peak_signal_noise_ratio

    a = load_image(DATA / name).rgb
    b = _jpeg(a, 40)
    ref_mse = mean_squared_error(a.astype(np.float64), b.astype(np.float64))
    ref_psnr = peak_signal_noise_ratio(a, b, data_range=255)
    assert metrics.mse(a, b) == pytest.approx(ref_mse, rel=1e-9)
    assert metrics.psnr(a, b) == pytest.approx(ref_psnr, rel=1e-9)


def test_ms_ssim_matches_tensorflow_at_768x512(tf):
    # A real photo at the size the speed targets use, against a JPEG-degraded copy.
    pil = PILImage.open(DATA / "flower_0.jpg").convert("RGB").resize((768, 512), PILImage.BICUBIC)
    a = np.asarray(pil)
    b = _noisy(_jpeg(a, 25), 3.0)
    value, scales = metrics.ms_ssim(a, b)
    assert scales == 5
    assert value == pytest.approx(_tf_msssim(tf, a, b), abs=1e-4)
