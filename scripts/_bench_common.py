"""Helpers shared by the benchmark scripts (not part of the package)."""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np

# Quiet TensorFlow's C++ start-up logging in this process (it is imported lazily, later).
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

REPO = Path(__file__).resolve().parent.parent
TEST_DATA = REPO / "tests" / "data"
# Architecture used for --random-model when the models folder has no config for a category:
# CIFAR-size categories use 3 stride-2 stages, photo categories 4 (as `gancomp train` does).
SMALL_CATEGORIES = {"airplane", "automobile"}


def add_models_dir_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--models-dir",
        type=Path,
        help="folder of your model folders (default: $GANCOMP_MODELS), searched before the shipped models",
    )


def add_model_options(parser: argparse.ArgumentParser) -> None:
    add_models_dir_option(parser)
    parser.add_argument(
        "--random-model",
        action="store_true",
        help="benchmark randomly initialised models with the architecture (config.json) of the "
        "models in --models-dir, or the default ModelConfig where a category has none",
    )


def prepare_models(
    models_dir: Path | None, categories: Sequence[str], random_model: bool, workdir: Path
) -> Path:
    """The models folder to benchmark; with ``random_model``, a fresh one in ``workdir``."""
    from gancomp.runtime.models import default_models_dir

    src = Path(models_dir) if models_dir else default_models_dir()
    if not random_model:
        missing = [c for c in categories if not (src / c / "config.json").is_file()]
        if missing:
            sys.exit(f"no model for {', '.join(missing)} in {src} (use --random-model)")
        return src
    from gancomp.training.model import ModelConfig
    from gancomp.training.trainer import init_model_folder

    out = workdir / "random-models"
    for cat in categories:
        config = src / cat / "config.json"
        if config.is_file():
            cfg = ModelConfig.from_dict(json.loads(config.read_text()))
        else:
            cfg = ModelConfig(category=cat, num_down=3 if cat in SMALL_CATEGORIES else 4)
        print(
            f"building a random {cat} model (channels {cfg.channels}, latent {cfg.latent_channels}, "
            f"stride {cfg.stride})",
            file=sys.stderr,
        )
        init_model_folder(cfg, out / cat, seed=0, force=True)
    return out


def gancomp_cmd(*args: object) -> list[str]:
    """`gancomp ARGS` as run by the console script (same interpreter, fresh process)."""
    return [sys.executable, "-m", "gancomp", *map(str, args)]


class Run(NamedTuple):
    wall: float  # seconds
    cpu: float  # user + system seconds of the command: unaffected by other load on the machine


def run_timed(cmd: Sequence[str], env: dict[str, str] | None = None) -> Run:
    """Wall and CPU time of one command; exits with its stderr if it fails."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    r = subprocess.run(
        cmd, capture_output=True, text=True, env={**os.environ, **(env or {})}, check=False
    )
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if r.returncode != 0:
        sys.exit(f"command failed ({r.returncode}): {' '.join(cmd)}\n{r.stderr}")
    cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    return Run(wall, cpu)


def best_time(cmd: Sequence[str], repeat: int) -> Run:
    """Best of ``repeat`` runs: the least disturbed by other load on the machine."""
    runs = [run_timed(cmd) for _ in range(repeat)]
    return Run(min(r.wall for r in runs), min(r.cpu for r in runs))


def photo_like(h: int, w: int, seed: int = 0) -> np.ndarray:
    """Smooth colour gradients and blobs plus sensor-like noise, uint8 HxWx3.

    Computed in row bands so that a 16-Mpx image never needs several float64 copies at once.
    """
    rng = np.random.default_rng(seed)
    out = np.empty((h, w, 3), np.uint8)
    x = np.linspace(0.0, 1.0, w)[None, :]
    centres = rng.uniform(0, 1, (6, 2))
    for y0 in range(0, h, 256):
        y = np.linspace(y0 / h, min(y0 + 256, h) / h, min(256, h - y0), endpoint=False)[:, None]
        band = np.empty((len(y), w, 3))
        for c in range(3):
            v = 90 + 80 * x * (c + 1) / 3 + 60 * y * (3 - c) / 3
            for cy, cx in centres:
                v = v + 40 * np.exp(-((y - cy) ** 2 + (x - cx) ** 2) * 30) * (1 if c != 1 else -1)
            band[..., c] = v
        band += rng.normal(0, 4, band.shape)
        out[y0 : y0 + len(y)] = np.clip(band, 0, 255).astype(np.uint8)
    return out


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    cells = [[str(h) for h in headers]] + [[str(c) for c in r] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = ["| " + " | ".join(c.ljust(w) for c, w in zip(row, widths)) + " |" for row in cells]
    lines.insert(1, "| " + " | ".join("-" * w for w in widths) + " |")
    return "\n".join(lines)
