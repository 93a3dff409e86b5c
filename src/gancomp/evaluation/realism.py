"""How real reconstructions look, measured without any downloaded network.

Two measures, both comparing a set of originals with their reconstructions:

- :func:`high_frequency_ratio`: the spectral power of the reconstructions above half the
  Nyquist frequency over that of the originals (NumPy only). A blurring decoder gives well
  under 1, added noise or ringing over 1.
- :func:`two_sample_accuracy`: a classifier two-sample test (D. Lopez-Paz and M. Oquab,
  "Revisiting classifier two-sample tests", ICLR 2017). A small fresh CNN critic learns to
  tell originals from reconstructions on half of the images and is scored on the other half:
  0.5 means it cannot tell them apart. It needs TensorFlow (the ``train`` extra), imported
  only when the test runs, so importing this module stays light.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from gancomp.errors import GancompError, InputError

#: Frequencies (cycles/pixel) strictly above this, along either axis, are "high".
#: Nyquist is 0.5 cycles/pixel; this is half of it.
HIGH_FREQUENCY_CUTOFF = 0.25

#: Critic training defaults: a few hundred Adam steps of 64 samples (32 pairs) each.
DEFAULT_STEPS = 400
BATCH_PAIRS = 32
LEARNING_RATE = 3e-3


def _as_float_image(a: np.ndarray) -> np.ndarray:
    x = np.asarray(a, dtype=np.float64)
    if x.ndim == 2:
        x = x[..., None]
    if x.ndim != 3:
        raise InputError(f"expected an HxW or HxWxC image array, got shape {x.shape}")
    return x


def _check_pairs(originals: Sequence[np.ndarray], reconstructions: Sequence[np.ndarray]) -> None:
    if len(originals) != len(reconstructions):
        raise InputError(f"{len(originals)} originals but {len(reconstructions)} reconstructions")
    if not originals:
        raise InputError("no images to compare")
    for i, (a, b) in enumerate(zip(originals, reconstructions)):
        if np.shape(a) != np.shape(b):
            raise InputError(
                f"image {i}: original {np.shape(a)} and reconstruction {np.shape(b)} differ in shape"
            )


def high_frequency_power(image: np.ndarray) -> float:
    """Power of ``image``'s 2-D DFT at frequencies with max(|fx|, |fy|) > Nyquist / 2.

    ``image`` is HxW or HxWxC (any value range; uint8 in practice). Each channel's mean is
    removed, then its unnormalised DFT is taken over the whole image (no window: the
    wrap-around edge counts alike in an original and its reconstruction); frequencies are
    ``numpy.fft.fftfreq`` in cycles/pixel (Nyquist = 0.5), and the power is the sum of
    |DFT|^2 / (H * W) over the bins with max(|fx|, |fy|) > 0.25, over all channels.
    """
    x = _as_float_image(image)
    h, w = x.shape[:2]
    x = x - x.mean(axis=(0, 1), keepdims=True)
    spectrum = np.fft.fft2(x, axes=(0, 1))
    fy = np.abs(np.fft.fftfreq(h))[:, None]
    fx = np.abs(np.fft.fftfreq(w))[None, :]
    high = np.maximum(fy, fx) > HIGH_FREQUENCY_CUTOFF
    power = np.abs(spectrum) ** 2 / (h * w)
    return float(power[high].sum())


def high_frequency_ratio(
    originals: Sequence[np.ndarray], reconstructions: Sequence[np.ndarray]
) -> float:
    """High-frequency energy of the reconstructions over that of the originals.

    Both are summed over all images (:func:`high_frequency_power`: DFT power per channel,
    mean removed, at frequencies whose max(|fx|, |fy|) exceeds half the Nyquist frequency,
    i.e. 0.25 cycles/pixel), so large images weigh by their size. 1 for identical images;
    below 1 for a blurring decoder, above 1 for added noise or ringing. ``inf`` when the
    originals have no high-frequency energy at all (flat images) and the reconstructions do;
    1 when neither has any.
    """
    _check_pairs(originals, reconstructions)
    num = sum(high_frequency_power(b) for b in reconstructions)
    den = sum(high_frequency_power(a) for a in originals)
    if den == 0:
        return 1.0 if num == 0 else math.inf
    return num / den


# -- classifier two-sample test ------------------------------------------------------


def name_side(name: str) -> int:
    """0 (critic training) or 1 (scoring) for a file name: the parity of its SHA-256.

    A pure function of the name, so the split is the same in every run and on every
    machine, and an image is never on both sides.
    """
    return hashlib.sha256(name.encode("utf-8")).digest()[0] & 1


def split_by_name(names: Sequence[str]) -> tuple[list[int], list[int]]:
    """Indices of ``names`` used to train the critic, and those used to score it."""
    train, test = [], []
    for i, name in enumerate(names):
        (test if name_side(name) else train).append(i)
    return train, test


def _crop_positions(
    rng: np.random.Generator, shapes: Sequence[tuple[int, ...]], idx: np.ndarray, crop: int
) -> list[tuple[int, int]]:
    return [
        (
            int(rng.integers(0, shapes[i][0] - crop + 1)),
            int(rng.integers(0, shapes[i][1] - crop + 1)),
        )
        for i in idx
    ]


def _critic(keras: Any, seed: int) -> Any:
    """The fixed critic: three 3x3 convolutions (16, 32, 64 channels; the last two stride 2)
    with LeakyReLU, then the global average and the global maximum of the features (the
    maximum finds detail in a mostly smooth photo) into one logit (1 = original). Any input
    size."""
    layers = keras.layers

    def init(k: int) -> Any:
        return keras.initializers.GlorotUniform(seed=seed + k)

    x = inputs = keras.Input((None, None, 3))
    for k, (channels, stride) in enumerate(((16, 1), (32, 2), (64, 2))):
        x = layers.Conv2D(channels, 3, strides=stride, padding="same", kernel_initializer=init(k))(
            x
        )
        x = layers.LeakyReLU(0.2)(x)
    pooled = layers.Concatenate()(
        [layers.GlobalAveragePooling2D()(x), layers.GlobalMaxPooling2D()(x)]
    )
    return keras.Model(inputs, layers.Dense(1, kernel_initializer=init(3))(pooled))


def _to_input(batch: Sequence[np.ndarray]) -> np.ndarray:
    x = np.stack([np.asarray(a, dtype=np.float32) for a in batch])
    if x.ndim == 3:
        x = np.repeat(x[..., None], 3, axis=-1)
    if x.shape[-1] != 3:
        raise InputError(f"the critic takes RGB images, got {x.shape[-1]} channels")
    return x / 127.5 - 1.0


def two_sample_accuracy(
    originals: Sequence[np.ndarray],
    reconstructions: Sequence[np.ndarray],
    names: Sequence[str],
    *,
    crop: int | None = None,
    crops_per_image: int = 4,
    steps: int = DEFAULT_STEPS,
    seed: int = 0,
) -> dict[str, Any]:
    """Accuracy of a fresh critic telling originals (label 1) from reconstructions (label 0).

    ``originals[i]`` and ``reconstructions[i]`` are HxWx3 uint8 arrays of the same image,
    called ``names[i]`` (a file name). :func:`split_by_name` puts each image on one side: the
    critic (:func:`_critic`, weights drawn from ``seed``) trains for ``steps`` Adam steps on
    the training side, each step a batch of 32 images taken at random (``seed``) as original
    and as reconstruction (64 samples); it is then scored on the other side, a sample counted
    right when its logit has the sign of its label.

    ``crop=None`` uses whole images (they must all have the same size; training flips them
    left-right at random). ``crop=K`` uses KxK crops: fresh random crops at every training
    step, and ``crops_per_image`` fixed ones (drawn from ``seed``) per scored image; an image's
    original and reconstruction are cut at the same place. Use crops for photos.

    Returns ``accuracy`` (0.5: indistinguishable), ``standard_error`` (binomial,
    sqrt(p (1 - p) / n_test); crops of one image are not independent, so with crops it is a
    lower bound), ``n_train`` (originals plus reconstructions the critic learns from),
    ``n_test`` (samples scored: two per image, or per crop), ``train_images``,
    ``test_images`` and ``steps``.
    """
    _check_pairs(originals, reconstructions)
    if len(names) != len(originals):
        raise InputError(f"{len(names)} names for {len(originals)} images")
    if steps < 1:
        raise InputError(f"steps must be >= 1, got {steps}")
    shapes = [np.shape(a) for a in originals]
    if crop is None:
        if len(set(shapes)) > 1:
            raise InputError("images differ in size: give a crop size")
    else:
        if crop < 4 or crops_per_image < 1:
            raise InputError(f"bad crop {crop} x {crops_per_image} per image")
        small = [n for n, s in zip(names, shapes) if min(s[:2]) < crop]
        if small:
            raise InputError(f"'{small[0]}' is smaller than the {crop}x{crop} crop")
    train_idx, test_idx = split_by_name(names)
    if not train_idx or not test_idx:
        raise InputError(
            f"the name split left {len(train_idx)} images to train on and {len(test_idx)} "
            "to score: give more images"
        )

    try:
        from gancomp.training._tf import tf as import_tf

        tf = import_tf()
        import keras
    except GancompError as exc:
        raise GancompError(
            "the two-sample test needs TensorFlow: pip install 'gancomp[train]'"
        ) from exc

    rng = np.random.default_rng(seed)
    critic = _critic(keras, seed)
    optimizer = keras.optimizers.Adam(LEARNING_RATE)
    labels = tf.constant([[1.0]] * BATCH_PAIRS + [[0.0]] * BATCH_PAIRS)

    @tf.function(reduce_retracing=True)
    def train_step(x: Any) -> Any:
        with tf.GradientTape() as tape:
            logits = critic(x, training=True)
            loss = tf.reduce_mean(
                tf.nn.sigmoid_cross_entropy_with_logits(labels=labels, logits=logits)
            )
        grads = tape.gradient(loss, critic.trainable_variables)
        optimizer.apply_gradients(zip(grads, critic.trainable_variables))
        return loss

    train = np.asarray(train_idx)
    for _ in range(steps):
        pick = rng.choice(train, BATCH_PAIRS, replace=len(train) < BATCH_PAIRS)
        if crop is None:
            flips = rng.random(BATCH_PAIRS) < 0.5
            real = [originals[i][:, ::-1] if f else originals[i] for i, f in zip(pick, flips)]
            fake = [
                reconstructions[i][:, ::-1] if f else reconstructions[i]
                for i, f in zip(pick, flips)
            ]
        else:
            pos = _crop_positions(rng, shapes, pick, crop)
            real = [originals[i][y : y + crop, x : x + crop] for i, (y, x) in zip(pick, pos)]
            fake = [reconstructions[i][y : y + crop, x : x + crop] for i, (y, x) in zip(pick, pos)]
        train_step(tf.constant(_to_input(real + fake)))

    if crop is None:
        real = [originals[i] for i in test_idx]
        fake = [reconstructions[i] for i in test_idx]
    else:
        score_rng = np.random.default_rng([seed, 1])
        pick = np.repeat(np.asarray(test_idx), crops_per_image)
        pos = _crop_positions(score_rng, shapes, pick, crop)
        real = [originals[i][y : y + crop, x : x + crop] for i, (y, x) in zip(pick, pos)]
        fake = [reconstructions[i][y : y + crop, x : x + crop] for i, (y, x) in zip(pick, pos)]
    correct = 0
    for samples, label in ((real, 1), (fake, 0)):
        for start in range(0, len(samples), 256):
            logits = critic(_to_input(samples[start : start + 256]), training=False)
            said = np.asarray(logits).reshape(-1) > 0
            correct += int(np.sum(said == bool(label)))
    n_test = len(real) + len(fake)
    accuracy = correct / n_test
    return {
        "accuracy": accuracy,
        "standard_error": math.sqrt(accuracy * (1.0 - accuracy) / n_test),
        "n_train": 2 * len(train_idx),
        "n_test": n_test,
        "train_images": len(train_idx),
        "test_images": len(test_idx),
        "steps": steps,
    }
