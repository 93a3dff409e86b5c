"""Compress and decompress images with a category model: the public Python API.

Data flow::

    image (imageio) -> pad to stride -> E -> gain, round -> range coder -> .gcz
    .gcz -> range decoder -> inverse gain -> G -> crop -> image (imageio)

Determinism: the network only sees batches whose shape is a function of the
image size alone (fixed chunk size, fixed tile plan), so the bytes written for
an image do not depend on which other images share the call. Entropy coding
uses only the frozen integer tables (see :mod:`gancomp.entropy`).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import container
from .entropy import EntropyTables, LatentCoder
from .errors import GancompError, InputError
from .inference import single_threaded_blas
from .models import ModelFolder, check_category_name, find_model, read_model_folder

DEFAULT_QUALITY = 4
# Pixels per network call: bounds memory and fixes the batch shape per image size.
CHUNK_PIXELS = 1 << 16
TILE = 512  # tile side (pixels) for images too big for one pass
TILE_MARGIN = 64  # overlap per side, beyond the transforms' receptive field
TILE_THRESHOLD = 1024 * 1024  # padded pixels above which images are tiled
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

        from .inference import Transforms

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

    def _check_level(self, quality: int) -> int:
        if not 1 <= quality <= self.levels:
            raise InputError(f"quality must be 1..{self.levels}, got {quality}")
        return quality - 1

    # -- latents --------------------------------------------------------------
    def analyse(self, images: Sequence[np.ndarray], quality: int) -> list[np.ndarray]:
        """Quantized latents (h, w, M) int32 for RGB uint8 images of any size."""
        self._build()
        g = self._gain[self._check_level(quality)]
        s = self.stride

        def fn(b: np.ndarray) -> np.ndarray:
            y = self._net.encode(b.astype(np.float32) / np.float32(255.0))
            return np.round(y * g).astype(np.int32)

        padded = [_pad(im, s) for im in images]
        return _apply(padded, fn, scale=(1, s), tile=TILE, margin=TILE_MARGIN)

    def synthesise(self, latents: Sequence[np.ndarray], quality: int) -> list[np.ndarray]:
        """RGB uint8 images (padded to the stride) from quantized latents."""
        self._build()
        ig = self._inv_gain[self._check_level(quality)]
        s = self.stride

        def fn(b: np.ndarray) -> np.ndarray:
            # Latents of a damaged (but CRC-valid) file can overflow float32: such pixels
            # come out as 0 or 255, deterministically and without a NumPy warning.
            with np.errstate(over="ignore", invalid="ignore"):
                img = self._net.generate(b.astype(np.float32) * ig) * np.float32(255.0)
                img = np.nan_to_num(img, nan=0.0, posinf=255.0, neginf=0.0)
            return np.clip(np.round(img), 0, 255).astype(np.uint8)

        return _apply(latents, fn, scale=(s, 1), tile=TILE // s, margin=LATENT_MARGIN)

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
        latents = self.analyse(images, quality)
        out = []
        for i, (im, sym) in enumerate(zip(images, latents)):
            payload = self.coder.encode(sym, quality - 1)
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

    def decode_payloads(
        self, items: Sequence[tuple[container.Header, bytes]]
    ) -> list[DecodedImage]:
        """Decode parsed .gcz files that were all written by this model."""
        s = self.stride
        latents = []
        for header, payload in items:
            if header.fingerprint != self.fingerprint:
                raise InputError(
                    f"file was written by model {header.fingerprint.hex()} but the "
                    f"{self.category!r} model here is {self.folder.fingerprint}"
                )
            self._check_level(header.quality)
            h, w = -(-header.height // s), -(-header.width // s)
            try:
                latents.append(self.coder.decode(payload, header.quality - 1, (h, w)))
            except InputError:
                raise
            except Exception as exc:  # constriction reports exhausted or invalid streams
                raise InputError(f"corrupt .gcz payload ({exc})") from None
        by_level: dict[int, list[int]] = {}
        for i, (header, _) in enumerate(items):
            by_level.setdefault(header.quality, []).append(i)
        pixels: list[np.ndarray | None] = [None] * len(items)
        for q, idx in by_level.items():
            for i, im in zip(idx, self.synthesise([latents[i] for i in idx], q)):
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


def _chunk_size(pixels: int) -> int:
    return int(max(1, min(64, CHUNK_PIXELS // max(pixels, 1))))


def _apply(
    arrays: Sequence[np.ndarray],
    fn: Callable[[np.ndarray], np.ndarray],
    scale: tuple[int, int],
    tile: int,
    margin: int,
) -> list[np.ndarray]:
    """Run a fully convolutional ``fn`` over arrays of any sizes, deterministically.

    Same-shaped arrays are stacked and run in zero-filled chunks of a size that
    depends on the shape only; arrays over the tile threshold run alone in
    overlapping tiles. Output side = input side * scale[0] / scale[1].
    """
    num, den = scale
    out: list[np.ndarray | None] = [None] * len(arrays)
    groups: dict[tuple, list[int]] = {}
    for i, a in enumerate(arrays):
        groups.setdefault(a.shape, []).append(i)
    # Independent network calls, each a (make the input batch, store the output) pair.
    calls: list[tuple[Callable[[], np.ndarray], Callable[[np.ndarray], None]]] = []
    tiled: list[tuple[int, list, list]] = []
    for shape, idx in groups.items():
        pixels = shape[0] * shape[1] * max(num, den) ** 2
        if pixels > TILE_THRESHOLD:
            for i in idx:
                plan = _tile_plan(shape, tile, margin)
                pieces: list = [None] * len(plan)
                tiled.append((i, plan, pieces))
                for t, box in enumerate(plan):
                    calls.append(_tile_call(arrays[i], box, pieces, t))
            continue
        size = _chunk_size(pixels)
        for start in range(0, len(idx), size):
            calls.append(_chunk_call(arrays, idx[start : start + size], size, out))
    _run_calls(fn, calls)
    for i, plan, pieces in tiled:
        out[i] = _assemble(arrays[i].shape, plan, pieces, num, den, tile, margin)
    return out  # type: ignore[return-value]


def _chunk_call(arrays, members: list[int], size: int, out: list):
    """A zero-filled batch of ``size`` same-shaped arrays; outputs go to ``out[members]``."""

    def batch() -> np.ndarray:
        part = np.stack([arrays[i] for i in members])
        if len(part) < size:
            part = np.concatenate([part, np.zeros((size - len(part), *part.shape[1:]), part.dtype)])
        return part

    def store(y: np.ndarray) -> None:
        for i, row in zip(members, y):
            out[i] = row

    return batch, store


def _tile_call(a: np.ndarray, box: tuple[int, ...], pieces: list, t: int):
    y0, y1, x0, x1 = box[:4]
    return (lambda: a[None, y0:y1, x0:x1]), (lambda y: pieces.__setitem__(t, y[0]))


def _threads() -> int:
    """Network calls run side by side: $GANCOMP_THREADS, else the usable cores."""
    env = os.environ.get("GANCOMP_THREADS", "")
    if env.isdigit() and int(env) > 0:
        return int(env)
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _run_calls(fn, calls) -> None:
    """Each call runs alone with single-threaded BLAS; results never depend on the pool."""
    with single_threaded_blas():
        workers = min(_threads(), len(calls))
        if workers <= 1:
            for batch, store in calls:
                store(fn(batch()))
            return
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(workers, thread_name_prefix="gancomp-net") as pool:
            # Bounded look-ahead keeps at most a few batches' activations in memory.
            pending = []
            for batch, store in calls:
                pending.append((pool.submit(lambda b=batch: fn(b())), store))
                if len(pending) >= 2 * workers:
                    done, store_fn = pending.pop(0)
                    store_fn(done.result())
            for done, store_fn in pending:
                store_fn(done.result())


def _tiles(n: int, tile: int, margin: int):
    """(start, stop, keep_start, keep_stop) along one axis; the keep ranges tile the axis."""
    return [
        (max(k0 - margin, 0), min(k0 + tile + margin, n), k0, min(k0 + tile, n))
        for k0 in range(0, n, tile)
    ]


def _tile_plan(shape: tuple, tile: int, margin: int) -> list[tuple[int, ...]]:
    """Row-major tiles: (y0, y1, x0, x1, keep_y0, keep_y1, keep_x0, keep_x1)."""
    return [
        (y0, y1, x0, x1, ky0, ky1, kx0, kx1)
        for y0, y1, ky0, ky1 in _tiles(shape[0], tile, margin)
        for x0, x1, kx0, kx1 in _tiles(shape[1], tile, margin)
    ]


def _assemble(shape: tuple, plan: list, pieces: list, num: int, den: int, tile: int, margin: int):
    """Crop each tile's output to its keep box and join them (plan as from _tile_plan)."""

    def conv(v: int) -> int:
        return v * num // den

    n_cols = len(_tiles(shape[1], tile, margin))
    rows = []
    for r in range(0, len(plan), n_cols):
        cols = []
        for (y0, _, x0, _, ky0, ky1, kx0, kx1), y in zip(
            plan[r : r + n_cols], pieces[r : r + n_cols]
        ):
            cols.append(y[conv(ky0 - y0) : conv(ky1 - y0), conv(kx0 - x0) : conv(kx1 - x0)])
        rows.append(np.concatenate(cols, axis=1))
    return np.concatenate(rows, axis=0)


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

    ``image`` is a :class:`gancomp.imageio.Image` (keeps grayscale/alpha
    information), a path, or an HxWx3 uint8 array.
    """
    return compress_many([image], category, quality, models_dir)[0]


def compress_many(
    images: Iterable,
    category: str,
    quality: int = DEFAULT_QUALITY,
    models_dir: str | os.PathLike | None = None,
) -> list[bytes]:
    """Compress several images in batched network calls (same bytes as one at a time)."""
    from .imageio import Image, load_image

    items = []
    for im in images:
        if isinstance(im, (str, Path)):
            im = load_image(im)
        items.append(im)
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
