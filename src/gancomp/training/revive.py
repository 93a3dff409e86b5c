"""Dead latent channels brought back: ``gancomp train --init-from MODEL --revive-latents``.

A trained factorized model leaves part of its latent unused at every level: the shipped
airplane model codes nothing in 33 of its 64 channels even at its top level, the flower model
in 25 of 128 (``scripts/latent_usage.py``). Such a channel has a tiny gain at every level, so
it always rounds to 0, and nothing pushes it back: the decoder has learnt to ignore it, so no
distortion gradient reaches its encoder filter, while the rate term keeps it small. Since
the levels share one transform and differ only by per-channel gains, a channel killed by
the low levels' rate pressure is lost to the high levels too, where it would pay.

Revival, in the zero-output form of :mod:`gancomp.training.widen`: each dead channel gets
the fresh initial encoder filter of a new model, the mean gain (and inverse gain) of the
live channels at every level, and fresh densities; the decoder's weights that read it are
set to zero. So the revived model reconstructs exactly what the source did (the same
distortion), pays a few bits for the revived channels at first, and training decides per
level, through the gains, where they earn their bits: the decoder's zeroed weights get
gradients at once, because the revived latents are not zero.

A channel is dead when its density at the top level gives the value 0 a probability of at
least :data:`DEAD_P0` (the densities are fit to the data, so this is the empirical rate
without needing any image). Factorized models only: a hyperprior's y density is
conditional.
"""

from __future__ import annotations

import numpy as np

#: P(0) at the top level above which a latent channel counts as dead (about 0.08 bits).
DEAD_P0 = 0.99


def dead_channels(model) -> np.ndarray:
    """Indexes of the latent channels whose top-level density puts at least DEAD_P0 on 0."""
    m, levels = model.cfg.latent_channels, model.cfg.levels
    pmf = model.density.pmf_table(0, 0)[:, 0]  # (levels * m,): P(0) per (level, channel)
    top = pmf.reshape(levels, m)[levels - 1]
    return np.flatnonzero(top >= DEAD_P0)


def latent_layers(model):
    """(the encoder's last convolution, which writes the latent; the generator's first
    layer, which reads it)."""
    from gancomp.training.model import Conv2D, Conv2DTranspose

    def convs(net):
        return [
            layer
            for layer in net._flatten_layers(include_self=False, recursive=True)
            if isinstance(layer, (Conv2D, Conv2DTranspose))
        ]

    writer, reader = convs(model.encoder)[-1], convs(model.generator)[0]
    m = model.cfg.latent_channels
    if writer.kernel.shape[-1] != m or isinstance(writer, Conv2DTranspose):
        raise ValueError("the encoder's last layer does not write the latent")
    in_axis = 3 if isinstance(reader, Conv2DTranspose) else 2
    if reader.kernel.shape[in_axis] != m:
        raise ValueError("the generator's first layer does not read the latent")
    return writer, reader


def fresh_values(model) -> dict[str, np.ndarray]:
    """The values revival takes from a new model: call before the trained weights load."""
    writer, reader = latent_layers(model)
    out = {writer.kernel.path: writer.kernel.numpy(), reader.kernel.path: reader.kernel.numpy()}
    if writer.bias is not None:
        out[writer.bias.path] = writer.bias.numpy()
    out.update({v.path: v.numpy() for v in model.density.trainable_weights})
    return out


def revive(
    model,
    fresh: dict[str, np.ndarray],
    channels: np.ndarray,
    read_scale: float = 0.0,
    gains_from: np.ndarray | None = None,
    match_filter_norms: bool = False,
) -> None:
    """Bring ``channels`` back as described in the module docstring (in place).

    ``read_scale``: the generator reads them through its fresh weights times this (0: not
    at all, so the reconstruction stays the source's). ``gains_from``: the channels whose
    mean gains they take (default: every other channel). ``match_filter_norms``: their fresh
    encoder filters are scaled to the median norm of those channels' filters, so that their
    latents are as large as a live channel's rather than rounding to 0.
    """
    channels = np.asarray(channels, dtype=np.int64)
    if channels.size == 0:
        return
    m, levels = model.cfg.latent_channels, model.cfg.levels
    live = np.setdiff1d(np.arange(m), channels) if gains_from is None else np.asarray(gains_from)
    if live.size == 0:
        raise ValueError("every latent channel is dead: nothing to take the gains from")
    writer, reader = latent_layers(model)
    from gancomp.training.model import Conv2DTranspose

    kernel = writer.kernel.numpy()
    start = fresh[writer.kernel.path][..., channels]
    if match_filter_norms:
        norms = np.sqrt(np.square(kernel[..., live]).sum(axis=(0, 1, 2)))
        start = start * (np.median(norms) / np.sqrt(np.square(start).sum(axis=(0, 1, 2))))
    kernel[..., channels] = start
    writer.kernel.assign(kernel)
    if writer.bias is not None:
        bias = writer.bias.numpy()
        bias[channels] = fresh[writer.bias.path][channels]
        writer.bias.assign(bias)
    kernel, start = reader.kernel.numpy(), fresh[reader.kernel.path] * np.float32(read_scale)
    if isinstance(reader, Conv2DTranspose):  # (k, k, out, in)
        kernel[:, :, :, channels] = start[:, :, :, channels]
    else:  # (k, k, in, out)
        kernel[:, :, channels, :] = start[:, :, channels, :]
    reader.kernel.assign(kernel)
    for gain in (model.log_gain, model.log_inv_gain):
        g = gain.numpy()
        g[:, channels] = g[:, live].mean(axis=1, keepdims=True)
        gain.assign(g)
    rows = (np.arange(levels)[:, None] * m + channels[None, :]).ravel()
    for v in model.density.trainable_weights:
        values = v.numpy()
        values[rows] = fresh[v.path][rows]
        v.assign(values)
