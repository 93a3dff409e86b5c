"""The latent optimiser behind ``--effort`` (TensorFlow): stochastic Gumbel annealing.

:mod:`gancomp.refine` says what is optimised and why; this module does it. Per image, with
everything of the model frozen, minimise

    bits(y, z) / pixels + lambda_level * MSE(G(y_hat * inv_gain), x)

over the scaled latent y (and, with a hyperprior, the hyper-latent z), starting from the
encoder's y = E(x) * gain (and z = h_a(y)). The loss is the one the model was trained with
at that level (``trainer.rd_terms``) with three differences that bring it closer to the file:
the rounding is SGA's relaxation instead of uniform noise; the rates of factorized values
(y, or z with a hyperprior) come from the model's frozen integer tables (the densities
themselves are not exported), as the code length at each integer, interpolated linearly
between integers; and the decoded pixels are clipped to [0, 1] as the decoder clips them.

SGA (Yang, Bamler and Mandt, NeurIPS 2020): a value v is replaced by floor(v) + w, where w
in (0, 1) is a two-class Gumbel-softmax sample at temperature tau whose logits favour the
nearer integer (-atanh of the distance to it, over tau). As tau falls, w goes to 0 or 1 and
the relaxed loss becomes the loss of a rounded latent. Adam moves the latents (per element,
so images in one batch do not interact).
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import numpy as np

from gancomp.errors import GancompError
from gancomp.training._tf import tf as _import_tf

if TYPE_CHECKING:
    from gancomp.refine import Schedule
    from gancomp.runtime.codec import Codec

#: Fixed seed of the Gumbel noise (with each image's own checksum).
SEED = 20200607
#: Image pixels per refinement batch: same-sized images are refined this many pixels at a
#: time (at least one image). An image's gradients do not depend on the other images of its
#: batch (tests/test_refine.py checks that its bytes do not either).
BATCH_PIXELS = 1 << 15
ADAM_BETA1, ADAM_BETA2, ADAM_EPSILON = 0.9, 0.999, 1e-8
#: Distance clip of SGA's logits: atanh(1) is infinite.
_SGA_EPSILON = 1e-5
#: Integers past the widest table row each side of the rate lookup (beyond: flat).
_TABLE_MARGIN = 32

_MODELS: dict[tuple[str, str], object] = {}


# -- the frozen model ---------------------------------------------------------------------


def keras_model(codec: Codec):
    """The Keras ``GANModel`` of ``codec``'s model folder with its exported weights (cached)."""
    _import_tf()
    import io

    from gancomp.training.model import GANModel, ModelConfig
    from gancomp.training.trainer import inference_weights_vars

    folder = codec.folder
    key = (str(folder.path), folder.fingerprint)
    if key in _MODELS:
        return _MODELS[key]
    try:
        cfg = ModelConfig.from_dict(folder.config)
    except (TypeError, ValueError) as exc:
        raise GancompError(f"model folder {folder.path}: cannot refine with it ({exc})") from None
    model = GANModel(cfg, name="gancodec")
    model.build_all()
    described = folder.config.get("architecture")
    if described is not None and _canonical(described) != _canonical(model.architecture):
        raise GancompError(
            f"model folder {folder.path}: its architecture is not the one this gancomp "
            "trains, so its latents cannot be refined"
        )
    with np.load(io.BytesIO(folder.weights), allow_pickle=False) as z:
        stored = {k: z[k] for k in z.files}
    for v in inference_weights_vars(model):
        if v.path not in stored or tuple(stored[v.path].shape) != tuple(v.shape):
            raise GancompError(f"model folder {folder.path}: weight {v.path} missing or misshapen")
        v.assign(np.asarray(stored[v.path], np.float32))  # float16 if the folder was shrunk
    if model.hyperprior:
        for layer in model.h_s_scale.sublayers:
            base = layer.kernel.path.rsplit("/", 1)[0]
            layer.load_integers(stored[f"{base}/kernel_int"], stored[f"{base}/bias_int"])
    _MODELS[key] = model
    return model


def _canonical(obj) -> str:
    return json.dumps(obj, sort_keys=True)


def code_length_table(coder, level: int) -> tuple[np.ndarray, int]:
    """Bits of every integer lo, lo + 1, ... under each channel's frozen table at ``level``
    (the coder's own -log2 p, escape codes included): (channels, n) float32, and lo."""
    from gancomp.coding.entropy import _gamma_bits

    tables = coder.tables
    indexed = coder.indexed
    rows = [level * tables.channels + c for c in range(tables.channels)]
    offsets = tables.offsets[rows].astype(np.int64)
    lengths = tables.lengths[rows].astype(np.int64)
    lo = int(offsets.min()) - _TABLE_MARGIN
    hi = int((offsets + lengths - 3).max()) + _TABLE_MARGIN
    values = np.arange(lo, hi + 1)
    out = np.empty((len(rows), len(values)), np.float64)
    for i, r in enumerate(rows):
        freqs = tables.freq_row(r).astype(np.float64)
        bits = -np.log2(freqs / freqs.sum())
        b = values - offsets[i] + 1  # the bin of each value; escapes at 0 and n - 1
        n = lengths[i]
        inside = (b >= 1) & (b <= n - 2)
        row = np.empty(len(values))
        row[inside] = bits[b[inside]]
        for j in np.nonzero(b < 1)[0]:
            row[j] = bits[0] + _gamma_bits(int(-b[j]), indexed.tight_escapes)
        for j in np.nonzero(b > n - 2)[0]:
            row[j] = bits[n - 1] + _gamma_bits(int(b[j] - (n - 1)), indexed.tight_escapes)
        out[i] = row
    return out.astype(np.float32), lo


# -- SGA ----------------------------------------------------------------------------------


def soft_round(v, tau, uniform):
    """SGA's relaxed rounding of ``v``: floor(v) + w, w in (0, 1) a Gumbel-softmax sample at
    temperature ``tau`` between rounding down and up; ``uniform`` holds U(0, 1) noise."""
    tf = _import_tf()
    down = tf.floor(v)
    frac = tf.clip_by_value(v - down, _SGA_EPSILON, 1.0 - _SGA_EPSILON)
    # Logits of up and down: -atanh(distance) / tau; their difference decides w.
    logit = (tf.math.atanh(frac) - tf.math.atanh(1.0 - frac)) / tau
    u = tf.clip_by_value(uniform, 1e-7, 1.0 - 1e-7)
    logistic = tf.math.log(u) - tf.math.log1p(-u)  # difference of two Gumbel samples
    return down + tf.sigmoid((logit + logistic) / tau)


def table_bits(v, table, lo):
    """Per image, the bits of values ``v`` (B, h, w, C) under per-channel code lengths
    ``table`` (C, n) starting at integer ``lo``: exact at integers, linear between them."""
    tf = _import_tf()
    n = tf.shape(table)[1]
    last = tf.cast(n - 1, tf.float32)
    u = tf.clip_by_value(v - lo, 0.0, last)
    k = tf.minimum(tf.floor(u), last - 1.0)
    frac = u - k
    index = tf.cast(k, tf.int32) + tf.range(tf.shape(table)[0]) * n
    flat = tf.reshape(table, [-1])
    bits = tf.gather(flat, index) * (1.0 - frac) + tf.gather(flat, index + 1) * frac
    return tf.reduce_sum(bits, axis=[1, 2, 3])


# -- batches ------------------------------------------------------------------------------


def _batch_size(height: int, width: int) -> int:
    return max(1, BATCH_PIXELS // (height * width))


def _groups(images: Sequence[np.ndarray]) -> dict[tuple[int, int], list[int]]:
    groups: dict[tuple[int, int], list[int]] = {}
    for i, a in enumerate(images):
        groups.setdefault(a.shape[:2], []).append(i)
    return groups


def batch_count(codec: Codec, images: Sequence[np.ndarray]) -> int:
    """How many refinement batches ``images`` take (for a progress bar)."""
    return sum(-(-len(idx) // _batch_size(*shape)) for shape, idx in _groups(images).items())


def _seed(image: np.ndarray) -> int:
    """The image's noise stream: its pixels' checksum (any other image gets other noise)."""
    return zlib.crc32(np.ascontiguousarray(image).tobytes(), zlib.crc32(repr(image.shape).encode()))


def refine_latents(
    codec: Codec,
    images: Sequence[np.ndarray],
    quality: int,
    schedule: Schedule,
    progress: Callable[[int], None] | None = None,
) -> list[tuple[np.ndarray, np.ndarray | None]]:
    """Refined (y, z) of each HxWx3 uint8 image: float32 scaled latents on the image's latent
    grid, and with a hyperprior the hyper-latents on z's grid (None otherwise); to be coded by
    :meth:`gancomp.runtime.codec.Codec.compress_latents`. ``progress`` gets the iterations
    done, batch by batch."""
    level = codec.level_of(quality)
    y0 = codec.scaled_latents(images, quality)  # the encoder's latents, as normal effort codes
    out: list[tuple[np.ndarray, np.ndarray | None] | None] = [None] * len(images)
    for (height, width), idx in _groups(images).items():
        size = _batch_size(height, width)
        problem = _problem(codec)
        for start in range(0, len(idx), size):
            part = idx[start : start + size]
            ys, zs = problem.run(
                [images[i] for i in part], [y0[i] for i in part], level, schedule, progress
            )
            for k, i in enumerate(part):
                out[i] = (ys[k], zs[k] if zs is not None else None)
    return out  # type: ignore[return-value]


_PROBLEMS: dict[tuple, _Problem] = {}


def _problem(codec: Codec) -> _Problem:
    """The compiled step of one model (cached: tracing takes seconds)."""
    key = (str(codec.folder.path), codec.folder.fingerprint)
    if key not in _PROBLEMS:
        _PROBLEMS[key] = _Problem(codec, keras_model(codec))
    return _PROBLEMS[key]


class _Problem:
    """The loss and the Adam update of a batch of same-sized images, compiled once per
    model for every size and level: what depends on them comes in as tensors."""

    def __init__(self, codec: Codec, model):
        tf = _import_tf()
        self.tf = tf
        self.model = model
        self.codec = codec
        self.hyperprior = codec.hyperprior
        self._tables: dict[int, tuple] = {}
        self._step = tf.function(self._update, reduce_retracing=True)

    def level_tensors(self, level: int) -> tuple:
        """(lambda, inverse gain, code-length table, its first integer) of ``level``."""
        if level not in self._tables:
            tf = self.tf
            coder = self.codec.z_coder if self.hyperprior else self.codec.coder
            table, lo = code_length_table(coder, level)
            self._tables[level] = (
                tf.constant(float(self.model.cfg.lambdas[level]), tf.float32),
                tf.exp(self.model.log_inv_gain[level]),
                tf.constant(table),
                tf.constant(float(lo), tf.float32),
            )
        return self._tables[level]

    def _losses(self, x, y, z, tau, noise_y, noise_z, lam, inv_gain, table, lo):
        """Per image: bits per pixel + lambda * MSE of the relaxed latents."""
        tf = self.tf
        model = self.model
        h, w = tf.shape(y)[1], tf.shape(y)[2]
        height, width = tf.shape(x)[1], tf.shape(x)[2]
        if self.hyperprior:
            from gancomp.training.hyperprior import coded_likelihood

            z_soft = soft_round(z, tau, noise_z)
            mean = model.h_s_mean(z_soft)[:, :h, :w]
            index = model.h_s_scale(z_soft)[:, :h, :w]
            # The file codes round(y - mean): relax that, around the mean.
            residual = soft_round(y - mean, tau, noise_y)
            y_soft = mean + residual
            likelihood = coded_likelihood(residual, index)
            bits = -tf.reduce_sum(tf.math.log(likelihood), axis=[1, 2, 3]) / np.log(2.0)
            bits += table_bits(z_soft, table, lo)
        else:
            y_soft = soft_round(y, tau, noise_y)
            bits = table_bits(y_soft, table, lo)
        x_hat = model.generator(y_soft * inv_gain)[:, :height, :width]
        x_hat = tf.clip_by_value(x_hat, 0.0, 1.0)  # as the decoder clips its pixels
        mse = tf.reduce_mean(tf.square((x_hat - x) * 255.0), axis=[1, 2, 3])
        return bits / tf.cast(height * width, tf.float32) + lam * mse

    def _update(self, x, params, moments, step, tau, lr, noise, level_tensors):
        tf = self.tf
        with tf.GradientTape() as tape:
            tape.watch(params)
            loss = tf.reduce_sum(self._losses(x, *params, tau, *noise, *level_tensors))
        grads = tape.gradient(loss, params, unconnected_gradients=tf.UnconnectedGradients.ZERO)
        new_params, new_moments = [], []
        t = step + 1.0
        lr = lr * tf.sqrt(1.0 - ADAM_BETA2**t) / (1.0 - ADAM_BETA1**t)
        for p, g, (m, v) in zip(params, grads, moments):
            m = ADAM_BETA1 * m + (1.0 - ADAM_BETA1) * g
            v = ADAM_BETA2 * v + (1.0 - ADAM_BETA2) * tf.square(g)
            new_params.append(p - lr * m / (tf.sqrt(v) + ADAM_EPSILON))
            new_moments.append((m, v))
        return new_params, new_moments

    def run(self, images, y0, level: int, schedule: Schedule, progress):
        """Refined (ys, zs or None) of same-sized images, from the encoder's latents."""
        tf = self.tf
        x = tf.constant(np.stack(images).astype(np.float32) / np.float32(255.0))
        params = [tf.constant(np.stack(y0).astype(np.float32))]
        if self.hyperprior:
            # z starts where the encoder's z is: h_a(y) times the level's z gain.
            params.append(tf.constant(np.stack(self.codec.hyper_latents(list(y0), level))))
        else:
            params.append(tf.zeros([len(images), 1, 1, 1]))  # unused: one signature for both
        moments = [(tf.zeros_like(p), tf.zeros_like(p)) for p in params]
        lr = tf.constant(schedule.learning_rate, tf.float32)
        level_tensors = self.level_tensors(level)
        rngs = [np.random.Generator(np.random.PCG64([SEED, _seed(a)])) for a in images]
        for step in range(schedule.iterations):
            noise = [
                tf.constant(np.stack([g.random(p.shape[1:], np.float32) for g in rngs]))
                for p in params
            ]
            step_tensor = tf.constant(step, tf.float32)
            tau = tf.constant(schedule.temperature(step), tf.float32)
            params, moments = self._step(
                x, params, moments, step_tensor, tau, lr, noise, level_tensors
            )
            if progress is not None:
                progress(1)
        ys = list(params[0].numpy())
        return ys, (list(params[1].numpy()) if self.hyperprior else None)
