"""gancomp: category-specialised learned image compression.

Importing the package is cheap: TensorFlow is only imported by the functions that run a model.

    >>> import gancomp
    >>> data = gancomp.compress("photo.png", category="flower", quality=4)
    >>> pixels = gancomp.decompress(data)   # numpy uint8, HxWx3 (HxW gray, HxWx4 with alpha)
"""

from __future__ import annotations

import os
from typing import Any

__version__ = "0.1.0"

__all__ = ["__version__", "compress", "decompress"]


def compress(
    image: Any,
    category: str,
    quality: int = 4,
    models_dir: str | os.PathLike | None = None,
) -> bytes:
    """Compress ``image`` (a path, a PIL image or an HxWx3 uint8 array) to ``.gcz`` bytes."""
    from gancomp.io.images import from_pil
    from gancomp.runtime.codec import compress as _compress

    if hasattr(image, "mode") and hasattr(image, "getbands"):  # a PIL image
        image = from_pil(image)
    return _compress(image, category, quality, models_dir)


def decompress(data: bytes, models_dir: str | os.PathLike | None = None):
    """Decode ``.gcz`` bytes to a numpy uint8 array of the original size.

    HxWx3 for colour images, HxW for grayscale ones, with a fourth (or second)
    channel when the original had alpha.
    """
    import numpy as np

    from gancomp.runtime.codec import decompress as _decompress

    img = _decompress(bytes(data), models_dir)
    if img.grayscale:
        gray = np.rint(img.rgb.astype(np.float32).mean(axis=2)).astype(np.uint8)
        return gray if img.alpha is None else np.dstack([gray, img.alpha])
    return img.rgb if img.alpha is None else np.dstack([img.rgb, img.alpha])
