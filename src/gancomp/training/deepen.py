"""A deeper generator that starts as a trained one: ``gancomp train --init-from MODEL
--residual-blocks N``.

The zero-output form of Net2Net (Chen, Goodfellow and Shlens, "Net2Net: Accelerating
Learning via Knowledge Transfer", ICLR 2016; see :mod:`gancomp.training.widen` for the
wider model): the source's blocks ``res0`` ... ``res{M-1}`` keep their trained weights, and
each new block ``res{M}`` ... ``res{N-1}`` (after them, at the latent resolution) is
x + c2(leaky(c1(x))) with its last convolution c2's kernel and bias zero, so it is the
identity and the deeper model computes exactly what the source computed (same latents,
same reconstruction, same rates). c1 keeps its fresh initial weights: its activations are
not zero, so c2's gradient is not either and the block joins in from the first step (c1's
own gradient flows once c2 has moved).
"""

from __future__ import annotations

import numpy as np


def block_name(index: int) -> str:
    """The name of G's residual block ``index`` (:func:`gancomp.architecture.synthesis`)."""
    return f"res{index}"


def new_blocks(model, source_blocks: int) -> list:
    """The Keras layers of ``model``'s generator blocks past the source's ``source_blocks``."""
    from gancomp.training.model import Residual

    new = {block_name(i) for i in range(source_blocks, model.cfg.residual_blocks)}
    return [
        layer
        for layer in model.generator.sublayers
        if isinstance(layer, Residual) and layer.name in new
    ]


def new_block_weights(model, source_blocks: int) -> list:
    """The variables of the new blocks: absent from the source, they start as
    :func:`start_as_identity` leaves them."""
    return [w for layer in new_blocks(model, source_blocks) for w in layer.weights]


def start_as_identity(model, source_blocks: int) -> list[str]:
    """Zero the last convolution (kernel and bias) of every new block, so each is the
    identity; returns the names of the blocks."""
    blocks = new_blocks(model, source_blocks)
    for layer in blocks:
        last = layer.sublayers[-1]
        last.kernel.assign(np.zeros(last.kernel.shape, np.float32))
        last.bias.assign(np.zeros(last.bias.shape, np.float32))
    return [layer.name for layer in blocks]
