"""Channel-conditional context coding of a factorized model's latents.

The factorized prior codes every latent of channel ``c`` at level ``q`` with one frozen
table. Learned latents are not independent across channels, though: where some channels
are large, others tend to be large too. That spatial structure is what a hyperprior sends
as side information (Balle et al., ICLR 2018); coding the channels one after another lets
the decoder infer it instead, at no cost in bits, because it already holds channels
``0..c-1`` when it reads channel ``c`` (the channel-conditional idea of Minnen and Singh,
ICIP 2020, here with a fixed linear activity and frozen integer tables, so that no
network runs inside the entropy coder).

For channel ``c`` at position ``(i, j)`` the *activity* is

    A = sum over c' < c of  w[q, c, c'] * S_c'(i, j)

where ``S_c'`` is the 3x3 box sum (edge replicated) of ``min(|y_c'|, MAGNITUDE_CLIP)`` and
``w`` are integer weights fitted on training latents. The bucket of ``A`` among the
level's and channel's integer ``edges`` picks the table: row ``(q * M + c) * B + bucket``
of ``B`` tables per (level, channel), each a smoothed histogram of training latents on
the factorized row's support (same offsets and escapes). Everything is integer
arithmetic, so the table of every symbol is the encoder's on any machine.

Stream: channel by channel; within a channel the symbols grouped by row, ascending, each
group in raster order, then that channel's escapes (:class:`IndexedCoder`, exact-width
escape bits as in format version 2), so the decoder knows every value of channel ``c``
before it computes channel ``c + 1``'s rows. This is the payload of ``.gcz`` version 3
(docs/FORMAT.md); the tables live in the model folder's ``tables.npz`` beside the
factorized ones (:meth:`ContextTables.add_to_model_tables`), which
``scripts/add_context_tables.py`` fits for a trained factorized model.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial

import constriction
import numpy as np

from gancomp.coding.entropy import (
    ESCAPE_PREFIX_BITS,
    LATENT_LIMIT,
    EntropyTables,
    Groups,
    IndexedCoder,
    _encode_gamma,
    budget_bits,
    decoding_errors,
    finish,
    new_decoder,
    new_encoder,
    quantize_pmf,
)
from gancomp.errors import InputError

MAGNITUDE_CLIP = 1023  # |y| above this counts as this much in the activity
WEIGHT_SCALE = 1 << 16  # the largest fitted weight of a (level, channel) maps to this
PRIOR_COUNT = 20.0  # pseudo-observations of the factorized table in each context table
_NO_EDGE = np.iinfo(np.int64).max
# A channel whose positions x table length stay under this is coded in one coder call with
# a model per symbol (constriction's lazily quantized categorical family: the same integer
# model as the row's own, so the same bytes) instead of one call per bucket; small latent
# grids (CIFAR) spend most of their coding time in per-call overhead otherwise.
PER_SYMBOL_MODELS_MAX = 1 << 16
_FAMILY = constriction.stream.model.Categorical(perfect=False)


def box3(a: np.ndarray) -> np.ndarray:
    """3x3 box sums over the first two axes (edge replicated), int64."""
    a = np.asarray(a, np.int64)
    h, w = a.shape[:2]
    p = np.pad(a, ((1, 1), (1, 1)) + ((0, 0),) * (a.ndim - 2), mode="edge")
    return sum(p[i : i + h, j : j + w] for i in range(3) for j in range(3))


def magnitude_boxes(sym: np.ndarray) -> np.ndarray:
    """(h, w, M) int64: each channel's 3x3 box sum of its clipped magnitudes."""
    return box3(np.minimum(np.abs(np.asarray(sym, np.int64)), MAGNITUDE_CLIP))


@dataclass
class ContextTables:
    """Weights, bucket edges and tables of every (level, channel, bucket)."""

    weights: np.ndarray  # int64 (levels, M, M): w[q, c, c'], zero for c' >= c
    edges: np.ndarray  # int64 (levels, M, B - 1), non-decreasing; _NO_EDGE pads
    entropy: EntropyTables  # levels x (M * B) rows

    @property
    def buckets(self) -> int:
        return self.edges.shape[2] + 1

    @property
    def channels(self) -> int:
        return self.weights.shape[1]

    def arrays(self) -> dict[str, np.ndarray]:
        """The arrays stored in a model's ``tables.npz`` (beside the factorized tables)."""
        return {
            "context_weights": self.weights.astype(np.int64),
            "context_edges": self.edges.astype(np.int64),
            **self.entropy.arrays("context/"),
        }

    @classmethod
    def from_arrays(cls, z) -> ContextTables:
        """From :meth:`arrays`' keys of an open npz (or a dict); ValueError if inconsistent."""
        weights = np.asarray(z["context_weights"], np.int64)
        edges = np.asarray(z["context_edges"], np.int64)
        entropy = EntropyTables.from_arrays(z, "context/")
        if weights.ndim != 3 or edges.ndim != 3:
            raise ValueError("inconsistent context tables")
        levels, m = weights.shape[:2]
        if (
            weights.shape != (levels, m, m)
            or edges.shape[:2] != (levels, m)
            or entropy.levels != levels
            or entropy.channels != m * (edges.shape[2] + 1)
            or (edges[..., 1:] < edges[..., :-1]).any()  # not np.diff: MAX - negative overflows
            or np.abs(weights).max(initial=0) > WEIGHT_SCALE
        ):
            raise ValueError("inconsistent context tables")
        return cls(weights, edges, entropy)

    def to_bytes(self) -> bytes:
        buf = io.BytesIO()
        np.savez(buf, **self.arrays())
        return buf.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> ContextTables:
        with np.load(io.BytesIO(data), allow_pickle=False) as z:
            return cls.from_arrays(z)

    @classmethod
    def from_model_tables(cls, data: bytes) -> ContextTables | None:
        """The context tables of a model's ``tables.npz``, or None if it has none."""
        with np.load(io.BytesIO(data), allow_pickle=False) as z:
            if "context_weights" not in z.files:
                return None
            return cls.from_arrays(z)

    def add_to_model_tables(self, data: bytes) -> bytes:
        """A model's ``tables.npz`` with these context tables added (replacing any)."""
        with np.load(io.BytesIO(data), allow_pickle=False) as z:
            arrays = {
                k: z[k]
                for k in z.files
                if not (k.startswith("context/") or k in ("context_weights", "context_edges"))
            }
        arrays.update(self.arrays())
        buf = io.BytesIO()
        np.savez_compressed(buf, **arrays)  # the context tables are mostly small counts
        return buf.getvalue()


def _same_shapes(arrays: Sequence[np.ndarray]) -> list[list[int]]:
    """Indexes of the arrays, grouped by shape (first appearance order)."""
    groups: dict[tuple, list[int]] = {}
    for i, a in enumerate(arrays):
        groups.setdefault(a.shape, []).append(i)
    return list(groups.values())


def _neighbours(h: int, w: int) -> np.ndarray:
    """(h * w, 9) flat indexes of each position's 3x3 neighbours, clamped to the grid: a
    channel's :func:`box3` in one gather."""
    i = np.clip(np.arange(h)[:, None] + np.arange(-1, 2)[None, :], 0, h - 1)  # (h, 3)
    j = np.clip(np.arange(w)[:, None] + np.arange(-1, 2)[None, :], 0, w - 1)  # (w, 3)
    flat = i[:, None, :, None] * w + j[None, :, None, :]  # (h, w, 3, 3)
    return flat.reshape(h * w, 9)


def activity(boxes: np.ndarray, weights: np.ndarray, c: int) -> np.ndarray:
    """Integer activity of channel ``c`` from the boxes (..., M) of channels ``< c``."""
    if c == 0:
        return np.zeros(boxes.shape[:-1], np.int64)
    return boxes[..., :c] @ weights[c, :c]  # int64 matmul: exact, no BLAS


def fit_context_tables(
    latents: Sequence[Sequence[np.ndarray]],
    factorized: EntropyTables,
    buckets: int = 8,
) -> ContextTables:
    """Fit from training latents: ``latents[q]`` lists (h, w, M) int arrays of level q.

    Weights: least squares of ``|y_c|`` on the boxes of the channels before it (the
    intercept dropped: bucketing does not see it). Edges: the activity's quantiles on
    the training latents. Tables: each bucket's histogram plus PRIOR_COUNT
    observations of the factorized row, frozen as integers on that row's support.
    """
    levels, m = factorized.levels, factorized.channels
    if len(latents) != levels:
        raise ValueError(f"need latents for {levels} levels, got {len(latents)}")
    weights = np.zeros((levels, m, m), np.int64)
    edges = np.full((levels, m, buckets - 1), _NO_EDGE, np.int64)
    rows: list[np.ndarray] = []
    offsets, lengths = [], []
    qs = np.linspace(0.0, 1.0, buckets + 1)[1:-1]
    for q in range(levels):
        ys = [np.asarray(y, np.int64) for y in latents[q]]
        boxes = np.concatenate([magnitude_boxes(y).reshape(-1, m) for y in ys]).astype(np.float64)
        flat = np.concatenate([y.reshape(-1, m) for y in ys])
        for c in range(m):
            r = factorized.row(q, c)
            off, n = int(factorized.offsets[r]), int(factorized.lengths[r])
            if c:
                x = np.concatenate([np.ones((len(boxes), 1)), boxes[:, :c]], axis=1)
                w, *_ = np.linalg.lstsq(x, np.abs(flat[:, c]).astype(np.float64), rcond=None)
                w = w[1:]
                top = float(np.abs(w).max())
                if top > 0:
                    weights[q, c, :c] = np.round(w / top * WEIGHT_SCALE).astype(np.int64)
                a = boxes[:, :c].astype(np.int64) @ weights[q, c, :c]
                e = np.unique(np.quantile(a, qs, method="lower").astype(np.int64))
                edges[q, c, : len(e)] = e
                bucket = np.searchsorted(edges[q, c], a, side="right")
            else:
                bucket = np.zeros(len(flat), np.int64)
            idx = np.clip(flat[:, c] - off + 1, 0, n - 1)
            counts = np.zeros((buckets, n))
            np.add.at(counts, (bucket, idx), 1.0)
            prior = factorized.freq_row(r).astype(np.float64)
            prior /= prior.sum()
            for b in range(buckets):
                rows.append(quantize_pmf(counts[b] + PRIOR_COUNT * prior))
                offsets.append(off)
                lengths.append(n)
    lengths_a = np.array(lengths, np.int32)
    starts = np.concatenate([[0], np.cumsum(lengths_a.astype(np.int64))[:-1]])
    entropy = EntropyTables(
        levels, m * buckets, np.array(offsets, np.int32), lengths_a, starts, np.concatenate(rows)
    )
    return ContextTables(weights, edges, entropy)


class ContextCoder:
    """Range-codes one level's latents (h, w, M) with the context tables."""

    def __init__(self, tables: ContextTables):
        self.tables = tables
        self.indexed = IndexedCoder(tables.entropy, tight_escapes=True)
        # Fewest bits one position of a level can cost (the cheapest bucket of every
        # channel): the decoder refuses a stream too short for its image before allocating.
        t = tables
        per_row = self.indexed.min_bits.reshape(t.entropy.levels, t.channels, t.buckets)
        self.level_min_bits = per_row.min(axis=2).sum(axis=1)
        self._channel_cache: dict[int, tuple] = {}

    @property
    def channels(self) -> int:
        return self.tables.channels

    def _buckets(self, level: int, c: int, boxes: np.ndarray) -> np.ndarray:
        """Bucket of every position of channel ``c`` from boxes (..., M): the number of the
        (level, channel)'s edges at or below the activity (docs/FORMAT.md)."""
        a = activity(boxes, self.tables.weights[level], c)
        return np.searchsorted(self.tables.edges[level, c], a, side="right").astype(np.int16)

    def _groups(self, level: int, c: int, boxes: np.ndarray) -> Groups:
        """Channel ``c``'s coding order: by row ascending, raster order within a row (what
        sorting by row does, without the general sort: a channel's rows are its buckets)."""
        t = self.tables
        bucket = self._buckets(level, c, boxes)
        counts = np.bincount(bucket, minlength=t.buckets)
        present = np.flatnonzero(counts)
        order = np.argsort(bucket, kind="stable")
        return Groups(order, (level * t.channels + c) * t.buckets + present, counts[present])

    def _check_level(self, level: int) -> None:
        if not 0 <= level < self.tables.entropy.levels:
            raise InputError(f"no tables for level {level}")

    def _check_latents(self, sym: np.ndarray, level: int) -> np.ndarray:
        self._check_level(level)
        sym = np.asarray(sym, np.int64)
        if sym.ndim != 3 or sym.shape[2] != self.channels:
            raise InputError(f"expected latents (h, w, {self.channels}), got {sym.shape}")
        return sym

    def _channel_tables(self, level: int, c: int) -> tuple[np.ndarray, np.ndarray, int]:
        """The B tables of (level, channel) as one (B, n) float array of frequencies, their
        log2 probabilities, and the length n the B rows share."""
        key = level * self.channels + c
        if key not in self._channel_cache:
            t = self.tables
            first = key * t.buckets
            rows = range(first, first + t.buckets)
            freqs = np.stack([t.entropy.freq_row(r).astype(np.float64) for r in rows])
            log2p = np.log2(freqs / freqs.sum(axis=1, keepdims=True))
            self._channel_cache[key] = (freqs, log2p, int(t.entropy.lengths[first]))
        return self._channel_cache[key]

    def _per_symbol(self, level: int, c: int, positions: int) -> bool:
        n = int(self.tables.entropy.lengths[(level * self.channels + c) * self.tables.buckets])
        return positions * n <= PER_SYMBOL_MODELS_MAX

    def _sorted_buckets(self, level: int, c: int, boxes: np.ndarray):
        """Per image of a batch (N, h * w, M) of boxes: the coding order of channel ``c``
        (stable sort by bucket) and the buckets in that order, both (N, h * w)."""
        bucket = self._buckets(level, c, boxes)
        order = np.argsort(bucket, axis=1, kind="stable")
        return order, np.take_along_axis(bucket, order, axis=1)

    def encode(self, sym: np.ndarray, level: int) -> bytes:
        return self.encode_many([sym], level)[0]

    def encode_many(self, syms: Sequence[np.ndarray], level: int) -> list[bytes]:
        """Payloads of several latent grids of one level (the same bytes as one at a time;
        same-sized grids share each channel's array work)."""
        syms = [self._check_latents(sym, level) for sym in syms]
        out: list[bytes] = [b""] * len(syms)
        for idx in _same_shapes(syms):
            batch = np.stack([syms[i] for i in idx])
            for i, payload in zip(idx, self._encode_batch(batch, level)):
                out[i] = payload
        return out

    def _encode_batch(self, sym: np.ndarray, level: int) -> list[bytes]:
        n_img, h, w, m = sym.shape
        values = sym.reshape(n_img, h * w, m)
        boxes = np.stack([magnitude_boxes(y).reshape(h * w, m) for y in sym])
        encs = [new_encoder() for _ in range(n_img)]
        for c in range(m):
            if not self._per_symbol(level, c, h * w):
                for i, enc in enumerate(encs):
                    groups = self._groups(level, c, boxes[i])
                    self.indexed.encode_grouped(enc, values[i, :, c], groups)
                continue
            order, sorted_buckets = self._sorted_buckets(level, c, boxes)
            freqs, _, n = self._channel_tables(level, c)
            first = (level * m + c) * self.tables.buckets
            sym = np.clip(
                np.take_along_axis(values[:, :, c], order, axis=1), -LATENT_LIMIT, LATENT_LIMIT
            )
            bins, dist = self.indexed._bins(
                sym.ravel(), first + sorted_buckets.ravel().astype(np.int64)
            )
            bins = bins.reshape(n_img, h * w)
            # _bins lists the escaped distances of the whole batch in order: split per image.
            escapes = np.split(dist, np.cumsum(((bins == 0) | (bins == n - 1)).sum(axis=1))[:-1])
            for i, enc in enumerate(encs):
                enc.encode(bins[i], _FAMILY, freqs[sorted_buckets[i]])
                for d in escapes[i]:
                    _encode_gamma(enc, int(d), True)
        return [finish(enc) for enc in encs]

    def estimate_bits(self, sym: np.ndarray, level: int) -> float:
        sym = self._check_latents(sym, level)
        boxes = magnitude_boxes(sym).reshape(-1, self.channels)
        base = level * self.channels * self.tables.buckets
        return sum(
            self.indexed.estimate_bits(
                sym[..., c].ravel(),
                base + c * self.tables.buckets + self._buckets(level, c, boxes).astype(np.int64),
            )
            for c in range(sym.shape[2])
        )

    def decode(self, data: bytes, level: int, shape: tuple[int, int]) -> np.ndarray:
        """Latents (h, w, M) int32; an inconsistent stream raises InputError."""
        return self.decode_many([(data, level, shape)])[0]

    def decode_many(self, jobs: Sequence[tuple[bytes, int, tuple[int, int]]]) -> list[np.ndarray]:
        """Latents (h, w, M) int32 of (payload, level, (h, w)) jobs; same-sized jobs of a
        level share each channel's array work. Any inconsistent stream raises InputError."""
        for data, level, (h, w) in jobs:
            self._check_level(level)
            # Before any allocation: a crafted header can claim a huge image for a tiny stream.
            IndexedCoder.check_budget(h * w * float(self.level_min_bits[level]), budget_bits(data))
        out: list[np.ndarray | None] = [None] * len(jobs)
        batches: dict[tuple, list[int]] = {}
        for i, (_, level, shape) in enumerate(jobs):
            batches.setdefault((level, tuple(shape)), []).append(i)
        for (level, shape), idx in batches.items():
            payloads = [jobs[i][0] for i in idx]
            decoded = decoding_errors(partial(self._decode_batch, payloads, level, shape))
            for i, y in zip(idx, decoded):
                out[i] = y
        return out  # type: ignore[return-value]

    def _decode_batch(self, payloads: list[bytes], level: int, shape: tuple[int, int]):
        (h, w), m, n_img = shape, self.tables.channels, len(payloads)
        decs = [new_decoder(p) for p in payloads]
        budgets = [budget_bits(p) for p in payloads]
        info = np.zeros(n_img)
        out = np.zeros((n_img, h * w, m), np.int32)  # decoding bounds |values| by 2**20
        boxes = np.zeros((n_img, h * w, m), np.int64)
        neighbours = _neighbours(h, w)
        for c in range(m):
            if not self._per_symbol(level, c, h * w):
                for i, dec in enumerate(decs):
                    groups = self._groups(level, c, boxes[i])
                    out[i, :, c] = self.indexed.decode_grouped(dec, groups, budgets[i])
            else:
                order, sorted_buckets = self._sorted_buckets(level, c, boxes)
                freqs, log2p, n = self._channel_tables(level, c)
                first = (level * m + c) * self.tables.buckets
                for i, dec in enumerate(decs):
                    bins = np.asarray(dec.decode(_FAMILY, freqs[sorted_buckets[i]]), np.int64)
                    info[i] -= float(log2p[sorted_buckets[i], bins].sum())
                    if info[i] > budgets[i]:  # a corrupt stream stops early
                        raise InputError("corrupt payload: shorter than its symbols")
                    rows = first + sorted_buckets[i].astype(np.int64)
                    values = self.indexed.values_from_bins(dec, bins, rows, info[i], budgets[i])
                    info[i] += np.count_nonzero((bins == 0) | (bins == n - 1)) * ESCAPE_PREFIX_BITS
                    out[i, order[i], c] = values
            mags = np.minimum(np.abs(out[:, :, c]), MAGNITUDE_CLIP)
            boxes[:, :, c] = mags[:, neighbours].sum(axis=2)
        return list(out.reshape(n_img, h, w, m))
