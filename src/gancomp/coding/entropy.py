"""Frozen integer probability tables and range coding of quantized latents.

At export the learned factorized densities are evaluated once and frozen as
integer frequency tables (total 2**PRECISION per row). Encoder and decoder
build their range-coder models from those integers only, so float noise
between machines, thread counts or oneDNN settings cannot desynchronise
decoding. This mirrors tensorflow-compression's and CompressAI's frozen CDFs.

Each (level, channel) row covers the integers [offset, offset + n - 3]; index 0
and n - 1 are escape bins for values below and above that support. An escaped
value's distance past the edge is coded after all regular symbols with an
Elias-gamma style code of uniform symbols, so any int32 latent survives.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import NamedTuple

import constriction
import numpy as np

from gancomp.errors import InputError

PRECISION = 16  # bits of the frozen frequency tables
TAIL_MASS = 2.0**-12  # probability left outside a row's support, per side
MAX_HALF_RANGE = 1024  # largest |value| a table covers before escaping
LATENT_LIMIT = 2**20  # latents are clipped to this magnitude before coding
_CHUNK_BITS = 16


@dataclass
class EntropyTables:
    """Integer tables of every (level, channel) row: freqs[starts[r] : starts[r] + lengths[r]]."""

    levels: int
    channels: int
    offsets: np.ndarray  # int32 (rows,): value coded by bin 1
    lengths: np.ndarray  # int32 (rows,): bins per row, escapes included
    starts: np.ndarray  # int64 (rows,)
    freqs: np.ndarray  # int32, all rows concatenated

    def row(self, level: int, channel: int) -> int:
        return level * self.channels + channel

    def arrays(self, prefix: str = "") -> dict[str, np.ndarray]:
        return {
            prefix + "shape": np.array([self.levels, self.channels], np.int32),
            prefix + "offsets": self.offsets.astype(np.int32),
            prefix + "lengths": self.lengths.astype(np.int32),
            prefix + "freqs": self.freqs.astype(np.int32),
        }

    def to_bytes(self) -> bytes:
        return pack_tables({"": self})

    @classmethod
    def from_arrays(cls, z, prefix: str = "") -> EntropyTables:
        levels, channels = (int(v) for v in z[prefix + "shape"])
        lengths = np.asarray(z[prefix + "lengths"]).astype(np.int32)
        freqs = np.asarray(z[prefix + "freqs"])
        starts = np.concatenate([[0], np.cumsum(lengths.astype(np.int64))[:-1]]).astype(np.int64)
        offsets = np.asarray(z[prefix + "offsets"]).astype(np.int32)
        if (
            len(lengths) != levels * channels
            or len(offsets) != len(lengths)
            or lengths.min(initial=3) < 3
            or int(lengths.astype(np.int64).sum()) != len(freqs)
            or freqs.min(initial=1) < 1
        ):
            raise ValueError("inconsistent entropy tables")
        return cls(levels, channels, offsets, lengths, starts, freqs.astype(np.int32))

    @classmethod
    def from_bytes(cls, data: bytes) -> EntropyTables:
        return unpack_tables(data)[""]

    def freq_row(self, r: int) -> np.ndarray:
        s = int(self.starts[r])
        return self.freqs[s : s + int(self.lengths[r])]


def pack_tables(tables: dict[str, EntropyTables]) -> bytes:
    """``tables.npz`` of a model folder: one unprefixed set (factorized prior), or named
    sets ``z/`` and ``scale/`` (hyperprior)."""
    arrays: dict[str, np.ndarray] = {}
    for name, t in tables.items():
        arrays.update(t.arrays(f"{name}/" if name else ""))
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def unpack_tables(data: bytes) -> dict[str, EntropyTables]:
    with np.load(io.BytesIO(data), allow_pickle=False) as z:
        names = sorted({k[: -len("shape")] for k in z.files if k.endswith("shape")})
        return {name.rstrip("/"): EntropyTables.from_arrays(z, name) for name in names}


#: Scale tables are finer than the factorized ones: a small scale puts almost all its mass
#: on 0, and the training loss still charges a 1 at scale 0.11 its true ~18.5 bits;
#: 16-bit tables could not come close, and an escape would cost ~21 bits.
SCALE_PRECISION = 20
SCALE_TAIL_MASS = 2.0**-18
SCALE_MIN_HALF_RANGE = 3


def _gaussian_mass_beyond(v: float, scale: float) -> float:
    """P(Y > v) for a zero-mean Gaussian Y of ``scale``, in float64."""
    from math import erfc, sqrt

    return 0.5 * erfc(v / (scale * sqrt(2.0)))


def scale_half_range(scale: float) -> int:
    """Largest |value| the table of a zero-mean Gaussian of ``scale`` codes without an
    escape: where no more than SCALE_TAIL_MASS lies beyond, at least SCALE_MIN_HALF_RANGE."""
    half = SCALE_MIN_HALF_RANGE
    while half < MAX_HALF_RANGE and _gaussian_mass_beyond(half + 0.5, scale) > SCALE_TAIL_MASS:
        half += 1
    return half


def gaussian_scale_tables(scales: np.ndarray) -> EntropyTables:
    """One row per scale: a zero-mean Gaussian integrated over each integer's unit bin,
    cut where SCALE_TAIL_MASS remains per side (escapes beyond), at least +-3 wide.
    Computed once, at export, in float64; stored as integers."""
    offsets, lengths, rows = [], [], []
    for s in map(float, scales):
        half = scale_half_range(s)
        v = np.arange(-half, half + 1)
        core = np.array(
            [
                _gaussian_mass_beyond(abs(x) - 0.5, s) - _gaussian_mass_beyond(abs(x) + 0.5, s)
                for x in v
            ]
        )
        tail = max(_gaussian_mass_beyond(half + 0.5, s), 1e-12)
        rows.append(quantize_pmf(np.concatenate([[tail], core, [tail]]), SCALE_PRECISION))
        offsets.append(-half)
        lengths.append(len(v) + 2)
    lengths_a = np.array(lengths, np.int32)
    starts = np.concatenate([[0], np.cumsum(lengths_a.astype(np.int64))[:-1]])
    return EntropyTables(
        1, len(scales), np.array(offsets, np.int32), lengths_a, starts, np.concatenate(rows)
    )


def quantize_pmf(pmf: np.ndarray, precision: int = PRECISION) -> np.ndarray:
    """Integer frequencies summing to 2**precision with every bin >= 1 (deterministic)."""
    total = 1 << precision
    p = np.maximum(np.asarray(pmf, np.float64), 0.0)
    p = p / p.sum() if p.sum() > 0 else np.full_like(p, 1.0 / len(p))
    f = np.maximum(np.floor(p * (total - len(p))).astype(np.int64), 0) + 1
    # Hand the rounding remainder to the largest bins, one count each, in a fixed order.
    rest = total - int(f.sum())
    order = np.argsort(-p, kind="stable")
    i = 0
    while rest > 0:
        f[order[i % len(f)]] += 1
        rest -= 1
        i += 1
    while rest < 0:
        j = order[i % len(f)]
        if f[j] > 1:
            f[j] -= 1
            rest += 1
        i += 1
    return f.astype(np.int32)


def build_tables(density) -> EntropyTables:
    """Freeze a :class:`gancomp.training.model.FactorizedDensity` into integer tables."""
    lo, hi = -MAX_HALF_RANGE, MAX_HALF_RANGE
    return tables_from_pmf(density.pmf_table(lo, hi), lo, density.levels, density.channels)


def tables_from_pmf(pmf: np.ndarray, lo: int, levels: int, channels: int) -> EntropyTables:
    """Integer tables from float probabilities of the integers lo, lo + 1, ... per row."""
    cdf = np.cumsum(pmf, axis=1)
    total = cdf[:, -1:]
    offsets, lengths, rows = [], [], []
    for r in range(pmf.shape[0]):
        first = int(np.searchsorted(cdf[r], TAIL_MASS * total[r, 0]))
        last = int(np.searchsorted(cdf[r], (1 - TAIL_MASS) * total[r, 0]))
        first, last = max(first, 0), min(max(last, first), pmf.shape[1] - 1)
        core = pmf[r, first : last + 1]
        below = max(pmf[r, :first].sum(), 1e-9)
        above = max(pmf[r, last + 1 :].sum(), 1e-9)
        rows.append(quantize_pmf(np.concatenate([[below], core, [above]])))
        offsets.append(lo + first)
        lengths.append(len(core) + 2)
    lengths_a = np.array(lengths, np.int32)
    starts = np.concatenate([[0], np.cumsum(lengths_a.astype(np.int64))[:-1]])
    return EntropyTables(
        levels,
        channels,
        np.array(offsets, np.int32),
        lengths_a,
        starts,
        np.concatenate(rows).astype(np.int32),
    )


class Groups(NamedTuple):
    """A coding order: symbols grouped by table row, ascending, each group in element order."""

    order: np.ndarray  # element index of each coded symbol
    present: np.ndarray  # the rows present, ascending
    counts: np.ndarray  # symbols per present row


class IndexedCoder:
    """Range-codes integer symbols, each with the frozen table row chosen by its index.

    As tensorflow-compression's indexed entropy models and CompressAI's
    ``encode_with_indexes``: the caller says which row codes each symbol (for the
    factorized prior, row = level * M + channel; for the hyperprior, the scale
    index the integer network computes). Symbols are coded grouped by row, in
    ascending row order, each group in the caller's element order (one
    constriction call per row), then every escaped distance in that same order.
    The decoder, knowing every symbol's row, reads them back the same way.
    """

    def __init__(self, tables: EntropyTables, tight_escapes: bool = False):
        self.tables = tables
        # Format 2 streams code an escape's low bits in exactly that many bits.
        self.tight_escapes = tight_escapes
        t = tables
        freqs = [t.freq_row(r).astype(np.float64) for r in range(len(t.lengths))]
        self._log2p = [np.log2(f / f.sum()) for f in freqs]
        self._freqs = freqs
        self._models: dict[int, object] = {}
        self.offsets = t.offsets.astype(np.int64)
        self.lengths = t.lengths.astype(np.int64)
        # Fewest bits a symbol of each row can cost: the decoder's plausibility checks.
        self.min_bits = np.array([-float(lp.max()) for lp in self._log2p])

    @property
    def rows(self) -> int:
        return len(self.lengths)

    def _model(self, row: int):
        if row not in self._models:
            self._models[row] = constriction.stream.model.Categorical(
                self._freqs[row], perfect=False
            )
        return self._models[row]

    @staticmethod
    def _groups(rows: np.ndarray) -> Groups:
        """Element order (grouped by row, stable), the rows present and their group sizes."""
        order = np.argsort(rows, kind="stable")
        present, counts = np.unique(rows[order], return_counts=True)
        return Groups(order, present, counts)

    def _bins(self, symbols: np.ndarray, rows: np.ndarray):
        """Bin of each symbol (escapes at bin 0 / the last bin) and the escaped distances."""
        offsets, lengths = self.offsets[rows], self.lengths[rows]
        idx = symbols.astype(np.int64) - offsets + 1
        under = idx < 1
        over = idx > lengths - 2
        esc = under | over
        if esc.any():
            dist = np.where(under, -idx, idx - (lengths - 1))[esc]  # >= 0
            idx = np.where(under, 0, np.where(over, lengths - 1, idx))
        else:
            dist = np.zeros(0, np.int64)
        return idx.astype(np.int32), dist

    def check_rows(self, rows: np.ndarray) -> np.ndarray:
        rows = np.asarray(rows, np.int64).ravel()
        if rows.size and (rows.min() < 0 or rows.max() >= self.rows):
            raise InputError("corrupt payload: table index out of range")
        return rows

    def estimate_bits(self, symbols: np.ndarray, rows: np.ndarray) -> float:
        """-log2 p of the symbols under the frozen tables, escape codes included."""
        rows = self.check_rows(rows)
        sym = np.clip(np.asarray(symbols).ravel(), -LATENT_LIMIT, LATENT_LIMIT)
        idx, dist = self._bins(sym, rows)
        bits = 0.0
        for r in np.unique(rows):
            bits -= float(self._log2p[r][idx[rows == r]].sum())
        for d in dist:
            bits += _gamma_bits(int(d), self.tight_escapes)
        return bits

    def encode_into(self, enc, symbols: np.ndarray, rows: np.ndarray) -> None:
        """Append the symbols, then their escapes, to a constriction ``RangeEncoder``."""
        self.encode_grouped(enc, symbols, self._groups(self.check_rows(rows)))

    def encode_grouped(self, enc, symbols: np.ndarray, groups: Groups) -> None:
        """``encode_into`` with the coding order given (a caller that knows it needs no sort)."""
        sym = np.clip(np.asarray(symbols).ravel(), -LATENT_LIMIT, LATENT_LIMIT)
        order, present, counts = groups
        idx, dist = self._bins(sym[order], np.repeat(present, counts))
        start = 0
        for r, n in zip(present, counts):
            enc.encode(np.ascontiguousarray(idx[start : start + n]), self._model(int(r)))
            start += n
        # Escapes after the stream's regular symbols: the decoder knows where they are by then.
        for d in dist:
            _encode_gamma(enc, int(d), self.tight_escapes)

    def decode_from(self, dec, rows: np.ndarray, budget_bits: float) -> np.ndarray:
        """Symbols (int64, in the element order of ``rows``) read from a ``RangeDecoder``.

        ``budget_bits`` bounds the information the stream can hold (from its length):
        a stream claiming more is corrupt, and is refused before long loops.
        """
        rows = self.check_rows(rows)
        # Before the sort: a crafted header can claim a huge image for a tiny stream.
        self.check_budget(self.min_bits[rows].sum(), budget_bits)
        return self.decode_grouped(dec, self._groups(rows), budget_bits)

    @staticmethod
    def check_budget(min_bits: float, budget_bits: float) -> None:
        """Refuse a stream too short for the fewest bits its symbols can cost."""
        if float(min_bits) > budget_bits:
            raise InputError("corrupt payload: too short for the image size")

    def decode_grouped(self, dec, groups: Groups, budget_bits: float) -> np.ndarray:
        """``decode_from`` with the coding order given (a caller that knows it needs no sort)."""
        order, present, counts = groups
        self.check_budget(self.min_bits[present] @ counts, budget_bits)
        idx = np.empty(len(order), np.int64)
        info, start = 0.0, 0
        for r, n in zip(present, counts):
            got = dec.decode(self._model(int(r)), int(n))
            idx[start : start + n] = got
            info -= float(self._log2p[r][got].sum())
            if info > budget_bits:  # a corrupt stream stops early
                raise InputError("corrupt payload: shorter than its symbols")
            start += n
        values = self.values_from_bins(dec, idx, np.repeat(present, counts), info, budget_bits)
        out = np.empty(len(order), np.int64)
        out[order] = values
        return out

    def values_from_bins(
        self, dec, idx: np.ndarray, sorted_rows: np.ndarray, info: float, budget_bits: float
    ) -> np.ndarray:
        """The values of bins decoded in coding order (int64), reading the escaped
        distances that follow them from ``dec``; ``info`` is the bits decoded so far."""
        lengths = self.lengths[sorted_rows]
        values = idx + self.offsets[sorted_rows] - 1
        under = idx == 0
        esc = under | (idx == lengths - 1)
        n_esc = int(esc.sum())
        if n_esc:
            if info + n_esc * ESCAPE_PREFIX_BITS > budget_bits:  # each escape codes >= that
                raise InputError("corrupt payload: shorter than its symbols")
            for i in np.nonzero(esc)[0]:  # in coding order
                d = _decode_gamma(dec, self.tight_escapes)
                # Python ints: a corrupt d (up to 2**33) must not overflow int32 scalar math.
                r = int(sorted_rows[i])
                if under[i]:
                    values[i] = int(self.offsets[r]) - 1 - d
                else:
                    values[i] = int(self.offsets[r]) + int(self.lengths[r]) - 2 + d
            if np.abs(values).max(initial=0) > LATENT_LIMIT:
                raise InputError("corrupt payload: latent out of range")
        return values


def new_encoder():
    return constriction.stream.queue.RangeEncoder()


def finish(enc) -> bytes:
    """The encoder's words as bytes; the last word's trailing zero bytes carry nothing."""
    data = enc.get_compressed().astype("<u4").tobytes()
    return data[: len(data) - (len(data[-4:]) - len(data[-4:].rstrip(b"\0")))] if data else b""


def new_decoder(data: bytes):
    padded = data + b"\0" * (-len(data) % 4)
    return constriction.stream.queue.RangeDecoder(np.frombuffer(padded, dtype="<u4").copy())


def budget_bits(data: bytes) -> float:
    """Most information a stream of this length can carry: a range coder never writes fewer
    bits than its symbols' -log2 p minus a few words. Factor 2 and 256 bits of slack cover
    constriction's re-quantized probabilities and the final flush."""
    return 2.0 * (8 * len(data) + 256)


def decoding_errors(fn):
    """Run a decode; constriction's reports of impossible streams become InputError."""
    try:
        return fn()
    except InputError:
        raise
    except (AssertionError, ValueError, RuntimeError, OverflowError) as exc:
        raise InputError(f"corrupt payload ({type(exc).__name__})") from None


class LatentCoder:
    """The factorized prior's latents (H, W, M) int32 of one level: row = level * M + channel."""

    def __init__(self, tables: EntropyTables, tight_escapes: bool = False):
        self.tables = tables
        self.indexed = IndexedCoder(tables, tight_escapes)

    def check_level(self, level: int) -> None:
        if not 0 <= level < self.tables.levels:
            raise InputError(f"no tables for level {level}")

    def rows(self, level: int, shape: tuple[int, int]) -> np.ndarray:
        self.check_level(level)
        m = self.tables.channels
        return np.broadcast_to(level * m + np.arange(m), (shape[0] * shape[1], m)).ravel()

    def groups(self, level: int, shape: tuple[int, int]) -> Groups:
        """The coding order of ``rows(level, shape)`` without a sort: channel by channel,
        each channel's positions in raster order."""
        m, n = self.tables.channels, shape[0] * shape[1]
        order = np.arange(n * m).reshape(n, m).T.ravel()
        return Groups(order, level * m + np.arange(m), np.full(m, n, np.int64))

    def estimate_bits(self, sym: np.ndarray, level: int) -> float:
        return self.indexed.estimate_bits(sym, self.rows(level, sym.shape[:2]))

    def encode_into(self, enc, sym: np.ndarray, level: int) -> None:
        """Append one level's latents (h, w, M) to a constriction ``RangeEncoder``."""
        self.check_level(level)
        self.indexed.encode_grouped(enc, sym, self.groups(level, sym.shape[:2]))

    def encode(self, sym: np.ndarray, level: int) -> bytes:
        enc = new_encoder()
        self.encode_into(enc, sym, level)
        return finish(enc)

    def decode_from(
        self, dec, level: int, shape: tuple[int, int], budget_bits: float
    ) -> np.ndarray:
        """Latents (h, w, M) int32 read from a ``RangeDecoder`` (see ``decode``)."""
        self.check_level(level)
        m = self.tables.channels
        # Before the order is built: a crafted header can claim a huge image for a tiny stream.
        min_bits = self.indexed.min_bits[level * m : (level + 1) * m].sum()
        self.indexed.check_budget(shape[0] * shape[1] * min_bits, budget_bits)
        groups = self.groups(level, shape)
        values = self.indexed.decode_grouped(dec, groups, budget_bits)
        return values.reshape(shape[0], shape[1], m).astype(np.int32)

    def decode(self, data: bytes, level: int, shape: tuple[int, int]) -> np.ndarray:
        """Latents (h, w, M) int32; any inconsistent stream raises InputError."""
        return decoding_errors(
            lambda: self.decode_from(new_decoder(data), level, shape, budget_bits(data))
        )


_UNIFORM_K = constriction.stream.model.Uniform(34)
_UNIFORM_CHUNK = constriction.stream.model.Uniform(1 << _CHUNK_BITS)


_UNIFORM_BITS = {b: constriction.stream.model.Uniform(1 << b) for b in range(1, _CHUNK_BITS + 1)}


def _chunk_model(take: int, tight: bool):
    # Format 1 codes every chunk over 2**16 values; format 2 only over the bits it holds.
    return _UNIFORM_BITS[take] if tight else _UNIFORM_CHUNK


#: Bits of an escape's length prefix (k in 1..33, uniform over 34 values).
ESCAPE_PREFIX_BITS = float(np.log2(34))


def _gamma_bits(d: int, tight: bool) -> float:
    k = int(d + 1).bit_length()
    return ESCAPE_PREFIX_BITS + (k - 1 if tight else _CHUNK_BITS * -(-(k - 1) // _CHUNK_BITS))


def _encode_gamma(enc, d: int, tight: bool = False) -> None:
    v = d + 1
    k = v.bit_length()  # 1..33
    enc.encode(np.array([k], np.int32), _UNIFORM_K)
    rest, nbits = v - (1 << (k - 1)), k - 1
    while nbits > 0:
        take = min(nbits, _CHUNK_BITS)
        chunk = rest & ((1 << take) - 1)
        enc.encode(np.array([chunk], np.int32), _chunk_model(take, tight))
        rest >>= take
        nbits -= take


def _decode_gamma(dec, tight: bool = False) -> int:
    k = int(dec.decode(_UNIFORM_K, 1)[0])
    if not 1 <= k <= 33:
        raise InputError("corrupt payload: bad escape code")
    v, shift, nbits = 0, 0, k - 1
    while nbits > 0:
        take = min(nbits, _CHUNK_BITS)
        chunk = int(dec.decode(_chunk_model(take, tight), 1)[0]) & ((1 << take) - 1)
        v |= chunk << shift
        shift += take
        nbits -= take
    return v + (1 << (k - 1)) - 1
