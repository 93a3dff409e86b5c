"""The hyperprior's scale-index path in exact integer arithmetic (NumPy).

The decoder must derive, from the decoded hyper-latent z, exactly the table
index the encoder used for every element of y. The integer network of
:mod:`gancomp.coding.hyperprior_spec` guarantees it: its values are integers
held in float64, every product and partial sum stays far below 2**53 (checked
when the weights load), so BLAS computes each sum exactly whatever its kernel,
summation order or thread count, and the rounding division by a power of two
is exact too. The result is the same on every machine.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gancomp.coding import hyperprior_spec as spec
from gancomp.runtime.transforms import conv2d, conv2d_transpose

_EXACT = 2.0**53


@dataclass
class IntegerLayer:
    """One integer convolution: sum, rounding division by 2**shift, clamp to [0, out_max]."""

    kernel: np.ndarray  # float64 holding integers; (k, k, Cin, Cout), or (k, k, Cout, Cin)
    bias: np.ndarray  # float64 holding integers, in the units of the sum
    shift: int
    out_max: int
    transpose: bool

    def bound(self, input_max: float) -> float:
        """Largest |sum| this layer can reach for inputs bounded by ``input_max``."""
        k = self.kernel
        per_output = np.abs(k).sum(axis=(0, 1, 3 if self.transpose else 2))
        return float(per_output.max() * input_max + np.abs(self.bias).max(initial=0.0))

    def __call__(self, a: np.ndarray) -> np.ndarray:
        # Inputs are integers; rounding them first makes float noise below 1/2 harmless.
        a = np.rint(a)
        if self.transpose:
            v = conv2d_transpose(a, self.kernel, self.bias, stride=2)
        else:
            v = conv2d(a, self.kernel, self.bias)
        if self.shift:
            v = np.floor((v + 2.0 ** (self.shift - 1)) / 2.0**self.shift)
        return np.clip(v, 0.0, float(self.out_max))


class ScaleIndexNetwork:
    """Decoded z (N, h, w, Mz) int -> scale index (N, h * 2**down, w * 2**down, M) int32."""

    def __init__(self, layers: list[IntegerLayer]):
        self.layers = layers
        input_max = float(spec.Z_LIMIT)
        for i, layer in enumerate(layers):
            if layer.bound(input_max) >= _EXACT:
                raise ValueError(f"integer layer {i} could exceed exact float64 sums")
            input_max = float(layer.out_max)

    @classmethod
    def from_weights(cls, weights: dict[str, np.ndarray], prefix: str) -> ScaleIndexNetwork:
        """Layers ``prefix/<name>/{kernel_int,bias_int,shift,out_max,transpose}`` in name order."""
        names = sorted(
            {k[len(prefix) + 1 :].split("/")[0] for k in weights if k.startswith(prefix + "/")},
            key=_layer_order,
        )
        layers = []
        for name in names:
            base = f"{prefix}/{name}"
            layers.append(
                IntegerLayer(
                    kernel=_integers(weights[f"{base}/kernel_int"]),
                    bias=_integers(weights[f"{base}/bias_int"]),
                    shift=int(weights[f"{base}/shift"]),
                    out_max=int(weights[f"{base}/out_max"]),
                    transpose=bool(weights[f"{base}/transpose"]),
                )
            )
        return cls(layers)

    def __call__(self, z_hat: np.ndarray) -> np.ndarray:
        a = np.clip(np.asarray(z_hat, np.float64), -spec.Z_LIMIT, spec.Z_LIMIT)
        for layer in self.layers:
            a = layer(a)
        return a.astype(np.int32)


def _integers(a: np.ndarray) -> np.ndarray:
    a = np.asarray(a)
    if not np.issubdtype(a.dtype, np.integer):
        raise ValueError("integer layer weights must be stored as integers")
    return np.ascontiguousarray(a, np.float64)


def _layer_order(name: str) -> tuple[int, int, str]:
    # ideconv0, ideconv1, ..., then iout: transposed layers first, in index order.
    digits = "".join(ch for ch in name if ch.isdigit())
    return (0 if "deconv" in name else 1, int(digits) if digits else 0, name)
