"""Fixed numbers shared by the hyperprior's training model and its decoder.

The mean-scale hyperprior (Minnen, Balle, Toderici, "Joint Autoregressive and
Hierarchical Priors for Learned Image Compression", NeurIPS 2018, without the
context model) codes each element of the scaled latent as round(y - mean) with
the frozen table of one of ``SCALE_COUNT`` Gaussian scales. Which table is used
is the *scale index*, computed by the decoder from the decoded hyper-latent z.
If the decoder derived one index differently from the encoder, the rest of the
image would decode as garbage, so the index path is an integer network
(Balle, Johnston, Minnen, "Integer Networks for Data Compression with Latent-
Variable Models", ICLR 2019): integer weights, integer activations, rounding
division by a power of two and a clamp. Training simulates exactly these
operations, so the model is trained for the decoder it ships with.

Every value on the index path is an integer whose magnitude stays far below
2**53, so float64 BLAS products compute it exactly, in any summation order, on
any machine (:mod:`gancomp.runtime.index_path`).
"""

from __future__ import annotations

import math

import numpy as np

#: Gaussian scales of the frozen tables: log-spaced, as tensorflow-compression and
#: CompressAI use them.
SCALE_MIN = 0.11
SCALE_MAX = 256.0
SCALE_COUNT = 64

#: Integer network number formats. A weight w is stored as round(w * 2**WEIGHT_BITS),
#: clipped to +-WEIGHT_LIMIT (a bias in the units of its layer's sum, clipped to
#: +-BIAS_LIMIT); an activation a as an integer in [0, ACTIVATION_MAX]
#: standing for a / 2**ACTIVATION_BITS. The decoded z enters clipped to +-Z_LIMIT.
WEIGHT_BITS = 10
ACTIVATION_BITS = 6
ACTIVATION_MAX = 2**12 - 1
WEIGHT_LIMIT = 2**15
BIAS_LIMIT = 2**31
Z_LIMIT = 255


def scale_table() -> np.ndarray:
    """The ``SCALE_COUNT`` scales, float64, smallest first."""
    return np.exp(np.linspace(math.log(SCALE_MIN), math.log(SCALE_MAX), SCALE_COUNT))


def log_scale_step() -> float:
    """log(scale[k + 1]) - log(scale[k])."""
    return (math.log(SCALE_MAX) - math.log(SCALE_MIN)) / (SCALE_COUNT - 1)


def division_shift(input_bits: int, output_bits: int) -> int:
    """Bits to divide an integer layer's sum by: weight bits + input bits - output bits."""
    shift = WEIGHT_BITS + input_bits - output_bits
    if shift < 0:
        raise ValueError("an integer layer cannot multiply")
    return shift


def max_abs_sum(fan_in: int, input_max: int) -> int:
    """Bound on an integer layer's sum: fan_in products plus the bias."""
    return fan_in * input_max * WEIGHT_LIMIT + BIAS_LIMIT
