"""Position noise for realism branches: the same values on every machine.

A realism branch with ``"noise": k`` in its op reads, beside its features and r, k planes
of noise, so its texture need not be a function of the blurred features alone (the
generator's noise inputs of StyleGAN, Karras et al., CVPR 2019). Training draws the noise
at random; decoding takes it from a hash of the pixel's position in the whole image
(row, column, plane), in 32-bit integer arithmetic only, so it is identical on any CPU,
in any batch and in any tile, and a file always decodes to the same pixels.
"""

from __future__ import annotations

import numpy as np

#: Most noise planes a branch may read (``gancomp train --realism-noise`` allows as many).
MAX_NOISE_PLANES = 16
#: Unit variance: noise = (u - 1/2) * sqrt(12) for u uniform in (0, 1).
_SPREAD = np.float32(np.sqrt(12.0))


def _mix(x: np.ndarray) -> np.ndarray:
    """A 32-bit integer finaliser (the "lowbias32" constants of C. Wellons' hash prospector)."""
    x = x ^ (x >> np.uint32(16))
    x = x * np.uint32(0x7FEB352D)
    x = x ^ (x >> np.uint32(15))
    x = x * np.uint32(0x846CA68B)
    return x ^ (x >> np.uint32(16))


def position_noise(
    height: int, width: int, planes: int, origin: tuple[int, int] = (0, 0), seed: int = 0
) -> np.ndarray:
    """Noise of shape (height, width, planes), float32, mean 0, variance 1 (uniform), for
    the rows ``origin[0]...`` and columns ``origin[1]...`` of a whole-image grid: the
    window of a larger field is the field's slice."""
    with np.errstate(over="ignore"):
        rows = np.arange(origin[0], origin[0] + height, dtype=np.int64).astype(np.uint32)
        cols = np.arange(origin[1], origin[1] + width, dtype=np.int64).astype(np.uint32)
        plane = np.arange(planes, dtype=np.uint32)
        key = _mix(np.uint32(seed) * np.uint32(0x9E3779B9) + plane)  # (planes,)
        key = _mix(key[None, :] + rows[:, None] * np.uint32(0x85EBCA6B))  # (rows, planes)
        key = _mix(key[:, None, :] + cols[None, :, None] * np.uint32(0xC2B2AE35))
    u = ((key >> np.uint32(8)).astype(np.float32) + np.float32(0.5)) * np.float32(2.0**-24)
    return (u - np.float32(0.5)) * _SPREAD
