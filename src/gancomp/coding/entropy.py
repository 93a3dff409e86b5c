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

    def to_bytes(self) -> bytes:
        buf = io.BytesIO()
        np.savez(
            buf,
            shape=np.array([self.levels, self.channels], np.int32),
            offsets=self.offsets.astype(np.int32),
            lengths=self.lengths.astype(np.int32),
            freqs=self.freqs.astype(np.int32),
        )
        return buf.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> EntropyTables:
        with np.load(io.BytesIO(data), allow_pickle=False) as z:
            levels, channels = (int(v) for v in z["shape"])
            lengths = z["lengths"].astype(np.int32)
            starts = np.concatenate([[0], np.cumsum(lengths.astype(np.int64))[:-1]])
            return cls(levels, channels, z["offsets"].astype(np.int32), lengths, starts, z["freqs"])

    def freq_row(self, r: int) -> np.ndarray:
        s = int(self.starts[r])
        return self.freqs[s : s + int(self.lengths[r])]


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
    pmf = density.pmf_table(lo, hi)  # (rows, hi - lo + 1)
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
        density.levels,
        density.channels,
        np.array(offsets, np.int32),
        lengths_a,
        starts,
        np.concatenate(rows).astype(np.int32),
    )


class LatentCoder:
    """Range-codes (H, W, M) int32 latents of one level with the frozen tables.

    Symbols go channel by channel (one constriction call per channel, all
    positions at once), then the escaped distances in channel-major order.
    """

    def __init__(self, tables: EntropyTables):
        self.tables = tables
        self._cache: dict[int, _Level] = {}

    def _level(self, level: int) -> _Level:
        if level not in self._cache:
            t = self.tables
            rows = level * t.channels + np.arange(t.channels)
            freqs = [t.freq_row(int(r)).astype(np.float64) for r in rows]
            lengths = t.lengths[rows].astype(np.int64)
            starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
            flat = np.concatenate([np.log2(f / f.sum()) for f in freqs])
            log2p = np.split(flat, starts[1:])  # views: one table, two ways to index it
            self._cache[level] = _Level(
                models=[constriction.stream.model.Categorical(f, perfect=False) for f in freqs],
                log2p=log2p,
                log2p_flat=flat,
                log2p_start=starts,
                min_bits=sum(-float(lp.max()) for lp in log2p),
                offsets=t.offsets[rows].astype(np.int64),
                lengths=lengths,
            )
        return self._cache[level]

    def _bins(self, sym: np.ndarray, lv: _Level):
        """Bin index of each symbol, channel-major (M, H*W), and the escaped distances."""
        flat = sym.reshape(-1, len(lv.models)).T.astype(np.int64)
        idx = flat - lv.offsets[:, None] + 1
        under = idx < 1
        over = idx > lv.lengths[:, None] - 2
        esc = under | over
        if esc.any():
            dist = np.where(under, -idx, idx - (lv.lengths[:, None] - 1))[esc]  # >= 0
            idx = np.where(under, 0, np.where(over, lv.lengths[:, None] - 1, idx))
        else:
            dist = np.zeros(0, np.int64)
        return np.ascontiguousarray(idx, dtype=np.int32), dist

    def estimate_bits(self, sym: np.ndarray, level: int) -> float:
        """-log2 p of the symbols under the frozen tables, escape codes included."""
        lv = self._level(level)
        idx, dist = self._bins(sym, lv)
        bits = 0.0
        for c, lp in enumerate(lv.log2p):
            bits -= float(lp[idx[c]].sum())
        for d in dist:
            k = int(d + 1).bit_length()
            bits += np.log2(34) + _CHUNK_BITS * -(-(k - 1) // _CHUNK_BITS)
        return bits

    def encode(self, sym: np.ndarray, level: int) -> bytes:
        sym = np.clip(sym, -LATENT_LIMIT, LATENT_LIMIT)
        lv = self._level(level)
        idx, dist = self._bins(sym, lv)
        enc = constriction.stream.queue.RangeEncoder()
        for row, model in zip(idx, lv.models):
            enc.encode(row, model)
        # Escapes after all regular symbols: the decoder knows where they are by then.
        for d in dist:
            _encode_gamma(enc, int(d))
        data = enc.get_compressed().astype("<u4").tobytes()
        # The last word's trailing zero bytes carry nothing; decode pads them back.
        return data[: len(data) - (len(data[-4:]) - len(data[-4:].rstrip(b"\0")))] if data else b""

    def decode(self, data: bytes, level: int, shape: tuple[int, int]) -> np.ndarray:
        """Latents (h, w, M) int32; any inconsistent stream raises InputError."""
        try:
            return self._decode(data, level, shape)
        except InputError:
            raise
        except (AssertionError, ValueError, RuntimeError, OverflowError) as exc:
            # constriction reports impossible streams with assertions or value errors.
            raise InputError(f"corrupt payload ({type(exc).__name__})") from None

    def _decode(self, data: bytes, level: int, shape: tuple[int, int]) -> np.ndarray:
        lv = self._level(level)
        m = len(lv.models)
        h, w = shape
        # A range coder never writes fewer bits than the symbols' information (-log2 p) minus
        # a few words, so a payload far too short for the header's size is corrupt: refuse it
        # before allocating h*w*m latents or looping over escapes. Factor 2 and 256 bits of
        # slack cover constriction's re-quantized probabilities and the final flush.
        budget = 2.0 * (8 * len(data) + 256)
        if h * w * lv.min_bits > budget:
            raise InputError("corrupt payload: too short for the image size")
        padded = data + b"\0" * (-len(data) % 4)
        dec = constriction.stream.queue.RangeDecoder(np.frombuffer(padded, dtype="<u4").copy())
        idx = np.empty((m, h * w), np.int64)
        # Big images tally the information channel by channel, so a corrupt stream stops
        # early; small ones (bounded work anyway) are checked once, vectorised.
        per_channel = h * w > 4096
        info = 0.0
        for c, model in enumerate(lv.models):
            idx[c] = dec.decode(model, h * w)
            if per_channel:
                info -= float(lv.log2p[c][idx[c]].sum())
                if info > budget:
                    raise InputError("corrupt payload: shorter than its symbols")
        if not per_channel:
            info = -float(lv.log2p_flat[lv.log2p_start[:, None] + idx].sum())
            if info > budget:
                raise InputError("corrupt payload: shorter than its symbols")
        values = idx + lv.offsets[:, None] - 1
        under = idx == 0
        esc = under | (idx == lv.lengths[:, None] - 1)
        n_esc = int(esc.sum())
        if n_esc:
            if info + n_esc * np.log2(34) > budget:  # each escape codes >= log2(34) bits
                raise InputError("corrupt payload: shorter than its symbols")
            for c, i in zip(*np.nonzero(esc)):  # channel-major, as encoded
                d = _decode_gamma(dec)
                # Python ints: a corrupt d (up to 2**33) must not overflow int32 scalar math.
                if under[c, i]:
                    values[c, i] = int(lv.offsets[c]) - 1 - d
                else:
                    values[c, i] = int(lv.offsets[c]) + int(lv.lengths[c]) - 2 + d
            if np.abs(values).max(initial=0) > LATENT_LIMIT:
                raise InputError("corrupt payload: latent out of range")
        return np.ascontiguousarray(values.T.reshape(h, w, m), dtype=np.int32)


@dataclass
class _Level:
    """Range-coder models and table facts of one quality level, built once."""

    models: list
    log2p: list[np.ndarray]  # log2 probability of each bin, per channel
    log2p_flat: np.ndarray  # the same, concatenated ...
    log2p_start: np.ndarray  # ... with each channel's start
    min_bits: float  # fewest bits one position (all channels) can cost
    offsets: np.ndarray  # int64 (M,): value coded by bin 1
    lengths: np.ndarray  # int64 (M,): bins per row, escapes included


_UNIFORM_K = constriction.stream.model.Uniform(34)
_UNIFORM_CHUNK = constriction.stream.model.Uniform(1 << _CHUNK_BITS)


def _encode_gamma(enc, d: int) -> None:
    v = d + 1
    k = v.bit_length()  # 1..33
    enc.encode(np.array([k], np.int32), _UNIFORM_K)
    rest, nbits = v - (1 << (k - 1)), k - 1
    while nbits > 0:
        take = min(nbits, _CHUNK_BITS)
        chunk = rest & ((1 << take) - 1)
        enc.encode(np.array([chunk], np.int32), _UNIFORM_CHUNK)
        rest >>= take
        nbits -= take


def _decode_gamma(dec) -> int:
    k = int(dec.decode(_UNIFORM_K, 1)[0])
    if not 1 <= k <= 33:
        raise InputError("corrupt payload: bad escape code")
    v, shift, nbits = 0, 0, k - 1
    while nbits > 0:
        take = min(nbits, _CHUNK_BITS)
        chunk = int(dec.decode(_UNIFORM_CHUNK, 1)[0]) & ((1 << take) - 1)
        v |= chunk << shift
        shift += take
        nbits -= take
    return v + (1 << (k - 1)) - 1
