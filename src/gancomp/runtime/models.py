"""Model folders: where they live, how they are written and loaded.

A model folder is self-describing::

    config.json    ModelConfig: every architectural hyper-parameter
    weights.npz    inference weights (encoder, generator, gains), float32
    tables.npz     frozen integer entropy-coding tables
    metadata.json  training settings, validation results, fingerprint
    realism.json, realism.npz   optional: realism branches of the generator
                                (:mod:`gancomp.runtime.realism`), not fingerprinted
    density.npz    optional: the trainable densities (float32, by variable path) that
                   ``gancomp train --init-from`` starts from; not fingerprinted, and
                   never read by the runtime (compress and decompress do not need it)

The fingerprint (4 bytes, hex) is a hash of the first three files' contents;
every ``.gcz`` file carries the fingerprint of the model that wrote it. Files other
than these are ignored.

Where models are found (:func:`model_search_path`): the user's folder
(``--models-dir``, else ``$GANCOMP_MODELS``) first, then the models shipped with
the package, which stay available beside the user's; a user's model overrides a
shipped one of the same name. Only complete folders with a valid category name
are models (:func:`is_model_folder`): a training checkpoint ``<name>.ckpt`` beside
a model is not one.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from gancomp.errors import GancompError, InputError

BUILTIN_CATEGORIES = ("airplane", "automobile", "flower")
FILES = ("config.json", "weights.npz", "tables.npz")
_CATEGORY_CHARS = set("abcdefghijklmnopqrstuvwxyz0123456789_-")


def check_category_name(name: str) -> str:
    if not name or len(name) > 64 or not set(name) <= _CATEGORY_CHARS:
        raise InputError(
            f"invalid category name {name!r}: use 1-64 lowercase letters, digits, '-' or '_'"
        )
    return name


def shipped_models_dir() -> Path:
    """The models shipped with the package."""
    here = Path(__file__).resolve().parent
    installed = here.parent / "_models"
    if installed.is_dir():
        return installed
    return here.parents[2] / "models"  # source checkout: src/gancomp/runtime -> repo


def user_models_dir(models_dir: str | os.PathLike | None = None) -> Path | None:
    """The user's models folder: ``models_dir`` (``--models-dir``), else ``$GANCOMP_MODELS``."""
    if models_dir:
        return Path(models_dir)
    env = os.environ.get("GANCOMP_MODELS")
    return Path(env) if env else None


def default_models_dir() -> Path:
    """The first folder searched without ``--models-dir``: ``$GANCOMP_MODELS``, else the
    shipped models (see :func:`model_search_path` for the whole search)."""
    return user_models_dir() or shipped_models_dir()


def model_search_path(models_dir: str | os.PathLike | None = None) -> list[Path]:
    """The folders searched for models, first match wins: the user's folder (``models_dir``,
    else ``$GANCOMP_MODELS``), then the shipped models, which stay available beside it.

    A user folder that does not exist is an error, not silently skipped: a mistyped
    ``--models-dir`` would otherwise fall back to a shipped model of the same name.
    """
    shipped = shipped_models_dir()
    user = user_models_dir(models_dir)
    if user is None:
        return [shipped]
    if not user.is_dir():
        problem = "is not a folder" if user.exists() else "does not exist"
        raise InputError(f"models folder {user} {problem}")
    if user.resolve() == shipped.resolve():
        return [shipped]
    return [user, shipped]


def is_model_folder(path: str | os.PathLike) -> bool:
    """A model is a folder with a valid category name holding config, weights and tables.

    Anything else is not a model: a training checkpoint (``<name>.ckpt``: the dot makes the
    name invalid), a half-written folder, a stray file.
    """
    p = Path(path)
    if not p.is_dir() or not _is_category_name(p.name):
        return False
    return all((p / name).is_file() for name in FILES)


def _is_category_name(name: str) -> bool:
    try:
        check_category_name(name)
    except InputError:
        return False
    return True


def available_categories(models_dir: str | os.PathLike | None = None) -> list[str]:
    """Every category with a model on the search path (:func:`model_search_path`), sorted."""
    names = set()
    for folder in model_search_path(models_dir):
        if folder.is_dir():
            names.update(p.name for p in folder.iterdir() if is_model_folder(p))
    return sorted(names)


def find_model(category: str, models_dir: str | os.PathLike | None = None) -> Path:
    """The folder of ``category``'s model: the first on the search path, so a user's model
    overrides a shipped one of the same name."""
    check_category_name(category)
    search = model_search_path(models_dir)
    for folder in search:
        if is_model_folder(folder / category):
            return folder / category
    partial = [folder / category for folder in search if (folder / category).is_dir()]
    if partial:  # more useful than "no model": say what the folder lacks
        missing = [name for name in FILES if not (partial[0] / name).is_file()]
        raise GancompError(
            f"model folder {partial[0]} is incomplete: it lacks {', '.join(missing)}"
        )
    have = available_categories(models_dir)
    where = " or ".join(str(d) for d in search)
    hint = f"available: {', '.join(have)}" if have else "no models there"
    raise GancompError(f"no model for category {category!r} in {where} ({hint})")


def fingerprint_of(files: dict[str, bytes]) -> str:
    h = hashlib.sha256()
    for name in FILES:
        data = files[name]
        h.update(name.encode() + len(data).to_bytes(8, "little") + data)
    return h.hexdigest()[:8]


def weights_to_bytes(arrays: dict[str, np.ndarray]) -> bytes:
    buf = io.BytesIO()
    # Sorted keys and fixed dtype: the same weights always give the same bytes.
    # Integer arrays (the exact index path) keep their type; floats are float32.
    np.savez(buf, **{k: _stored(arrays[k]) for k in sorted(arrays)})
    return buf.getvalue()


def _stored(a) -> np.ndarray:
    a = np.asarray(a)
    if a.dtype in (np.int16, np.float16):  # shrunk weights (see shrink_weights)
        return a
    return (
        a.astype(np.int64 if a.dtype == np.int64 else np.int32)
        if a.dtype.kind in "iu"
        else a.astype(np.float32)
    )


def shrink_weights(weights: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The weights stored in half the bytes where that is safe for the runtime.

    Convolution kernels (4-D float arrays, nearly all of a model's bytes) become float16;
    the runtime computes in float32 from them, so only the kernels are rounded (a relative
    change of at most 2**-11 per weight). Integer kernels of the exact index path become
    int16 when their values fit, which changes nothing. Gains, biases and GDN parameters
    stay float32.
    """
    out = {}
    for name, a in weights.items():
        a = np.asarray(a)
        if a.dtype.kind == "f" and a.ndim == 4 and np.abs(a).max(initial=0.0) < 60000.0:
            a = a.astype(np.float16)
        elif a.dtype.kind in "iu" and a.size and a.min() >= -32768 and a.max() <= 32767:
            a = a.astype(np.int16)
        out[name] = a
    return out


@dataclass
class ModelFolder:
    """Raw contents of a model folder (no TensorFlow needed to read it)."""

    path: Path
    config: dict
    weights: bytes
    tables: bytes
    metadata: dict
    fingerprint: str

    @property
    def category(self) -> str:
        return self.config["category"]


def read_model_folder(path: str | os.PathLike) -> ModelFolder:
    p = Path(path)
    raw = {}
    for name in FILES:
        try:
            raw[name] = (p / name).read_bytes()
        except OSError as exc:
            raise GancompError(
                f"model folder {p} is incomplete: cannot read {name} ({exc.strerror})"
            ) from None
    try:
        config = json.loads(raw["config.json"])
    except ValueError as exc:
        raise GancompError(f"model folder {p}: config.json is not valid JSON ({exc})") from None
    try:
        metadata = json.loads((p / "metadata.json").read_text())
    except (OSError, ValueError):
        metadata = {}
    return ModelFolder(
        p, config, raw["weights.npz"], raw["tables.npz"], metadata, fingerprint_of(raw)
    )


def write_model_folder(
    out: str | os.PathLike,
    config_json: str,
    weights: dict[str, np.ndarray],
    tables: bytes,
    metadata: dict[str, Any],
    force: bool = False,
) -> str:
    """Write a complete model folder atomically (temp folder + rename); returns the fingerprint."""
    files = {
        "config.json": config_json.encode(),
        "weights.npz": weights_to_bytes(weights),
        "tables.npz": tables,
    }
    return write_model_files(out, files, metadata, force)


def write_model_files(
    out: str | os.PathLike,
    files: dict[str, bytes],
    metadata: dict[str, Any],
    force: bool = False,
) -> str:
    """Write a model folder from its files' bytes (``FILES``, and optional ones such as the
    realism add-on) atomically, as :func:`write_model_folder`; returns the fingerprint."""
    out = Path(out)
    if out.exists() and not force:
        raise GancompError(f"{out} exists (use --force to replace it)")
    fp = fingerprint_of(files)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        for name, data in files.items():
            (tmp / name).write_bytes(data)
        meta = {**metadata, "fingerprint": fp}
        (tmp / "metadata.json").write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
        if out.exists():
            old = out.with_name(f".{out.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            os.replace(out, old)
            os.replace(tmp, out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return fp


def update_metadata(path: str | os.PathLike, **fields: Any) -> None:
    p = Path(path) / "metadata.json"
    meta = json.loads(p.read_text()) if p.exists() else {}
    meta.update(fields)
    tmp = p.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, p)
