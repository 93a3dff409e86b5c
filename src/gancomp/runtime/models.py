"""Model folders: where they live, how they are written and loaded.

A model folder is self-describing::

    config.json    ModelConfig: every architectural hyper-parameter
    weights.npz    inference weights (encoder, generator, gains), float32
    tables.npz     frozen integer entropy-coding tables
    metadata.json  training settings, validation results, fingerprint

The fingerprint (4 bytes, hex) is a hash of the first three files' contents;
every ``.gcz`` file carries the fingerprint of the model that wrote it.
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


def default_models_dir() -> Path:
    """``$GANCOMP_MODELS``, else the models shipped with the package."""
    env = os.environ.get("GANCOMP_MODELS")
    if env:
        return Path(env)
    here = Path(__file__).resolve().parent
    installed = here.parent / "_models"
    if installed.is_dir():
        return installed
    return here.parents[2] / "models"  # source checkout: src/gancomp/runtime -> repo


def available_categories(models_dir: Path | None = None) -> list[str]:
    d = Path(models_dir) if models_dir else default_models_dir()
    if not d.is_dir():
        return []
    return sorted(p.name for p in d.iterdir() if (p / "config.json").is_file())


def fingerprint_of(files: dict[str, bytes]) -> str:
    h = hashlib.sha256()
    for name in FILES:
        data = files[name]
        h.update(name.encode() + len(data).to_bytes(8, "little") + data)
    return h.hexdigest()[:8]


def weights_to_bytes(arrays: dict[str, np.ndarray]) -> bytes:
    buf = io.BytesIO()
    # Sorted keys and fixed dtype: the same weights always give the same bytes.
    np.savez(buf, **{k: np.asarray(arrays[k], np.float32) for k in sorted(arrays)})
    return buf.getvalue()


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


def find_model(category: str, models_dir: str | os.PathLike | None = None) -> Path:
    d = Path(models_dir) if models_dir else default_models_dir()
    p = d / category
    if not (p / "config.json").is_file():
        have = available_categories(d)
        hint = f"available: {', '.join(have)}" if have else "no models there"
        raise GancompError(f"no model for category {category!r} in {d} ({hint})")
    return p


def write_model_folder(
    out: str | os.PathLike,
    config_json: str,
    weights: dict[str, np.ndarray],
    tables: bytes,
    metadata: dict[str, Any],
    force: bool = False,
) -> str:
    """Write a complete model folder atomically (temp folder + rename); returns the fingerprint."""
    out = Path(out)
    if out.exists() and not force:
        raise GancompError(f"{out} exists (use --force to replace it)")
    files = {
        "config.json": config_json.encode(),
        "weights.npz": weights_to_bytes(weights),
        "tables.npz": tables,
    }
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
