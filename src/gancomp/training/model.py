"""The one GAN codec definition shared by every category.

A category codec (airplane, automobile, flower, or any user category) is an
instance of :class:`GANModel` built from a :class:`ModelConfig` and trained
weights. The pieces follow the learned-compression literature:

* Encoder E and generator G are the analysis/synthesis transforms of
  Balle, Laparra, Simoncelli, "End-to-end optimized image compression"
  (ICLR 2017), using GDN, with residual blocks (one by default) at the latent
  resolution in G as in HiFiC (Mentzer et al., "High-Fidelity Generative Image Compression",
  NeurIPS 2020).
* Variable rate comes from per-level gain and inverse-gain vectors
  (Cui et al., "Asymmetric Gained Deep Image Compression with Continuous Rate
  Adaptation", CVPR 2021): one network, eight rate-distortion points. A hyperprior
  model also scales z by a per-level gain on the encoder side only (no inverse gain:
  h_s reads the integer z_hat), so z's rate follows the level.
* The entropy model is the non-parametric factorized density of
  Balle, Minnen, Singh, Hwang, Johnston, "Variational image compression with a
  scale hyperprior" (ICLR 2018, appendix 6.1), one density per level and
  channel. Its probabilities do not depend on the image, so the integer
  tables frozen at export make decoding bit-exact on any machine.
* The discriminator D is conditioned on the quantized latent like HiFiC's and
  runs at two scales like Agustsson et al., "Generative Adversarial Networks
  for Extreme Learned Image Compression" (ICCV 2019). It is used in training
  only.

Tensors are NHWC, pixels scaled to [0, 1].

Precision: with ``precision="mixed_bfloat16"`` the convolutional transforms (E, G, D,
h_a and h_s's mean branch) compute in bfloat16 on float32 variables (Keras'
per-layer dtype policy). Everything the rate depends on stays float32: the outputs
of E and h_a are cast before the noise or rounding, and the densities, the Gaussian
likelihood and h_s's integer scale path (bfloat16 cannot hold its integers) are
float32 layers. Variables, checkpoints and exported weights are float32 either way.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field

import keras
import numpy as np
import tensorflow as tf

from gancomp import architecture

#: ``gancomp train --precision`` values.
PRECISIONS = ("float32", "mixed_bfloat16")


@dataclass
class ModelConfig:
    """Every architectural hyper-parameter; saved as ``config.json`` in a model folder."""

    category: str = "airplane"
    channels: int = 96  # hidden width of E and G
    # G's residual blocks at the latent resolution (configs written before it existed: 1).
    residual_blocks: int = 1
    latent_channels: int = 128  # M, channels of the latent y
    num_down: int = 3  # stride-2 stages: total stride 2**num_down
    kernel_size: int = 5
    levels: int = 8  # quality levels 1..levels
    density_filters: tuple[int, ...] = (3, 3, 3)
    init_scale: float = 1.0  # initial width of the factorized densities (latents are small)
    disc_channels: int = 64
    disc_scales: int = 2
    # "factorized" (one density per level and channel) or "hyperprior" (mean-scale).
    entropy_model: str = "factorized"
    hyper_channels: int = 128  # channels of z and of h_a / h_s
    hyper_down: int = 2  # stride-2 stages of h_a: z has stride * 2**hyper_down
    # Training-only: the scale-index layer's bias moves this many indexes per unit of its
    # variable (configs written before it existed trained with 1).
    index_bias_scale: float = 16.0
    lambdas: tuple[float, ...] = field(
        default_factory=lambda: tuple(float(v) for v in np.geomspace(0.002, 0.2, 8))
    )

    @property
    def stride(self) -> int:
        return 2**self.num_down

    @property
    def total_stride(self) -> int:
        """Stride of the deepest latent: patches must be multiples of it."""
        if self.entropy_model == "hyperprior":
            return 2 ** (self.num_down + self.hyper_down)
        return self.stride

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), sort_keys=True, indent=2)

    @classmethod
    def from_dict(cls, d: dict) -> ModelConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        kw = {k: v for k, v in d.items() if k in known}
        for k in ("density_filters", "lambdas"):
            if k in kw:
                kw[k] = tuple(kw[k])
        kw.setdefault("index_bias_scale", 1.0)
        kw.setdefault("residual_blocks", 1)  # configs written before it had one block
        cfg = cls(**kw)
        if cfg.entropy_model not in ("factorized", "hyperprior"):
            raise ValueError(f"unknown entropy model {cfg.entropy_model!r}")
        if cfg.residual_blocks < 1:
            raise ValueError(f"config has {cfg.residual_blocks} residual blocks, at least 1 needed")
        if len(cfg.lambdas) != cfg.levels:
            raise ValueError(f"config has {len(cfg.lambdas)} lambdas for {cfg.levels} levels")
        return cfg


class GDN(keras.layers.Layer):
    """Generalized divisive normalization (Balle et al. 2016); inverse=True gives IGDN.

    y_i = x_i / sqrt(beta_i + sum_j gamma_ij x_j^2). Parameters are kept positive by
    squaring, with the small pedestal of the original paper for stable gradients.
    """

    _pedestal = architecture.GDN_PEDESTAL

    def __init__(self, inverse: bool = False, **kwargs):
        # Variables read as float32 (see _LowPrecisionConv): beta's gradient is summed in float32.
        super().__init__(**{**kwargs, "autocast": False})
        self.inverse = inverse

    def build(self, input_shape):
        c = int(input_shape[-1])
        p = self._pedestal
        self.beta = self.add_weight(
            name="beta", shape=(c,), initializer=keras.initializers.Constant(np.sqrt(1.0 + p))
        )
        self.gamma = self.add_weight(
            name="gamma",
            shape=(c, c),
            initializer=keras.initializers.Constant(np.sqrt(0.1 * np.eye(c) + p)),
        )

    def call(self, x):
        p = self._pedestal
        x = tf.cast(x, self.compute_dtype)
        beta = tf.square(tf.maximum(self.beta, np.sqrt(architecture.GDN_BETA_MIN + p))) - p
        gamma = tf.square(tf.maximum(self.gamma, np.sqrt(p))) - p
        norm = add_bias(tf.tensordot(tf.square(x), tf.cast(gamma, x.dtype), axes=[[3], [0]]), beta)
        return x * tf.sqrt(norm) if self.inverse else x * tf.math.rsqrt(norm)

    def get_config(self):
        return {**super().get_config(), "inverse": self.inverse}


def add_bias(x, bias):
    """``x + bias`` along the last axis, ``bias`` float32.

    When ``x`` is bfloat16, the bias's gradient (a sum over every pixel of the batch) is
    summed in float32: TensorFlow sums bfloat16 in bfloat16, where a long sum stalls (the
    generator's last bias got about 60% of its float32 gradient, pointing elsewhere, on a
    batch of six 32 px patches).
    """
    if x.dtype == bias.dtype:
        return x + bias
    return _add_bias_summed_in_float32(x, bias)


@tf.custom_gradient
def _add_bias_summed_in_float32(x, bias):
    def grad(dy):
        axes = tf.range(tf.rank(dy) - 1)
        return dy, tf.reduce_sum(tf.cast(dy, tf.float32), axis=axes)

    return x + tf.cast(bias, x.dtype), grad


class _LowPrecisionConv:
    """A Keras convolution (same weights, names and initialisers) that adds its bias with
    :func:`add_bias` when it computes in bfloat16. Its variables are read as float32
    (``autocast=False``) and cast here, the input too."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **{**kwargs, "autocast": False})

    def call(self, x):
        dt = self.compute_dtype
        if dt == self.variable_dtype:
            return super().call(x)
        out = self._convolve(tf.cast(x, dt), tf.cast(self.kernel, dt))
        return add_bias(out, tf.convert_to_tensor(self.bias))


class Conv2D(_LowPrecisionConv, keras.layers.Conv2D):
    """keras.layers.Conv2D, bias gradient in float32 under bfloat16."""

    def _convolve(self, x, kernel):
        return self.convolution_op(x, kernel)


class Conv2DTranspose(_LowPrecisionConv, keras.layers.Conv2DTranspose):
    """keras.layers.Conv2DTranspose, bias gradient in float32 under bfloat16."""

    def _convolve(self, x, kernel):
        return keras.ops.conv_transpose(
            x,
            kernel,
            strides=list(self.strides),
            padding=self.padding,
            output_padding=self.output_padding,
            dilation_rate=self.dilation_rate,
            data_format=self.data_format,
        )


class OpNetwork(keras.layers.Layer):
    """A transform built from its op list (:mod:`gancomp.architecture`).

    The same list is exported with the model and run by the NumPy runtime, so the
    network is defined once. Sub-layers carry the ops' names, which makes the weight
    names ``<transform>/<name>/kernel`` and so on.
    """

    def __init__(self, ops: list, **kwargs):
        super().__init__(**kwargs)
        self.ops = [dict(op) for op in ops]
        self.sublayers = []  # tracked by Keras, in op order (the weights' order)
        self._layer_index: list[int | None] = []
        for op in self.ops:
            # Sub-layers compute in this network's precision (Keras does not pass it on).
            layer = _layer_for(op, self.dtype_policy)
            if layer is not None:
                self.sublayers.append(layer)
            self._layer_index.append(None if layer is None else len(self.sublayers) - 1)

    def call(self, x, realism=None):
        """``realism``: the per-example r (B,) of the realism branches; None skips them
        (r = 0, as the runtime does)."""
        for op, index in zip(self.ops, self._layer_index):
            kind = op["op"]
            if kind == "realism_residual":
                if realism is not None:
                    x = self.sublayers[index](x, realism)
            elif index is not None:
                x = self.sublayers[index](x)
            elif kind == "leaky_relu":
                x = tf.nn.leaky_relu(x, op["slope"])
            elif kind == "add_constant":
                x = x + op["value"]
            elif kind == "clip":
                x = tf.clip_by_value(x, -float(op["limit"]), float(op["limit"]))
            else:
                raise ValueError(f"op {kind!r} has no Keras layer")
        return x


class Residual(OpNetwork):
    """x + body(x): the ``residual`` op."""

    def call(self, x):
        return x + super().call(x)


class RealismResidual(OpNetwork):
    """x + r * body(concat(x, r)): the ``realism_residual`` op, r per example in [0, 1].

    The body's last convolution starts at zero, so a new branch is the identity at every
    r and training starts from the fidelity generator.
    """

    def __init__(self, ops: list, noise: int = 0, **kwargs):
        super().__init__(ops, **kwargs)
        self.noise = noise
        last = self.sublayers[-1]
        last.kernel_initializer = keras.initializers.Zeros()
        last.bias_initializer = keras.initializers.Zeros()

    def call(self, x, realism):
        r = tf.cast(tf.reshape(realism, [-1, 1, 1, 1]), x.dtype)
        planes = [x, tf.ones_like(x[..., :1]) * r]
        if self.noise:
            # Random here; the runtime's position noise has the same distribution
            # (uniform, mean 0, variance 1; gancomp.runtime.noise).
            shape = tf.concat([tf.shape(x)[:-1], [self.noise]], axis=0)
            half = float(np.sqrt(3.0))
            planes.append(tf.cast(tf.random.uniform(shape, -half, half), x.dtype))
        return x + r * super().call(tf.concat(planes, axis=-1))


def _layer_for(op: dict, dtype=None):
    kind = op["op"]
    if kind in ("conv2d", "conv2d_transpose"):
        layer = Conv2D if kind == "conv2d" else Conv2DTranspose
        return layer(
            op["filters"],
            op["kernel"],
            strides=op["stride"],
            padding="same",
            name=op["name"],
            dtype=dtype,
        )
    if kind == "gdn":
        return GDN(inverse=op["inverse"], name=op["name"], dtype=dtype)
    if kind == "residual":
        return Residual(op["body"], name=op["name"], dtype=dtype)
    if kind == "realism_residual":
        return RealismResidual(
            op["body"], noise=int(op.get("noise", 0)), name=op["name"], dtype=dtype
        )
    if kind in ("integer_conv2d", "integer_conv2d_transpose"):
        from gancomp.training.hyperprior import IntegerConv

        # Always float32: its values are integers up to 2**16 or so.
        return IntegerConv.from_op(op, dtype="float32")
    return None


class FactorizedDensity(keras.layers.Layer):
    """Per-(level, channel) univariate densities with a learned CDF (Balle et al. 2018).

    ``logits_cdf(v, levels)`` evaluates the logit of the CDF for values
    ``v`` of shape (B, H, W, M) using the densities of each sample's level.
    """

    def __init__(self, cfg: ModelConfig, channels: int | None = None, **kwargs):
        # float32 whatever the transforms use: the rate is computed here.
        super().__init__(**{**kwargs, "dtype": "float32"})
        self.levels = cfg.levels
        self.channels = channels or cfg.latent_channels
        self.filters = (1, *cfg.density_filters, 1)
        self.init_scale = cfg.init_scale
        self._make_weights()

    def _make_weights(self) -> None:
        # Created eagerly: the density is queried through methods, not __call__.
        n = self.levels * self.channels
        scale = self.init_scale ** (1 / (len(self.filters) - 1))
        self.matrices, self.biases, self.factors = [], [], []
        for i in range(len(self.filters) - 1):
            fin, fout = self.filters[i], self.filters[i + 1]
            init = np.log(np.expm1(1 / scale / fout))
            self.matrices.append(
                self.add_weight(
                    name=f"matrix{i}",
                    shape=(n, fout, fin),
                    initializer=keras.initializers.Constant(init),
                )
            )
            self.biases.append(
                self.add_weight(
                    name=f"bias{i}",
                    shape=(n, fout, 1),
                    initializer=keras.initializers.RandomUniform(-0.5, 0.5, seed=i),
                )
            )
            if i < len(self.filters) - 2:
                self.factors.append(
                    self.add_weight(name=f"factor{i}", shape=(n, fout, 1), initializer="zeros")
                )

    def logits_cdf_flat(self, v, index):
        """v: (K, 1, P) values; index: (K,) rows of the (level*channel) parameter table."""
        x = v
        for i in range(len(self.matrices)):
            mat = tf.nn.softplus(tf.gather(self.matrices[i], index))
            x = tf.linalg.matmul(mat, x) + tf.gather(self.biases[i], index)
            if i < len(self.factors):
                x += tf.tanh(tf.gather(self.factors[i], index)) * tf.tanh(x)
        return x

    def likelihood(self, v, levels):
        """P(v - 1/2 < Y < v + 1/2) per element. v: (B,H,W,M) float, levels: (B,) int 0-based."""
        b = tf.shape(v)[0]
        m = self.channels
        flat = tf.reshape(tf.transpose(v, [0, 3, 1, 2]), [b * m, 1, -1])
        index = tf.reshape(levels[:, None] * m + tf.range(m)[None, :], [-1])
        lower = self.logits_cdf_flat(flat - 0.5, index)
        upper = self.logits_cdf_flat(flat + 0.5, index)
        # Evaluate in the tail that keeps precision (CDF difference far out on either side).
        sign = tf.stop_gradient(-tf.sign(lower + upper))
        lik = tf.abs(tf.sigmoid(sign * upper) - tf.sigmoid(sign * lower))
        # Bounded below so log(0) can never turn the rate term into inf/NaN.
        lik = tf.maximum(lik, 1e-9)
        lik = tf.reshape(lik, [b, m, tf.shape(v)[1], tf.shape(v)[2]])
        return tf.transpose(lik, [0, 2, 3, 1])

    def pmf_table(self, lo: int, hi: int) -> np.ndarray:
        """Probability of each integer in [lo, hi] for every (level, channel): (L*M, hi-lo+1)."""
        n = self.levels * self.channels
        vals = tf.constant(np.arange(lo, hi + 1, dtype=np.float32))
        v = tf.tile(vals[None, None, :], [n, 1, 1])
        idx = tf.range(n)
        lower = self.logits_cdf_flat(v - 0.5, idx)
        upper = self.logits_cdf_flat(v + 0.5, idx)
        sign = -tf.sign(lower + upper)
        p = tf.abs(tf.sigmoid(sign * upper) - tf.sigmoid(sign * lower))
        return p[:, 0, :].numpy().astype(np.float64)


class Discriminator(keras.layers.Layer):
    """Latent-conditioned, multi-scale patch discriminator (training only).

    The dequantized latent is projected to a few channels and upsampled to the
    image size (nearest neighbour) and concatenated with the image, as in HiFiC;
    the same network then judges the image at ``disc_scales`` resolutions.
    """

    def __init__(self, cfg: ModelConfig, whole_image: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.scales = cfg.disc_scales
        self.stride = cfg.stride
        c = cfg.disc_channels
        dt = self.dtype_policy
        self.project = Conv2D(12, 1, name="latent_proj", dtype=dt)
        self.nets = []
        for s in range(cfg.disc_scales):
            self.nets.append(
                [
                    Conv2D(c, 4, strides=2, padding="same", name=f"s{s}_c0", dtype=dt),
                    Conv2D(2 * c, 4, strides=2, padding="same", name=f"s{s}_c1", dtype=dt),
                    Conv2D(2 * c, 3, padding="same", name=f"s{s}_c2", dtype=dt),
                    Conv2D(1, 3, padding="same", name=f"s{s}_out", dtype=dt),
                ]
            )
        # The realism phase's unconditional whole-image critic (whole_logit), or None.
        self.whole = None
        if whole_image:
            self.whole = [
                Conv2D(c // 4, 3, padding="same", name="w_c0", dtype=dt),
                Conv2D(c // 2, 3, strides=2, padding="same", name="w_c1", dtype=dt),
                Conv2D(c, 3, strides=2, padding="same", name="w_c2", dtype=dt),
            ]
            self.whole_out = keras.layers.Dense(1, name="w_out", dtype="float32")

    def call(self, image, latent, features=False):
        """Logits (B, patches of every scale); with ``features`` also the hidden
        activations of every scale (float32), for feature matching (the realism phase)."""
        cond = self.project(latent)
        logits, hidden = [], []
        x = image * 2.0 - 1.0
        for s, net in enumerate(self.nets):
            if s:
                x = tf.nn.avg_pool2d(x, 2, 2, "VALID")
            up = self.stride // (2**s)
            c = tf.repeat(tf.repeat(cond, up, axis=1), up, axis=2) if up > 1 else cond
            h = tf.concat([x, c[:, : tf.shape(x)[1], : tf.shape(x)[2]]], axis=-1)
            for i, layer in enumerate(net):
                h = layer(h)
                if i < len(net) - 1:
                    h = tf.nn.leaky_relu(h, 0.2)
                    hidden.append(tf.cast(h, tf.float32))
            logits.append(tf.reshape(h, [tf.shape(h)[0], -1]))
        # The losses are float32.
        out = tf.cast(tf.concat(logits, axis=1), tf.float32)
        return (out, hidden) if features else out

    def whole_logit(self, image):
        """The whole-image critic's logit (B, 1), 1 = original: full-resolution 3x3
        convolutions, then the global mean and maximum of the features. It sees no latent,
        as a receiver judging an image does not; the maximum finds a local artefact
        anywhere in the image, which the patch logits' mean dilutes."""
        with keras.name_scope(self.name):  # its variables under the discriminator's path
            return self._whole_logit(image)

    def _whole_logit(self, image):
        h = image * 2.0 - 1.0
        for layer in self.whole:
            h = tf.nn.leaky_relu(layer(h), 0.2)
        h = tf.cast(h, tf.float32)
        pooled = tf.concat([tf.reduce_mean(h, axis=[1, 2]), tf.reduce_max(h, axis=[1, 2])], -1)
        return self.whole_out(pooled)


class GANModel(keras.Model):
    """E, quantizer, entropy model, G and D of one category codec.

    ``call`` is the training-time forward pass and returns the reconstruction and
    the likelihoods of the (noisy) latents, CompressAI style. Bitstream
    coding lives in :mod:`gancomp.runtime.codec` (the NumPy port of the encoder and
    generator) and :mod:`gancomp.coding.entropy` (the frozen integer tables).
    """

    def __init__(
        self,
        cfg: ModelConfig,
        precision: str = "float32",
        realism_branches: int = 0,
        whole_image_critic: bool = False,
        realism_pixel_branch: bool = False,
        realism_noise: int = 0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if precision not in PRECISIONS:
            raise ValueError(f"unknown precision {precision!r} (known: {', '.join(PRECISIONS)})")
        self.cfg = cfg
        self.precision = precision
        arch_config = dataclasses.asdict(cfg)
        arch = architecture.describe(arch_config)
        self.architecture = arch
        # The transforms' policy: float32 variables, bfloat16 or float32 arithmetic.
        transform = keras.DTypePolicy(precision)
        self.encoder = OpNetwork(arch["analysis"], name="encoder", dtype=transform)
        # Realism branches (the realism phase) are not part of the model's architecture
        # description: they ship in a file of their own (gancomp.runtime.realism).
        self.realism_branches = realism_branches
        self.realism_pixel_branch = bool(realism_branches and realism_pixel_branch)
        self.realism_noise = int(realism_noise) if self.realism_pixel_branch else 0
        synthesis = (
            architecture.realism_synthesis(
                arch_config, realism_branches, self.realism_pixel_branch, self.realism_noise
            )
            if realism_branches
            else arch["synthesis"]
        )
        self.generator = OpNetwork(synthesis, name="generator", dtype=transform)
        self.hyperprior = cfg.entropy_model == "hyperprior"
        if self.hyperprior:
            self.h_a = OpNetwork(arch["hyper_analysis"], name="h_a", dtype=transform)
            self.h_s_mean = OpNetwork(
                arch["hyper_synthesis_mean"], name="h_s_mean", dtype=transform
            )
            self.h_s_scale = OpNetwork(
                arch["hyper_synthesis_scale"], name="h_s_scale", dtype="float32"
            )
            self.h_s_scale.sublayers[-1].bias_scale = cfg.index_bias_scale
            # The factorized density then models z, one density per level and z channel.
            self.density = FactorizedDensity(cfg, channels=cfg.hyper_channels, name="density")
        else:
            self.density = FactorizedDensity(cfg, name="density")
        self.discriminator = Discriminator(
            cfg, whole_image=whole_image_critic, name="discriminator", dtype=transform
        )
        m, n = cfg.latent_channels, cfg.levels
        # Gains start spread over a factor of 8 so levels begin at distinct rates.
        init = np.geomspace(0.5, 4.0, n).astype(np.float32)
        self.log_gain = self.add_weight(
            name="log_gain",
            shape=(n, m),
            initializer=keras.initializers.Constant(np.log(init)[:, None] * np.ones((1, m))),
        )
        self.log_inv_gain = self.add_weight(
            name="log_inv_gain",
            shape=(n, m),
            initializer=keras.initializers.Constant(-np.log(init)[:, None] * np.ones((1, m))),
        )
        if self.hyperprior:
            # Per-level gain on z (encoder side only): z = h_a(y) * gain, and h_s reads the
            # integer z_hat as it is (its scale path is exact integer arithmetic, so nothing
            # float may come before it). h_s sees the level through z_hat's scale. Starts at
            # gain 1: a model without it codes as before.
            self.log_z_gain = self.add_weight(
                name="log_z_gain", shape=(n, cfg.hyper_channels), initializer="zeros"
            )

        if realism_branches:
            # The realism control's scale per level (used clipped to [0, 1]): the branches
            # do not see the level, so this is how they can act on the low levels only.
            self.realism_level_scale = self.add_weight(
                name="realism_level_scale", shape=(n,), initializer="ones"
            )

    def build(self, input_shape=None):
        # Sub-layers build on first call; nothing shape-dependent lives here.
        self.built = True

    def transform_weights(self) -> list:
        """Trained at the transforms' learning rate: E, G, gains and the hyperprior's
        (:meth:`hyperprior_weights`)."""
        vs = self.encoder.trainable_weights + self.generator.trainable_weights
        vs += [self.log_gain, self.log_inv_gain]
        if self.hyperprior:
            vs += self.hyperprior_weights()
        return vs

    def hyperprior_weights(self) -> list:
        """h_a, h_s and the z gain: what ``--freeze-transforms`` trains (with the z density)."""
        return [
            w
            for layer in (self.h_a, self.h_s_mean, self.h_s_scale)
            for w in layer.trainable_weights
        ] + [self.log_z_gain]

    def z_gain_weights(self) -> list:
        """The z gain (a hyperprior's, else none): shipped in weights.npz, but optional there
        (folders exported before it existed code with gain 1)."""
        return [self.log_z_gain] if self.hyperprior else []

    def realism_layers(self) -> list:
        """The realism branches of the generator (empty without)."""
        return [layer for layer in self.generator.sublayers if isinstance(layer, RealismResidual)]

    def build_all(self) -> None:
        s = self.cfg.total_stride
        x = tf.zeros([1, s * 2, s * 2, 3])
        lv = tf.zeros([1], tf.int32)
        realism = tf.zeros([1]) if self.realism_branches else None
        out = self(x, lv, training=False, realism=realism)
        self.discriminator(out["x_hat"], out["latent"])
        if self.discriminator.whole is not None:  # its variables must exist before training
            self.discriminator.whole_logit(out["x_hat"])

    def gains(self, levels):
        g = tf.exp(tf.gather(self.log_gain, levels))[:, None, None, :]
        ig = tf.exp(tf.gather(self.log_inv_gain, levels))[:, None, None, :]
        return g, ig

    def scaled_latent(self, x, levels):
        """The analysis transform's latent times the level's gain: what is rounded and coded."""
        g, _ = self.gains(levels)
        return _float32(self.encoder(x)) * g

    def hyper_latent(self, y, levels):
        """h_a of the scaled latent y times the level's z gain: what is rounded and coded as z."""
        g = tf.exp(tf.gather(self.log_z_gain, levels))[:, None, None, :]
        return _float32(self.h_a(y)) * g

    def call(self, x, levels, training=False, realism=None):
        """Reconstruction and the likelihood of every coded element, per latent ("y", "z").

        Training uses noise for the rate terms and straight-through rounding for what the
        generator and h_s see, so they get the values they get at test time. ``realism``
        (B,) drives the generator's realism branches; None skips them (r = 0).
        """
        out = self.coded_latent(x, levels, training)
        out["x_hat"] = _float32(self.generator(out["latent"], realism=realism))
        return out

    def coded_latent(self, x, levels, training=False):
        """What the generator gets (``latent``: the dequantized y times the inverse gain),
        ``y_hat`` and the likelihoods: :meth:`call` without the generator."""
        y = self.scaled_latent(x, levels)
        if not self.hyperprior:
            noisy, y_hat = _quantize(y, training)
            likelihoods = {"y": self.density.likelihood(noisy, levels)}
        else:
            from gancomp.training.hyperprior import coded_likelihood

            z_noisy, z_hat = _quantize(self.hyper_latent(y, levels), training)
            mean, index = _float32(self.h_s_mean(z_hat)), self.h_s_scale(z_hat)
            h, w = tf.shape(y)[1], tf.shape(y)[2]
            mean, index = mean[:, :h, :w], index[:, :h, :w]
            residual_noisy, residual_hat = _quantize(y - mean, training)
            y_hat = mean + residual_hat
            likelihoods = {
                "y": coded_likelihood(residual_noisy, index),
                "z": self.density.likelihood(z_noisy, levels),
            }
        _, ig = self.gains(levels)
        latent = y_hat * ig
        return {"likelihoods": likelihoods, "latent": latent, "y_hat": y_hat}


def _float32(t):
    """A transform's output for the float32 parts (rate, losses): a no-op in float32."""
    return tf.cast(t, tf.float32)


def _quantize(v, training):
    """(noisy value for the rate, rounded value with a straight-through gradient)."""
    if not training:
        r = tf.round(v)
        return r, r
    noisy = v + tf.random.uniform(tf.shape(v), -0.5, 0.5)
    return noisy, v + tf.stop_gradient(tf.round(v) - v)
