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
from gancomp.runtime.transforms import ModelError, conv2d, conv2d_transpose

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
        self.used: set[str] = set()
        input_max = float(spec.Z_LIMIT)
        for i, layer in enumerate(layers):
            if layer.bound(input_max) >= _EXACT:
                raise ValueError(f"integer layer {i} could exceed exact float64 sums")
            input_max = float(layer.out_max)

    @classmethod
    def from_ops(
        cls, ops: list, weights: dict[str, np.ndarray], in_channels: int, out_channels: int
    ) -> ScaleIndexNetwork:
        """The network of a ``hyper_synthesis_scale`` op list on its stored integer weights
        (``<name>/kernel_int``, ``<name>/bias_int``, names without the transform prefix)."""
        layers, used, c = [], set(), in_channels
        for op in ops:
            kind = op.get("op")
            if kind == "clip":
                if int(op["limit"]) != spec.Z_LIMIT:
                    raise ModelError("scale index path: unexpected input clip")
                continue
            if kind not in ("integer_conv2d", "integer_conv2d_transpose"):
                raise ModelError(f"scale index path: unknown op {kind!r}")
            k, f, name = int(op["kernel"]), int(op["filters"]), op["name"]
            transpose = kind == "integer_conv2d_transpose"
            shape = (k, k, f, c) if transpose else (k, k, c, f)
            kernel, bias = weights.get(f"{name}/kernel_int"), weights.get(f"{name}/bias_int")
            if kernel is None or bias is None:
                raise ModelError(f"scale index path: missing weights of {name}")
            if kernel.shape != shape or bias.shape != (f,):
                raise ModelError(f"scale index path: weights of {name} have the wrong shape")
            used |= {f"{name}/kernel_int", f"{name}/bias_int"}
            layers.append(
                IntegerLayer(
                    kernel=_integers(kernel),
                    bias=_integers(bias),
                    shift=spec.division_shift(int(op["input_bits"]), int(op["output_bits"])),
                    out_max=int(op["out_max"]),
                    transpose=transpose,
                )
            )
            c = f
        if c != out_channels or not layers or layers[-1].out_max != spec.SCALE_COUNT - 1:
            raise ModelError("scale index path does not end in one index per latent element")
        try:
            net = cls(layers)
        except ValueError as exc:
            raise ModelError(f"scale index path: {exc}") from None
        net.used = used
        return net

    def __call__(self, z_hat: np.ndarray) -> np.ndarray:
        a = np.clip(np.asarray(z_hat, np.float64), -spec.Z_LIMIT, spec.Z_LIMIT)
        for layer in self.layers:
            a = layer(a)
        return a.astype(np.int32)


def _integers(a: np.ndarray) -> np.ndarray:
    a = np.asarray(a)
    if not np.issubdtype(a.dtype, np.integer):
        raise ModelError("integer layer weights must be stored as integers")
    return np.ascontiguousarray(a, np.float64)
