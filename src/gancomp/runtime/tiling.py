"""Running a fully convolutional network over images of any size, deterministically.

Same-shaped images are stacked into zero-filled batches whose size depends on
the shape only; images over a threshold run alone in overlapping tiles. So the
output for an image never depends on which other images share the call.
Independent calls run side by side, each with single-threaded BLAS.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence

import numpy as np

from gancomp.runtime.blas import single_threaded_blas

# Pixels per network call: bounds memory and fixes the batch shape per image size.
CHUNK_PIXELS = 1 << 16
TILE = 512  # tile side (pixels) for images too big for one pass
TILE_MARGIN = 64  # overlap per side, beyond the transforms' receptive field
TILE_THRESHOLD = 1024 * 1024  # padded pixels above which images are tiled


def _chunk_size(pixels: int, chunk_pixels: int = CHUNK_PIXELS) -> int:
    return int(max(1, min(64, chunk_pixels // max(pixels, 1))))


def apply_network(
    arrays: Sequence[np.ndarray],
    fn: Callable[[np.ndarray], np.ndarray],
    scale: tuple[int, int],
    tile: int,
    margin: int,
    tiled: bool = True,
    chunk_pixels: int = CHUNK_PIXELS,
    with_origin: bool = False,
) -> list[np.ndarray]:
    """Run a fully convolutional ``fn`` over arrays of any sizes, deterministically.

    Same-shaped arrays are stacked and run in zero-filled chunks of a size that
    depends on the shape only; arrays over the tile threshold run alone in
    overlapping tiles (unless ``tiled`` is false: the hyperprior's small networks
    see the whole latent). Output side = input side * scale[0] / scale[1].
    ``chunk_pixels`` sets the batch size per shape (smaller for cheap networks,
    whose zero-filled padding would otherwise cost more than the images).
    With ``with_origin``, ``fn`` is called as fn(batch, (row, column)): where the batch
    starts in its arrays, (0, 0) but for tiles (position-dependent noise needs it).
    """
    num, den = scale
    out: list[np.ndarray | None] = [None] * len(arrays)
    groups: dict[tuple, list[int]] = {}
    for i, a in enumerate(arrays):
        groups.setdefault(a.shape, []).append(i)
    # Independent network calls: (make the input batch, store the output, its origin).
    calls: list[tuple[Callable[[], np.ndarray], Callable[[np.ndarray], None], tuple]] = []
    tiles: list[tuple[int, list, list]] = []
    for shape, idx in groups.items():
        pixels = shape[0] * shape[1] * max(num, den) ** 2
        if tiled and pixels > TILE_THRESHOLD:
            for i in idx:
                plan = _tile_plan(shape, tile, margin)
                pieces: list = [None] * len(plan)
                tiles.append((i, plan, pieces))
                for t, box in enumerate(plan):
                    calls.append(_tile_call(arrays[i], box, pieces, t))
            continue
        size = _chunk_size(pixels, chunk_pixels)
        for start in range(0, len(idx), size):
            calls.append(_chunk_call(arrays, idx[start : start + size], size, out))
    _run_calls(fn if with_origin else (lambda b, _origin: fn(b)), calls)
    for i, plan, pieces in tiles:
        out[i] = _assemble(arrays[i].shape, plan, pieces, num, den, tile, margin)
    return out  # type: ignore[return-value]


def _chunk_call(arrays, members: list[int], size: int, out: list):
    """A zero-filled batch of ``size`` same-shaped arrays; outputs go to ``out[members]``."""
    origin = (0, 0)

    def batch() -> np.ndarray:
        part = np.stack([arrays[i] for i in members])
        if len(part) < size:
            part = np.concatenate([part, np.zeros((size - len(part), *part.shape[1:]), part.dtype)])
        return part

    def store(y: np.ndarray) -> None:
        for i, row in zip(members, y):
            out[i] = row

    return batch, store, origin


def _tile_call(a: np.ndarray, box: tuple[int, ...], pieces: list, t: int):
    y0, y1, x0, x1 = box[:4]
    return (lambda: a[None, y0:y1, x0:x1]), (lambda y: pieces.__setitem__(t, y[0])), (y0, x0)


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
            for batch, store, origin in calls:
                store(fn(batch(), origin))
            return
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(workers, thread_name_prefix="gancomp-net") as pool:
            # Bounded look-ahead keeps at most a few batches' activations in memory.
            pending = []
            for batch, store, origin in calls:
                pending.append((pool.submit(lambda b=batch, o=origin: fn(b(), o)), store))
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
