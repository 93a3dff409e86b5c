"""Training data: image folders and CIFAR-10 python batches, into a tf.data pipeline."""

from __future__ import annotations

import os
import pickle
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from gancomp.errors import GancompError, InputError
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
    """Decoded RGB uint8 images held in memory, and what was skipped."""

    images: list[np.ndarray]
    source: str
    skipped: list[tuple[str, str]] = field(default_factory=list)

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


def load_folder(
    folder: str | os.PathLike, cifar_class: str | None = None, workers: int = 4
) -> ImageSet:
    """Decode every image under ``folder`` (recursively) or a CIFAR-10 batches folder.

    Unreadable files are skipped, each with one warning line on stderr, and listed in
    ``skipped``. An empty or missing folder raises :class:`InputError`.
    """
    path = Path(folder)
    if not path.exists():
        raise InputError(f"data folder {str(path)!r} does not exist")
    if not path.is_dir():
        raise InputError(f"data path {str(path)!r} is not a folder")
    if is_cifar_folder(path):
        result = _load_cifar(path, cifar_class or "airplane")
    else:
        files = find_images(path)
        if not files:
            raise InputError(
                f"no images in {str(path)!r} (looked for {', '.join(sorted(IMAGE_SUFFIXES))}, "
                "or CIFAR-10 data_batch_* files)"
            )

        def safe(p: Path):
            try:
                return _decode(p), None
            except GancompError as exc:
                return None, str(exc)

        with ThreadPoolExecutor(workers) as pool:
            decoded = list(pool.map(safe, files))
        images = [a for a, _ in decoded if a is not None]
        skipped = [(str(p), err) for p, (a, err) in zip(files, decoded) if a is None]
        result = ImageSet(images, f"{len(files)} image files under {path}", skipped)
    for name, err in result.skipped:
        # A plain line: the warnings module would add its own source line to each.
        print(f"gancomp: warning: skipping {name}: {err}", file=sys.stderr, flush=True)
    if not result.images:
        raise InputError(f"no readable images in {str(path)!r} ({len(result.skipped)} skipped)")
    return result


def pad_to_patch(a: np.ndarray, patch: int) -> np.ndarray:
    ph, pw = max(patch - a.shape[0], 0), max(patch - a.shape[1], 0)
    if ph or pw:
        a = np.pad(a, [(0, ph), (0, pw), (0, 0)], mode="symmetric")
    return a


def make_dataset(images: ImageSet, patch: int, batch: int, seed: int, shuffle_buffer: int = 4096):
    """Infinite tf.data pipeline of float32 [0, 1] patches (batch, patch, patch, 3).

    Images smaller than the patch are reflect/edge padded, not dropped. Random
    crops and horizontal flips augment; shuffling and prefetch keep the two
    cores on the model rather than on input.
    """
    from gancomp.training._tf import tf as _import_tf

    tf = _import_tf()
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
