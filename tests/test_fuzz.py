"""Fuzzing .gcz decoding: every malformed file gives a one-line GancompError, quickly.

Real files come from the small random models of the ``models_dir`` fixture. The CRC-32
rejects most mutations before any model work, so many cases below recompute the CRC to
reach the header parser, the range decoder and the generator as well.
"""

from __future__ import annotations

import contextlib
import struct
import time
import zlib
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from gancomp.coding import container
from gancomp.coding.entropy import LATENT_LIMIT
from gancomp.errors import GancompError, InputError
from gancomp.runtime import codec
from helpers import run_cli

DATA = Path(__file__).parent / "data"
# Per decode attempt: CPU seconds, so that a machine busy with other work does not fail the
# test while a hang or runaway loop still does; wall time gets a looser backstop.
TIME_LIMIT = 2.0
COUNTS: dict[str, int] = {}  # mutated files tried per test, checked in the last test


def _with_crc(body: bytes) -> bytes:
    return body + struct.pack("<I", zlib.crc32(body))


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        out.append((n & 0x7F) | (0x80 if n > 0x7F else 0))
        n >>= 7
        if not n:
            return bytes(out)


def _decode(data: bytes, models_dir: Path) -> codec.DecodedImage | GancompError:
    """The decoded image or the GancompError raised; anything else propagates and fails."""
    with _time_bound():
        try:
            result: codec.DecodedImage | GancompError = codec.decompress(data, models_dir)
        except GancompError as exc:
            result = exc
            assert "\n" not in str(exc)
    return result


@contextlib.contextmanager
def _time_bound() -> Iterator[None]:
    # CPU time only: a hang or a bomb burns CPU; wall time would fail on a busy machine.
    cpu = time.process_time()
    yield
    cpu = time.process_time() - cpu
    assert cpu < TIME_LIMIT, f"took {cpu:.2f} s CPU"


def _check_outcome(data: bytes, result: codec.DecodedImage | GancompError) -> None:
    """A mutated file that decodes at all must give an image of its header's size."""
    if isinstance(result, GancompError):
        return
    header, _ = container.unpack(data)
    assert result.rgb.shape == (header.height, header.width, 3)
    assert result.rgb.dtype == np.uint8
    if header.alpha is not None:
        assert result.alpha is not None and result.alpha.shape == (header.height, header.width)


def _count(test: str, n: int) -> None:
    COUNTS[test] = COUNTS.get(test, 0) + n


@pytest.fixture(scope="module")
def gcz_files(models_dir, tmp_path_factory) -> dict[str, bytes]:
    """Real files: 32x32 airplane, RGBA (alpha plane in the header), named 'ship', and two
    format-2 files of hyperprior models (z and y streams): 32x32 and a photo crop."""
    tmp = tmp_path_factory.mktemp("fuzz")
    rng = np.random.default_rng(7)
    rgb = rng.integers(0, 256, (20, 24, 3), dtype=np.uint8)
    alpha = np.tile(np.linspace(0, 255, 24, dtype=np.uint8), (20, 1))
    Image.fromarray(np.dstack([rgb, alpha])).save(tmp / "rgba.png")
    files = {
        "airplane": codec.compress(DATA / "airplane_0.png", "airplane", 4, models_dir),
        "rgba": codec.compress(tmp / "rgba.png", "flower", 6, models_dir),
        "ship": codec.compress(DATA / "airplane_2.png", "ship", 2, models_dir),
        "hp-airplane": codec.compress(DATA / "airplane_1.png", "hp-airplane", 3, models_dir),
        "hp-flower": codec.compress(
            np.asarray(Image.open(DATA / "flower_1.jpg"))[:40, :72], "hp-flower", 5, models_dir
        ),
    }
    assert container.unpack(files["hp-flower"])[0].entropy_model == "hyperprior"
    assert container.unpack(files["rgba"])[0].alpha is not None
    assert container.unpack(files["ship"])[0].category == "ship"
    for data in files.values():  # warm up (not timed): the first call per model traces the graph
        codec.decompress(data, models_dir)
    return files


def test_every_truncation_is_refused(gcz_files, models_dir):
    for data in gcz_files.values():
        for n in range(len(data)):
            assert isinstance(_decode(data[:n], models_dir), InputError)
        _count("truncation", len(data))


def test_truncated_payload_with_valid_crc(gcz_files, models_dir):
    # Cut the payload short and re-seal: the range decoder sees an early end of stream.
    for data in gcz_files.values():
        header, payload = container.unpack(data)
        start = len(data) - 4 - len(payload)
        for n in range(start, len(data) - 4):
            cut = _with_crc(data[:n])
            _check_outcome(cut, _decode(cut, models_dir))
        _count("truncated payload", len(payload))


def test_every_single_bit_flip_is_refused(gcz_files, models_dir):
    for data in gcz_files.values():
        buf = bytearray(data)
        for bit in range(8 * len(data)):
            buf[bit // 8] ^= 1 << (bit % 8)
            assert isinstance(_decode(bytes(buf), models_dir), InputError)
            buf[bit // 8] ^= 1 << (bit % 8)
        _count("bit flip", 8 * len(data))


def test_bit_flips_with_valid_crc(gcz_files, models_dir):
    # Flips that survive the checksum reach the header parser, the model lookup and the
    # generator: every header bit, and every 5th payload bit (each payload bit is flipped
    # in test_entropy_decoder_bit_flips, without the cost of running the generator).
    for data in gcz_files.values():
        header_bits = 8 * (len(data) - 4 - len(container.unpack(data)[1]))
        body = bytearray(data[:-4])
        bits = [b for b in range(8 * len(body)) if b < header_bits or b % 5 == 0]
        for bit in bits:
            body[bit // 8] ^= 1 << (bit % 8)
            mutated = _with_crc(bytes(body))
            _check_outcome(mutated, _decode(mutated, models_dir))
            body[bit // 8] ^= 1 << (bit % 8)
        _count("bit flip, valid crc", len(bits))


def _decode_latents(coder, payload: bytes, level: int, shape: tuple[int, int]) -> None:
    """LatentCoder.decode gives latents of the right shape or InputError, nothing else."""
    with _time_bound():
        try:
            out = coder.decode(payload, level, shape)
        except InputError:
            return
    assert out.shape == (*shape, coder.tables.channels) and out.dtype == np.int32
    assert np.abs(out).max() <= LATENT_LIMIT


def _decode_symbols(c, header, payload: bytes) -> None:
    """Every stream (y; z and y for a hyperprior) decodes to the right shapes or InputError."""
    with _time_bound():
        try:
            streams = c.decode_symbols([(header, payload)])[0]
        except InputError:
            return
    h, w = -(-header.height // c.stride), -(-header.width // c.stride)
    assert streams["y"].shape[:2] == (h, w) and streams["y"].dtype == np.int32
    for sym in streams.values():
        assert np.abs(sym).max() <= LATENT_LIMIT


def test_entropy_decoder_bit_flips(gcz_files, models_dir):
    for data in gcz_files.values():
        header, payload = container.unpack(data)
        c = codec.load_codec(header.category, models_dir)
        buf = bytearray(payload)
        for bit in range(8 * len(buf)):
            buf[bit // 8] ^= 1 << (bit % 8)
            _decode_symbols(c, header, bytes(buf))
            buf[bit // 8] ^= 1 << (bit % 8)
        _count("entropy bit flip", 8 * len(buf))


def _mutate(data: bytes, rng: np.random.Generator) -> bytes:
    buf = bytearray(data)
    kind = int(rng.integers(6))
    pos = int(rng.integers(len(buf)))
    if kind == 0:  # overwrite a few bytes
        for _ in range(int(rng.integers(1, 5))):
            buf[int(rng.integers(len(buf)))] = int(rng.integers(256))
    elif kind == 1:  # insert random bytes
        buf[pos:pos] = rng.bytes(int(rng.integers(1, 16)))
    elif kind == 2:  # delete a range
        del buf[pos : pos + int(rng.integers(1, 16))]
    elif kind == 3:  # duplicate a segment
        buf[pos:pos] = buf[pos : pos + int(rng.integers(1, 32))]
    elif kind == 4:  # extreme byte values, varints that never end
        buf[pos : pos + 3] = bytes([0xFF, 0xFF, 0xFF])
    else:  # random tail
        buf[pos:] = rng.bytes(int(rng.integers(0, 64)))
    return bytes(buf)


def test_random_mutation_loop(gcz_files, models_dir):
    rng = np.random.default_rng(2024)
    blobs = list(gcz_files.values())
    n = 600
    for i in range(n):
        mutated = _mutate(blobs[i % len(blobs)], rng)
        if i % 2 and len(mutated) > 4:
            mutated = _with_crc(mutated[:-4])  # half of them reach past the checksum
        _check_outcome(mutated, _decode(mutated, models_dir))
    _count("random mutation", n)


# -- hand-built files from the spec in gancomp/container.py ---------------------------------


def _body(
    *,
    fingerprint: bytes,
    width: int,
    height: int,
    cid: int = 0,
    quality: int = 4,
    flags: int = 0,
    version: int = 1,
    name: bytes | None = None,
    alpha: bytes | None = None,
    payload: bytes = b"",
) -> bytes:
    out = b"GZ" + bytes([(version << 4) | flags, cid | ((quality - 1) << 5)])
    if name is not None:
        out += _varint(len(name)) + name
    out += fingerprint + _varint(width) + _varint(height)
    if alpha is not None:
        out += _varint(len(alpha)) + alpha
    return out + payload


def _fingerprint(category: str, models_dir: Path) -> bytes:
    return codec.load_codec(category, models_dir).fingerprint


@pytest.fixture(scope="module")
def crafted(models_dir, gcz_files) -> dict[str, tuple[bytes, str]]:
    """Named malformed files and a fragment of the expected message."""
    fp = _fingerprint("airplane", models_dir)
    real_payload = container.unpack(gcz_files["airplane"])[1]
    junk = np.random.default_rng(3).bytes(100)
    valid = gcz_files["airplane"]

    def body32(**fields) -> bytes:  # a 32x32 header for the airplane model, then fields
        return _body(fingerprint=fp, width=32, height=32, **fields)

    def forged(**fields) -> bytes:
        return _with_crc(body32(**fields))

    return {
        "empty": (b"", "bad magic"),
        "one byte": (b"G", "bad magic"),
        "magic only": (b"GZ", "truncated"),
        "wrong magic": (b"PK" + valid[2:], "bad magic"),
        "png": ((DATA / "airplane_0.png").read_bytes(), "bad magic"),
        "future version": (valid[:2] + bytes([0x41]) + valid[3:], "version 4"),
        "version 15": (valid[:2] + bytes([0xF0]) + valid[3:], "version 15"),
        "version 0": (valid[:2] + bytes([0x00]) + valid[3:], "version 0"),
        "1e6 x 1e6": (
            _with_crc(_body(fingerprint=fp, width=1_000_000, height=1_000_000, payload=junk)),
            "exceeds the limit",
        ),
        "65536 x 65536": (
            _with_crc(_body(fingerprint=fp, width=65536, height=65536, payload=junk)),
            "bad image size",
        ),
        "width 0": (_with_crc(_body(fingerprint=fp, width=0, height=32)), "bad image size"),
        # Within every limit, right model, 100 bytes of junk for 100 Mpx: must fail fast.
        "65536 x 1525 junk": (
            _with_crc(_body(fingerprint=fp, width=65536, height=1525, payload=junk)),
            "corrupt payload",
        ),
        "65536 x 1525 empty": (
            _with_crc(_body(fingerprint=fp, width=65536, height=1525)),
            "corrupt payload",
        ),
        "wrong fingerprint": (
            _with_crc(_body(fingerprint=b"\0\0\0\0", width=32, height=32, payload=real_payload)),
            "written by model",
        ),
        "unknown flag": (
            forged(flags=8, payload=real_payload),
            "unknown flag",
        ),
        "unknown category id": (
            forged(cid=9),
            "unknown category id 9",
        ),
        "category path": (
            forged(cid=31, name=b"../airplane"),
            "invalid category name",
        ),
        "absolute category path": (
            forged(cid=31, name=b"/tmp"),
            "invalid category name",
        ),
        "category not utf-8": (
            forged(cid=31, name=b"\xff\xfe"),
            "not UTF-8",
        ),
        "missing category": (
            forged(cid=31, name=b"truck"),
            "no model for category 'truck'",
        ),
        "garbage alpha": (
            forged(
                flags=2,
                alpha=b"not zlib",
                payload=real_payload,
            ),
            "alpha plane",
        ),
        "alpha of the wrong size": (
            forged(
                flags=2,
                alpha=zlib.compress(b"\x80" * 1000),
                payload=real_payload,
            ),
            "alpha plane has the wrong size",
        ),
        "alpha zip bomb": (
            forged(
                flags=2,
                alpha=zlib.compress(b"\0" * 20_000_000, 9),
                payload=real_payload,
            ),
            "alpha plane has the wrong size",
        ),
        "alpha length past the end": (
            _with_crc(body32(flags=2) + _varint(5000)),
            "exceeds the limit",
        ),
        "endless varint": (
            _with_crc(body32()[:8] + b"\xff" * 12),
            "too long",
        ),
    }


def test_crafted_files(crafted, models_dir):
    for name, (data, message) in crafted.items():
        result = _decode(data, models_dir)
        assert isinstance(result, GancompError), name
        assert message in str(result), (name, str(result))
        if name != "missing category":
            assert isinstance(result, InputError), name
    _count("crafted", len(crafted))


# -- property tests ------------------------------------------------------------------------


@settings(max_examples=150, deadline=None)
@given(data=st.one_of(st.binary(max_size=300), st.binary(max_size=300).map(lambda b: b"GZ" + b)))
def test_random_bytes_are_refused(models_dir, data):
    assert isinstance(_decode(data, models_dir), InputError)
    _count("hypothesis random bytes", 1)


@settings(max_examples=150, deadline=None)
@given(
    category=st.sampled_from(["airplane", "flower", "ship"]),
    width=st.integers(1, 80),
    height=st.integers(1, 80),
    quality=st.integers(1, 8),
    gray=st.booleans(),
    alpha=st.one_of(st.none(), st.just(b"valid"), st.binary(max_size=40)),
    payload=st.binary(max_size=600),
)
def test_garbage_payload_behind_valid_header(
    models_dir, category, width, height, quality, gray, alpha, payload
):
    if alpha == b"valid":
        plane = np.full((height, width), 200, np.uint8)
        alpha = container.compress_alpha(plane)
    header = container.Header(
        category,
        quality,
        _fingerprint(category, models_dir),
        width,
        height,
        grayscale=gray,
        alpha=alpha,
    )
    data = container.pack(header, payload)
    result = _decode(data, models_dir)
    if isinstance(result, GancompError):
        assert isinstance(result, InputError)
    _check_outcome(data, result)
    _count("hypothesis garbage payload", 1)


@settings(max_examples=150, deadline=None)
@given(
    level=st.integers(0, 7),
    h=st.integers(1, 6),
    w=st.integers(1, 6),
    payload=st.binary(max_size=300),
)
def test_entropy_decoder_directly(models_dir, level, h, w, payload):
    _decode_latents(codec.load_codec("airplane", models_dir).coder, payload, level, (h, w))
    _count("hypothesis entropy decoder", 1)


@settings(max_examples=60, deadline=None)
@given(
    level=st.integers(0, 7),
    h=st.integers(1, 5),
    w=st.integers(1, 5),
    seed=st.integers(0, 2**32 - 1),
    scale=st.sampled_from([0.5, 3.0, 40.0, 5000.0]),
)
def test_valid_streams_always_decode(models_dir, level, h, w, seed, scale):
    # The decoder's too-short-payload check must never refuse a real encoder output.
    coder = codec.load_codec("airplane", models_dir).coder
    rng = np.random.default_rng(seed)
    sym = np.rint(rng.laplace(0, scale, (h, w, coder.tables.channels))).astype(np.int32)
    sym[0, 0, 0] = LATENT_LIMIT if seed % 2 else -LATENT_LIMIT  # always one long escape
    assert np.array_equal(coder.decode(coder.encode(sym, level), level, (h, w)), sym)


def test_at_least_2000_mutated_files():
    # Runs last in this module (pytest keeps file order); skipped when run alone.
    if len(COUNTS) < 5:
        pytest.skip("needs the other tests of this module")
    assert sum(COUNTS.values()) >= 2000, COUNTS


# -- the real CLI --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "case", ["empty", "truncated", "bit flip", "1e6 x 1e6", "junk payload", "wrong fingerprint"]
)
def test_cli_reports_one_line(tmp_path, models_dir, gcz_files, crafted, case):
    valid = gcz_files["airplane"]
    data = {
        "empty": b"",
        "truncated": valid[:40],
        "bit flip": valid[:50] + bytes([valid[50] ^ 4]) + valid[51:],
        "1e6 x 1e6": crafted["1e6 x 1e6"][0],
        "junk payload": crafted["65536 x 1525 junk"][0],
        "wrong fingerprint": crafted["wrong fingerprint"][0],
    }[case]
    src = tmp_path / "bad.gcz"
    src.write_bytes(data)
    out = tmp_path / "bad.png"
    r = run_cli("decompress", src, "-o", out, "--models-dir", models_dir, timeout=120)
    assert r.returncode == 1, r.stderr
    assert "Traceback" not in r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("gancomp: error: "), r.stderr
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.gcz"]
