"""Pillow plugin for ``.gcz`` files: ``import gancomp.pillow`` and Pillow opens and saves them.

    >>> import gancomp.pillow
    >>> from PIL import Image
    >>> im = Image.open("photo.gcz")      # reads and checks the header: size, mode, category
    >>> im.load()                         # decodes the pixels with the file's model
    >>> im.save("copy.gcz", category="flower", quality=4)

    >>> im = Image.open("photo.gcz")
    >>> im.realism = 0.7                  # before load(): decode-time realism r in [0, 1]
    >>> im.load()

The mode comes from the header: "L" for grayscale, "LA" gray with alpha, "RGBA" with
alpha, else "RGB". Decoding finds models as the CLI does without ``--models-dir``.
Saving takes ``category`` (required: a model name or ``"auto"``),
``quality`` (1-8, default 4) and ``models_dir``; any Pillow mode is accepted and
normalised as for ``gancomp compress`` (palette, CMYK, 16-bit gray, ...).

``realism`` (an attribute of the opened image, set before ``load()``, as Pillow's JPEG
2000 plugin takes ``reduce`` and ``layers``) chooses between the most faithful
reconstruction (0, the default) and the most realistic one (1) from the same file; above
0 it needs a model with realism branches. A value outside [0, 1] raises ``ValueError``
on ``load()``.

Errors: a file that is not ``.gcz`` gives Pillow's ``UnidentifiedImageError``; a damaged
one gives :class:`GczError` (an ``OSError``) with gancomp's one-line reason, on open
when the header or checksum is bad, on ``load()`` when the payload cannot be decoded.
"""

from __future__ import annotations

from typing import IO

from PIL import Image, ImageFile

from gancomp.coding import container
from gancomp.errors import GancompError, InputError

FORMAT = "GCZ"
EXTENSION = ".gcz"
DEFAULT_QUALITY = 4

# Tile entries are named tuples from Pillow 11 on, plain tuples before.
_Tile = getattr(ImageFile, "_Tile", None)


class GczError(InputError, OSError):
    """A ``.gcz`` file Pillow cannot read: an ``OSError`` as Pillow's own read errors are."""


def _accept(prefix: bytes) -> bool:
    return prefix[:2] == container.MAGIC


def _mode_of(header: container.Header) -> str:
    if header.grayscale:
        return "L" if header.alpha is None else "LA"
    return "RGB" if header.alpha is None else "RGBA"


class GczImageFile(ImageFile.ImageFile):
    format = FORMAT
    format_description = "gancomp learned image codec"
    #: Decode-time realism weight r in [0, 1], read by ``load()``.
    realism: float = 0.0

    def _open(self) -> None:
        assert self.fp is not None
        data = self.fp.read()
        try:
            # The whole file is read for the checksum, but no pixel is decoded here.
            header, _ = container.unpack(data)
        except GancompError as exc:
            raise GczError(str(exc)) from None
        self._size = (header.width, header.height)
        self._mode = _mode_of(header)
        self.info["category"] = header.category
        self.info["quality"] = header.quality
        tile = (FORMAT, (0, 0, header.width, header.height), 0, None)
        self.tile = [_Tile(*tile) if _Tile else tile]  # type: ignore[list-item]

    def load(self):
        if self.tile:  # not decoded yet: the decoder gets the realism asked for now
            from gancomp.runtime.realism import check_realism

            try:
                realism = check_realism(self.realism)
            except InputError as exc:
                raise ValueError(str(exc)) from None
            tile = (FORMAT, (0, 0, *self.size), 0, (realism,))
            self.tile = [_Tile(*tile) if _Tile else tile]  # type: ignore[list-item]
        return super().load()


class GczDecoder(ImageFile.PyDecoder):
    """Decodes a whole ``.gcz`` file (read from the image's file) into the image."""

    _pulls_fd = True

    def decode(self, buffer: bytes) -> tuple[int, int]:  # type: ignore[override]
        from gancomp.io.images import to_array
        from gancomp.runtime import codec

        assert self.fd is not None
        (realism,) = self.args or (0.0,)
        try:
            decoded = codec.decompress(self.fd.read(), realism=realism)
        except GancompError as exc:
            raise GczError(str(exc)) from None
        pixels = to_array(decoded.rgb, decoded.alpha, decoded.grayscale)
        self.set_as_raw(pixels.tobytes(), self.mode)
        return -1, 0


def _save(im: Image.Image, fp: IO[bytes], filename: str | bytes) -> None:
    from gancomp.io.images import from_pil
    from gancomp.runtime import codec

    options = im.encoderinfo
    category = options.get("category")
    if not isinstance(category, str) or not category:
        raise ValueError(
            "saving a .gcz file needs category= (a model name such as 'flower', or 'auto')"
        )
    quality = options.get("quality", DEFAULT_QUALITY)
    if isinstance(quality, bool) or not isinstance(quality, int):
        raise ValueError(f"quality must be an integer 1..8, got {quality!r}")
    data = codec.compress(from_pil(im), category, quality, options.get("models_dir"))
    fp.write(data)


Image.register_open(FORMAT, GczImageFile, _accept)
Image.register_save(FORMAT, _save)
Image.register_extension(FORMAT, EXTENSION)
Image.register_mime(FORMAT, "image/x-gcz")
Image.register_decoder(FORMAT, GczDecoder)
