"""Image distortion metrics in numpy (no TensorFlow).

Images are HxWxC arrays (uint8 or float) with values in [0, 255]; they are compared as float64.
MS-SSIM reproduces ``tf.image.ssim_multiscale(a, b, max_val=255)`` (Wang, Simoncelli & Bovik,
"Multi-scale structural similarity for image quality assessment", 2003).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from gancomp.errors import InputError

MAX_VAL = 255.0
MSSSIM_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)
FILTER_SIZE = 11
FILTER_SIGMA = 1.5
K1 = 0.01
K2 = 0.03


def _as_float(a: np.ndarray) -> np.ndarray:
    a = np.asarray(a, dtype=np.float64)
    if a.ndim == 2:
        a = a[..., None]
    if a.ndim < 3:
        raise ValueError(f"expected an HxWxC image array, got shape {a.shape}")
    return a


def _pair(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    x, y = _as_float(a), _as_float(b)
    if x.shape != y.shape:
        raise InputError(f"images differ in size: {_size(x)} vs {_size(y)}")
    return x, y


def _size(a: np.ndarray) -> str:
    return f"{a.shape[-2]}x{a.shape[-3]}"


def mse(a: np.ndarray, b: np.ndarray) -> float:
    """Mean squared error over every pixel and channel."""
    x, y = _pair(a, b)
    return float(np.mean((x - y) ** 2))


def l1(a: np.ndarray, b: np.ndarray) -> float:
    """Mean absolute error over every pixel and channel."""
    x, y = _pair(a, b)
    return float(np.mean(np.abs(x - y)))


def sad(a: np.ndarray, b: np.ndarray) -> float:
    """Sum of absolute differences over every pixel and channel."""
    x, y = _pair(a, b)
    return float(np.sum(np.abs(x - y)))


def psnr_from_mse(m: float) -> float:
    """PSNR in dB for a given MSE at peak 255; inf for MSE 0."""
    return math.inf if m <= 0 else 10.0 * math.log10(MAX_VAL**2 / m)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """10*log10(255^2 / MSE) in dB; ``math.inf`` for identical images."""
    return psnr_from_mse(mse(a, b))


def ms_ssim_db(v: float) -> float:
    """MS-SSIM on a dB scale: -10*log10(1 - v); inf when v >= 1."""
    return math.inf if v >= 1.0 else -10.0 * math.log10(1.0 - v) + 0.0  # no "-0.0"


def ms_ssim_plan(height: int, width: int) -> tuple[int, int, tuple[float, ...]]:
    """(filter size, number of scales, power factors) used for an image of this size.

    TF needs every scale (odd sizes padded, then halved) to be at least as large as the
    11x11 window, so small images get fewer scales with the leading weights renormalised;
    below 11 px a single scale with a window the size of the short side is used.
    """
    short = min(height, width)
    if short < 1:
        raise InputError(f"cannot compute MS-SSIM of an empty image ({width}x{height})")
    if short < FILTER_SIZE:
        return short, 1, (1.0,)
    scales = 1
    while scales < len(MSSSIM_WEIGHTS) and -(-short // 2**scales) >= FILTER_SIZE:
        scales += 1
    w = MSSSIM_WEIGHTS[:scales]
    total = sum(w)
    return FILTER_SIZE, scales, tuple(x / total for x in w)


def _gauss_1d(size: int, sigma: float) -> np.ndarray:
    # TF's kernel is softmax(-(x^2 + y^2) / (2 sigma^2)), i.e. the outer product of this.
    coords = np.arange(size, dtype=np.float64) - (size - 1) / 2.0
    g = np.exp(-0.5 * coords**2 / sigma**2)
    return g / g.sum()


def _filter_valid(x: np.ndarray, g: np.ndarray) -> np.ndarray:
    """Separable 'valid' Gaussian filtering over the H and W axes of (..., H, W, C)."""
    n = len(g)
    h, w = x.shape[-3], x.shape[-2]
    rows = sum(g[i] * x[..., i : i + h - n + 1, :, :] for i in range(n))
    return sum(g[i] * rows[..., :, i : i + w - n + 1, :] for i in range(n))


def _ssim_and_cs(x: np.ndarray, y: np.ndarray, g: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean SSIM and contrast-structure, shapes (..., C)."""
    c1 = (K1 * MAX_VAL) ** 2
    c2 = (K2 * MAX_VAL) ** 2
    mu_x = _filter_valid(x, g)
    mu_y = _filter_valid(y, g)
    num0 = 2.0 * mu_x * mu_y
    den0 = mu_x**2 + mu_y**2
    luminance = (num0 + c1) / (den0 + c1)
    num1 = 2.0 * _filter_valid(x * y, g)
    den1 = _filter_valid(x * x + y * y, g)
    cs = (num1 - num0 + c2) / (den1 - den0 + c2)
    return np.mean(luminance * cs, axis=(-3, -2)), np.mean(cs, axis=(-3, -2))


def _downsample(x: np.ndarray) -> np.ndarray:
    """Pad odd H/W by repeating the last row/column (TF 'SYMMETRIC'), then 2x2 average pool."""
    h, w = x.shape[-3], x.shape[-2]
    if h % 2 or w % 2:
        pad = [(0, 0)] * (x.ndim - 3) + [(0, h % 2), (0, w % 2), (0, 0)]
        x = np.pad(x, pad, mode="symmetric")
        h, w = x.shape[-3], x.shape[-2]
    lead = x.shape[:-3]
    c = x.shape[-1]
    return x.reshape(*lead, h // 2, 2, w // 2, 2, c).mean(axis=(-4, -2))


def _ms_ssim_core(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, int]:
    size, scales, weights = ms_ssim_plan(x.shape[-3], x.shape[-2])
    g = _gauss_1d(size, FILTER_SIGMA)
    factors = []
    for k in range(scales):
        if k > 0:
            x, y = _downsample(x), _downsample(y)
        ssim, cs = _ssim_and_cs(x, y, g)
        factors.append(np.maximum(cs if k < scales - 1 else ssim, 0.0))
    stacked = np.stack(factors, axis=-1)  # (..., C, S)
    per_channel = np.prod(stacked ** np.asarray(weights), axis=-1)
    return per_channel.mean(axis=-1), scales


def ms_ssim(a: np.ndarray, b: np.ndarray) -> tuple[float, int]:
    """Multi-scale SSIM of two HxWxC images and the number of scales used.

    Matches ``tf.image.ssim_multiscale(a, b, max_val=255)`` (5 scales, 11x11 Gaussian window,
    sigma 1.5, K1=0.01, K2=0.03, per channel then averaged) for short sides >= 161; see
    :func:`ms_ssim_plan` for smaller images. Identical images give exactly 1.0.
    """
    x, y = _pair(a, b)
    _, scales, _ = ms_ssim_plan(x.shape[-3], x.shape[-2])
    if np.array_equal(x, y):
        return 1.0, scales
    value, scales = _ms_ssim_core(x, y)
    return float(value), scales


def ms_ssim_batch(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, int]:
    """MS-SSIM for batches of equally sized images, shapes (N, H, W, C); returns (values, scales)."""
    x = np.asarray(a, dtype=np.float64)
    y = np.asarray(b, dtype=np.float64)
    if x.ndim != 4 or x.shape != y.shape:
        raise InputError(
            f"expected two NxHxWxC batches of the same shape, got {x.shape} and {y.shape}"
        )
    values, scales = _ms_ssim_core(x, y)
    same = np.all(x == y, axis=(1, 2, 3))
    return np.where(same, 1.0, values), scales


def compare(a: np.ndarray, b: np.ndarray) -> dict[str, Any]:
    """All metrics for two HxWx3 images with values in [0, 255].

    Keys: mse, psnr, ms_ssim, ms_ssim_db, ms_ssim_scales, l1, sad, identical, width, height.
    psnr and ms_ssim_db are ``math.inf`` for identical images.
    """
    x, y = _pair(a, b)
    identical = bool(np.array_equal(x, y))
    diff = x - y
    m = float(np.mean(diff**2))
    value, scales = ms_ssim(x, y)
    return {
        "width": int(x.shape[-2]),
        "height": int(x.shape[-3]),
        "identical": identical,
        "mse": m,
        "psnr": psnr_from_mse(m),
        "ms_ssim": value,
        "ms_ssim_db": ms_ssim_db(value),
        "ms_ssim_scales": scales,
        "l1": float(np.mean(np.abs(diff))),
        "sad": float(np.sum(np.abs(diff))),
    }
