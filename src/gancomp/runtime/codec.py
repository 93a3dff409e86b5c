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
import zipfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np

from gancomp.coding import container
from gancomp.coding.context import ContextCoder, ContextTables
from gancomp.coding.entropy import (
    LATENT_LIMIT,
    IndexedCoder,
    LatentCoder,
    budget_bits,
    decoding_errors,
    finish,
    new_decoder,
    new_encoder,
    unpack_tables,
)
from gancomp.errors import GancompError, InputError
from gancomp.runtime import tiling
from gancomp.runtime.blas import single_threaded_blas
from gancomp.runtime.models import ModelFolder, check_category_name, find_model, read_model_folder

DEFAULT_QUALITY = 4
LATENT_MARGIN = 8  # generator overlap per side, in latent pixels
# Batch sizes of the hyperprior's networks, in latent pixels per call: h_a and h_s's mean
# branch are cheap, so their zero-filled batches stay small; the exact index path needs
# no padding and only bounds memory.
HYPER_CHUNK_PIXELS = 1 << 12
INDEX_CHUNK_PIXELS = 1 << 16


@dataclass
class DecodedImage:
    """What ``decompress`` returns: RGB pixels plus the mode information of the original."""

    rgb: np.ndarray  # HxWx3 uint8
    alpha: np.ndarray | None
    grayscale: bool
    reduced_16bit: bool
    category: str
    quality: int
    # The realism weight the generator ran at: r times the add-on's scale for this quality
    # (0 where the add-on does not act, whatever r was asked).
    realism: float = 0.0


class Codec:
    """One loaded category model (weights loaded lazily on first use)."""

    def __init__(self, folder: ModelFolder):
        self.folder = folder
        # The entropy model of the files this codec writes (the header's): the training
        # prior of config.json, except that a factorized model whose tables.npz holds
        # context tables codes its latents channel-context (gancomp.coding.context).
        self.entropy_model = folder.config.get("entropy_model", "factorized")
        if self.entropy_model not in ("factorized", "hyperprior"):
            raise GancompError(
                f"model folder {folder.path}: unknown entropy model {self.entropy_model!r} "
                "(a newer gancomp wrote it?)"
            )
        try:
            tables = unpack_tables(folder.tables)
            if self.hyperprior:
                # z: factorized per (level, z channel); y: one row per Gaussian scale.
                self.z_coder = LatentCoder(tables["z"], tight_escapes=True)
                self.y_coder = IndexedCoder(tables["scale"], tight_escapes=True)
            else:
                # The factorized coder stays: it is the rate model of encoder refinement.
                self.coder = LatentCoder(tables[""])
                self.latent_coder: LatentCoder | ContextCoder = self.coder
                context = ContextTables.from_model_tables(folder.tables)
                if context is not None:
                    if (context.entropy.levels, context.channels) != (
                        self.coder.tables.levels,
                        self.coder.tables.channels,
                    ):
                        raise ValueError("context tables do not match the factorized ones")
                    self.latent_coder = ContextCoder(context)
                    self.entropy_model = "channel-context"
        except (ValueError, KeyError, OSError, zipfile.BadZipFile) as exc:
            raise GancompError(
                f"model folder {folder.path}: tables.npz is damaged ({type(exc).__name__})"
            ) from None
        self._net = None  # runtime.transforms.Transforms, loaded on first use
        self._realism_net = None  # the realism generator, loaded on the first r > 0

    @property
    def hyperprior(self) -> bool:
        return self.entropy_model == "hyperprior"

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

    @property
    def has_realism(self) -> bool:
        """Whether the model has realism branches (decoding with realism > 0)."""
        from gancomp.runtime.realism import has_realism

        return has_realism(self.folder)

    def _realism_synthesis(self):
        """The generator with its realism branches (:mod:`gancomp.runtime.realism`)."""
        if self._realism_net is None:
            import io

            from gancomp.runtime.realism import load_realism_synthesis

            self._build()  # the model's own weights are checked there
            with np.load(io.BytesIO(self.folder.weights), allow_pickle=False) as z:
                weights = {k: z[k] for k in z.files}
            self._realism_net = load_realism_synthesis(self.folder, weights)
        return self._realism_net[0]

    def realism_at(self, quality: int, realism: float) -> float:
        """The effective realism weight of ``quality``: r times the add-on's scale of that
        level (:mod:`gancomp.runtime.realism`); 0 for r = 0 (the add-on is not read)."""
        from gancomp.runtime.realism import check_realism

        r = check_realism(realism)
        if r == 0:
            return 0.0
        self._realism_synthesis()
        return float(np.float32(r) * self._realism_net[1][self.level_of(quality)])

    # -- network --------------------------------------------------------------
    def _build(self) -> None:
        if self._net is not None:
            return
        import io

        from gancomp.runtime.transforms import ModelError, Transforms

        try:
            with np.load(io.BytesIO(self.folder.weights), allow_pickle=False) as z:
                weights = {k: z[k] for k in z.files}
        except (ValueError, OSError, zipfile.BadZipFile, EOFError) as exc:
            raise GancompError(
                f"model folder {self.folder.path}: weights.npz is damaged ({type(exc).__name__})"
            ) from None
        try:
            # Inference needs the transforms and the gains only, so D never loads.
            net = Transforms(weights, self.folder.config)
        except ModelError as exc:
            raise GancompError(f"model folder {self.folder.path}: {exc}") from None
        except KeyError as exc:
            raise GancompError(
                f"model folder {self.folder.path} does not match its config (missing {exc})"
            ) from None
        self._z_gain = net.z_gain
        self._gain, self._inv_gain, self._net = net.gain, net.inv_gain, net

    def level_of(self, quality: int) -> int:
        """The 0-based level of a 1-based quality: the one place the two meet."""
        if not 1 <= quality <= self.levels:
            raise InputError(f"quality must be 1..{self.levels}, got {quality}")
        return quality - 1

    # -- latents --------------------------------------------------------------
    def scaled_latents(self, images: Sequence[np.ndarray], quality: int) -> list[np.ndarray]:
        """The analysis transform's latents times the level's gain, (h, w, M) float32."""
        g = self._gain_of(quality)
        return [y * g for y in self.analysis_latents(images)]

    def _gain_of(self, quality: int) -> np.ndarray:
        self._build()
        return self._gain[self.level_of(quality)]

    def analysis_latents(self, images: Sequence[np.ndarray]) -> list[np.ndarray]:
        """The analysis transform's latents before any level's gain, (h, w, M) float32:
        ``scaled_latents(images, q)`` is these times the gain of q, elementwise (so one
        analysis pass serves every level)."""
        self._build()
        s = self.stride

        def fn(b: np.ndarray) -> np.ndarray:
            return self._net.analysis(b.astype(np.float32) / np.float32(255.0))

        padded = [_pad(im, s) for im in images]
        return tiling.apply_network(
            padded, fn, scale=(1, s), tile=tiling.TILE, margin=tiling.TILE_MARGIN
        )

    def quantized_latents_all_levels(self, images: Sequence[np.ndarray]) -> list[list[np.ndarray]]:
        """``[quantized_latents(images, q) for q in 1..levels]`` from one analysis pass."""
        ys = self.analysis_latents(images)
        return [
            [np.round(y * self._gain_of(q)).astype(np.int32) for y in ys]
            for q in range(1, self.levels + 1)
        ]

    def quantized_latents(self, images: Sequence[np.ndarray], quality: int) -> list[np.ndarray]:
        """Quantized latents (h, w, M) int32 for RGB uint8 images of any size (factorized)."""
        return [np.round(y).astype(np.int32) for y in self.scaled_latents(images, quality)]

    def reconstruct(
        self, latents: Sequence[np.ndarray], quality: int, realism: float = 0.0
    ) -> list[np.ndarray]:
        """RGB uint8 images (padded to the stride) from quantized latents.

        ``realism`` in [0, 1] is the decode-time realism weight r: 0 is the fidelity
        generator (exactly, branches never run), > 0 needs a model with realism branches
        and runs them at r times the level's scale (:meth:`realism_at`).
        """
        self._build()
        r = self.realism_at(quality, realism)
        synthesis = self._realism_synthesis() if r > 0 else self._net.synthesis
        ig = self._inv_gain[self.level_of(quality)]
        s = self.stride

        def fn(b: np.ndarray, origin: tuple[int, int]) -> np.ndarray:
            # Latents of a damaged (but CRC-valid) file can overflow float32: such pixels
            # come out as 0 or 255, deterministically and without a NumPy warning.
            with np.errstate(over="ignore", invalid="ignore"):
                img = synthesis(b.astype(np.float32) * ig, r, origin) * np.float32(255.0)
                img = np.nan_to_num(img, nan=0.0, posinf=255.0, neginf=0.0)
            return np.clip(np.round(img), 0, 255).astype(np.uint8)

        return tiling.apply_network(
            latents,
            fn,
            scale=(s, 1),
            tile=tiling.TILE // s,
            margin=LATENT_MARGIN,
            with_origin=True,
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
        for im in images:
            _check_rgb(im)
        level = self.level_of(quality)
        if self.hyperprior:
            payloads = self._hyper_encode(self.scaled_latents(images, quality), level)
        else:
            payloads = self._encode_latents(self.quantized_latents(images, quality), level)
        shapes = [im.shape[:2] for im in images]
        return self._pack(shapes, payloads, quality, alphas, grayscale, reduced_16bit)

    def _encode_latents(self, syms: Sequence[np.ndarray], level: int) -> list[bytes]:
        """Payloads of quantized latents (factorized or channel-context models)."""
        if isinstance(self.latent_coder, ContextCoder):  # batched across same-sized images
            return self.latent_coder.encode_many(syms, level)
        return [self.latent_coder.encode(sym, level) for sym in syms]

    def _pack(
        self,
        shapes: Sequence[tuple[int, int]],
        payloads: Sequence[bytes],
        quality: int,
        alphas: Sequence[np.ndarray | None] | None,
        grayscale: Sequence[bool] | None,
        reduced_16bit: Sequence[bool] | None,
    ) -> list[bytes]:
        """Whole .gcz files: the header of each (height, width) image, then its payload."""
        out = []
        for i, ((height, width), payload) in enumerate(zip(shapes, payloads, strict=True)):
            alpha = alphas[i] if alphas else None
            header = container.Header(
                self.category,
                quality,
                self.fingerprint,
                width,
                height,
                entropy_model=self.entropy_model,
                grayscale=bool(grayscale[i]) if grayscale else False,
                reduced_16bit=bool(reduced_16bit[i]) if reduced_16bit else False,
                alpha=container.compress_alpha(alpha) if alpha is not None else None,
            )
            out.append(container.pack(header, payload))
        return out

    def decode_symbols(
        self, items: Sequence[tuple[container.Header, bytes]]
    ) -> list[dict[str, np.ndarray]]:
        """The coded integers of parsed .gcz files written by this model, per stream:
        ``{"y": (h, w, M)}``, with a hyperprior also ``{"z": (hz, wz, Mz)}`` (y holds
        round(y - mean) then). Exact on every machine: only integer tables and the
        integer index path are involved.
        """
        s = self.stride
        out = []
        jobs = []
        for header, payload in items:
            if header.fingerprint != self.fingerprint:
                raise InputError(
                    f"file was written by model {header.fingerprint.hex()} but the "
                    f"{self.category!r} model here is {self.folder.fingerprint}"
                )
            if header.entropy_model != self.entropy_model:
                raise InputError(
                    f"file is coded with the {header.entropy_model} entropy model but "
                    f"model {self.folder.fingerprint} codes with {self.entropy_model}"
                )
            level = self.level_of(header.quality)
            h, w = -(-header.height // s), -(-header.width // s)
            jobs.append((payload, level, (h, w)))
        try:
            if self.hyperprior:
                return self._hyper_decode_symbols(jobs)
            if isinstance(self.latent_coder, ContextCoder):  # batched across same-sized files
                return [{"y": y} for y in self.latent_coder.decode_many(jobs)]
            for payload, level, shape in jobs:
                out.append({"y": self.latent_coder.decode(payload, level, shape)})
        except InputError:
            raise
        except Exception as exc:  # constriction reports exhausted or invalid streams
            raise InputError(f"corrupt .gcz payload ({exc})") from None
        return out

    def decode_latents(self, items: Sequence[tuple[container.Header, bytes]]) -> list[np.ndarray]:
        """The coded latents y of each file (see :meth:`decode_symbols`)."""
        return [sym["y"] for sym in self.decode_symbols(items)]

    # -- the hyperprior ---------------------------------------------------------
    def _z_grid(self, h: int, w: int) -> tuple[int, int]:
        f = 2**self._net.hyper_down
        return -(-h // f), -(-w // f)

    def _hyper_means(self, z_syms: Sequence[np.ndarray], shapes) -> list[np.ndarray]:
        """h_s's mean branch (float32) for decoded z, cropped to y's grid."""
        f = 2**self._net.hyper_down
        means = tiling.apply_network(
            z_syms,
            lambda b: self._net.hyper_mean(b.astype(np.float32)),
            scale=(f, 1),
            tile=0,
            margin=0,
            tiled=False,
            chunk_pixels=HYPER_CHUNK_PIXELS,
        )
        return [m[:h, :w] for m, (h, w) in zip(means, shapes)]

    def _scale_indexes(
        self, z_syms: Sequence[np.ndarray], shapes: Sequence[tuple[int, int]]
    ) -> list[np.ndarray]:
        """The exact scale-table index of every element of each y, (h, w, M) int32.

        Same-shaped z run as one batch: the integer path's sums are exact, so the
        indexes never depend on the batch (unlike float networks, no padding needed).
        """
        out: list[np.ndarray | None] = [None] * len(z_syms)
        groups: dict[tuple, list[int]] = {}
        for i, z in enumerate(z_syms):
            groups.setdefault(z.shape, []).append(i)
        f2 = 4**self._net.hyper_down
        with single_threaded_blas():
            for shape, idx in groups.items():
                size = max(1, INDEX_CHUNK_PIXELS // (shape[0] * shape[1] * f2))
                for start in range(0, len(idx), size):
                    part = idx[start : start + size]
                    res = self._net.scale_index(np.stack([z_syms[i] for i in part]))
                    for i, r in zip(part, res):
                        h, w = shapes[i]
                        out[i] = r[:h, :w]
        return out  # type: ignore[return-value]

    def hyper_latents(self, ys: Sequence[np.ndarray], level: int) -> list[np.ndarray]:
        """z = h_a(y) times the 0-based level's z gain (when the model has one), float32
        (hz, wz, Mz) for scaled latents y: what the encoder rounds and codes as z."""
        self._build()
        if not self.hyperprior:
            raise InputError("a factorized model has no hyper-latent z")
        f = 2**self._net.hyper_down
        zs = tiling.apply_network(
            [_pad(y, f) for y in ys],
            self._net.hyper_analysis,
            scale=(1, f),
            tile=0,
            margin=0,
            tiled=False,
            chunk_pixels=HYPER_CHUNK_PIXELS,
        )
        if self._z_gain is None:
            return zs
        return [z * self._z_gain[level] for z in zs]

    def _hyper_encode(
        self,
        ys: Sequence[np.ndarray],
        level: int,
        z_syms: Sequence[np.ndarray] | None = None,
    ) -> list[bytes]:
        """Payloads of scaled latents y; z = round(:meth:`hyper_latents`) unless ``z_syms``
        gives it."""
        self._build()
        if z_syms is None:
            z_syms = [np.round(z).astype(np.int32) for z in self.hyper_latents(ys, level)]
        shapes = [y.shape[:2] for y in ys]
        means = self._hyper_means(z_syms, shapes)
        indexes = self._scale_indexes(z_syms, shapes)
        payloads = []
        for y, z_sym, mean, index in zip(ys, z_syms, means, indexes):
            residual = np.round(y - mean).astype(np.int32)
            enc = new_encoder()
            # z first, its escapes included: the decoder needs all of z for y's indexes.
            self.z_coder.encode_into(enc, z_sym, level)
            self.y_coder.encode_into(enc, residual, index.ravel())
            payloads.append(finish(enc))
        return payloads

    def _hyper_decode_symbols(self, jobs: Sequence[tuple[bytes, int, tuple[int, int]]]):
        """Decode (payload, level, (h, w)) jobs: every z first, then all scale indexes in
        batches, then every y, each from where its own stream stopped."""
        self._build()
        states = []
        for payload, level, (h, w) in jobs:
            budget = budget_bits(payload)
            dec = new_decoder(payload)
            zh, zw = self._z_grid(h, w)
            z = decoding_errors(partial(self.z_coder.decode_from, dec, level, (zh, zw), budget))
            states.append((dec, budget, z))
        shapes = [shape for _, _, shape in jobs]
        indexes = self._scale_indexes([z for _, _, z in states], shapes)
        out = []
        for (dec, budget, z), index, (h, w) in zip(states, indexes, shapes):
            y = decoding_errors(partial(self.y_coder.decode_from, dec, index.ravel(), budget))
            out.append({"z": z, "y": y.reshape(h, w, -1).astype(np.int32)})
        return out

    def decode_payloads(
        self, items: Sequence[tuple[container.Header, bytes]], realism: float = 0.0
    ) -> list[DecodedImage]:
        """Decode parsed .gcz files that were all written by this model, at realism r
        (see :meth:`reconstruct`)."""
        from gancomp.runtime.realism import check_realism, no_realism_error

        if check_realism(realism) > 0 and not self.has_realism:
            raise no_realism_error(self.folder)  # before any decoding work
        symbols = self.decode_symbols(items)
        if self.hyperprior:
            means = self._hyper_means(
                [sym["z"] for sym in symbols], [sym["y"].shape[:2] for sym in symbols]
            )
            latents = [sym["y"] + mean for sym, mean in zip(symbols, means)]
        else:
            latents = [sym["y"] for sym in symbols]
        by_level: dict[int, list[int]] = {}
        for i, (header, _) in enumerate(items):
            by_level.setdefault(header.quality, []).append(i)
        pixels: list[np.ndarray | None] = [None] * len(items)
        for q, idx in by_level.items():
            for i, im in zip(idx, self.reconstruct([latents[i] for i in idx], q, realism)):
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
                    self.realism_at(header.quality, realism),
                )
            )
        return out

    # -- latents given by the caller ---------------------------------------------
    def compress_latents(
        self,
        shapes: Sequence[tuple[int, int]],
        ys: Sequence[np.ndarray],
        zs: Sequence[np.ndarray] | None = None,
        quality: int = DEFAULT_QUALITY,
        alphas: Sequence[np.ndarray | None] | None = None,
        grayscale: Sequence[bool] | None = None,
        reduced_16bit: Sequence[bool] | None = None,
    ) -> list[bytes]:
        """.gcz bytes of images given by their latents instead of their pixels.

        ``shapes`` are the images' (height, width); ``ys`` their scaled latents (what
        :meth:`scaled_latents` returns, e.g. after an encoder-side refinement,
        :mod:`gancomp.refine`), float (h, w, M) on the latent grid of each size. The file
        codes round(y) (factorized), or with a hyperprior round(z) and round(y - mean), the
        mean and the scale indexes computed from round(z) exactly as the decoder does;
        ``zs`` (float or int, on z's grid) is the hyper-latent, h_a(y) times the level's z
        gain (:meth:`hyper_latents`) when not given. With
        ``ys = scaled_latents(images)`` and no ``zs`` the bytes are those of
        :meth:`compress_arrays`.
        """
        self._build()
        n = len(shapes)
        if len(ys) != n or (zs is not None and len(zs) != n):
            raise InputError(f"{n} image shapes but {len(ys)} latents")
        if zs is not None and not self.hyperprior:
            raise InputError("a factorized model codes no hyper-latent z")
        level = self.level_of(quality)
        s, m = self.stride, self._net.latent_channels
        latents = []
        for i, ((height, width), y) in enumerate(zip(shapes, ys)):
            if not (
                1 <= height <= container.MAX_DIMENSION and 1 <= width <= container.MAX_DIMENSION
            ):
                raise InputError(f"image size {width}x{height} out of range")
            if height * width > container.MAX_PIXELS:
                raise InputError(f"image over the limit of {container.MAX_PIXELS} pixels")
            y = np.asarray(y, np.float32)
            expected = (-(-height // s), -(-width // s), m)
            if y.shape != expected:
                raise InputError(
                    f"latent {i} has shape {y.shape}, a {width}x{height} image needs {expected}"
                )
            if not np.isfinite(y).all():
                raise InputError(f"latent {i} is not finite")
            latents.append(y)
        if not self.hyperprior:
            payloads = self._encode_latents([_symbols(y) for y in latents], level)
        else:
            z_syms = None
            if zs is not None:
                z_syms = []
                for i, (y, z) in enumerate(zip(latents, zs)):
                    z = np.asarray(z)
                    expected = (*self._z_grid(*y.shape[:2]), self._net.hyper_analysis.out_channels)
                    if z.shape != expected:
                        raise InputError(
                            f"hyper-latent {i} has shape {z.shape}, expected {expected}"
                        )
                    if not np.isfinite(z).all():
                        raise InputError(f"hyper-latent {i} is not finite")
                    z_syms.append(_symbols(z))
            payloads = self._hyper_encode(latents, level, z_syms)
        return self._pack(shapes, payloads, quality, alphas, grayscale, reduced_16bit)


def _symbols(v: np.ndarray) -> np.ndarray:
    """round(v) as int32; beyond the coder's range clipped first (where it would clip them)."""
    return np.clip(np.round(v), -LATENT_LIMIT, LATENT_LIMIT).astype(np.int32)


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


_CACHE: dict[Path, tuple[tuple, Codec]] = {}  # model folder -> (its files' stamp, codec)


def load_codec(category: str, models_dir: str | os.PathLike | None = None) -> Codec:
    """The codec for ``category`` (cached per process).

    The cache is keyed by the model folder the search finds now, not by the arguments:
    ``$GANCOMP_MODELS`` or a user's overriding model may appear between calls, and a
    folder replaced on disk (a new training run) is reloaded.
    """
    from gancomp.runtime.models import FILES
    from gancomp.runtime.realism import REALISM_FILES

    path = find_model(category, models_dir).resolve()
    try:
        stamp = tuple(
            (st.st_ino, st.st_size, st.st_mtime_ns)
            for st in ((path / name).stat() for name in FILES)
        )
    except OSError:
        stamp = ()  # vanished since the search: the load below says what is missing
    if stamp:
        # Realism branches added (or replaced) beside an unchanged model reload it too.
        stamp += tuple(
            (st.st_ino, st.st_size, st.st_mtime_ns) if st else None
            for st in (_stat_or_none(path / name) for name in REALISM_FILES)
        )
    cached = _CACHE.get(path)
    if cached is None or cached[0] != stamp or not stamp:
        _CACHE[path] = (stamp, Codec.from_path(path))
    return _CACHE[path][1]


def _stat_or_none(path: Path) -> os.stat_result | None:
    try:
        return path.stat()
    except OSError:
        return None


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
    from gancomp.io.images import load_image

    items = []
    for im in images:
        if isinstance(im, (str, Path)):
            im = load_image(im)
        items.append(im)
    if category == "auto":
        from gancomp.runtime.auto import compress_auto

        return [data for data, _ in compress_auto(items, quality, models_dir)]
    rgb, fields = image_fields(items)
    return load_codec(category, models_dir).compress_arrays(rgb, quality, **fields)


def image_fields(items: Sequence) -> tuple[list[np.ndarray], dict[str, list]]:
    """RGB arrays of :class:`~gancomp.io.images.Image` objects or HxWx3 arrays, and the header
    fields :meth:`Codec.compress_arrays` takes for them (alpha, grayscale, 16-bit)."""
    from gancomp.io.images import Image

    rgb = [im.rgb if isinstance(im, Image) else np.asarray(im) for im in items]
    fields = {
        "alphas": [im.alpha if isinstance(im, Image) else None for im in items],
        "grayscale": [isinstance(im, Image) and im.grayscale for im in items],
        "reduced_16bit": [isinstance(im, Image) and im.bit_depth_reduced for im in items],
    }
    return rgb, fields


def read_header(data: bytes) -> tuple[container.Header, bytes]:
    """Parse and check a .gcz file's header and checksum (no model needed)."""
    return container.unpack(data)


def decompress(
    data: bytes, models_dir: str | os.PathLike | None = None, realism: float = 0.0
) -> DecodedImage:
    """Decode ``.gcz`` bytes with the model named in the file's header.

    ``realism`` in [0, 1] is the receiver's choice between the most faithful
    reconstruction (0, the default) and the most realistic one (1); the file is the same
    for every r. r > 0 needs a model with realism branches (:mod:`gancomp.runtime.realism`).
    """
    return decompress_many([data], models_dir, realism)[0]


def decompress_many(
    blobs: Sequence[bytes], models_dir: str | os.PathLike | None = None, realism: float = 0.0
) -> list[DecodedImage]:
    from gancomp.runtime.realism import check_realism

    realism = check_realism(realism)
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
        for i, im in zip(idx, codec.decode_payloads([parsed[i] for i in idx], realism)):
            out[i] = im
    return out  # type: ignore[return-value]
