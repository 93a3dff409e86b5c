"""The decode-time realism control: optional realism branches of a model's generator.

A model folder may carry, beside its three fingerprinted files, a realism add-on::

    realism.json   {"format": 1, "base_fingerprint": ..., "branches": N,
                    "synthesis": the generator's op list with its realism_residual ops,
                    "level_scale": [s_1, ..., s_L] (optional, each in [0, 1]),
                    "pixel_branch": true (optional: a branch after the RGB output)}
                    (the pixel branch's op may read noise planes: "noise": k)
    realism.npz    the branches' weights (gancodec/generator/realism<k>/..., realism_pixel/...)

Decoding level q with realism r in [0, 1] runs that generator (see
:func:`gancomp.architecture.realism_synthesis`) at r * s_q (s_q = 1 when ``level_scale``
is absent): the branches do not see the level, so the per-level scale is how one set of
branches gives the low levels detail without spoiling the high ones. An effective r of 0
runs the fidelity generator of ``weights.npz`` unchanged and never reads the add-on. The add-on is trained on a frozen
model (``gancomp train --init-from MODEL --realism-phase``): encoder, entropy model,
gains and the fidelity generator stay as they were, so the bitstream, the rates and the
fingerprint do not change, and every ``.gcz`` file the model ever wrote decodes at any r.
``base_fingerprint`` ties the add-on to the model it was trained on: a folder whose
model was replaced refuses realism instead of running branches trained for another one.
"""

from __future__ import annotations

import io
import json
import math
import zipfile
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from gancomp import architecture
from gancomp.errors import GancompError, InputError

if TYPE_CHECKING:
    from gancomp.runtime.models import ModelFolder
    from gancomp.runtime.transforms import Network

REALISM_JSON = "realism.json"
REALISM_WEIGHTS = "realism.npz"
REALISM_FILES = (REALISM_JSON, REALISM_WEIGHTS)
REALISM_FORMAT = 1
GENERATOR_PREFIX = architecture.PREFIXES["synthesis"]


def check_realism(value: object) -> float:
    """``value`` as a realism weight: a finite number in [0, 1], else :class:`InputError`."""
    if isinstance(value, bool):
        raise InputError(f"realism must be a number in [0, 1], got {value!r}")
    try:
        r = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise InputError(f"realism must be a number in [0, 1], got {value!r}") from None
    if not (math.isfinite(r) and 0.0 <= r <= 1.0):
        raise InputError(f"realism must be in [0, 1], got {value!r}")
    return r


def has_realism(folder: ModelFolder) -> bool:
    """Whether the model folder carries realism branches (the description file at least)."""
    return (folder.path / REALISM_JSON).is_file()


def no_realism_error(folder: ModelFolder) -> GancompError:
    return GancompError(
        f"model {folder.category!r} ({folder.path}) has no realism control: decode with "
        "realism 0, or train one with 'gancomp train --init-from MODEL --realism-phase'"
    )


def realism_files(
    config: dict,
    base_fingerprint: str,
    branches: int,
    weights: dict[str, np.ndarray],
    level_scale: Sequence[float] | None = None,
    pixel_branch: bool = False,
    noise: int = 0,
) -> dict[str, bytes]:
    """The add-on's two files for a model (its config.json as a dict), branch weights
    (full names, ``gancodec/generator/realism0/c1/kernel`` ...), optionally the per-level
    scale of r (one value in [0, 1] per level), and whether the generator has the
    pixel-space branch and how many noise planes it reads
    (:func:`gancomp.architecture.realism_synthesis`)."""
    from gancomp.runtime.models import weights_to_bytes

    description = {
        "format": REALISM_FORMAT,
        "base_fingerprint": base_fingerprint,
        "branches": int(branches),
        "synthesis": architecture.realism_synthesis(config, branches, pixel_branch, noise),
    }
    if pixel_branch:  # informative: the runtime reads the op list
        description["pixel_branch"] = True
    if level_scale is not None:
        description["level_scale"] = _checked_level_scale(level_scale, int(config["levels"]))
    bad = [k for k in weights if not k.startswith(f"{GENERATOR_PREFIX}/realism")]
    if bad:
        raise ValueError(f"not a realism branch weight: {bad[0]}")
    text = json.dumps(description, sort_keys=True, indent=2) + "\n"
    return {REALISM_JSON: text.encode(), REALISM_WEIGHTS: weights_to_bytes(weights)}


def _checked_level_scale(values: object, levels: int) -> list[float]:
    """``values`` as the per-level scale of r: ``levels`` numbers in [0, 1]."""
    ok = isinstance(values, (list, tuple)) and len(values) == levels
    out: list[float] = []
    for v in values if ok else ():  # type: ignore[union-attr]
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            ok = False
            break
        out.append(float(v))
    if not ok or not all(math.isfinite(v) and 0.0 <= v <= 1.0 for v in out):
        raise ValueError(f"level_scale must be {levels} numbers in [0, 1]")
    return out


def load_realism_synthesis(
    folder: ModelFolder, weights: dict[str, np.ndarray]
) -> tuple[Network, np.ndarray]:
    """The realism generator of a model folder, on the model's own ``weights`` plus the
    branches', and the per-level scale of r (float32, one per level). Raises :class:`GancompError` (one line) if the add-on is missing, damaged,
    or was trained for another model."""
    from gancomp.runtime.transforms import ModelError, Network, architecture_of

    where = f"model folder {folder.path}"
    if not has_realism(folder):
        raise no_realism_error(folder)
    try:
        description = json.loads((folder.path / REALISM_JSON).read_text())
        raw = (folder.path / REALISM_WEIGHTS).read_bytes()
    except OSError as exc:
        raise GancompError(f"{where}: cannot read its realism files ({exc.strerror})") from None
    except ValueError as exc:
        raise GancompError(f"{where}: {REALISM_JSON} is not valid JSON ({exc})") from None
    if not isinstance(description, dict) or description.get("format") != REALISM_FORMAT:
        raise GancompError(
            f"{where}: {REALISM_JSON} has an unknown format (a newer gancomp wrote it?)"
        )
    if description.get("base_fingerprint") != folder.fingerprint:
        raise GancompError(
            f"{where}: its realism branches were trained for model "
            f"{description.get('base_fingerprint')}, not for this one ({folder.fingerprint})"
        )
    try:
        with np.load(io.BytesIO(raw), allow_pickle=False) as z:
            branch_weights = {k: z[k] for k in z.files}
    except (ValueError, OSError, zipfile.BadZipFile, EOFError) as exc:
        raise GancompError(
            f"{where}: {REALISM_WEIGHTS} is damaged ({type(exc).__name__})"
        ) from None
    levels = int(folder.config["levels"])
    try:
        scale = _checked_level_scale(description.get("level_scale", [1.0] * levels), levels)
    except ValueError as exc:
        raise GancompError(f"{where}: {REALISM_JSON}: {exc}") from None
    ops = description.get("synthesis")
    try:
        base_ops = architecture_of(folder.config)["synthesis"]
        if not isinstance(ops, list) or architecture.without_realism(ops) != base_ops:
            raise ModelError("its realism generator is not the model's generator plus branches")
        prefix = GENERATOR_PREFIX + "/"
        merged = {k[len(prefix) :]: v for k, v in weights.items() if k.startswith(prefix)}
        for name, value in branch_weights.items():
            if not name.startswith(prefix) or name[len(prefix) :] in merged:
                raise ModelError(f"{REALISM_WEIGHTS} holds an unexpected weight {name}")
            merged[name[len(prefix) :]] = value
        net = Network(ops, merged, int(folder.config["latent_channels"]), "realism synthesis")
        unused = sorted(set(merged) - net.used)
        if unused:
            raise ModelError(f"unknown weight {unused[0]} (not used by the architecture)")
        if net.out_channels != 3:
            raise ModelError(f"realism synthesis gives {net.out_channels} channels, expected 3")
    except ModelError as exc:
        raise GancompError(f"{where}: {exc}") from None
    return net, np.asarray(scale, np.float32)
