"""The ``.gcz`` container: a compact header, the entropy-coded payload, a CRC-32.

Layout (see docs/FORMAT.md; all multi-byte integers are little-endian)::

    magic        2 bytes   b"GZ"
    version      1 byte    high nibble: format version; low nibble: flags
                           bit0 grayscale, bit1 alpha, bit2 reduced from 16 bits
    ident        1 byte    bits 0-4: category id (31 = named category follows),
                           bits 5-7: quality level - 1
    [name]       varint length + UTF-8, only for category id 31
    fingerprint  4 bytes   of the model folder that wrote the file
    width        varint
    height       varint
    [alpha]      varint length + zlib-compressed alpha plane, only with flag bit1
    payload      range-coded latents, to the end
    crc32        4 bytes   over everything before it

A 32x32 RGB image from a built-in category has 14 bytes of overhead.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass

from gancomp.errors import InputError

MAGIC = b"GZ"
VERSION = 3  # newest version this module reads and writes
#: The version picks the payload decoder: 1 factorized (no entropy-model flag; files of
#: factorized models stay byte-identical to gancomp 0.1), 2 factorized or hyperprior (by
#: flag bit 3), 3 channel-context coded factorized latents (bit 3 reserved).
VERSIONS = (1, 2, 3)
ENTROPY_MODELS = ("factorized", "hyperprior", "channel-context")
_VERSION_OF = {"factorized": 1, "hyperprior": 2, "channel-context": 3}
NAMED_CATEGORY = 31
# Built-in ids are part of the format: never renumber them.
CATEGORY_IDS = {"airplane": 0, "automobile": 1, "flower": 2}
CATEGORY_NAMES = {v: k for k, v in CATEGORY_IDS.items()}
MAX_DIMENSION = 1 << 16  # per side; see docs/FORMAT.md
MAX_PIXELS = 100_000_000
MAX_QUALITY = 8

FLAG_GRAY, FLAG_ALPHA, FLAG_16BIT = 1, 2, 4
FLAG_HYPERPRIOR = 8  # version 2 only (reserved, 0, in versions 1 and 3)


@dataclass
class Header:
    category: str
    quality: int  # 1..8
    fingerprint: bytes  # 4 bytes
    width: int
    height: int
    grayscale: bool = False
    reduced_16bit: bool = False
    alpha: bytes | None = None  # zlib-compressed HxW uint8 plane
    entropy_model: str = "factorized"

    @property
    def version(self) -> int:
        return _VERSION_OF[self.entropy_model]


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _read_varint(data: bytes, pos: int, what: str, limit: int) -> tuple[int, int]:
    n = shift = 0
    for i in range(5):  # 5 bytes cover 35 bits, more than any limit here
        if pos + i >= len(data):
            raise InputError(f"truncated .gcz file (in {what})")
        b = data[pos + i]
        n |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            if n > limit:
                raise InputError(f"corrupt .gcz file: {what} {n} exceeds the limit {limit}")
            return n, pos + i + 1
    raise InputError(f"corrupt .gcz file: {what} field too long")


def pack(header: Header, payload: bytes) -> bytes:
    if not 1 <= header.quality <= MAX_QUALITY:
        raise ValueError("quality out of range")
    if header.entropy_model not in ENTROPY_MODELS:
        raise ValueError(f"unknown entropy model {header.entropy_model!r}")
    flags = (
        (FLAG_GRAY if header.grayscale else 0)
        | (FLAG_ALPHA if header.alpha is not None else 0)
        | (FLAG_16BIT if header.reduced_16bit else 0)
        | (FLAG_HYPERPRIOR if header.entropy_model == "hyperprior" else 0)
    )
    cid = CATEGORY_IDS.get(header.category, NAMED_CATEGORY)
    out = bytearray(MAGIC)
    out.append((header.version << 4) | flags)
    out.append(cid | ((header.quality - 1) << 5))
    if cid == NAMED_CATEGORY:
        name = header.category.encode()
        out += _varint(len(name)) + name
    if len(header.fingerprint) != 4:
        raise ValueError("fingerprint must be 4 bytes")
    out += header.fingerprint
    out += _varint(header.width) + _varint(header.height)
    if header.alpha is not None:
        out += _varint(len(header.alpha)) + header.alpha
    out += payload
    out += struct.pack("<I", zlib.crc32(out))
    return bytes(out)


def unpack(data: bytes) -> tuple[Header, bytes]:
    """Parse and validate a .gcz file; raises InputError with a one-line reason."""
    if len(data) < 2 or data[:2] != MAGIC:
        raise InputError("not a .gcz file (bad magic)")
    if len(data) < 14:
        raise InputError("truncated .gcz file")
    version, flags = data[2] >> 4, data[2] & 0x0F
    if version not in VERSIONS:
        raise InputError(
            f".gcz format version {version} is not supported by this gancomp "
            f"(reads versions {VERSIONS[0]} to {VERSIONS[-1]})"
        )
    (crc,) = struct.unpack("<I", data[-4:])
    if zlib.crc32(data[:-4]) != crc:
        raise InputError("corrupt .gcz file (checksum mismatch)")
    if version != 2 and flags & FLAG_HYPERPRIOR:
        raise InputError("corrupt .gcz file: unknown flag set")
    cid, quality = data[3] & 0x1F, (data[3] >> 5) + 1
    pos = 4
    body_end = len(data) - 4
    if cid == NAMED_CATEGORY:
        n, pos = _read_varint(data, pos, "category name length", 64)
        if pos + n > body_end:
            raise InputError("truncated .gcz file (in category name)")
        try:
            category = data[pos : pos + n].decode()
        except UnicodeDecodeError:
            raise InputError("corrupt .gcz file: category name is not UTF-8") from None
        pos += n
    elif cid in CATEGORY_NAMES:
        category = CATEGORY_NAMES[cid]
    else:
        raise InputError(f"corrupt .gcz file: unknown category id {cid}")
    if pos + 4 > body_end:
        raise InputError("truncated .gcz file (in fingerprint)")
    fingerprint = data[pos : pos + 4]
    pos += 4
    width, pos = _read_varint(data, pos, "width", MAX_DIMENSION)
    height, pos = _read_varint(data, pos, "height", MAX_DIMENSION)
    if width < 1 or height < 1 or width * height > MAX_PIXELS:
        raise InputError(f"corrupt .gcz file: bad image size {width}x{height}")
    alpha = None
    if flags & FLAG_ALPHA:
        n, pos = _read_varint(data, pos, "alpha length", body_end)
        if pos + n > body_end:
            raise InputError("truncated .gcz file (in alpha plane)")
        alpha = data[pos : pos + n]
        pos += n
    if pos > body_end:
        raise InputError("truncated .gcz file")
    header = Header(
        category,
        quality,
        fingerprint,
        width,
        height,
        grayscale=bool(flags & FLAG_GRAY),
        reduced_16bit=bool(flags & FLAG_16BIT),
        alpha=alpha,
        entropy_model=(
            "channel-context"
            if version == 3
            else "hyperprior"
            if flags & FLAG_HYPERPRIOR
            else "factorized"
        ),
    )
    return header, data[pos:body_end]


def compress_alpha(alpha) -> bytes:
    return zlib.compress(alpha.tobytes(), 9)


def decompress_alpha(blob: bytes, width: int, height: int):
    import numpy as np

    d = zlib.decompressobj()
    try:
        # Bounded: a forged stream cannot inflate past the image's own size.
        raw = d.decompress(blob, width * height + 1)
    except zlib.error:
        raise InputError("corrupt .gcz file: bad alpha plane") from None
    if len(raw) != width * height:
        raise InputError("corrupt .gcz file: alpha plane has the wrong size")
    return np.frombuffer(raw, np.uint8).reshape(height, width)
