"""Encoder effort: spend encoding time on better latents (``gancomp compress --effort``).

A learned encoder is an amortised guess of the best latents of an image; the decoder and the
entropy model define what "best" is. ``normal`` effort writes the encoder's guess, in one
pass (the bytes ``gancomp compress`` always wrote). ``fast`` and ``max`` refine the latents
of every image for the loss the model was trained with at that level, rate + lambda x MSE
(bits per pixel under the frozen entropy model; MSE on 0-255 values), with the generator, the
entropy model and the gains frozen, by stochastic Gumbel annealing (SGA: Yang, Bamler and
Mandt, "Improving Inference for Neural Image Compression", NeurIPS 2020). The result is an
ordinary ``.gcz`` file: the unchanged decoder reads it (:meth:`Codec.compress_latents
<gancomp.runtime.codec.Codec.compress_latents>` writes it through the runtime's own coding
path).

SGA in short: every coded value is relaxed to a random point between its floor and its
ceiling, drawn from a Gumbel-softmax whose preference for the nearer integer and whose noise
both sharpen as a temperature falls; gradients flow through that relaxation to the
continuous latents (Adam). At the end the latents are rounded. With a hyperprior, y and z are
refined together: the rate of y is the Gaussian of the scale that h_s's integer path computes
from (relaxed) z, y's relaxation is around h_s's mean, as the file codes round(y - mean).

Each effort is a fixed :class:`Schedule` (iterations, learning rate, temperature) and the
random numbers come from a fixed seed and the image's own pixels, so the bytes depend only
on the image, the model and the effort (on one machine: the gradients are float arithmetic).
Images of one size are refined together in batches; an image's gradients do not depend on
the other images of its batch (tests/test_refine.py checks its bytes do not), nor its noise,
so neither do its bytes. Images over :data:`MAX_REFINE_PIXELS` are not refined (a warning on
stderr; their normal file is written): the whole image's gradients are held in memory, and
refinement by tiles is not written yet. Every refined file is compared
with the ``normal`` one by the same cost, measured on the real files (their bytes and their
decoded pixels), and the cheaper is kept, so a higher effort never costs more than
``normal`` in rate + lambda x MSE.

The optimisation needs TensorFlow (the ``train`` extra); this module does not import it:
:func:`require_refiner` checks for it before any work, and the optimiser itself
(:mod:`gancomp.training.refine`) is imported only when an effort refines.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from gancomp.errors import GancompError, InputError

if TYPE_CHECKING:
    import numpy as np

    from gancomp.io.images import Image
    from gancomp.runtime.codec import Codec

INSTALL_HINT = "pip install 'gancomp[train]'"
#: Largest image (pixels) refined: the whole image's activations and gradients are held in
#: memory, 1.1 (flower) to 2.2 KB (CIFAR models) per pixel, so up to about 2.3 GB.
MAX_REFINE_PIXELS = 1 << 20


@dataclass(frozen=True)
class Schedule:
    """The fixed optimisation of one effort.

    The temperature stays at ``tau_start`` for the first ``hold`` fraction of the
    iterations, then falls exponentially to ``tau_end`` at the last one.
    """

    iterations: int
    learning_rate: float
    tau_start: float = 0.5
    tau_end: float = 0.05
    hold: float = 0.3

    def temperature(self, step: int) -> float:
        """The temperature of iteration ``step`` (0-based)."""
        start = int(self.hold * self.iterations)
        if step <= start or self.iterations - 1 <= start:
            return self.tau_start
        progress = (step - start) / (self.iterations - 1 - start)
        return float(self.tau_start * (self.tau_end / self.tau_start) ** progress)


#: Effort levels, cheapest first. ``normal`` is the encoder's single pass.
EFFORTS = ("fast", "normal", "max")
DEFAULT_EFFORT = "normal"
SCHEDULES: dict[str, Schedule] = {
    "fast": Schedule(iterations=100, learning_rate=0.05),
    "max": Schedule(iterations=500, learning_rate=0.03),
}


def check_effort(effort: str) -> str:
    """``effort`` if it is a known level, else an InputError naming the levels."""
    if effort not in EFFORTS:
        raise InputError(f"unknown effort {effort!r} (choose from {', '.join(EFFORTS)})")
    return effort


def refines(effort: str, schedule: Schedule | None = None) -> bool:
    """Whether ``effort`` (or an explicit schedule) runs the optimiser."""
    return schedule is not None or check_effort(effort) != DEFAULT_EFFORT


def require_refiner(effort: str) -> None:
    """Fail with one line saying how to install TensorFlow when ``effort`` needs it and it
    cannot be imported; imports it otherwise (a few seconds, paid before any work)."""
    if not refines(effort):
        return
    from gancomp.training._tf import tf

    try:
        tf()
    except GancompError as exc:
        cause = exc.__cause__
        name = getattr(cause, "name", None)
        reason = f"no module named {name!r}" if name else str(cause or exc)
        raise GancompError(
            f"--effort {effort} optimises the latents with TensorFlow and Keras ({reason}); "
            f"install them with: {INSTALL_HINT}"
        ) from None


Progress = Callable[[int], None]


def compress_images(
    codec: Codec,
    images: Sequence[Image | np.ndarray],
    quality: int,
    effort: str = DEFAULT_EFFORT,
    *,
    progress: bool = False,
    schedule: Schedule | None = None,
    never_worse: bool = True,
) -> list[bytes]:
    """``.gcz`` files of ``images`` (:class:`~gancomp.io.images.Image` or HxWx3 uint8 arrays)
    written by ``codec`` at ``quality`` with the given effort.

    ``progress`` shows a bar on stderr while the latents are refined. ``schedule`` replaces
    the effort's (tests use short ones). ``never_worse`` keeps, per image, the ``normal``
    file when the refined one is not cheaper in rate + lambda x MSE.
    """
    from gancomp.runtime.codec import image_fields

    rgb, meta = image_fields(images)
    normal = codec.compress_arrays(rgb, quality, **meta)
    if not refines(effort, schedule) or not rgb:
        return normal
    require_refiner(effort)
    from gancomp.training.refine import refine_latents

    schedule = schedule or SCHEDULES[effort]
    # Too big to refine in memory (no tiled refinement yet): such images keep the normal file.
    todo = [i for i, a in enumerate(rgb) if a.shape[0] * a.shape[1] <= MAX_REFINE_PIXELS]
    for i in sorted(set(range(len(rgb))) - set(todo)):
        print(
            f"gancomp: warning: {_name(images[i], i)}: {rgb[i].shape[1]}x{rgb[i].shape[0]} is "
            f"over the {MAX_REFINE_PIXELS:,} pixels --effort can refine; written at normal "
            "effort",
            file=sys.stderr,
            flush=True,
        )
    if not todo:
        return normal
    part = [rgb[i] for i in todo]
    bar = _progress_bar(progress, effort, schedule, codec, part)
    try:
        refined = refine_latents(codec, part, quality, schedule, progress=bar.update)
    finally:
        bar.close()
    ys = [y for y, _ in refined]
    zs = [z for _, z in refined] if codec.hyperprior else None
    part_meta = {k: [v[i] for i in todo] for k, v in meta.items()}
    files = codec.compress_latents([a.shape[:2] for a in part], ys, zs, quality, **part_meta)
    out = list(normal)
    if never_worse:
        costs_new = rd_costs(codec, part, files, quality)
        costs_old = rd_costs(codec, part, [normal[i] for i in todo], quality)
        for i, data, new, old in zip(todo, files, costs_new, costs_old):
            if new < old:
                out[i] = data
    else:
        for i, data in zip(todo, files):
            out[i] = data
    return out


def _name(image, index: int) -> str:
    path = getattr(image, "path", "")
    return f"'{path}'" if path else f"image {index}"


def _progress_bar(enabled: bool, effort: str, schedule: Schedule, codec: Codec, rgb):
    from tqdm import tqdm

    from gancomp.training.refine import batch_count

    total = schedule.iterations * batch_count(codec, rgb)
    return tqdm(total=total, desc=f"effort {effort}", unit="it", disable=not enabled, leave=False)


def rd_costs(
    codec: Codec, images: Sequence[np.ndarray], files: Sequence[bytes], quality: int
) -> list[float]:
    """Per image: bits per pixel of the whole file + lambda x MSE of its decoded RGB (0-255),
    lambda being the model's trained weight of the level: the loss the refinement lowers."""
    import numpy as np

    from gancomp.coding.container import unpack
    from gancomp.runtime.auto import rd_cost, trained_lambda

    lam = trained_lambda(codec, quality)
    decoded = codec.decode_payloads([unpack(f) for f in files])
    out = []
    for a, f, d in zip(images, files, decoded):
        err = a.astype(np.float64) - d.rgb.astype(np.float64)
        out.append(
            rd_cost(8.0 * len(f) / (a.shape[0] * a.shape[1]), float(np.mean(err * err)), lam)
        )
    return out


def effort_encoder(
    effort: str, *, progress: bool = False, schedule: Schedule | None = None
) -> Callable[[Codec], Callable[[Sequence[Image], int], list[bytes]]]:
    """A level encoder factory for :func:`gancomp.runtime.rate_control.compress_to_targets`:
    the search then runs over files written with this effort."""

    def make(codec: Codec) -> Callable[[Sequence[Image], int], list[bytes]]:
        def encode(images: Sequence[Image], quality: int) -> list[bytes]:
            return compress_images(
                codec, images, quality, effort, progress=progress, schedule=schedule
            )

        return encode

    return make


def compress_many(
    images: Sequence[Image],
    category: str,
    quality: int,
    effort: str = DEFAULT_EFFORT,
    models_dir: str | os.PathLike | None = None,
    *,
    progress: bool = False,
    schedule: Schedule | None = None,
) -> list[tuple[bytes, str]]:
    """(file, category) per image: :func:`compress_images` with the ``category`` model, or
    with ``"auto"``, the model that ``--category auto`` picks (at normal effort) per image."""
    from gancomp.runtime.codec import load_codec

    check_effort(effort)
    if category == "auto":
        from gancomp.runtime.auto import compress_auto

        chosen = compress_auto(images, quality, models_dir)
        if not refines(effort, schedule):
            return chosen
        categories = [cat for _, cat in chosen]
    else:
        categories = [category] * len(images)
    out: list[tuple[bytes, str] | None] = [None] * len(images)
    for cat in dict.fromkeys(categories):
        idx = [i for i, c in enumerate(categories) if c == cat]
        files = compress_images(
            load_codec(cat, models_dir),
            [images[i] for i in idx],
            quality,
            effort,
            progress=progress,
            schedule=schedule,
        )
        for i, data in zip(idx, files):
            out[i] = (data, cat)
    return out  # type: ignore[return-value]
