"""Entropy coding and the .gcz container, without TensorFlow."""

import struct
import zlib

import numpy as np
import pytest

from gancomp.coding import container
from gancomp.coding.entropy import (
    LATENT_LIMIT,
    EntropyTables,
    LatentCoder,
    finish,
    new_encoder,
    quantize_pmf,
)
from gancomp.errors import InputError


def _tables(levels=2, channels=5, seed=0) -> EntropyTables:
    """Hand-built tables: one Laplace-like row per (level, channel) of varying width."""
    rng = np.random.default_rng(seed)
    offsets, lengths, rows = [], [], []
    for _ in range(levels * channels):
        half = int(rng.integers(1, 20))
        v = np.arange(-half, half + 1)
        pmf = np.exp(-np.abs(v) / rng.uniform(0.3, 4))
        rows.append(quantize_pmf(np.concatenate([[1e-4], pmf, [1e-4]])))
        offsets.append(-half)
        lengths.append(len(v) + 2)
    lengths = np.array(lengths, np.int32)
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    return EntropyTables(
        levels, channels, np.array(offsets, np.int32), lengths, starts, np.concatenate(rows)
    )


def test_quantize_pmf_sums_and_floor():
    f = quantize_pmf(np.array([0.0, 1e-12, 0.5, 0.5]))
    assert f.sum() == 1 << 16 and f.min() >= 1


@pytest.mark.parametrize("seed", range(5))
def test_round_trip_random_latents(seed):
    t = _tables(seed=seed)
    coder = LatentCoder(t)
    rng = np.random.default_rng(seed)
    sym = np.round(rng.laplace(0, 2, size=(3, 7, t.channels))).astype(np.int32)
    for level in range(t.levels):
        data = coder.encode(sym, level)
        assert np.array_equal(coder.decode(data, level, (3, 7)), sym)


@pytest.mark.parametrize("shape", [(1, 1), (3, 7), (8, 8)])
def test_factorized_coding_order_is_the_specified_one(shape):
    # LatentCoder skips the sort by row; its order and bytes must be the sorted order's.
    t = _tables()
    coder = LatentCoder(t)
    sym = np.round(np.random.default_rng(1).laplace(0, 3, (*shape, t.channels)))
    for level in range(t.levels):
        rows = coder.rows(level, shape)
        want = coder.indexed._groups(rows)
        got = coder.groups(level, shape)
        assert all(np.array_equal(a, b) for a, b in zip(want, got, strict=True))
        enc = new_encoder()
        coder.indexed.encode_into(enc, sym, rows)
        assert coder.encode(sym, level) == finish(enc)


def test_huge_claimed_shape_is_refused_before_the_order_is_built():
    # 2**40 positions: building the coding order would need terabytes.
    with pytest.raises(InputError, match="too short for the image size"):
        LatentCoder(_tables()).decode(b"\x5a" * 64, 0, (1 << 20, 1 << 20))


def test_round_trip_adversarial_latents():
    t = _tables()
    coder = LatentCoder(t)
    extreme = np.array([0, 1, -1, 2**15, -(2**15), LATENT_LIMIT, -LATENT_LIMIT, 2**31 - 1, 10**6])
    sym = np.resize(extreme, (3, 3, t.channels)).astype(np.int64)
    data = coder.encode(sym, 1)
    out = coder.decode(data, 1, (3, 3))
    assert np.array_equal(out, np.clip(sym, -LATENT_LIMIT, LATENT_LIMIT))
    # Every symbol escaping still codes and decodes.
    far = np.full((2, 2, t.channels), -5000, np.int32)
    assert np.array_equal(coder.decode(coder.encode(far, 0), 0, (2, 2)), far)


def test_size_matches_estimate():
    t = _tables(channels=8)
    coder = LatentCoder(t)
    rng = np.random.default_rng(3)
    sym = np.round(rng.laplace(0, 3, size=(40, 40, t.channels))).astype(np.int32)
    est = coder.estimate_bits(sym, 0) / 8
    size = len(coder.encode(sym, 0))
    assert est > 1000
    assert abs(size - est) <= 0.01 * est + 4


def test_tables_serialise():
    t = _tables()
    t2 = EntropyTables.from_bytes(t.to_bytes())
    assert np.array_equal(t.freqs, t2.freqs) and np.array_equal(t.offsets, t2.offsets)


def test_garbage_payload_never_hangs_or_overflows():
    coder = LatentCoder(_tables())
    rng = np.random.default_rng(0)
    for _ in range(50):
        blob = rng.bytes(int(rng.integers(0, 64)))
        try:
            out = coder.decode(blob, 0, (4, 4))
        except InputError:
            continue
        assert np.abs(out).max() <= LATENT_LIMIT


# -- container -----------------------------------------------------------------------------


def _header(**kw):
    base = dict(
        category="airplane", quality=3, fingerprint=b"\x01\x02\x03\x04", width=32, height=32
    )
    base.update(kw)
    return container.Header(**base)


def test_overhead_at_most_16_bytes_for_32x32():
    payload = b"x" * 50
    data = container.pack(_header(), payload)
    assert len(data) - len(payload) <= 16
    h, p = container.unpack(data)
    assert p == payload and (h.category, h.quality, h.width, h.height) == ("airplane", 3, 32, 32)


def test_hand_made_header_from_spec():
    # Built byte by byte from docs/FORMAT.md: magic, version 1 with grayscale flag,
    # category id 2 (flower) with quality 8, fingerprint, width 300, height 5, payload, CRC-32.
    body = b"GZ" + bytes([0x11, 2 | (7 << 5)]) + bytes.fromhex("deadbeef")
    body += bytes([0xAC, 0x02]) + bytes([5]) + b"payload"
    data = body + struct.pack("<I", zlib.crc32(body))
    h, p = container.unpack(data)
    assert (h.category, h.quality, h.width, h.height, h.grayscale) == ("flower", 8, 300, 5, True)
    assert h.fingerprint == bytes.fromhex("deadbeef") and p == b"payload"
    assert container.pack(h, p) == data


def test_named_category_and_alpha_round_trip():
    alpha = np.arange(12, dtype=np.uint8).reshape(3, 4)
    h = _header(category="ship", width=4, height=3, alpha=container.compress_alpha(alpha))
    h2, p = container.unpack(container.pack(h, b"abc"))
    assert h2.category == "ship" and p == b"abc"
    assert np.array_equal(container.decompress_alpha(h2.alpha, 4, 3), alpha)


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: b"XX" + d[2:], "bad magic"),
        (lambda d: d[:2] + bytes([0x40 | (d[2] & 15)]) + d[3:], "version 4"),
        (lambda d: d[:-1] + bytes([d[-1] ^ 1]), "checksum"),
        (lambda d: d[:10], "truncated"),
        (lambda d: b"", "bad magic"),
    ],
)
def test_bad_containers(mutate, message):
    data = container.pack(_header(), b"payload")
    with pytest.raises(InputError, match=message):
        container.unpack(mutate(data))


def test_forged_size_is_refused_before_allocation():
    body = b"GZ" + bytes([0x10, 0]) + b"\0\0\0\0"
    big = bytes([0xC0, 0x84, 0x3D])  # 1,000,000 as a varint
    body += big + big
    data = body + struct.pack("<I", zlib.crc32(body))
    with pytest.raises(InputError, match="exceeds the limit"):
        container.unpack(data)
