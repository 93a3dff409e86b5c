"""The network, defined once: every transform of a model as an ordered list of ops.

The training model (:mod:`gancomp.training.model`, Keras) builds its layers from
these lists, and export writes them into the model folder's ``config.json``
(``"architecture"``), where the NumPy runtime (:mod:`gancomp.runtime.network`)
interprets them with its own kernels. So the topology, the layer names (and
with them the weight names), the activation slopes and constants exist in this
file only. A runtime that meets an op kind or architecture version it does not
know refuses the model with a one-line error instead of computing something else.

Ops (``name`` is the layer's weight prefix inside its transform)::

    conv2d            name, filters, kernel, stride       "same" padding, bias
    conv2d_transpose  name, filters, kernel, stride       Keras "same" padding, bias
    gdn               name, inverse                       GDN / IGDN (Balle et al. 2016)
    leaky_relu        slope
    residual          name, body                          x + body(x)
    realism_residual  name, body                          x + r * body(concat(x, r))
                      the realism control (see below); r = 0 skips the body
    add_constant      value
    clip              limit                               clip to [-limit, limit]
    integer_conv2d, integer_conv2d_transpose
                      name, filters, kernel, input_bits, output_bits, out_max
                      exact integer layer of the scale-index path
                      (see gancomp.coding.hyperprior_spec)

Architecture version 1 is the transforms of gancomp 0.1 (GDN encoder, generator with
one residual block) plus, for ``entropy_model == "hyperprior"``, h_a and both h_s
branches. Model folders exported before descriptions existed carry none; their
config implies version 1 and :func:`describe` rebuilds the same lists. A deeper generator
(``residual_blocks`` > 1: ``res0``, ``res1``, ... in a row) is version 1 too: its op list
only holds more ``residual`` ops, which every runtime that reads op lists already runs.
A config without the field means one block.

The realism control (issue 14) is an add-on of a trained model, not a new version:
:func:`realism_synthesis` is the generator with ``realism_residual`` ops inserted, each
fed the decode-time realism weight r in [0, 1] as one more input channel (a constant
plane) and scaled by r, so r = 0 leaves the fidelity generator exactly as it was. Its
description and weights live in their own files of the model folder
(:mod:`gancomp.runtime.realism`), outside the fingerprint, so files written before the
branches were trained keep decoding. A runtime that does not know the op never reads
those files (and would refuse the op through KNOWN_OPS if it did): no version bump.

The z gain of a hyperprior is a weight, not an op, and needs no version bump either:
``gancodec/log_z_gain`` (levels, z channels) scales h_a's output before rounding,
z = h_a(y) * exp(log_z_gain[level]), on the encoder side only (h_s reads the integer
z_hat as it is, so the decoder does not change). A hyperprior folder without it (every
one exported before it existed) codes with gain 1, the same bytes as before; a runtime
that predates it refuses a folder holding it with its one-line unknown-weight error,
since it would code z without the gain.
"""

from __future__ import annotations

from typing import Any

from gancomp.coding import hyperprior_spec as spec

ARCHITECTURE_VERSION = 1
KNOWN_OPS = frozenset(
    {
        "conv2d",
        "conv2d_transpose",
        "gdn",
        "leaky_relu",
        "residual",
        "realism_residual",
        "add_constant",
        "clip",
        "integer_conv2d",
        "integer_conv2d_transpose",
    }
)
#: GDN's reparameterisation constants (Balle et al. 2016): beta >= BETA_MIN, a pedestal
#: keeps the squared parameters' gradients alive.
GDN_PEDESTAL = 2.0**-36
GDN_BETA_MIN = 1e-6
LEAKY_SLOPE = 0.2

Op = dict[str, Any]


def _conv(name: str, filters: int, kernel: int, stride: int = 1) -> Op:
    return {"op": "conv2d", "name": name, "filters": filters, "kernel": kernel, "stride": stride}


def _deconv(name: str, filters: int, kernel: int, stride: int = 2) -> Op:
    return {
        "op": "conv2d_transpose",
        "name": name,
        "filters": filters,
        "kernel": kernel,
        "stride": stride,
    }


def _leaky() -> Op:
    return {"op": "leaky_relu", "slope": LEAKY_SLOPE}


def analysis(c: dict) -> list[Op]:
    """E: image in [0, 1] -> latent y (stride 2**num_down)."""
    ops: list[Op] = []
    for i in range(c["num_down"]):
        last = i == c["num_down"] - 1
        width = c["latent_channels"] if last else c["channels"]
        ops.append(_conv(f"conv{i}", width, c["kernel_size"], 2))
        if not last:
            ops.append({"op": "gdn", "name": f"gdn{i}", "inverse": False})
    return ops


def synthesis(c: dict) -> list[Op]:
    """G: dequantized latent -> image in about [0, 1]. ``residual_blocks`` (default 1, as
    configs written before the field mean) blocks ``res0``, ``res1``, ... at the latent
    resolution, in a row after ``head``."""
    ch = c["channels"]
    blocks = int(c.get("residual_blocks", 1))
    if blocks < 1:
        raise ValueError(f"residual_blocks must be >= 1, got {blocks}")
    ops: list[Op] = [_conv("head", ch, 3)]
    for b in range(blocks):
        ops.append(
            {
                "op": "residual",
                "name": f"res{b}",
                "body": [_conv("c1", ch, 3), _leaky(), _conv("c2", ch, 3)],
            }
        )
    for i in range(c["num_down"]):
        last = i == c["num_down"] - 1
        ops.append({"op": "gdn", "name": f"igdn{i}", "inverse": True})
        ops.append(_deconv(f"deconv{i}", 3 if last else ch, c["kernel_size"]))
    # Offset so an untrained generator starts at mid-grey.
    ops.append({"op": "add_constant", "value": 0.5})
    return ops


def realism_branch_count_max(c: dict) -> int:
    """Places for realism branches: after the last residual block and after each
    upsampling stage but the last (which gives RGB)."""
    return int(c["num_down"])


#: Width of the pixel-space realism branch (its input is only RGB plus r).
PIXEL_BRANCH_WIDTH = 32


def realism_synthesis(
    c: dict, branches: int, pixel_branch: bool = False, noise: int = 0
) -> list[Op]:
    """G with ``branches`` realism branches: the first after the last residual block (latent
    resolution), the next ones after upsampling stages 0, 1, ... (finer textures); with
    ``pixel_branch``, one more at full resolution after the RGB output.

    Each branch is x + r * body(concat(x, r)), the body two 3x3 convolutions (half
    width, then back to the stage's width); training zero-initialises the last one so a
    new branch starts as the identity at every r. The pixel branch (``realism_pixel``)
    has three 3x3 convolutions (PIXEL_BRANCH_WIDTH, PIXEL_BRANCH_WIDTH, 3): the feature
    branches act only through the frozen last upsampling layer, which was trained to
    give the blurred average, so detail and artefacts at single-pixel scale are out of
    their reach; the pixel branch works on the image itself. With ``noise`` > 0 the pixel
    branch also reads that many planes of noise (``"noise"`` in its op;
    :mod:`gancomp.runtime.noise`), so its texture can vary where the features do not.
    """
    if not 1 <= branches <= realism_branch_count_max(c):
        raise ValueError(
            f"realism branches must be 1..{realism_branch_count_max(c)} for this model, "
            f"got {branches}"
        )
    # As describe() reads configs written before the fields.
    c = {"kernel_size": 5, "residual_blocks": 1, **c}
    ch = c["channels"]
    width = max(ch // 2, 1)

    def branch(k: int) -> Op:
        body = [_conv("c1", width, 3), _leaky(), _conv("c2", ch, 3)]
        return {"op": "realism_residual", "name": f"realism{k}", "body": body}

    base = synthesis(c)
    last_residual = max(i for i, op in enumerate(base) if op["op"] == "residual")
    ops: list[Op] = []
    placed = 0
    for i, op in enumerate(base):
        ops.append(op)
        at_stage = i == last_residual or (op["op"] == "conv2d_transpose" and op["filters"] == ch)
        if at_stage and placed < branches:
            ops.append(branch(placed))
            placed += 1
    if noise and not pixel_branch:
        raise ValueError("realism noise needs the pixel branch")
    if pixel_branch:
        w = PIXEL_BRANCH_WIDTH
        body = [_conv("c1", w, 3), _leaky(), _conv("c2", w, 3), _leaky(), _conv("c3", 3, 3)]
        pixel: Op = {"op": "realism_residual", "name": "realism_pixel", "body": body}
        if noise:
            pixel["noise"] = int(noise)
        ops.append(pixel)
    return ops


def without_realism(ops: list[Op]) -> list[Op]:
    """The op list with its realism branches removed: the fidelity generator."""
    return [op for op in ops if op.get("op") != "realism_residual"]


def hyper_analysis(c: dict) -> list[Op]:
    """h_a: scaled latent y -> hyper-latent z (stride 2**hyper_down more)."""
    hc = c["hyper_channels"]
    ops: list[Op] = [_conv("conv0", hc, 3)]
    for i in range(c["hyper_down"]):
        ops += [_leaky(), _conv(f"conv{i + 1}", hc, 5, 2)]
    return ops


def hyper_synthesis_mean(c: dict) -> list[Op]:
    """h_s, mean branch: decoded z -> mean of every element of y (float: pixels only)."""
    ops: list[Op] = []
    for i in range(c["hyper_down"]):
        ops += [_deconv(f"deconv{i}", c["hyper_channels"], 5), _leaky()]
    ops.append(_conv("out", c["latent_channels"], 3))
    return ops


def hyper_synthesis_scale(c: dict) -> list[Op]:
    """h_s, scale branch: decoded z -> scale-table index of every element of y (exact)."""
    ops: list[Op] = [{"op": "clip", "limit": spec.Z_LIMIT}]
    bits = 0  # z enters as plain integers
    for i in range(c["hyper_down"]):
        ops.append(
            {
                "op": "integer_conv2d_transpose",
                "name": f"ideconv{i}",
                "filters": c["hyper_channels"],
                "kernel": 5,
                "input_bits": bits,
                "output_bits": spec.ACTIVATION_BITS,
                "out_max": spec.ACTIVATION_MAX,
            }
        )
        bits = spec.ACTIVATION_BITS
    ops.append(
        {
            "op": "integer_conv2d",
            "name": "iout",
            "filters": c["latent_channels"],
            "kernel": 3,
            "input_bits": bits,
            "output_bits": 0,
            "out_max": spec.SCALE_COUNT - 1,
        }
    )
    return ops


#: Transform name -> weight prefix in a model folder.
PREFIXES = {
    "analysis": "gancodec/encoder",
    "synthesis": "gancodec/generator",
    "hyper_analysis": "gancodec/h_a",
    "hyper_synthesis_mean": "gancodec/h_s_mean",
    "hyper_synthesis_scale": "gancodec/h_s_scale",
}
#: A hyperprior's per-level gain on z, encoder side only (see the module docstring):
#: optional, and a factorized model has none (the codec refuses it there).
Z_GAIN_WEIGHT = "gancodec/log_z_gain"
#: Per-level gain vectors (Cui et al. 2021) applied around the transforms.
GAIN_WEIGHTS = ("gancodec/log_gain", "gancodec/log_inv_gain", Z_GAIN_WEIGHT)


def describe(config: dict) -> dict:
    """The architecture description of a model config: version and op list per transform."""
    c = {"kernel_size": 5, "residual_blocks": 1, "entropy_model": "factorized", **config}
    arch: dict[str, Any] = {
        "version": ARCHITECTURE_VERSION,
        "analysis": analysis(c),
        "synthesis": synthesis(c),
    }
    if c["entropy_model"] == "hyperprior":
        arch["hyper_analysis"] = hyper_analysis(c)
        arch["hyper_synthesis_mean"] = hyper_synthesis_mean(c)
        arch["hyper_synthesis_scale"] = hyper_synthesis_scale(c)
    return arch


def ops_of(ops: list[Op]):
    """Every op, residual bodies included (for checks)."""
    for op in ops:
        yield op
        if op.get("op") in ("residual", "realism_residual"):
            yield from ops_of(op.get("body", []))
