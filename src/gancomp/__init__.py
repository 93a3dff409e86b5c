"""gancomp: category-specialised learned image compression.

Importing the package is cheap: NumPy, Pillow and the models load on first use, and
TensorFlow only for training.

    >>> import gancomp
    >>> data = gancomp.compress("photo.png", category="flower", quality=4)
    >>> pixels = gancomp.decompress(data)   # numpy uint8, HxWx3 (HxW gray, HxWx4 with alpha)
    >>> again = gancomp.compress(pixels, category="flower")  # keeps gray / alpha

``import gancomp.pillow`` lets Pillow open and save ``.gcz`` files.
"""

# No module-level imports beyond this one: the package namespace is the public API.
from typing import TYPE_CHECKING as _TYPE_CHECKING

if _TYPE_CHECKING:
    import os

    import numpy as np
    from PIL.Image import Image as _PILImage

    from gancomp.batch import compress_files, decompress_files
    from gancomp.io.images import Image as _LoadedImage
    from gancomp.runtime.rate_control import compress_to_target as compress_to_target

__version__ = "0.1.0"

__all__ = [
    "__version__",
    "compress",
    "compress_files",
    "compress_to_target",
    "decompress",
    "decompress_files",
]

# Public names defined in another module, imported on first access (keeps `import gancomp` cheap).
_LAZY = {
    "compress_files": "gancomp.batch",
    "compress_to_target": "gancomp.runtime.rate_control",
    "decompress_files": "gancomp.batch",
}


def __getattr__(name: str) -> object:
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'gancomp' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


def compress(
    image: "str | os.PathLike[str] | _PILImage | np.ndarray | _LoadedImage",
    category: str,
    quality: int = 4,
    models_dir: "str | os.PathLike[str] | None" = None,
    effort: str = "normal",
) -> bytes:
    """Compress ``image`` to ``.gcz`` bytes.

    ``image`` is a path, a PIL image or a uint8 array shaped as :func:`decompress` returns:
    HxW (grayscale), HxWx2 (gray + alpha), HxWx3 (RGB) or HxWx4 (RGBA); alpha is stored
    losslessly. ``category`` names a model, or ``"auto"`` picks one per image. ``effort``
    ``"fast"`` or ``"max"`` refines the latents first (:mod:`gancomp.refine`; needs
    TensorFlow, the ``train`` extra); ``"normal"`` is the encoder's single pass.
    """
    import os
    from pathlib import Path

    from gancomp.io.images import Image, from_array, from_pil
    from gancomp.runtime.codec import compress as compress_image

    if isinstance(image, (str, os.PathLike)):
        image = Path(image)
    elif hasattr(image, "mode") and hasattr(image, "getbands"):  # a PIL image
        image = from_pil(image)
    elif not isinstance(image, Image):
        image = from_array(image)
    from gancomp import refine

    if refine.refines(effort):
        from gancomp.io.images import load_image

        refine.require_refiner(effort)
        if isinstance(image, Path):
            image = load_image(image)
        [(data, _)] = refine.compress_many([image], category, quality, effort, models_dir)
        return data
    return compress_image(image, category, quality, models_dir)


def decompress(
    data: bytes, models_dir: "str | os.PathLike[str] | None" = None, realism: float = 0.0
) -> "np.ndarray":
    """Decode ``.gcz`` bytes to a numpy uint8 array of the original size.

    HxWx3 for colour images, HxW for grayscale ones, with a fourth (or second)
    channel when the original had alpha: :func:`compress` takes each of these back.
    ``realism`` in [0, 1] chooses between the most faithful reconstruction (0) and the
    most realistic one (1), from the same bytes; above 0 it needs a model with realism
    branches (``gancomp train --realism-phase``).
    """
    from gancomp.io.images import to_array
    from gancomp.runtime.codec import decompress as decompress_image

    img = decompress_image(bytes(data), models_dir, realism=realism)
    return to_array(img.rgb, img.alpha, img.grayscale)
