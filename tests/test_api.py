"""The public Python API (`import gancomp`): arrays round-trip, and the namespace is the API.

Uses the shipped airplane model (found by default), fast on 32x32 images.
"""

import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

import gancomp
from gancomp.coding.container import unpack
from gancomp.errors import InputError


def _image(data_dir, mode: str) -> Image.Image:
    """airplane_0.png in ``mode``, with a non-trivial alpha plane when the mode has one."""
    im = Image.open(data_dir / "airplane_0.png").convert("RGB")
    if "A" in mode:
        alpha = np.add.outer(np.arange(32), np.arange(32)).astype(np.uint8) * 4
        im.putalpha(Image.fromarray(alpha))
    return im.convert(mode)


SHAPES = {"L": (32, 32), "LA": (32, 32, 2), "RGBA": (32, 32, 4)}


@pytest.mark.parametrize("mode", SHAPES)
def test_decompressed_arrays_compress_back_keeping_mode_and_shape(data_dir, mode):
    src = np.asarray(_image(data_dir, mode))
    pixels = gancomp.decompress(gancomp.compress(src, category="airplane"))
    assert pixels.shape == SHAPES[mode] and pixels.dtype == np.uint8
    again = gancomp.compress(pixels, category="airplane")
    header, _ = unpack(again)
    assert header.grayscale == (mode in ("L", "LA"))
    assert (header.alpha is not None) == ("A" in mode)
    pixels_again = gancomp.decompress(again)
    assert pixels_again.shape == SHAPES[mode]
    if "A" in mode:  # alpha is stored losslessly, through both round trips
        assert np.array_equal(pixels_again[..., -1], src[..., -1])


@pytest.mark.parametrize("mode", SHAPES)
def test_an_array_compresses_like_a_file_of_the_same_mode(tmp_path, data_dir, mode):
    im = _image(data_dir, mode)
    path = tmp_path / f"{mode}.png"
    im.save(path)
    from_file = gancomp.compress(path, category="airplane", quality=3)
    from_array = gancomp.compress(np.asarray(im), category="airplane", quality=3)
    assert from_array == from_file


@pytest.mark.parametrize(
    ("array", "problem"),
    [
        (np.zeros((8, 8, 3), np.float64), "dtype float64"),
        (np.zeros((8, 8, 5), np.uint8), "shape (8, 8, 5)"),
        (np.zeros(8, np.uint8), "shape (8,)"),
        (np.zeros((8, 8), np.int64), "dtype int64"),
    ],
)
def test_a_wrong_array_is_a_one_line_input_error_naming_the_accepted_shapes(array, problem):
    with pytest.raises(InputError) as caught:
        gancomp.compress(array, category="airplane")
    message = str(caught.value)
    assert "\n" not in message
    assert "uint8" in message and "HxW" in message and "HxWx2" in message and "HxWx4" in message
    assert problem in message


def test_the_namespace_is_the_public_api_and_import_stays_cheap():
    probe = (
        "import json, sys, gancomp;"
        "print(json.dumps({"
        "'all': gancomp.__all__, 'dir': dir(gancomp),"
        "'public': [n for n in vars(gancomp) if not n.startswith('_')],"
        "'loaded': sorted(m for m in sys.modules if m.startswith(('gancomp.', 'numpy')))}))"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=120
    )
    seen = json.loads(out.stdout)
    assert set(seen["all"]) == {
        "__version__",
        "compress",
        "decompress",
        "compress_files",
        "compress_to_target",
        "decompress_files",
    }
    # No stray module globals (it used to show Any, annotations and os).
    assert set(seen["public"]) == {"compress", "decompress"}
    # The batch functions are listed, and imported only when first used.
    assert {"compress_files", "decompress_files"} <= set(seen["dir"])
    assert seen["loaded"] == []
