"""The Pillow plugin, through Pillow's own API only (`Image.open`, `.load()`, `.save()`).

Uses the shipped airplane model (found by default), fast on 32x32 images.
"""

import shutil
import struct
import zlib

import numpy as np
import pytest
from PIL import Image, UnidentifiedImageError

import gancomp
import gancomp.pillow  # noqa: F401  (registers the .gcz format)
from gancomp.coding import container
from gancomp.errors import GancompError
from gancomp.runtime import codec
from gancomp.runtime.models import find_model, read_model_folder


@pytest.fixture
def airplane(data_dir):
    return data_dir / "airplane_0.png"


@pytest.fixture
def gcz_file(tmp_path, airplane):
    path = tmp_path / "airplane.gcz"
    path.write_bytes(gancomp.compress(airplane, category="airplane", quality=5))
    return path


@pytest.fixture
def decode_calls(monkeypatch):
    """Counts calls of the runtime decoder (the one place pixels are decoded)."""
    calls = []
    original = codec.decompress

    def counting(data, models_dir=None, **options):
        calls.append(len(data))
        return original(data, models_dir, **options)

    monkeypatch.setattr(codec, "decompress", counting)
    return calls


def test_gcz_is_registered_for_open_and_save():
    assert Image.registered_extensions()[".gcz"] == "GCZ"
    assert "GCZ" in Image.OPEN and "GCZ" in Image.SAVE


def test_open_reads_the_header_and_decodes_only_on_load(gcz_file, decode_calls):
    with Image.open(gcz_file) as im:
        assert im.format == "GCZ"
        assert im.size == (32, 32) and im.mode == "RGB"
        assert im.info["category"] == "airplane" and im.info["quality"] == 5
        assert decode_calls == []
        im.load()
        assert decode_calls == [gcz_file.stat().st_size]
        pixels = np.asarray(im)
    assert np.array_equal(pixels, gancomp.decompress(gcz_file.read_bytes()))


def test_save_with_options_writes_what_the_api_writes(tmp_path, airplane):
    out = tmp_path / "saved.gcz"
    with Image.open(airplane) as im:
        im.save(out, category="airplane", quality=2)
    assert out.read_bytes() == gancomp.compress(airplane, category="airplane", quality=2)
    with Image.open(out) as again:
        assert again.info["quality"] == 2
        again.load()
        assert again.size == (32, 32) and again.mode == "RGB"


def test_save_uses_models_dir(tmp_path, airplane):
    # A copy of the shipped model with a reformatted config: same codec, another fingerprint.
    shipped = find_model("airplane")
    mine = tmp_path / "models" / "airplane"
    shutil.copytree(shipped, mine)
    (mine / "config.json").write_text((shipped / "config.json").read_text() + "\n")
    out = tmp_path / "x.gcz"
    with Image.open(airplane) as im:
        im.save(out, category="airplane", models_dir=tmp_path / "models")
    written_by = container.unpack(out.read_bytes())[0].fingerprint.hex()
    assert written_by == read_model_folder(mine).fingerprint
    assert written_by != read_model_folder(shipped).fingerprint


def test_save_with_auto_category_picks_a_model(tmp_path, airplane):
    out = tmp_path / "auto.gcz"
    with Image.open(airplane) as im:
        im.save(out, category="auto")
    with Image.open(out) as again:
        assert again.info["category"] in {"airplane", "automobile", "flower"}
        assert again.size == (32, 32)


@pytest.mark.parametrize("mode", ["L", "LA", "RGBA"])
def test_grayscale_and_alpha_round_trips(tmp_path, airplane, mode):
    with Image.open(airplane) as im:
        src = im.convert("RGB")
    alpha = np.add.outer(np.arange(32), np.arange(32)).astype(np.uint8) * 4
    src.putalpha(Image.fromarray(alpha))
    src = src.convert(mode)
    out = tmp_path / f"{mode}.gcz"
    src.save(out, category="airplane")
    with Image.open(out) as again:
        assert again.mode == mode and again.size == (32, 32)
        pixels = np.asarray(again)
    assert np.array_equal(pixels, gancomp.decompress(out.read_bytes()))
    if "A" in mode:  # alpha is stored losslessly
        assert np.array_equal(pixels[..., -1], alpha)


@pytest.mark.parametrize(("mode", "reopened"), [("P", "RGB"), ("CMYK", "RGB"), ("I;16", "L")])
def test_other_modes_are_normalised_on_save(tmp_path, airplane, mode, reopened):
    with Image.open(airplane) as im:
        src = im.convert(mode)
    out = tmp_path / "x.gcz"
    src.save(out, category="airplane")
    with Image.open(out) as again:
        again.load()
        assert again.mode == reopened and again.size == (32, 32)


def test_a_file_that_is_not_gcz_is_unidentified(tmp_path):
    path = tmp_path / "fake.gcz"
    path.write_bytes(b"this is not an image at all")
    with pytest.raises(UnidentifiedImageError):
        Image.open(path)


def _with_crc(body: bytes) -> bytes:
    return body + struct.pack("<I", zlib.crc32(body))


@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        (lambda d: d[:20] + bytes([d[20] ^ 0x10]) + d[21:], "checksum mismatch"),
        (lambda d: d[: len(d) // 2], "checksum mismatch"),
        (lambda d: d[:5], "truncated .gcz file"),
        (lambda d: _with_crc(d[:2] + bytes([0x40]) + d[3:-4]), "format version 4"),
    ],
    ids=["flipped bit", "truncated", "header only", "future version"],
)
def test_a_damaged_header_fails_on_open_with_one_line(tmp_path, gcz_file, damage, reason):
    path = tmp_path / "damaged.gcz"
    path.write_bytes(damage(gcz_file.read_bytes()))
    with pytest.raises(OSError, match=reason) as caught:
        Image.open(path)
    assert isinstance(caught.value, GancompError) and "\n" not in str(caught.value)


def test_a_damaged_payload_fails_on_load_with_one_line(tmp_path, gcz_file):
    header, _ = container.unpack(gcz_file.read_bytes())
    path = tmp_path / "empty_payload.gcz"
    path.write_bytes(container.pack(header, b""))  # a valid header and checksum, no latents
    with Image.open(path) as im:
        assert im.size == (32, 32)
        with pytest.raises(OSError, match="corrupt") as caught:
            im.load()
    assert isinstance(caught.value, GancompError) and "\n" not in str(caught.value)


def test_a_file_from_another_model_fails_on_load(tmp_path, gcz_file):
    header, payload = container.unpack(gcz_file.read_bytes())
    header.fingerprint = b"\0\0\0\0"
    path = tmp_path / "other_model.gcz"
    path.write_bytes(container.pack(header, payload))
    with Image.open(path) as im, pytest.raises(OSError, match="written by model 00000000"):
        im.load()


def test_save_without_category_fails_clearly_and_leaves_no_file(tmp_path, airplane):
    out = tmp_path / "x.gcz"
    with Image.open(airplane) as im:
        with pytest.raises(ValueError, match="needs category="):
            im.save(out)
        with pytest.raises(ValueError, match="quality must be an integer"):
            im.save(out, category="airplane", quality="high")
    assert not out.exists()
