"""The mean-scale hyperprior's training pieces: integer layers and the Gaussian likelihood.

Minnen, Balle, Toderici, "Joint Autoregressive and Hierarchical Priors for
Learned Image Compression" (NeurIPS 2018), mean-scale variant without the
context model: a hyper-analysis h_a maps the scaled latent y to z; z is coded
with a factorized prior; a hyper-synthesis maps the decoded z to a mean and a
Gaussian scale for every element of y. Here the scale branch is an integer
network (Balle, Johnston, Minnen, ICLR 2019) that outputs the index of one of
the fixed scales of :mod:`gancomp.coding.hyperprior_spec` directly, so encoder
and decoder derive the same table index on any machine. Training runs the same
integer operations with straight-through gradients.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from gancomp.coding import entropy
from gancomp.coding import hyperprior_spec as spec

LIKELIHOOD_BOUND = 2.0**-20  # = 1 / 2**entropy.SCALE_PRECISION

#: Per scale index: the largest |residual| its frozen table codes without an escape.
_HALF_RANGES = tf.constant([entropy.scale_half_range(s) for s in spec.scale_table()], tf.float32)

# Scales start near 2 (index 24), about where a trained latent's spread lies.
INITIAL_INDEX = 24.0


def _ste(x, quantized):
    """``quantized`` forward, identity gradient."""
    return x + tf.stop_gradient(quantized - x)


class IntegerConv(keras.layers.Layer):
    """A convolution whose forward pass is exact integer arithmetic.

    Weights are trained in float and used as round(w * 2**WEIGHT_BITS); the sum
    over an integer input is divided by a power of two with rounding
    (floor(v / 2**shift + 1/2)) and clamped to [0, out_max]. ``transpose`` makes it
    a stride-2 transposed convolution ("same" padding, as Keras).
    """

    def __init__(
        self,
        filters: int,
        kernel_size: int,
        input_bits: int,
        output_bits: int,
        out_max: int,
        transpose: bool = False,
        straight_through_clamp: bool = False,
        bias_init: float = 0.0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.filters = filters
        self.kernel_size = kernel_size
        self.input_bits = input_bits
        self.shift = spec.division_shift(input_bits, output_bits)
        self.out_max = out_max
        self.transpose = transpose
        self.straight_through_clamp = straight_through_clamp
        self.bias_init = bias_init
        # The bias variable holds bias / bias_scale: a larger scale makes the optimizer's
        # steps larger in output units (the index layer's output spans 64 indexes).
        self.bias_scale = 1.0

    @classmethod
    def from_op(cls, op: dict, **kwargs) -> IntegerConv:
        """The layer of an ``integer_conv2d[_transpose]`` op; the index output (output_bits 0)
        clamps with a straight-through gradient and starts at INITIAL_INDEX."""
        index_output = op["output_bits"] == 0
        return cls(
            op["filters"],
            op["kernel"],
            op["input_bits"],
            op["output_bits"],
            op["out_max"],
            transpose=op["op"] == "integer_conv2d_transpose",
            straight_through_clamp=index_output,
            bias_init=INITIAL_INDEX if index_output else 0.0,
            name=op["name"],
            **kwargs,
        )

    def build(self, input_shape):
        cin = int(input_shape[-1])
        k = self.kernel_size
        shape = (k, k, self.filters, cin) if self.transpose else (k, k, cin, self.filters)
        self.kernel = self.add_weight(
            name="kernel", shape=shape, initializer=keras.initializers.GlorotUniform()
        )
        # Stored in real units (like the float weights), so Adam's steps suit it.
        self.bias = self.add_weight(
            name="bias",
            shape=(self.filters,),
            initializer=keras.initializers.Constant(self.bias_init / self.bias_scale),
        )

    def load_integers(self, kernel_int: np.ndarray, bias_int: np.ndarray) -> None:
        """Set the float weights that quantize to these exported integers."""
        self.kernel.assign(np.asarray(kernel_int, np.float32) / 2.0**spec.WEIGHT_BITS)
        self.bias.assign(
            np.asarray(bias_int, np.float64)
            / 2.0 ** (spec.WEIGHT_BITS + self.input_bits)
            / self.bias_scale
        )

    def integer_weights(self):
        """(kernel, bias) as the integers the decoder uses (float32 tensors)."""
        w = tf.clip_by_value(
            self.kernel * 2.0**spec.WEIGHT_BITS, -spec.WEIGHT_LIMIT, spec.WEIGHT_LIMIT
        )
        b = tf.clip_by_value(
            self.bias * (self.bias_scale * 2.0 ** (spec.WEIGHT_BITS + self.input_bits)),
            -spec.BIAS_LIMIT,
            spec.BIAS_LIMIT,
        )
        return _ste(w, tf.round(w)), _ste(b, tf.round(b))

    def call(self, a):
        w, b = self.integer_weights()
        if self.transpose:
            n, h, wd = tf.shape(a)[0], tf.shape(a)[1], tf.shape(a)[2]
            v = tf.nn.conv2d_transpose(
                a, w, tf.stack([n, 2 * h, 2 * wd, self.filters]), 2, padding="SAME"
            )
        else:
            v = tf.nn.conv2d(a, w, 1, padding="SAME")
        v = v + b
        u = v / 2.0**self.shift
        q = _ste(u, tf.floor(u + 0.5))
        if self.straight_through_clamp:
            return _ste(q, tf.clip_by_value(q, 0.0, float(self.out_max)))
        return tf.clip_by_value(q, 0.0, float(self.out_max))


def coded_likelihood(v, index):
    """What the frozen scale table of ``index`` charges the residual ``v``, as a probability.

    Within the table's range: P(v - 1/2 < Y < v + 1/2) for Y ~ N(0, scale), evaluated in
    the accurate tail and bounded below by the smallest probability a table can give a bin.
    Beyond it the coder writes an escape: the tail bin, then an Elias-gamma code of the
    distance (:data:`~gancomp.coding.entropy.ESCAPE_PREFIX_BITS` plus floor(log2(d + 1))
    bits). Charging that, rather than a bounded bin, keeps the loss's rate the file's rate,
    and lets the tail's mass pull the scale of an escaping element up.
    """
    scale = scale_of_index(index)
    v = tf.abs(v)
    inv = 1.0 / (scale * np.sqrt(2.0))
    upper = 0.5 * tf.math.erfc((v - 0.5) * inv)
    lower = 0.5 * tf.math.erfc((v + 0.5) * inv)
    in_range = tf.maximum(upper - lower, LIKELIHOOD_BOUND)
    half = tf.gather(_HALF_RANGES, tf.cast(tf.round(index), tf.int32))
    tail = tf.maximum(0.5 * tf.math.erfc((half + 0.5) * inv), LIKELIHOOD_BOUND)
    distance = tf.maximum(v - half - 1.0, 0.0)
    log2_distance = tf.math.log(distance + 1.0) / np.log(2.0)
    gamma_bits = entropy.ESCAPE_PREFIX_BITS + _ste(log2_distance, tf.floor(log2_distance))
    escaped = tail * tf.exp(-np.log(2.0) * gamma_bits)
    return tf.where(v >= half + 0.5, escaped, in_range)


def scale_of_index(index):
    """Scale of a (straight-through, integer-valued) index: exp is exact at integers."""
    return spec.SCALE_MIN * tf.exp(index * spec.log_scale_step())


def integer_layer_arrays(layer: IntegerConv, prefix: str) -> dict[str, np.ndarray]:
    """What a model folder stores of one integer layer: the integers the decoder computes with."""
    w, b = layer.integer_weights()
    return {
        f"{prefix}/kernel_int": np.asarray(w.numpy(), np.int32),
        f"{prefix}/bias_int": np.asarray(b.numpy(), np.int64),
    }
