"""Compress and decompress images with a category model: the public Python API.

Data flow::

    image (imageio) -> pad to stride -> E -> gain, round -> range coder -> .gcz
    .gcz -> range decoder -> inverse gain -> G -> crop -> image (imageio)

Determinism: the network only sees batches whose shape is a function of the
image size alone (fixed chunk size, fixed tile plan), so the bytes written for
an image do not depend on which other images share the call. Entropy coding
uses only the frozen integer tables (see :mod:`gancomp.coding.entropy`).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from gancomp.coding import container
from gancomp.coding.entropy import EntropyTables, LatentCoder
from gancomp.errors import GancompError, InputError
from gancomp.runtime import tiling
from gancomp.runtime.models import ModelFolder, check_category_name, find_model, read_model_folder

DEFAULT_QUALITY = 4
LATENT_MARGIN = 8  # generator overlap per side, in latent pixels


@dataclass
class DecodedImage:
    """What ``decompress`` returns: RGB pixels plus the mode information of the original."""

    rgb: np.ndarray  # HxWx3 uint8
    alpha: np.ndarray | None
    grayscale: bool
    reduced_16bit: bool
    category: str
    quality: int


class Codec:
    """One loaded category model (weights loaded lazily on first use)."""

    def __init__(self, folder: ModelFolder):
        self.folder = folder
        self.tables = EntropyTables.from_bytes(folder.tables)
        self.coder = LatentCoder(self.tables)
        self._net = None  # inference.Transforms, loaded on first use

    @classmethod
    def load(cls, category: str, models_dir: str | os.PathLike | None = None) -> Codec:
        return cls(read_model_folder(find_model(category, models_dir)))

    @classmethod
    def from_path(cls, path: str | os.PathLike) -> Codec:
        return cls(read_model_folder(path))

    @property
    def category(self) -> str:
        return self.folder.category

    @property
    def fingerprint(self) -> bytes:
        return bytes.fromhex(self.folder.fingerprint)

    @property
    def stride(self) -> int:
        return 2 ** int(self.folder.config["num_down"])

    @property
    def levels(self) -> int:
        return int(self.folder.config["levels"])

    # -- network --------------------------------------------------------------
    def _build(self) -> None:
        if self._net is not None:
            return
        import io

        from gancomp.runtime.transforms import Transforms

        with np.load(io.BytesIO(self.folder.weights), allow_pickle=False) as z:
            weights = {k: z[k] for k in z.files}
        try:
            # Inference needs E, G and the gains only, so D never loads.
            net = Transforms(weights, self.folder.config)
            gain = np.exp(weights["gancodec/log_gain"]).astype(np.float32)
            inv_gain = np.exp(weights["gancodec/log_inv_gain"]).astype(np.float32)
        except KeyError as exc:
            raise GancompError(
                f"model folder {self.folder.path} does not match its config ({exc})"
            ) from None
        if gain.shape != (self.levels, net.latent_channels) or inv_gain.shape != gain.shape:
            raise GancompError(f"model folder {self.folder.path}: gains do not match its config")
        self._gain, self._inv_gain, self._net = gain, inv_gain, net

    def level_of(self, quality: int) -> int:
        """The 0-based level of a 1-based quality: the one place the two meet."""
        if not 1 <= quality <= self.levels:
            raise InputError(f"quality must be 1..{self.levels}, got {quality}")
        return quality - 1

    # -- latents --------------------------------------------------------------
    def quantized_latents(self, images: Sequence[np.ndarray], quality: int) -> list[np.ndarray]:
        """Quantized latents (h, w, M) int32 for RGB uint8 images of any size."""
        self._build()
        g = self._gain[self.level_of(quality)]
        s = self.stride

        def fn(b: np.ndarray) -> np.ndarray:
            y = self._net.analysis(b.astype(np.float32) / np.float32(255.0))
            return np.round(y * g).astype(np.int32)

        padded = [_pad(im, s) for im in images]
        return tiling.apply_network(
            padded, fn, scale=(1, s), tile=tiling.TILE, margin=tiling.TILE_MARGIN
        )

    def reconstruct(self, latents: Sequence[np.ndarray], quality: int) -> list[np.ndarray]:
        """RGB uint8 images (padded to the stride) from quantized latents."""
        self._build()
        ig = self._inv_gain[self.level_of(quality)]
        s = self.stride

        def fn(b: np.ndarray) -> np.ndarray:
            # Latents of a damaged (but CRC-valid) file can overflow float32: such pixels
            # come out as 0 or 255, deterministically and without a NumPy warning.
            with np.errstate(over="ignore", invalid="ignore"):
                img = self._net.synthesis(b.astype(np.float32) * ig) * np.float32(255.0)
                img = np.nan_to_num(img, nan=0.0, posinf=255.0, neginf=0.0)
            return np.clip(np.round(img), 0, 255).astype(np.uint8)

        return tiling.apply_network(
            latents, fn, scale=(s, 1), tile=tiling.TILE // s, margin=LATENT_MARGIN
        )

    # -- whole images ---------------------------------------------------------
    def compress_arrays(
        self,
        images: Sequence[np.ndarray],
        quality: int = DEFAULT_QUALITY,
        alphas: Sequence[np.ndarray | None] | None = None,
        grayscale: Sequence[bool] | None = None,
        reduced_16bit: Sequence[bool] | None = None,
    ) -> list[bytes]:
        """Compress RGB uint8 (H, W, 3) arrays to .gcz bytes (batched for speed)."""
        n = len(images)
        for im in images:
            _check_rgb(im)
        level = self.level_of(quality)
        latents = self.quantized_latents(images, quality)
        out = []
        for i, (im, sym) in enumerate(zip(images, latents)):
            payload = self.coder.encode(sym, level)
            alpha = alphas[i] if alphas else None
            header = container.Header(
                self.category,
                quality,
                self.fingerprint,
                im.shape[1],
                im.shape[0],
                grayscale=bool(grayscale[i]) if grayscale else False,
                reduced_16bit=bool(reduced_16bit[i]) if reduced_16bit else False,
                alpha=container.compress_alpha(alpha) if alpha is not None else None,
            )
            out.append(container.pack(header, payload))
        assert len(out) == n
        return out

    def decode_latents(self, items: Sequence[tuple[container.Header, bytes]]) -> list[np.ndarray]:
        """The quantized latents (h, w, M) int32 of parsed .gcz files written by this model.

        Exact on every machine: only the frozen integer tables are involved.
        """
        s = self.stride
        latents = []
        for header, payload in items:
            if header.fingerprint != self.fingerprint:
                raise InputError(
                    f"file was written by model {header.fingerprint.hex()} but the "
                    f"{self.category!r} model here is {self.folder.fingerprint}"
                )
            level = self.level_of(header.quality)
            h, w = -(-header.height // s), -(-header.width // s)
            try:
                latents.append(self.coder.decode(payload, level, (h, w)))
            except InputError:
                raise
            except Exception as exc:  # constriction reports exhausted or invalid streams
                raise InputError(f"corrupt .gcz payload ({exc})") from None
        return latents

    def decode_payloads(
        self, items: Sequence[tuple[container.Header, bytes]]
    ) -> list[DecodedImage]:
        """Decode parsed .gcz files that were all written by this model."""
        latents = self.decode_latents(items)
        by_level: dict[int, list[int]] = {}
        for i, (header, _) in enumerate(items):
            by_level.setdefault(header.quality, []).append(i)
        pixels: list[np.ndarray | None] = [None] * len(items)
        for q, idx in by_level.items():
            for i, im in zip(idx, self.reconstruct([latents[i] for i in idx], q)):
                pixels[i] = im
        out = []
        for (header, _), im in zip(items, pixels):
            rgb = im[: header.height, : header.width]
            alpha = (
                container.decompress_alpha(header.alpha, header.width, header.height)
                if header.alpha is not None
                else None
            )
            out.append(
                DecodedImage(
                    rgb,
                    alpha,
                    header.grayscale,
                    header.reduced_16bit,
                    header.category,
                    header.quality,
                )
            )
        return out


def _check_rgb(im: np.ndarray) -> None:
    if im.ndim != 3 or im.shape[2] != 3 or im.dtype != np.uint8:
        raise InputError(f"expected an HxWx3 uint8 array, got {im.dtype} {im.shape}")
    if im.shape[0] < 1 or im.shape[1] < 1:
        raise InputError("image is empty")
    if im.shape[0] > container.MAX_DIMENSION or im.shape[1] > container.MAX_DIMENSION:
        raise InputError(f"image side over the limit of {container.MAX_DIMENSION} px")
    if im.shape[0] * im.shape[1] > container.MAX_PIXELS:
        raise InputError(f"image over the limit of {container.MAX_PIXELS} pixels")


def _pad(im: np.ndarray, mult: int) -> np.ndarray:
    h, w = im.shape[:2]
    ph, pw = -h % mult, -w % mult
    if ph or pw:
        # Edge padding: no artificial edge for the encoder to spend bits on.
        im = np.pad(im, [(0, ph), (0, pw), (0, 0)], mode="edge")
    return im


_CACHE: dict[tuple[str, str], Codec] = {}


def load_codec(category: str, models_dir: str | os.PathLike | None = None) -> Codec:
    """The codec for ``category`` (cached per process)."""
    key = (str(models_dir or ""), category)
    if key not in _CACHE:
        _CACHE[key] = Codec.load(category, models_dir)
    return _CACHE[key]


def compress(
    image,
    category: str,
    quality: int = DEFAULT_QUALITY,
    models_dir: str | os.PathLike | None = None,
) -> bytes:
    """Compress one image to ``.gcz`` bytes.

    ``image`` is a :class:`gancomp.io.images.Image` (keeps grayscale/alpha
    information), a path, or an HxWx3 uint8 array.
    """
    return compress_many([image], category, quality, models_dir)[0]


def compress_many(
    images: Iterable,
    category: str,
    quality: int = DEFAULT_QUALITY,
    models_dir: str | os.PathLike | None = None,
) -> list[bytes]:
    """Compress several images in batched network calls (same bytes as one at a time).

    ``category="auto"`` picks a model per image (:mod:`gancomp.runtime.auto`).
    """
    from gancomp.io.images import Image, load_image

    items = []
    for im in images:
        if isinstance(im, (str, Path)):
            im = load_image(im)
        items.append(im)
    if category == "auto":
        from gancomp.runtime.auto import compress_auto

        return [data for data, _ in compress_auto(items, quality, models_dir)]
    codec = load_codec(category, models_dir)
    rgb = [im.rgb if isinstance(im, Image) else np.asarray(im) for im in items]
    return codec.compress_arrays(
        rgb,
        quality,
        alphas=[im.alpha if isinstance(im, Image) else None for im in items],
        grayscale=[isinstance(im, Image) and im.grayscale for im in items],
        reduced_16bit=[isinstance(im, Image) and im.bit_depth_reduced for im in items],
    )


def read_header(data: bytes) -> tuple[container.Header, bytes]:
    """Parse and check a .gcz file's header and checksum (no model needed)."""
    return container.unpack(data)


def decompress(data: bytes, models_dir: str | os.PathLike | None = None) -> DecodedImage:
    """Decode ``.gcz`` bytes with the model named in the file's header."""
    return decompress_many([data], models_dir)[0]


def decompress_many(
    blobs: Sequence[bytes], models_dir: str | os.PathLike | None = None
) -> list[DecodedImage]:
    parsed = [container.unpack(b) for b in blobs]
    out: list[DecodedImage | None] = [None] * len(blobs)
    by_cat: dict[str, list[int]] = {}
    for i, (h, _) in enumerate(parsed):
        by_cat.setdefault(h.category, []).append(i)
    for cat, idx in by_cat.items():
        try:
            check_category_name(cat)  # a name read from a file must not point outside models_dir
        except InputError:
            raise InputError(f"corrupt .gcz file: invalid category name {cat!r}") from None
        codec = load_codec(cat, models_dir)
        for i, im in zip(idx, codec.decode_payloads([parsed[i] for i in idx])):
            out[i] = im
    return out  # type: ignore[return-value]
