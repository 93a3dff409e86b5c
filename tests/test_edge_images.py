"""Awkward input images through `gancomp compress` + `decompress`: each either round-trips at
its exact size or fails with one clear line and exit status 1."""

from __future__ import annotations

import io
import json
import struct
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner, Result
from PIL import Image

from gancomp.cli import main
from gancomp.coding.container import unpack


def _cli(*args) -> Result:
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def _noise(h: int, w: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def _encoded(img: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kw)
    return buf.getvalue()


def _png(width: int, height: int, bit_depth: int, raw: bytes) -> bytes:
    """An RGB PNG built by hand: IHDR says width x height, IDAT holds ``raw`` scanlines."""

    def chunk(kind: bytes, payload: bytes) -> bytes:
        crc = struct.pack(">I", zlib.crc32(kind + payload))
        return struct.pack(">I", len(payload)) + kind + payload + crc

    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )


def _png_claiming(width: int, height: int) -> bytes:
    """A ~70-byte PNG whose header claims width x height (a decompression bomb)."""
    return _png(width, height, 8, b"\0" * 64)


BAD_FILES: dict[str, tuple[str, Callable[[], bytes], str]] = {
    "zero-byte": ("empty.png", lambda: b"", "file is empty"),
    "truncated png": (
        "cut.png",
        lambda: _encoded(Image.fromarray(_noise(64, 64)), "PNG")[:900],
        "corrupt or truncated",
    ),
    "truncated jpeg": (
        "cut.jpg",
        lambda: _encoded(Image.fromarray(_noise(64, 64)), "JPEG", quality=90)[:1500],
        "corrupt or truncated",
    ),
    # 400 Mpx claimed by a 70-byte file: refused from the header, before any decoding.
    "decompression bomb": ("bomb.png", lambda: _png_claiming(20_000, 20_000), "too large"),
    "text named .png": ("notes.png", lambda: b"just some text\n" * 10, "not a recognised image"),
}


@pytest.mark.parametrize("case", list(BAD_FILES))
def test_bad_image_is_one_clear_line(tmp_path, models_dir, case):
    name, make, message = BAD_FILES[case]
    src = tmp_path / name
    src.write_bytes(make())
    r = _cli("compress", src, "-c", "airplane", "--models-dir", models_dir)
    assert r.exit_code == 1
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0] and name in lines[0], r.stderr
    assert "Traceback" not in r.output
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]  # nothing written


def _round_trip(tmp_path: Path, src: Path, models_dir: Path, category: str = "airplane"):
    gcz = tmp_path / "out.gcz"
    r = _cli("compress", src, "-c", category, "-o", gcz, "--models-dir", models_dir)
    assert r.exit_code == 0, r.output
    out = tmp_path / "out.png"
    d = _cli("decompress", gcz, "-o", out, "--models-dir", models_dir)
    assert d.exit_code == 0, d.output
    return r, unpack(gcz.read_bytes())[0], Image.open(out)


def test_cmyk_jpeg(tmp_path, models_dir):
    src = tmp_path / "cmyk.jpg"
    cmyk = np.random.default_rng(1).integers(0, 256, (13, 20, 4), dtype=np.uint8)
    Image.fromarray(cmyk, mode="CMYK").save(src, quality=95)
    assert Image.open(src).mode == "CMYK"
    _, header, out = _round_trip(tmp_path, src, models_dir)
    assert out.mode == "RGB" and out.size == (20, 13)
    assert not header.grayscale and header.alpha is None


def test_16bit_grayscale_png(tmp_path, models_dir):
    src = tmp_path / "deep.png"
    ramp = (np.arange(30 * 40, dtype=np.uint32).reshape(30, 40) * 50).astype(np.uint16)
    Image.fromarray(ramp).save(src)
    assert Image.open(src).mode.startswith("I;16") or Image.open(src).mode == "I"
    r, header, out = _round_trip(tmp_path, src, models_dir)
    assert "16-bit" in r.output
    assert header.reduced_16bit and header.grayscale
    assert out.mode == "L" and out.size == (40, 30)
    info = json.loads(_cli("info", tmp_path / "out.gcz", "--json").output)
    assert info["reduced_from_16bit"] is True and info["grayscale"] is True


def test_16bit_rgb_png_is_flagged(tmp_path, models_dir):
    # Pillow reads 48-bit PNGs as 8-bit RGB; the header flag still records the reduction.
    rows = np.random.default_rng(2).integers(0, 65536, (8, 9 * 3), dtype=np.uint16)
    raw = b"".join(b"\0" + row.astype(">u2").tobytes() for row in rows)  # filter 0 + pixels
    src = tmp_path / "rgb16.png"
    src.write_bytes(_png(9, 8, 16, raw))
    r, header, out = _round_trip(tmp_path, src, models_dir)
    assert "16-bit" in r.output and header.reduced_16bit and not header.grayscale
    assert out.mode == "RGB" and out.size == (9, 8)


def test_palette_with_transparency(tmp_path, models_dir):
    src = tmp_path / "pal.png"
    idx = (np.arange(11 * 14).reshape(11, 14) % 4).astype(np.uint8)
    pal = Image.fromarray(idx, mode="P")
    pal.putpalette([255, 0, 0, 0, 255, 0, 0, 0, 255, 90, 90, 90] + [0] * (252 * 3))
    pal.save(src, transparency=2)  # palette index 2 is fully transparent
    _, header, out = _round_trip(tmp_path, src, models_dir)
    assert header.alpha is not None
    assert out.mode == "RGBA" and out.size == (14, 11)
    assert np.array_equal(np.asarray(out)[..., 3], np.where(idx == 2, 0, 255))  # alpha lossless


@pytest.mark.parametrize("size", [(1, 1), (1, 77), (77, 1), (2, 300)])
@pytest.mark.parametrize("category", ["airplane", "flower"])  # strides 8 and 16
def test_thin_images(tmp_path, models_dir, size, category):
    h, w = size
    src = tmp_path / "thin.png"
    Image.fromarray(_noise(h, w, seed=h * w)).save(src)
    _, header, out = _round_trip(tmp_path, src, models_dir, category)
    assert (header.width, header.height) == (w, h)
    assert out.size == (w, h) and out.mode == "RGB"
