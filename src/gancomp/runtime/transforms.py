"""NumPy runtime for the encoder E and generator G of an exported model.

The networks are defined and trained in Keras (:mod:`gancomp.training.model`); a model
folder stores their weights. Compressing or decompressing only needs the two
forward passes, and importing TensorFlow costs about four seconds of CPU, more
than the whole codec takes on a 768x512 photo. So ``.gcz`` files are written and
read by this small NumPy port of ``Encoder.call`` and ``Generator.call``: plain
convolutions, transposed convolutions, GDN/IGDN and a residual block, with
TensorFlow's ``"same"`` padding rules. ``tests/test_inference.py`` checks it
against the Keras layers.

Determinism: every sum is done in a fixed order (tap by tap, each tap one
float32 matrix product), and the matrix products run with BLAS single-threaded
(:func:`gancomp.runtime.blas.single_threaded_blas`): OpenBLAS splits a product differently with two
threads than with one, and the decoded pixels changed with the thread count.
Parallelism comes from running independent chunks and tiles side by side
instead (:mod:`gancomp.runtime.codec`).
"""

from __future__ import annotations

import numpy as np

_PEDESTAL = 2.0**-36  # as in gan.GDN


def _same_pad(size: int, k: int, s: int) -> tuple[int, int]:
    """TensorFlow "same" padding (before, after) for one axis."""
    out = -(-size // s)
    total = max((out - 1) * s + k - size, 0)
    return total // 2, total - total // 2


def conv2d(x: np.ndarray, kernel: np.ndarray, bias: np.ndarray, stride: int = 1) -> np.ndarray:
    """NHWC cross-correlation with "same" padding; kernel (k, k, Cin, Cout).

    Computes in the dtype of ``x`` (float32 for the transforms, float64 holding
    integers for the exact index path).
    """
    n, h, w, cin = x.shape
    k, _, _, cout = kernel.shape
    (pt, pb), (pl, pr) = _same_pad(h, k, stride), _same_pad(w, k, stride)
    xp = np.pad(x, [(0, 0), (pt, pb), (pl, pr), (0, 0)])
    ho, wo = -(-h // stride), -(-w // stride)

    def tap(ty: int, tx: int) -> np.ndarray:
        return xp[
            :, ty : ty + stride * (ho - 1) + 1 : stride, tx : tx + stride * (wo - 1) + 1 : stride
        ]

    if cin * k * k <= 256:
        # Few input channels (the RGB layer): one product over all taps (im2col).
        cols = np.concatenate([tap(ty, tx) for ty in range(k) for tx in range(k)], axis=-1)
        out = cols.reshape(-1, k * k * cin) @ kernel.reshape(k * k * cin, cout)
    else:
        # Wide layers: accumulate tap by tap, which needs no k*k-times copy of the input.
        out = np.zeros((n * ho * wo, cout), x.dtype)
        for ty in range(k):
            for tx in range(k):
                out += tap(ty, tx).reshape(-1, cin) @ kernel[ty, tx]
    out = out.reshape(n, ho, wo, cout)
    out += bias
    return out


def conv2d_transpose(
    x: np.ndarray, kernel: np.ndarray, bias: np.ndarray, stride: int = 2
) -> np.ndarray:
    """Keras ``Conv2DTranspose(padding="same")``: output side = input side * stride.

    The transpose (gradient) of a "same" convolution: input pixel i adds
    ``kernel[t]`` to output pixel ``i * stride + t - pad_before``.
    Kernel (k, k, Cout, Cin), as Keras stores it.
    """
    n, h, w, cin = x.shape
    k, _, cout, _ = kernel.shape
    ho, wo = h * stride, w * stride
    pt, pl = _same_pad(ho, k, stride)[0], _same_pad(wo, k, stride)[0]
    flat = x.reshape(-1, cin)
    if cout * k * k <= 256:
        # Few output channels (the RGB layer): one product for all taps, scattered
        # channel-first so the strided adds run over whole rows.
        z = flat @ kernel.transpose(3, 0, 1, 2).reshape(cin, k * k * cout)
        z = np.ascontiguousarray(z.reshape(n, h, w, k, k, cout).transpose(3, 4, 0, 5, 1, 2))
        full = np.zeros((n, cout, (h - 1) * stride + k, (w - 1) * stride + k), x.dtype)
        for ty in range(k):
            for tx in range(k):
                full[:, :, ty : ty + stride * h : stride, tx : tx + stride * w : stride] += z[
                    ty, tx
                ]
        full = full.transpose(0, 2, 3, 1)
    else:
        full = np.zeros((n, (h - 1) * stride + k, (w - 1) * stride + k, cout), x.dtype)
        for ty in range(k):
            for tx in range(k):
                contrib = (flat @ kernel[ty, tx].T).reshape(n, h, w, cout)
                full[:, ty : ty + stride * h : stride, tx : tx + stride * w : stride] += contrib
    out = np.ascontiguousarray(full[:, pt : pt + ho, pl : pl + wo])
    out += bias
    return out


def gdn(x: np.ndarray, beta: np.ndarray, gamma: np.ndarray, inverse: bool) -> np.ndarray:
    """GDN / IGDN with the effective (already reparameterised) beta and gamma."""
    c = x.shape[-1]
    norm = (np.square(x).reshape(-1, c) @ gamma).reshape(x.shape)
    norm += beta
    return x * np.sqrt(norm) if inverse else x / np.sqrt(norm)


class Transforms:
    """E and G of one model folder, from its weight dictionary and config."""

    def __init__(self, weights: dict[str, np.ndarray], config: dict):
        self.num_down = int(config["num_down"])
        self.latent_channels = int(config["latent_channels"])
        self.w: dict[str, np.ndarray] = {}
        p = np.float32(_PEDESTAL)
        for key, value in weights.items():
            if not key.startswith(("gancodec/encoder/", "gancodec/generator/")):
                continue
            v = np.asarray(value, np.float32)
            # Same reparameterisation as gan.GDN.call, done once at load time.
            if key.endswith("/beta"):
                v = np.square(np.maximum(v, np.sqrt(np.float32(1e-6) + p))) - p
            elif key.endswith("/gamma"):
                v = np.square(np.maximum(v, np.sqrt(p))) - p
            self.w[key.split("/", 1)[1]] = np.ascontiguousarray(v, np.float32)
        self._check()

    def _names(self) -> list[str]:
        names = []
        for i in range(self.num_down):
            names += [f"encoder/conv{i}/kernel", f"encoder/conv{i}/bias"]
            if i < self.num_down - 1:
                names += [f"encoder/gdn{i}/beta", f"encoder/gdn{i}/gamma"]
            names += [f"generator/igdn{i}/beta", f"generator/igdn{i}/gamma"]
            names += [f"generator/deconv{i}/kernel", f"generator/deconv{i}/bias"]
        for layer in ("head", "res0/c1", "res0/c2"):
            names += [f"generator/{layer}/kernel", f"generator/{layer}/bias"]
        return names

    def _check(self) -> None:
        missing = [n for n in self._names() if n not in self.w]
        if missing:
            raise KeyError(f"gancodec/{missing[0]}")
        if self.w[f"encoder/conv{self.num_down - 1}/kernel"].shape[-1] != self.latent_channels:
            raise KeyError("encoder output channels")
        if self.w["generator/head/kernel"].shape[2] != self.latent_channels:
            raise KeyError("generator input channels")

    def _conv(self, x: np.ndarray, name: str, stride: int = 1) -> np.ndarray:
        return conv2d(x, self.w[name + "/kernel"], self.w[name + "/bias"], stride)

    def analysis(self, x: np.ndarray) -> np.ndarray:
        """Image batch (N, H, W, 3) float32 in [0, 1] -> latents y (unquantized)."""
        x = np.ascontiguousarray(x, np.float32)
        for i in range(self.num_down):
            x = self._conv(x, f"encoder/conv{i}", stride=2)
            if i < self.num_down - 1:
                x = gdn(x, self.w[f"encoder/gdn{i}/beta"], self.w[f"encoder/gdn{i}/gamma"], False)
        return x

    def synthesis(self, y: np.ndarray) -> np.ndarray:
        """Dequantized latents (N, h, w, M) float32 -> images in about [0, 1]."""
        x = self._conv(np.ascontiguousarray(y, np.float32), "generator/head")
        r = self._conv(x, "generator/res0/c1")
        r = np.maximum(r, np.float32(0.2) * r)  # leaky ReLU, slope 0.2
        x = x + self._conv(r, "generator/res0/c2")
        for i in range(self.num_down):
            w = self.w
            x = gdn(x, w[f"generator/igdn{i}/beta"], w[f"generator/igdn{i}/gamma"], True)
            x = conv2d_transpose(
                x, w[f"generator/deconv{i}/kernel"], w[f"generator/deconv{i}/bias"]
            )
        return x + np.float32(0.5)
