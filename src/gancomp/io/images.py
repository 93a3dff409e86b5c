"""Reading and writing images with Pillow (no TensorFlow).

Pixels are taken as displayed: EXIF orientation is applied on read (a rotated JPEG
becomes an upright image and is written upright); ICC profiles are ignored. Only the first
frame of multi-frame files (GIF, multi-page TIFF) is read.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image as PILImage
from PIL import ImageFile, ImageOps, UnidentifiedImageError

from gancomp.coding.container import MAX_PIXELS as _FORMAT_MAX_PIXELS
from gancomp.errors import GancompError, InputError
from gancomp.io.files import atomic_open

#: Largest image (width * height) we agree to decode; the .gcz format's own limit.
MAX_PIXELS = _FORMAT_MAX_PIXELS

#: Files taken as images when a folder is given (compress, train, bench).
IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff", ".gif"})

# Pillow warns above its own limit (89.5 Mpx by default) and refuses above twice that; align it
# with ours so both checks agree (load_image turns Pillow's warning into an error).
PILImage.MAX_IMAGE_PIXELS = MAX_PIXELS
ImageFile.LOAD_TRUNCATED_IMAGES = False

_GRAY_MODES = {"1", "L", "LA", "La", "I", "I;16", "I;16B", "I;16L", "I;16N", "F"}
_HIGH_DEPTH_GRAY = {"I", "I;16", "I;16B", "I;16L", "I;16N"}

#: Output formats by file extension (all lossless).
OUTPUT_FORMATS = {".png": "PNG", ".bmp": "BMP", ".tif": "TIFF", ".tiff": "TIFF", ".webp": "WEBP"}


@dataclass(frozen=True, eq=False)
class Image:
    """A decoded image.

    ``rgb`` is always HxWx3 uint8 (grayscale sources are replicated to three channels);
    ``alpha`` is HxW uint8 or None when the source had no transparency.
    """

    rgb: np.ndarray
    alpha: np.ndarray | None
    grayscale: bool
    bit_depth_reduced: bool
    path: str
    source_mode: str = ""
    source_format: str | None = None

    @property
    def width(self) -> int:
        return int(self.rgb.shape[1])

    @property
    def height(self) -> int:
        return int(self.rgb.shape[0])

    @property
    def has_alpha(self) -> bool:
        return self.alpha is not None


def _fail(path: str | os.PathLike[str], problem: str) -> InputError:
    return InputError(f"cannot read '{os.fspath(path)}': {problem}")


def _check_size(path: str | os.PathLike[str], size: tuple[int, int]) -> None:
    width, height = size
    if width <= 0 or height <= 0:
        raise _fail(path, f"invalid image size {width}x{height}")
    if width * height > MAX_PIXELS:
        raise _fail(
            path,
            f"image is too large ({width}x{height} = {width * height} pixels, limit {MAX_PIXELS})",
        )


def _source_bits(pil: PILImage.Image, path: str | os.PathLike[str]) -> int:
    """Bits per sample as stored in the file (Pillow silently reduces 16-bit colour to 8)."""
    if pil.mode in _HIGH_DEPTH_GRAY:
        return 16
    if pil.mode == "F":
        return 32
    if pil.format == "PNG":
        try:
            with open(path, "rb") as fh:
                header = fh.read(25)
            if len(header) == 25 and header[12:16] == b"IHDR":
                return header[24]
        except OSError:
            pass
    elif pil.format == "TIFF":
        bits = getattr(pil, "tag_v2", {}).get(258)
        if bits:
            return max(bits) if isinstance(bits, tuple) else int(bits)
    return 8


def _gray16_to_8(values: np.ndarray) -> np.ndarray:
    v = np.clip(values.astype(np.int64), 0, 65535)
    return ((v * 255 + 32767) // 65535).astype(np.uint8)


def _decode(pil: PILImage.Image) -> tuple[np.ndarray, np.ndarray | None, bool]:
    """Return (rgb or gray array, alpha, grayscale) for an already loaded image."""
    mode = pil.mode
    if mode in _HIGH_DEPTH_GRAY:
        return _gray16_to_8(np.asarray(pil)), None, True
    if mode == "F":
        values = np.nan_to_num(np.asarray(pil, dtype=np.float64), nan=0.0)
        return np.clip(np.rint(values), 0, 255).astype(np.uint8), None, True
    if mode in ("1", "L"):
        return np.asarray(pil.convert("L")), None, True
    if mode in ("LA", "La"):
        la = np.asarray(pil.convert("LA"))
        return la[..., 0], la[..., 1], True
    has_alpha = "A" in mode or "a" in mode or pil.has_transparency_data
    if has_alpha:
        rgba = np.asarray(pil.convert("RGBA"))
        return rgba[..., :3], rgba[..., 3], False
    # RGB, CMYK, YCbCr, opaque palette, ...
    return np.asarray(pil.convert("RGB")), None, False


def load_image(path: str | os.PathLike[str]) -> Image:
    """Load an image file; raise InputError naming the file if it cannot be used."""
    p = Path(path)
    name = os.fspath(path)
    if p.is_dir():
        raise _fail(name, "is a directory")
    if not p.exists():
        raise _fail(name, "no such file")
    try:
        if p.stat().st_size == 0:
            raise _fail(name, "file is empty")
    except OSError as exc:
        raise _fail(name, exc.strerror or str(exc)) from exc
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", PILImage.DecompressionBombWarning)
            with PILImage.open(p) as pil:
                _check_size(name, pil.size)
                pil.load()
                bits = _source_bits(pil, p)
                mode, fmt = pil.mode, pil.format
                # Pixels as displayed: EXIF orientation is applied on read.
                data, alpha, grayscale = _decode(ImageOps.exif_transpose(pil))
    except GancompError:
        raise
    except (PILImage.DecompressionBombError, PILImage.DecompressionBombWarning) as exc:
        raise _fail(name, f"image is too large ({exc})") from exc
    except UnidentifiedImageError as exc:
        raise _fail(name, "not a recognised image file") from exc
    except PermissionError as exc:
        raise _fail(name, "permission denied") from exc
    except MemoryError as exc:
        raise _fail(name, "not enough memory to decode the image") from exc
    except Exception as exc:  # decoder errors come as OSError, SyntaxError, ValueError, ...
        detail = str(exc).replace("\n", " ").strip() or type(exc).__name__
        raise _fail(name, f"corrupt or truncated image data ({detail})") from exc

    rgb = np.repeat(data[..., None], 3, axis=2) if grayscale else data
    rgb = np.ascontiguousarray(rgb, dtype=np.uint8)
    if alpha is not None:
        alpha = np.ascontiguousarray(alpha, dtype=np.uint8)
    return Image(
        rgb=rgb,
        alpha=alpha,
        grayscale=grayscale,
        bit_depth_reduced=bits > 8,
        path=name,
        source_mode=mode,
        source_format=fmt,
    )


def from_pil(pil: PILImage.Image, name: str = "<PIL image>") -> Image:
    """Wrap an in-memory PIL image like :func:`load_image` does a file."""
    pil.load()
    data, alpha, grayscale = _decode(ImageOps.exif_transpose(pil))
    rgb = np.repeat(data[..., None], 3, axis=2) if grayscale else data
    return Image(
        rgb=np.ascontiguousarray(rgb, dtype=np.uint8),
        alpha=None if alpha is None else np.ascontiguousarray(alpha, dtype=np.uint8),
        grayscale=grayscale,
        bit_depth_reduced=pil.mode in _HIGH_DEPTH_GRAY,
        path=name,
        source_mode=pil.mode,
        source_format=pil.format,
    )


def to_rgb_for_metrics(img: Image) -> np.ndarray:
    """HxWx3 uint8 view of ``img`` for quality metrics.

    Alpha is composited onto white: that is what the image looks like on a typical page, and the
    colour of fully transparent pixels (invisible) does not count.
    """
    if img.alpha is None:
        return img.rgb
    a = img.alpha.astype(np.float64)[..., None] / 255.0
    out = img.rgb.astype(np.float64) * a + 255.0 * (1.0 - a)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def output_format(path: str | os.PathLike[str]) -> str:
    """Pillow format name for an output path, from its extension."""
    ext = Path(path).suffix.lower()
    try:
        return OUTPUT_FORMATS[ext]
    except KeyError:
        choices = ", ".join(OUTPUT_FORMATS)
        shown = f"'{ext}'" if ext else "(none)"
        raise GancompError(
            f"unsupported output extension {shown} for '{os.fspath(path)}' (use one of {choices})"
        ) from None


def save_image(
    path: str | os.PathLike[str],
    rgb: np.ndarray,
    alpha: np.ndarray | None = None,
    grayscale: bool = False,
    force: bool = False,
) -> None:
    """Write an image losslessly (format from the extension), atomically.

    ``rgb`` is HxWx3 uint8. With ``grayscale`` the channel mean is stored as a single gray
    channel (where the format supports it). Refuses to overwrite unless ``force``. Alpha
    cannot be written to BMP (GancompError).
    """
    rgb = np.asarray(rgb)
    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"rgb must be an HxWx3 uint8 array, got {rgb.dtype} {rgb.shape}")
    if alpha is not None:
        alpha = np.asarray(alpha)
        if alpha.dtype != np.uint8 or alpha.shape != rgb.shape[:2]:
            raise ValueError(f"alpha must be an HxW uint8 array, got {alpha.dtype} {alpha.shape}")
    fmt = output_format(path)
    if fmt == "BMP" and alpha is not None:
        # Pillow writes 32-bit BMPs that it (and most readers) load back as opaque RGB.
        raise GancompError(
            f"cannot write '{os.fspath(path)}': BMP cannot store transparency "
            "(use .png, .tif or .webp)"
        )

    if grayscale and fmt != "WEBP":
        # A lossy reconstruction of a gray image may have slightly different channels.
        gray = np.rint(rgb.astype(np.float32).mean(axis=2)).astype(np.uint8)
        pil = PILImage.fromarray(gray if alpha is None else np.dstack([gray, alpha]))
    elif alpha is not None:
        pil = PILImage.fromarray(np.dstack([rgb, alpha]))
    else:
        pil = PILImage.fromarray(np.ascontiguousarray(rgb))

    options: dict[str, object] = {}
    if fmt == "WEBP":
        options = {"lossless": True, "quality": 100, "method": 4, "exact": True}
    elif fmt == "TIFF":
        options = {"compression": "tiff_lzw"}
    elif fmt == "PNG":
        options = {"optimize": False, "compress_level": 6}

    with atomic_open(path, force=force) as fh:
        try:
            pil.save(fh, format=fmt, **options)
        except OSError as exc:
            raise GancompError(f"cannot write '{os.fspath(path)}': {exc}") from exc


def find_images(folder: str | os.PathLike[str], recursive: bool = True) -> list[Path]:
    """Image files in ``folder`` (and its sub-folders), sorted, hidden files skipped."""
    d = Path(folder)
    found = d.rglob("*") if recursive else d.iterdir()
    return sorted(
        p
        for p in found
        if p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith(".") and p.is_file()
    )


def from_array(array: np.ndarray, name: str = "<array>") -> Image:
    """Wrap a uint8 array as an :class:`Image`: the shapes :func:`to_array` returns.

    HxW (or HxWx1) is grayscale, HxWx2 grayscale + alpha, HxWx3 RGB, HxWx4 RGBA.
    """
    arr = np.asarray(array)
    shapes = "HxW (gray), HxWx2 (gray + alpha), HxWx3 (RGB) or HxWx4 (RGBA)"
    if arr.dtype != np.uint8:
        raise InputError(f"expected a uint8 array shaped {shapes}, got dtype {arr.dtype}")
    if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[2] not in (1, 2, 3, 4)):
        raise InputError(f"expected a uint8 array shaped {shapes}, got shape {arr.shape}")
    if arr.ndim == 2:
        arr = arr[..., None]
    channels = arr.shape[2]
    grayscale = channels <= 2
    rgb = np.repeat(arr[..., :1], 3, axis=2) if grayscale else arr[..., :3]
    alpha = arr[..., -1] if channels in (2, 4) else None
    return Image(
        rgb=np.ascontiguousarray(rgb),
        alpha=None if alpha is None else np.ascontiguousarray(alpha),
        grayscale=grayscale,
        bit_depth_reduced=False,
        path=name,
        source_mode={1: "L", 2: "LA", 3: "RGB", 4: "RGBA"}[channels],
    )


def to_array(rgb: np.ndarray, alpha: np.ndarray | None, grayscale: bool) -> np.ndarray:
    """One uint8 array for an image: HxW, HxWx2, HxWx3 or HxWx4 (see :func:`from_array`).

    A grayscale image's gray is the channel mean (a lossy reconstruction may tint it slightly).
    """
    if grayscale:
        gray = np.rint(rgb.astype(np.float32).mean(axis=2)).astype(np.uint8)
        return gray if alpha is None else np.dstack([gray, alpha])
    return rgb if alpha is None else np.dstack([rgb, alpha])
