"""Training data: image folders and CIFAR-10 python batches, into a tf.data pipeline.

Two ways to feed the steps, with the same distribution of patches (each image once per
epoch in random order, a uniformly placed patch, images smaller than the patch padded
by reflection, a horizontal flip half of the time):

* :func:`make_dataset` without a cache: the decoded images are held in memory and
  tf.data crops them;
* with a patch cache (:func:`load_cached`, ``gancomp train --cache-dir``): the images are
  decoded once into a uint8 file that later runs memory-map, and
  :class:`PatchSampler` cuts the batches from it with NumPy.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import secrets
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from gancomp.errors import GancompError, InputError
from gancomp.io.files import atomic_open, atomic_write_bytes
from gancomp.io.images import IMAGE_SUFFIXES, find_images, load_image, to_rgb_for_metrics

CIFAR_CLASSES = (
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
)


@dataclass
class ImageSet:
    """Decoded RGB uint8 images (in memory, or views of a patch cache), and what was skipped."""

    images: list[np.ndarray]
    source: str
    skipped: list[tuple[str, str]] = field(default_factory=list)
    cached: bool = False  # the images are views of a memory-mapped patch cache

    def __len__(self) -> int:
        return len(self.images)


def _decode(path: Path) -> np.ndarray:
    # The one image reader of the package: same modes, EXIF, 16-bit and alpha rules.
    return to_rgb_for_metrics(load_image(path))


def is_cifar_folder(path: Path) -> bool:
    return (path / "batches.meta").is_file() and any(path.glob("data_batch_*"))


def _load_cifar(path: Path, cls: str) -> ImageSet:
    with open(path / "batches.meta", "rb") as f:
        meta = pickle.load(f, encoding="latin1")
    names = list(meta.get("label_names", CIFAR_CLASSES))
    if cls not in names:
        raise InputError(
            f"CIFAR-10 folder {path} has no class {cls!r} (classes: {', '.join(names)}); "
            "pick one with --cifar-class"
        )
    label = names.index(cls)
    out: list[np.ndarray] = []
    skipped: list[tuple[str, str]] = []
    files = sorted(path.glob("data_batch_*")) + sorted(path.glob("test_batch"))
    for fn in files:
        try:
            with open(fn, "rb") as f:
                batch = pickle.load(f, encoding="latin1")
            data = np.asarray(batch["data"], dtype=np.uint8).reshape(-1, 3, 32, 32)
            labels = np.asarray(batch["labels"])
        except Exception as exc:  # corrupt batch: skip it, like a corrupt image
            skipped.append((str(fn), str(exc)))
            continue
        out.extend(data[labels == label].transpose(0, 2, 3, 1))
    return ImageSet(out, f"CIFAR-10 batches in {path}, class {cls}", skipped)


def _check_folder(folder: str | os.PathLike) -> Path:
    path = Path(folder)
    if not path.exists():
        raise InputError(f"data folder {str(path)!r} does not exist")
    if not path.is_dir():
        raise InputError(f"data path {str(path)!r} is not a folder")
    return path


def _image_files(path: Path) -> list[Path]:
    files = find_images(path)
    if not files:
        raise InputError(
            f"no images in {str(path)!r} (looked for {', '.join(sorted(IMAGE_SUFFIXES))}, "
            "or CIFAR-10 data_batch_* files)"
        )
    return files


def _decoded(
    files: list[Path], workers: int, chunk: int = 64
) -> Iterator[tuple[Path, np.ndarray | None, str | None]]:
    """(file, pixels or None, error or None) in file order, a bounded number decoded ahead."""

    def safe(p: Path):
        try:
            return _decode(p), None
        except GancompError as exc:
            return None, str(exc)

    with ThreadPoolExecutor(workers) as pool:
        for start in range(0, len(files), chunk):
            part = files[start : start + chunk]
            for p, (a, err) in zip(part, pool.map(safe, part)):
                yield p, a, err


def _report(result: ImageSet, path: Path) -> ImageSet:
    for name, err in result.skipped:
        # A plain line: the warnings module would add its own source line to each.
        print(f"gancomp: warning: skipping {name}: {err}", file=sys.stderr, flush=True)
    if not result.images:
        raise InputError(f"no readable images in {str(path)!r} ({len(result.skipped)} skipped)")
    return result


def load_folder(
    folder: str | os.PathLike, cifar_class: str | None = None, workers: int = 4
) -> ImageSet:
    """Decode every image under ``folder`` (recursively) or a CIFAR-10 batches folder.

    Unreadable files are skipped, each with one warning line on stderr, and listed in
    ``skipped``. An empty or missing folder raises :class:`InputError`.
    """
    path = _check_folder(folder)
    if is_cifar_folder(path):
        result = _load_cifar(path, cifar_class or "airplane")
    else:
        files = _image_files(path)
        images, skipped = [], []
        for p, a, err in _decoded(files, workers):
            if a is None:
                skipped.append((str(p), err))
            else:
                images.append(a)
        result = ImageSet(images, f"{len(files)} image files under {path}", skipped)
    return _report(result, path)


# -- the patch cache ------------------------------------------------------------------------

#: Bumped when the cache's layout or the decoding rules change: older caches are rebuilt.
CACHE_VERSION = 1


def _cache_sources(path: Path, cifar_class: str | None) -> tuple[list[Path], dict]:
    """The files a cache is built from, and what identifies them (a change means a rebuild)."""
    if is_cifar_folder(path):
        files = [path / "batches.meta", *sorted(path.glob("data_batch_*"))]
        files += sorted(path.glob("test_batch"))
        kind = {"cifar_class": cifar_class or "airplane"}
    else:
        files = _image_files(path)
        kind = {"cifar_class": None}
    stats = []
    for f in files:
        st = f.stat()
        stats.append([str(f.relative_to(path)), st.st_size, st.st_mtime_ns])
    identity = {"version": CACHE_VERSION, "source": str(path.resolve()), **kind, "files": stats}
    return files, identity


def cache_folder(cache_dir: str | os.PathLike, folder: str | os.PathLike, cifar_class=None) -> Path:
    """Where the cache of one data folder (and CIFAR class) lives inside ``cache_dir``."""
    path = Path(folder)
    cls = (cifar_class or "airplane") if is_cifar_folder(path) else None
    key = json.dumps({"source": str(path.resolve()), "cifar_class": cls})
    return Path(cache_dir) / hashlib.sha256(key.encode()).hexdigest()[:16]


def _open_cache(where: Path, identity: dict) -> ImageSet | None:
    """The cached images if the manifest matches ``identity`` and its files are there."""
    try:
        manifest = json.loads((where / "manifest.json").read_text())
    except (OSError, ValueError):
        return None
    if {k: manifest.get(k) for k in identity} != identity:
        return None
    try:
        index = np.load(where / manifest["index"])
        pixels = np.memmap(where / manifest["pixels"], dtype=np.uint8, mode="r")
    except (OSError, ValueError, KeyError):
        return None
    if len(index) and int(index[-1, 0] + index[-1, 1] * index[-1, 2] * 3) != len(pixels):
        return None
    images = [
        pixels[o : o + h * w * 3].reshape(h, w, 3).view(np.ndarray) for o, h, w in index.tolist()
    ]
    skipped = [tuple(item) for item in manifest["skipped"]]
    return ImageSet(images, manifest["description"], skipped, cached=True)


def _build_cache(where: Path, path: Path, identity: dict, workers: int) -> None:
    """Decode the folder into ``where``: pixels and index files under fresh names, then the
    manifest that names them (written last, atomically: the cache's commit point). The
    caller holds the build lock (:func:`_build_lock`) and made the folder."""
    token = secrets.token_hex(4)
    pixels_name, index_name = f"pixels-{token}.u8", f"index-{token}.npy"
    rows: list[tuple[int, int, int]] = []
    skipped: list[tuple[str, str]] = []
    offset = 0
    print(f"gancomp: decoding {path} into the patch cache {where}", file=sys.stderr, flush=True)
    with atomic_open(where / pixels_name) as out:
        if identity["cifar_class"] is not None:
            loaded = _load_cifar(path, identity["cifar_class"])
            skipped = loaded.skipped
            description = loaded.source
            stream = ((None, a, None) for a in loaded.images)
        else:
            files = _image_files(path)
            description = f"{len(files)} image files under {path}"
            stream = _decoded(files, workers)
        for p, a, err in stream:
            if a is None:
                skipped.append((str(p), err))
                continue
            a = np.ascontiguousarray(a, dtype=np.uint8)
            out.write(a.tobytes())
            rows.append((offset, a.shape[0], a.shape[1]))
            offset += a.size
    with atomic_open(where / index_name) as out:
        np.save(out, np.array(rows, dtype=np.int64).reshape(-1, 3))
    manifest = {
        **identity,
        "pixels": pixels_name,
        "index": index_name,
        "description": description,
        "skipped": skipped,
    }
    atomic_write_bytes(where / "manifest.json", json.dumps(manifest).encode(), force=True)
    # Older builds' files (no other build runs meanwhile: the lock).
    keep = {pixels_name, index_name}
    for old in [*where.glob("pixels-*.u8"), *where.glob("index-*.npy")]:
        if old.name not in keep:
            old.unlink(missing_ok=True)


def load_cached(
    folder: str | os.PathLike,
    cifar_class: str | None,
    cache_dir: str | os.PathLike,
    workers: int = 4,
) -> ImageSet:
    """The images of :func:`load_folder`, through a patch cache in ``cache_dir``.

    The first call decodes the folder into ``cache_dir/<key>/`` (one uint8 file holding
    every image's pixels, an index of offsets and sizes, a manifest of the source files'
    sizes and modification times); later calls memory-map it, so no image is decoded. A
    cache whose source files changed is rebuilt. The same pixels as :func:`load_folder`,
    the same skipped files (warned about again).
    """
    path = _check_folder(folder)
    root = Path(cache_dir)
    if root.exists() and not root.is_dir():
        raise InputError(f"--cache-dir {str(root)!r} is not a folder")
    _, identity = _cache_sources(path, cifar_class)
    where = cache_folder(root, path, cifar_class)
    result = _open_cache(where, identity)
    if result is None:
        try:
            where.mkdir(parents=True, exist_ok=True)
            with _build_lock(where):
                # Another run may have built it while this one waited.
                result = _open_cache(where, identity)
                if result is None:
                    _build_cache(where, path, identity, workers)
                    result = _open_cache(where, identity)
        except OSError as exc:
            raise GancompError(f"cannot write the patch cache in {where}: {exc}") from exc
        if result is None:
            raise GancompError(f"the patch cache in {where} changed while it was written")
    return _report(result, path)


@contextmanager
def _build_lock(where: Path) -> Iterator[None]:
    """Hold ``where``'s build lock: runs started together on the same data build the cache
    once (without it each deletes the other's files as an older build's). Released when the
    process ends, however it ends."""
    try:
        import fcntl
    except ImportError:  # Windows: no advisory locks; concurrent builds stay unsupported.
        yield
        return
    with open(where / "build.lock", "ab") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            print(
                f"gancomp: waiting for another run to finish the patch cache in {where}",
                file=sys.stderr,
                flush=True,
            )
            fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def pad_to_patch(a: np.ndarray, patch: int) -> np.ndarray:
    ph, pw = max(patch - a.shape[0], 0), max(patch - a.shape[1], 0)
    if ph or pw:
        a = np.pad(a, [(0, ph), (0, pw), (0, 0)], mode="symmetric")
    return a


class PatchSampler:
    """Batches of random patches cut with NumPy from images in memory or memory-mapped.

    The distribution of :func:`make_dataset`'s tf.data crops: the images in a fresh random
    order each epoch (epochs run into each other across batches), one patch per visit
    placed uniformly (an image smaller than the patch is first padded by reflection, as
    :func:`pad_to_patch`), flipped left-right with probability 1/2. ``start`` (the step a
    resumed run starts at) is part of the seed, so a resumed run does not replay the
    patches it began with.
    """

    def __init__(self, images: ImageSet, patch: int, batch: int, seed: int, start: int = 0):
        self.images = images.images
        self.patch = patch
        self.batch = batch
        self.rng = np.random.default_rng([seed, start])
        self._order = np.zeros(0, np.int64)
        self._next = 0

    def _image_index(self) -> int:
        if self._next == len(self._order):
            self._order = self.rng.permutation(len(self.images))
            self._next = 0
        self._next += 1
        return int(self._order[self._next - 1])

    def patch_of(self, a: np.ndarray) -> np.ndarray:
        p = self.patch
        if a.shape[0] < p or a.shape[1] < p:
            a = pad_to_patch(np.asarray(a), p)
        top = int(self.rng.integers(a.shape[0] - p + 1))
        left = int(self.rng.integers(a.shape[1] - p + 1))
        crop = a[top : top + p, left : left + p]
        return crop[:, ::-1] if self.rng.random() < 0.5 else crop

    def next_batch(self) -> np.ndarray:
        """uint8 (batch, patch, patch, 3)."""
        out = np.empty((self.batch, self.patch, self.patch, 3), np.uint8)
        for i in range(self.batch):
            out[i] = self.patch_of(self.images[self._image_index()])
        return out

    def __iter__(self) -> Iterator[np.ndarray]:
        while True:
            yield self.next_batch()


def make_dataset(
    images: ImageSet,
    patch: int,
    batch: int,
    seed: int,
    shuffle_buffer: int = 4096,
    start: int = 0,
):
    """Infinite tf.data pipeline of float32 [0, 1] patches (batch, patch, patch, 3).

    Images smaller than the patch are reflect/edge padded, not dropped. Random
    crops and horizontal flips augment; shuffling and prefetch keep the two
    cores on the model rather than on input. Cached images (:func:`load_cached`) are cut
    by a :class:`PatchSampler` (``start``: see there) instead of tf.data's crops.
    """
    from gancomp.training._tf import tf as _import_tf

    tf = _import_tf()
    if images.cached:
        sampler = PatchSampler(images, patch, batch, seed, start)
        ds = tf.data.Dataset.from_generator(
            lambda: iter(sampler),
            output_signature=tf.TensorSpec([batch, patch, patch, 3], tf.uint8),
        )
        ds = ds.map(lambda x: tf.cast(x, tf.float32) / 255.0)
        return ds.prefetch(2)
    arrays = [pad_to_patch(a, patch) for a in images.images]
    if len({a.shape for a in arrays}) == 1:
        ds = tf.data.Dataset.from_tensor_slices(np.stack(arrays))
    else:

        def gen():
            yield from arrays

        ds = tf.data.Dataset.from_generator(
            gen, output_signature=tf.TensorSpec([None, None, 3], tf.uint8)
        ).cache()
    ds = ds.shuffle(min(shuffle_buffer, len(images)), seed=seed, reshuffle_each_iteration=True)
    ds = ds.repeat()

    def crop(img):
        img = tf.image.random_crop(img, [patch, patch, 3])
        img = tf.image.random_flip_left_right(img)
        return tf.cast(img, tf.float32) / 255.0

    ds = ds.map(crop, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return ds.batch(batch, drop_remainder=True).prefetch(tf.data.AUTOTUNE)
