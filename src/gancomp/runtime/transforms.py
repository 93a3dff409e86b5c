"""NumPy runtime for the transforms of an exported model.

The networks are defined once (:mod:`gancomp.architecture`) and trained in Keras
(:mod:`gancomp.training.model`); a model folder stores their op lists in
``config.json`` and their weights in ``weights.npz``. Compressing or decompressing
only needs forward passes, and importing TensorFlow costs about four seconds of
CPU, more than the whole codec takes on a 768x512 photo. So :class:`Transforms`
interprets the op lists with small NumPy kernels: convolutions and transposed
convolutions with TensorFlow's ``"same"`` padding, GDN/IGDN, leaky ReLU and
residual blocks. ``tests/test_inference.py`` and ``tests/test_hyperprior.py``
check them against the Keras layers.

Determinism: every sum is done in a fixed order (tap by tap, each tap one
matrix product), and the products run with BLAS single-threaded
(:func:`gancomp.runtime.blas.single_threaded_blas`): OpenBLAS splits a product
differently with two threads than with one. Parallelism comes from running
independent chunks and tiles side by side instead (:mod:`gancomp.runtime.tiling`).
The hyperprior's scale-index path is exact integer arithmetic
(:mod:`gancomp.runtime.index_path`).
"""

from __future__ import annotations

import numpy as np

from gancomp import architecture
from gancomp.runtime.noise import MAX_NOISE_PLANES, position_noise


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
    if cout * k * k > 256:
        return _conv2d_transpose_by_phase(x, kernel, bias, stride, (pt, pl))
    # Few output channels (the RGB layer): one product for all taps, scattered
    # channel-first so the strided adds run over whole rows.
    z = x.reshape(-1, cin) @ kernel.transpose(3, 0, 1, 2).reshape(cin, k * k * cout)
    z = np.ascontiguousarray(z.reshape(n, h, w, k, k, cout).transpose(3, 4, 0, 5, 1, 2))
    full = np.zeros((n, cout, (h - 1) * stride + k, (w - 1) * stride + k), x.dtype)
    for ty in range(k):
        for tx in range(k):
            full[:, :, ty : ty + stride * h : stride, tx : tx + stride * w : stride] += z[ty, tx]
    out = np.ascontiguousarray(full.transpose(0, 2, 3, 1)[:, pt : pt + ho, pl : pl + wo])
    out += bias
    return out


def _conv2d_transpose_by_phase(
    x: np.ndarray, kernel: np.ndarray, bias: np.ndarray, stride: int, pad: tuple[int, int]
) -> np.ndarray:
    """The wide layers' transposed convolution, one output phase at a time.

    Output pixel o = stride * q + p reads input q + (p + pad - t) / stride through each tap t
    with p + pad - t divisible by stride: per phase p, an ordinary stride-1 correlation
    whose sums run over whole contiguous blocks instead of strided slices of the output.
    Each output pixel still adds the same products in the same tap order, starting from
    zero, so the result is the scatter's bit for bit wherever BLAS rounds a row's products
    alike at any row position (``tests/test_inference.py``; docs/results/cross_kernel_*.md
    give what other kernels change in decoded pixels).
    """
    n, h, w, cin = x.shape
    k, _, cout, _ = kernel.shape

    def taps(phase: int, before: int) -> list[tuple[int, int]]:
        return [
            (t, (phase + before - t) // stride)
            for t in range(k)
            if (phase + before - t) % stride == 0
        ]

    margin = (k - 1) // stride + 1
    xp = np.pad(x, [(0, 0), (margin, margin), (margin, margin), (0, 0)])
    out = np.empty((n, h, stride, w, stride, cout), x.dtype)
    for py in range(stride):
        for px in range(stride):
            acc = np.zeros((n * h * w, cout), x.dtype)
            for ty, dy in taps(py, pad[0]):
                for tx, dx in taps(px, pad[1]):
                    window = xp[:, margin + dy : margin + dy + h, margin + dx : margin + dx + w]
                    acc += window.reshape(-1, cin) @ kernel[ty, tx].T
            out[:, :, py, :, px] = acc.reshape(n, h, w, cout)
    out = out.reshape(n, h * stride, w * stride, cout)
    out += bias
    return out


def gdn(x: np.ndarray, beta: np.ndarray, gamma: np.ndarray, inverse: bool) -> np.ndarray:
    """GDN / IGDN with the effective (already reparameterised) beta and gamma."""
    c = x.shape[-1]
    norm = (np.square(x).reshape(-1, c) @ gamma).reshape(x.shape)
    norm += beta
    return x * np.sqrt(norm) if inverse else x / np.sqrt(norm)


class ModelError(ValueError):
    """A model folder whose architecture or weights the runtime cannot run as described."""


def _effective_gdn(beta: np.ndarray, gamma: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """GDN's reparameterisation (as the training layer applies it), done once at load."""
    p = np.float32(architecture.GDN_PEDESTAL)
    beta = np.square(np.maximum(beta, np.sqrt(np.float32(architecture.GDN_BETA_MIN) + p))) - p
    gamma = np.square(np.maximum(gamma, np.sqrt(p))) - p
    return beta.astype(np.float32), gamma.astype(np.float32)


class Network:
    """One float transform, interpreted from its op list on exported weights (float32).

    ``weights`` maps names without the transform prefix (``conv0/kernel``) to arrays;
    every name an op needs must be there with the shape the op implies.
    """

    def __init__(self, ops: list, weights: dict[str, np.ndarray], in_channels: int, label: str):
        self.label = label
        self.steps: list[tuple[str, dict, tuple]] = []
        self.used: set[str] = set()
        self._noisy_branches = 0
        self.out_channels = self._compile(ops, weights, in_channels, "", self.steps)

    def _take(self, weights: dict, name: str, shape: tuple) -> np.ndarray:
        if name not in weights:
            raise ModelError(f"{self.label}: missing weight {name}")
        a = np.asarray(weights[name])
        if a.shape != shape:
            raise ModelError(f"{self.label}: weight {name} has shape {a.shape}, expected {shape}")
        self.used.add(name)
        return np.ascontiguousarray(a, np.float32)

    def _compile(self, ops: list, weights: dict, c: int, prefix: str, steps: list) -> int:
        for op in ops:
            kind = op.get("op")
            name = prefix + str(op.get("name", ""))
            if kind in ("conv2d", "conv2d_transpose"):
                k, f = int(op["kernel"]), int(op["filters"])
                shape = (k, k, c, f) if kind == "conv2d" else (k, k, f, c)
                kernel = self._take(weights, f"{name}/kernel", shape)
                bias = self._take(weights, f"{name}/bias", (f,))
                steps.append((kind, op, (kernel, bias, int(op["stride"]))))
                c = f
            elif kind == "gdn":
                beta = self._take(weights, f"{name}/beta", (c,))
                gamma = self._take(weights, f"{name}/gamma", (c, c))
                steps.append((kind, op, (*_effective_gdn(beta, gamma), bool(op["inverse"]))))
            elif kind == "leaky_relu":
                steps.append((kind, op, (np.float32(op["slope"]),)))
            elif kind == "add_constant":
                steps.append((kind, op, (np.float32(op["value"]),)))
            elif kind in ("residual", "realism_residual"):
                body: list = []
                noise = op.get("noise", 0) if kind == "realism_residual" else 0
                if type(noise) is not int or not 0 <= noise <= MAX_NOISE_PLANES:
                    raise ModelError(f"{self.label}: realism branch {name} has noise {noise!r}")
                # A realism branch sees the realism weight r as one more channel, and its
                # noise planes (gancomp.runtime.noise) after it.
                body_in = c + 1 + noise if kind == "realism_residual" else c
                if self._compile(op["body"], weights, body_in, name + "/", body) != c:
                    raise ModelError(f"{self.label}: residual {name} changes the channel count")
                # Each noisy branch draws from a field of its own.
                seed = self._noisy_branches
                self._noisy_branches += noise > 0
                steps.append((kind, op, (body, noise, seed)))
            else:
                raise ModelError(f"{self.label}: unknown op {kind!r} (a newer gancomp wrote it?)")
        return c

    def __call__(
        self, x: np.ndarray, realism: float = 0.0, origin: tuple[int, int] = (0, 0)
    ) -> np.ndarray:
        """The transform of ``x``; ``realism`` is the r of its realism branches, if any;
        ``origin`` is where ``x`` (a tile) starts in the whole input, in input pixels: the
        position of the branches' noise."""
        x = np.ascontiguousarray(x, np.float32)
        place = (origin, x.shape[1:3])
        return _run(self.steps, x, np.float32(realism), place)


def _branch_input(x: np.ndarray, realism: np.float32, noise: int, seed: int, place) -> np.ndarray:
    """concat(x, r plane, noise planes) for a realism branch."""
    planes = [x, np.full((*x.shape[:-1], 1), realism, np.float32)]
    if noise:
        (oy, ox), (in_h, in_w) = place
        h, w = x.shape[1:3]
        fy, fx = h // in_h, w // in_w  # this layer's pixels per input pixel
        field = position_noise(h, w, noise, (oy * fy, ox * fx), seed)
        planes.append(np.broadcast_to(field, (x.shape[0], h, w, noise)))
    return np.concatenate(planes, axis=-1)


def _run(steps: list, x: np.ndarray, realism: np.float32, place) -> np.ndarray:
    for kind, _, a in steps:
        if kind == "conv2d":
            x = conv2d(x, a[0], a[1], a[2])
        elif kind == "conv2d_transpose":
            x = conv2d_transpose(x, a[0], a[1], a[2])
        elif kind == "gdn":
            x = gdn(x, a[0], a[1], a[2])
        elif kind == "leaky_relu":
            x = np.maximum(x, a[0] * x)
        elif kind == "add_constant":
            x = x + a[0]
        elif kind == "residual":
            x = x + _run(a[0], x, realism, place)
        elif kind == "realism_residual" and realism != 0:
            # At r = 0 the branch is skipped, not computed and scaled by 0: the output is
            # then bit for bit the generator's without branches.
            x = x + realism * _run(
                a[0], _branch_input(x, realism, a[1], a[2], place), realism, place
            )
    return x


def architecture_of(config: dict) -> dict:
    """The model's architecture description; models exported without one get version 1's."""
    arch = config.get("architecture")
    if arch is None:
        return architecture.describe(config)
    if arch.get("version") != architecture.ARCHITECTURE_VERSION:
        raise ModelError(
            f"architecture version {arch.get('version')} is not supported by this gancomp "
            f"(runs version {architecture.ARCHITECTURE_VERSION}); upgrade gancomp"
        )
    return arch


def _strip(weights: dict[str, np.ndarray], prefix: str) -> dict[str, np.ndarray]:
    return {k[len(prefix) + 1 :]: v for k, v in weights.items() if k.startswith(prefix + "/")}


class Transforms:
    """Every transform of one model folder (E, G, and the hyperprior's), from its description,
    and the per-level gains around them (``gain``, ``inv_gain``, the hyperprior's ``z_gain``).

    Unknown or missing weights, wrong shapes, unknown ops or architecture versions
    raise :class:`ModelError`: a model is never run other than as described.
    """

    def __init__(self, weights: dict[str, np.ndarray], config: dict):
        arch = architecture_of(config)
        self.latent_channels = int(config["latent_channels"])
        self.hyperprior = config.get("entropy_model", "factorized") == "hyperprior"
        used = set(architecture.GAIN_WEIGHTS)
        prefixes = architecture.PREFIXES

        def build(transform: str, in_channels: int, expect_out: int | None) -> Network:
            if transform not in arch:
                raise ModelError(f"the architecture has no {transform} transform")
            prefix = prefixes[transform]
            net = Network(arch[transform], _strip(weights, prefix), in_channels, transform)
            used.update(f"{prefix}/{n}" for n in net.used)
            if expect_out is not None and net.out_channels != expect_out:
                raise ModelError(
                    f"{transform} gives {net.out_channels} channels, expected {expect_out}"
                )
            return net

        m = self.latent_channels
        self.analysis = build("analysis", 3, m)
        self.synthesis = build("synthesis", m, 3)
        if self.hyperprior:
            from gancomp.runtime.index_path import ScaleIndexNetwork

            self.hyper_analysis = build("hyper_analysis", m, None)
            z_channels = self.hyper_analysis.out_channels
            self.hyper_mean = build("hyper_synthesis_mean", z_channels, m)
            prefix = prefixes["hyper_synthesis_scale"]
            self.scale_index = ScaleIndexNetwork.from_ops(
                arch["hyper_synthesis_scale"], _strip(weights, prefix), z_channels, m
            )
            used.update(f"{prefix}/{n}" for n in self.scale_index.used)
            self.hyper_down = sum(1 for op in arch["hyper_analysis"] if op.get("stride", 1) == 2)
        levels = int(config["levels"])
        #: Per-level gains (levels, latent channels) on E's output and on G's input.
        self.gain = self._level_gain("gancodec/log_gain", weights, (levels, m))
        self.inv_gain = self._level_gain("gancodec/log_inv_gain", weights, (levels, m))
        #: The hyperprior's per-level gain on h_a's output (levels, z channels), encoder side
        #: only; None (gain 1) when the folder has none, as every folder exported before it.
        self.z_gain: np.ndarray | None = None
        if architecture.Z_GAIN_WEIGHT in weights:
            self.z_gain = self._z_gain(weights, levels)
        unknown = sorted(set(weights) - used)
        if unknown:
            raise ModelError(f"unknown weight {unknown[0]} (not used by the architecture)")

    def _z_gain(self, weights: dict[str, np.ndarray], levels: int) -> np.ndarray:
        name = architecture.Z_GAIN_WEIGHT
        if not self.hyperprior:
            raise ModelError(f"unknown weight {name} (a factorized model has no z)")
        return self._level_gain(name, weights, (levels, self.hyper_analysis.out_channels))

    @staticmethod
    def _level_gain(name: str, weights: dict[str, np.ndarray], expected: tuple) -> np.ndarray:
        """exp of a stored log-gain, checked against its (levels, channels) shape."""
        if name not in weights:
            raise ModelError(f"missing weight {name}")
        log_gain = np.asarray(weights[name], np.float32)
        if log_gain.shape != expected:
            raise ModelError(f"gain {name} has shape {log_gain.shape}, expected {expected}")
        return np.exp(log_gain).astype(np.float32)
