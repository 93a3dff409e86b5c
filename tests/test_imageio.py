import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image as PILImage

from gancomp.errors import GancompError, InputError
from gancomp.io import files as fileio
from gancomp.io import images as imageio
from gancomp.io.files import atomic_open, atomic_write_bytes
from gancomp.io.images import load_image, save_image, to_rgb_for_metrics

DATA = Path(__file__).parent / "data"


def _gradient(h=6, w=7):
    y, x = np.mgrid[0:h, 0:w]
    return np.dstack([x * 30, y * 40, (x + y) * 10]).astype(np.uint8)


def _leftovers(directory: Path) -> list[str]:
    return [p.name for p in directory.iterdir() if p.name.endswith(".tmp")]


def test_real_files():
    img = load_image(DATA / "airplane_0.png")
    assert img.rgb.shape == (32, 32, 3) and img.rgb.dtype == np.uint8
    assert img.alpha is None and not img.grayscale and not img.bit_depth_reduced
    flower = load_image(str(DATA / "flower_2.jpg"))
    assert flower.rgb.shape == (250, 271, 3)
    assert (flower.width, flower.height) == (271, 250)
    assert flower.path == str(DATA / "flower_2.jpg")


def test_rgb_and_rgba(tmp_path):
    rgb = _gradient()
    PILImage.fromarray(rgb).save(tmp_path / "a.png")
    img = load_image(tmp_path / "a.png")
    np.testing.assert_array_equal(img.rgb, rgb)
    alpha = np.arange(42, dtype=np.uint8).reshape(6, 7) * 6
    PILImage.fromarray(np.dstack([rgb, alpha])).save(tmp_path / "b.png")
    img = load_image(tmp_path / "b.png")
    np.testing.assert_array_equal(img.rgb, rgb)
    np.testing.assert_array_equal(img.alpha, alpha)
    assert img.has_alpha and not img.grayscale


def test_gray_modes(tmp_path):
    gray = (np.arange(30, dtype=np.uint8) * 8).reshape(5, 6)
    PILImage.fromarray(gray).save(tmp_path / "l.png")
    img = load_image(tmp_path / "l.png")
    assert img.grayscale and img.alpha is None
    for c in range(3):
        np.testing.assert_array_equal(img.rgb[..., c], gray)

    alpha = np.full((5, 6), 128, np.uint8)
    PILImage.fromarray(np.dstack([gray, alpha])).save(tmp_path / "la.png")
    img = load_image(tmp_path / "la.png")
    assert img.grayscale and img.source_mode == "LA"
    np.testing.assert_array_equal(img.rgb[..., 1], gray)
    np.testing.assert_array_equal(img.alpha, alpha)

    bits = np.zeros((4, 4), bool)
    bits[1, 2] = True
    PILImage.fromarray(bits).save(tmp_path / "one.png")
    img = load_image(tmp_path / "one.png")
    assert (
        img.grayscale and img.rgb[1, 2].tolist() == [255] * 3 and img.rgb[0, 0].tolist() == [0] * 3
    )


def test_palette_with_and_without_transparency(tmp_path):
    pal = PILImage.new("P", (3, 2))
    pal.putpalette([10, 20, 30, 200, 100, 50] + [0, 0, 0] * 254)
    pal.putpixel((1, 0), 1)
    pal.save(tmp_path / "opaque.png")
    img = load_image(tmp_path / "opaque.png")
    assert img.alpha is None and not img.grayscale
    assert img.rgb[0, 0].tolist() == [10, 20, 30] and img.rgb[0, 1].tolist() == [200, 100, 50]

    pal.save(tmp_path / "transparent.png", transparency=0)
    img = load_image(tmp_path / "transparent.png")
    assert img.alpha is not None
    assert img.alpha[0, 0] == 0 and img.alpha[0, 1] == 255
    assert img.rgb[0, 1].tolist() == [200, 100, 50]


def test_cmyk_jpeg(tmp_path):
    PILImage.new("CMYK", (8, 8), (0, 255, 255, 0)).save(tmp_path / "c.jpg", quality=95)
    img = load_image(tmp_path / "c.jpg")
    assert img.source_mode == "CMYK" and img.rgb.shape == (8, 8, 3)
    r, g, b = img.rgb[4, 4].astype(int)
    assert r > 200 and g < 60 and b < 60  # cyan 0, magenta+yellow full = red


def test_16bit_png_scaled_with_rounding(tmp_path):
    values = np.array([[0, 1, 128, 129], [257, 32767, 65406, 65535]], dtype=np.uint16)
    PILImage.fromarray(values).save(tmp_path / "g16.png")
    with PILImage.open(tmp_path / "g16.png") as pil:
        assert pil.mode == "I;16"
    img = load_image(tmp_path / "g16.png")
    assert img.grayscale and img.bit_depth_reduced
    expected = np.floor(values.astype(np.float64) * 255 / 65535 + 0.5).astype(np.uint8)
    np.testing.assert_array_equal(img.rgb[..., 0], expected)
    assert expected.tolist() == [[0, 0, 0, 1], [1, 127, 254, 255]]


def test_float_image(tmp_path):
    arr = np.array([[0.4, 99.6], [300.0, -5.0]], dtype=np.float32)
    PILImage.fromarray(arr).save(tmp_path / "f.tif")
    img = load_image(tmp_path / "f.tif")
    assert img.grayscale and img.rgb[..., 0].tolist() == [[0, 100], [255, 0]]


def test_one_pixel(tmp_path):
    PILImage.new("RGB", (1, 1), (1, 2, 3)).save(tmp_path / "p.png")
    img = load_image(tmp_path / "p.png")
    assert img.rgb.shape == (1, 1, 3) and img.rgb[0, 0].tolist() == [1, 2, 3]


def test_exif_orientation_applied(tmp_path):
    pil = PILImage.fromarray(_gradient())
    exif = PILImage.Exif()
    exif[0x0112] = 6  # "rotate 90" tag
    pil.save(tmp_path / "o.png", exif=exif)
    img = load_image(tmp_path / "o.png")
    # Stored 6 rows x 7 columns; displayed rotated by 90 degrees.
    assert img.rgb.shape == (7, 6, 3)
    expected = np.asarray(PILImage.fromarray(_gradient()).transpose(PILImage.Transpose.ROTATE_270))
    assert np.array_equal(img.rgb, expected)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: p.write_text("hello, not an image"), "not a recognised image file"),
        (lambda p: p.write_bytes(b""), "file is empty"),
        (lambda p: None, "no such file"),
        (lambda p: p.mkdir(), "is a directory"),
    ],
)
def test_bad_inputs(tmp_path, make, message):
    path = tmp_path / "x.png"
    make(path)
    with pytest.raises(InputError) as info:
        load_image(path)
    assert str(info.value) == f"cannot read '{path}': {message}"


def test_truncated_png(tmp_path):
    rng = np.random.default_rng(0)
    PILImage.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(tmp_path / "f.png")
    data = (tmp_path / "f.png").read_bytes()
    (tmp_path / "t.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError, match=r"cannot read '.*t\.png': corrupt or truncated"):
        load_image(tmp_path / "t.png")


def _png_header_only(width: int, height: int) -> bytes:
    def chunk(kind: bytes, payload: bytes) -> bytes:
        crc = zlib.crc32(kind + payload) & 0xFFFFFFFF
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", crc)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\0" * 10))
        + chunk(b"IEND", b"")
    )


@pytest.mark.parametrize("size", [(12_000, 9_000), (30_000, 30_000)])
def test_huge_header_refused_before_decoding(tmp_path, size):
    path = tmp_path / "huge.png"
    path.write_bytes(_png_header_only(*size))  # tiny file claiming >100 Mpx
    with pytest.raises(InputError, match="too large"):
        load_image(path)


def test_max_pixels_constant_is_used(tmp_path, monkeypatch):
    PILImage.new("RGB", (20, 20)).save(tmp_path / "s.png")
    monkeypatch.setattr(imageio, "MAX_PIXELS", 399)
    with pytest.raises(InputError, match=r"20x20 = 400 pixels, limit 399"):
        load_image(tmp_path / "s.png")


def test_pillow_bomb_error_converted(tmp_path, monkeypatch):
    PILImage.new("RGB", (20, 20)).save(tmp_path / "s.png")
    monkeypatch.setattr(PILImage, "MAX_IMAGE_PIXELS", 150)  # warning range
    with pytest.raises(InputError, match="too large"):
        load_image(tmp_path / "s.png")
    monkeypatch.setattr(PILImage, "MAX_IMAGE_PIXELS", 10)  # error range
    with pytest.raises(InputError, match="too large"):
        load_image(tmp_path / "s.png")


def test_to_rgb_for_metrics_composites_on_white(tmp_path):
    rgb = np.zeros((1, 3, 3), np.uint8)
    alpha = np.array([[0, 255, 128]], np.uint8)
    PILImage.fromarray(np.dstack([rgb, alpha])).save(tmp_path / "a.png")
    out = to_rgb_for_metrics(load_image(tmp_path / "a.png"))
    assert out[0, :, 0].tolist() == [255, 0, 127]
    plain = load_image(DATA / "automobile_0.png")
    assert to_rgb_for_metrics(plain) is plain.rgb


@pytest.mark.parametrize("ext", [".png", ".bmp", ".tif", ".tiff", ".webp", ".PNG"])
def test_save_round_trip_lossless(tmp_path, ext):
    rgb = load_image(DATA / "automobile_2.png").rgb
    alpha = (np.arange(32 * 32) % 256).astype(np.uint8).reshape(32, 32)
    save_image(tmp_path / f"rgb{ext}", rgb)
    np.testing.assert_array_equal(load_image(tmp_path / f"rgb{ext}").rgb, rgb)
    if ext == ".bmp":
        with pytest.raises(GancompError, match="BMP cannot store transparency"):
            save_image(tmp_path / f"rgba{ext}", rgb, alpha)
        assert _leftovers(tmp_path) == []
        return
    save_image(tmp_path / f"rgba{ext}", rgb, alpha)
    back = load_image(tmp_path / f"rgba{ext}")
    np.testing.assert_array_equal(back.rgb, rgb)
    np.testing.assert_array_equal(back.alpha, alpha)
    assert _leftovers(tmp_path) == []


def test_save_grayscale(tmp_path):
    gray = np.repeat((np.arange(16, dtype=np.uint8) * 16).reshape(4, 4)[..., None], 3, axis=2)
    save_image(tmp_path / "g.png", gray, grayscale=True)
    with PILImage.open(tmp_path / "g.png") as pil:
        assert pil.mode == "L"
    back = load_image(tmp_path / "g.png")
    assert back.grayscale
    np.testing.assert_array_equal(back.rgb, gray)
    save_image(tmp_path / "ga.png", gray, np.full((4, 4), 9, np.uint8), grayscale=True)
    with PILImage.open(tmp_path / "ga.png") as pil:
        assert pil.mode == "LA"


def test_save_refuses_overwrite_unless_forced(tmp_path):
    target = tmp_path / "out.png"
    target.write_bytes(b"keep me")
    rgb = _gradient()
    with pytest.raises(GancompError, match=r"already exists \(use --force to overwrite\)"):
        save_image(target, rgb)
    assert target.read_bytes() == b"keep me"
    assert _leftovers(tmp_path) == []
    save_image(target, rgb, force=True)
    np.testing.assert_array_equal(load_image(target).rgb, rgb)
    # Outputs get the usual umask-based mode, not mkstemp's private 0600.
    assert target.stat().st_mode & 0o777 == fileio._FILE_MODE


def test_save_bad_extension_and_missing_dir(tmp_path):
    with pytest.raises(GancompError, match="unsupported output extension '.jpg'"):
        save_image(tmp_path / "x.jpg", _gradient())
    with pytest.raises(GancompError, match="does not exist"):
        save_image(tmp_path / "nodir" / "x.png", _gradient())


@pytest.mark.parametrize("exc", [RuntimeError("boom"), KeyboardInterrupt()])
def test_save_failure_leaves_nothing(tmp_path, monkeypatch, exc):
    def failing_save(self, fp, *args, **kwargs):
        fp.write(b"partial")
        raise exc

    monkeypatch.setattr(PILImage.Image, "save", failing_save)
    with pytest.raises(type(exc)):
        save_image(tmp_path / "x.png", _gradient())
    assert list(tmp_path.iterdir()) == []


def test_atomic_write_bytes(tmp_path):
    target = tmp_path / "f.gcz"
    atomic_write_bytes(target, b"abc")
    assert target.read_bytes() == b"abc"
    with pytest.raises(GancompError, match="already exists"):
        atomic_write_bytes(target, b"xyz")
    assert target.read_bytes() == b"abc"
    atomic_write_bytes(target, b"xyz", force=True)
    assert target.read_bytes() == b"xyz"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.gcz"]


def test_atomic_open_interrupted(tmp_path):
    target = tmp_path / "f.gcz"
    with pytest.raises(KeyboardInterrupt), atomic_open(target) as fh:
        fh.write(b"half")
        assert _leftovers(tmp_path) != []  # temp file lives next to the target
        raise KeyboardInterrupt
    assert list(tmp_path.iterdir()) == []
