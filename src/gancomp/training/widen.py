"""A wider model that starts as a trained one: ``gancomp train --init-from MODEL --channels N``.

Net2Net's idea (Chen, Goodfellow and Shlens, "Net2Net: Accelerating Learning via Knowledge
Transfer", ICLR 2016) in its zero-output form: the trained weights fill the leading channels
of every hidden layer of E and G, the new channels get fresh initial weights for what they
read, and every weight by which an old channel would read a new one is zero. So the wider
model computes exactly what the source computed (same latents, same reconstruction, same
rates) and training starts from the source's loss, not from scratch; the new channels carry
activity from step one, so the gradients of the zeroed weights that read them are not zero
and they join in.

Roles of the weights (Keras layouts):

- ``conv``: Conv2D kernel (k, k, in, out); old outputs read new inputs through zeros.
- ``deconv``: Conv2DTranspose kernel (k, k, out, in); the same, with the axes swapped.
- ``gdn_gamma``: GDN's gamma (in, out), squared with a pedestal; an old channel's
  normaliser reads new channels with gamma 0 (the lower bound of the parameterisation).
- ``vector``: biases and GDN's beta, per output channel; new channels keep their fresh values.

The latent channels, gains and densities do not change with ``--channels``.

A wider latent, ``--init-from MODEL --latent-channels M`` (factorized models). The idea:
at stride 16 and 128 channels the flower model's upper levels flatten (34.2 dB at 0.96 bpp,
35.0 dB at 1.47), while every live channel already codes 2-3 bits per value there, so more
channels might carry what more bits per channel cannot. The source's channels keep their
weights, gains and densities; the new ones start as revived channels
(:mod:`gancomp.training.revive`: the live channels' mean gains, fresh densities, fresh
encoder filters scaled to the live filters' median norm so that their latents do not all
round to 0), and the generator reads them through its fresh weights times
:data:`LATENT_READ_SCALE` rather than zeros, so that the distortion reaches the new filters
from step one (the reconstruction starts close to, not at, the source's). Measured on the
flower model (docs/RESULTS.md): the new channels still died within 12,000 steps, as revived
ones do; the option stays for experiments, not as a recipe.
"""

from __future__ import annotations

import numpy as np

from gancomp import architecture

ROLES = ("conv", "deconv", "gdn_gamma", "vector")

#: The generator reads new latent channels through its fresh weights times this.
LATENT_READ_SCALE = 0.25


def weight_roles(model) -> dict[str, str]:
    """The role of each conv and GDN weight of ``model``'s transforms, by variable path."""
    from gancomp.training.model import GDN, Conv2D, Conv2DTranspose

    roles: dict[str, str] = {}
    for layer in model._flatten_layers(include_self=False, recursive=True):
        if isinstance(layer, Conv2DTranspose):
            roles[layer.kernel.path] = "deconv"
        elif isinstance(layer, Conv2D):
            roles[layer.kernel.path] = "conv"
        elif isinstance(layer, GDN):
            roles[layer.gamma.path] = "gdn_gamma"
            roles[layer.beta.path] = "vector"
            continue
        else:
            continue
        if layer.bias is not None:
            roles[layer.bias.path] = "vector"
    return roles


def embed(role: str, trained: np.ndarray, fresh: np.ndarray) -> np.ndarray:
    """``fresh`` (a wider layer's initial weight) with ``trained`` in its leading channels and
    zeros where old channels read new ones. ValueError when ``trained`` does not fit."""
    if role not in ROLES:
        raise ValueError(f"unknown weight role {role!r}")
    if trained.ndim != fresh.ndim or any(t > f for t, f in zip(trained.shape, fresh.shape)):
        raise ValueError(f"shape {trained.shape} does not fit in {fresh.shape}")
    if role in ("conv", "deconv") and trained.shape[:2] != fresh.shape[:2]:
        raise ValueError(f"kernel size {trained.shape[:2]} is not {fresh.shape[:2]}")
    out = np.array(fresh, dtype=np.float32, copy=True)
    if role == "conv":
        n_in, n_out = trained.shape[2:]
        out[:, :, n_in:, :n_out] = 0.0
    elif role == "deconv":
        n_out, n_in = trained.shape[2:]
        out[:, :, :n_out, n_in:] = 0.0
    elif role == "gdn_gamma":
        n_in, n_out = trained.shape
        out[n_in:, :n_out] = np.sqrt(architecture.GDN_PEDESTAL)  # gamma = 0
    out[tuple(slice(0, n) for n in trained.shape)] = trained
    return out


def embed_latent_rows(trained: np.ndarray, fresh: np.ndarray, levels: int) -> np.ndarray:
    """``fresh`` (a per-(level, latent channel) table of a wider latent: row level * m +
    channel, as the factorized density lays it out) with ``trained``'s rows, those of a
    narrower latent, at the same (level, channel). ValueError when they do not fit."""
    old_m, new_m = trained.shape[0] // levels, fresh.shape[0] // levels
    if (
        trained.shape[0] != old_m * levels
        or fresh.shape[0] != new_m * levels
        or old_m > new_m
        or trained.shape[1:] != fresh.shape[1:]
    ):
        raise ValueError(f"shape {trained.shape} does not fit in {fresh.shape} at {levels} levels")
    out = np.array(fresh, dtype=np.float32, copy=True)
    rows = (np.arange(levels)[:, None] * new_m + np.arange(old_m)[None, :]).ravel()
    out[rows] = trained
    return out
