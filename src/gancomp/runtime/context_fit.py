"""Fitting a factorized model's channel-context tables on training images.

The tables (:mod:`gancomp.coding.context`) are statistics of the model's quantized latents,
so they are fitted after training, with the NumPy runtime: one analysis pass per image
serves every level. ``gancomp train`` does it when it exports a factorized model;
``scripts/add_context_tables.py`` does it for a model folder that has none (or refits).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TypeVar

import numpy as np

from gancomp.coding.context import ContextTables, fit_context_tables

T = TypeVar("T")

#: Training images the tables are fitted on by default: small images (CIFAR) have few
#: latents each, so they need more of them for the same counts per table.
DEFAULT_IMAGES_SMALL = 1000
DEFAULT_IMAGES_PHOTO = 150


def evenly_spaced(items: Sequence[T], limit: int | None) -> list[T]:
    """``limit`` items spread evenly over ``items`` (all of them without a limit)."""
    if not limit or limit >= len(items):
        return list(items)
    return [items[i] for i in np.linspace(0, len(items) - 1, limit).round().astype(int)]


def latents_all_levels(codec, image: np.ndarray) -> list[np.ndarray]:
    """One RGB uint8 image's quantized latents (h, w, M) at every level."""
    return [ys[0] for ys in codec.quantized_latents_all_levels([image])]


def fit_from_latents(
    codec, per_image: Iterable[list[np.ndarray]], buckets: int = 8
) -> ContextTables:
    """Context tables from per-image latents (:func:`latents_all_levels` of each image)."""
    per_image = list(per_image)
    if not per_image:
        raise ValueError("no training images to fit context tables on")
    latents = [[y[q] for y in per_image] for q in range(codec.levels)]
    return fit_context_tables(latents, codec.coder.tables, buckets)


def fit_for_images(codec, images: Iterable[np.ndarray], buckets: int = 8) -> ContextTables:
    """Context tables of a factorized model (a runtime ``Codec``) fitted on RGB images."""
    if codec.hyperprior:
        raise ValueError("context tables code a factorized model's latents, not a hyperprior's")
    return fit_from_latents(codec, (latents_all_levels(codec, im) for im in images), buckets)
