"""scripts/realism_grid.py: the side-by-side grid of the realism control, on a tiny model.

The model gets random (non-zero) realism branches, written as tests/test_realism.py does.
Every tile the script should draw is recomputed here through the public API and Pillow,
then looked up pixel for pixel in the PNG.
"""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import gancomp
from conftest import DATA, TINY_MODELS
from gancomp.evaluation.bench import CODECS, codec_available
from test_realism import add_random_realism

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "realism_grid.py"
IMAGES = ["airplane_0.png", "airplane_1.png", "automobile_2.png"]
LEVELS = [1, 8]
WEIGHTS = [0.0, 0.5, 1.0]
SCALE = 4  # 32x32 images are shown upscaled x4 (nearest neighbour)

# The script run as if TensorFlow and Keras were not installed.
RUN_WITHOUT_TENSORFLOW = """
import runpy, sys
sys.modules["tensorflow"] = sys.modules["keras"] = None
script = sys.argv[1]
sys.path.insert(0, str(__import__("pathlib").Path(script).parent))
sys.argv = sys.argv[1:]
runpy.run_path(script, run_name="__main__")
"""


def run_script(*args) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", RUN_WITHOUT_TENSORFLOW, str(SCRIPT), *map(str, args)],
        capture_output=True,
        text=True,
        timeout=600,
    )


def load_rgb(path: Path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))


def upscale(a: np.ndarray) -> np.ndarray:
    return np.repeat(np.repeat(a, SCALE, axis=0), SCALE, axis=1)


def pillow_file(name: str, a: np.ndarray, quality: int) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(a).save(buf, CODECS[name]["format"], quality=quality, **CODECS[name]["options"])
    return buf.getvalue()


def find_tile(sheet: np.ndarray, tile: np.ndarray) -> list[tuple[int, int]]:
    """Every (y, x) where ``tile`` appears pixel for pixel in ``sheet``."""
    th, tw = tile.shape[:2]
    # Search the tile's most varied row, so a flat (white) row cannot match everywhere.
    key = max(range(th), key=lambda i: len(np.unique(tile[i], axis=0)))
    needle = tile[key].tobytes()
    found = []
    for y in range(key, sheet.shape[0] - th + key + 1):
        row = sheet[y].tobytes()
        start = row.find(needle)
        while start >= 0:
            if start % 3 == 0:
                top, x = y - key, start // 3
                if x + tw <= sheet.shape[1] and np.array_equal(
                    sheet[top : top + th, x : x + tw], tile
                ):
                    found.append((top, x))
            start = row.find(needle, start + 1)
    return found


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("grid")
    models = root / "models"
    shutil.copytree(TINY_MODELS / "airplane", models / "airplane")
    add_random_realism(models / "airplane")
    plain = root / "plain"
    shutil.copytree(TINY_MODELS / "airplane", plain / "airplane")
    images = root / "images"
    images.mkdir()
    for name in IMAGES:
        shutil.copy(DATA / name, images / name)
    return {"root": root, "models": models, "plain": plain, "images": images}


@pytest.fixture(scope="module")
def grid(setup):
    out = setup["root"] / "out"
    result = run_script(
        "--category", "airplane", "--models-dir", setup["models"], "--data", setup["images"],
        "--levels", ",".join(map(str, LEVELS)), "--count", len(IMAGES), "--out", out,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return {
        "out": out,
        "sheet": load_rgb(out / "realism_airplane.png"),
        "json": json.loads((out / "realism_airplane.json").read_text()),
    }


def other_codecs() -> dict[str, str]:
    """Codec name -> column header of the Pillow codecs this Pillow can write."""
    names = {"webp": "WebP", "avif": "AVIF"}
    return {n: f"{h} <= .gcz bytes" for n, h in names.items() if codec_available(n) is None}


def test_json_has_a_row_per_image_and_level_with_the_files_sizes(grid, setup):
    result = grid["json"]
    others = other_codecs()
    assert result["columns"] == [
        "original",
        *(f"gancomp r={r:g}" for r in WEIGHTS),
        *others.values(),
    ]
    assert set(result["codecs"]) == set(others)
    assert [block["level"] for block in result["levels"]] == LEVELS
    for block in result["levels"]:
        assert [Path(rec["file"]).name for rec in block["images"]] == IMAGES
        for rec in block["images"]:
            gcz = gancomp.compress(
                setup["images"] / Path(rec["file"]).name,
                "airplane",
                block["level"],
                models_dir=setup["models"],
            )
            assert rec["gancomp"]["bytes"] == len(gcz)
            assert rec["gancomp"]["bpp"] == pytest.approx(8 * len(gcz) / (32 * 32))
            decodes = rec["gancomp"]["decodes"]
            assert [d["realism"] for d in decodes] == WEIGHTS
            assert decodes[0]["mean_abs_diff_vs_r0"] == 0
            assert all(d["mean_abs_diff_vs_r0"] > 0 for d in decodes[1:])


def test_webp_and_avif_are_the_highest_quality_within_the_gcz_bytes(grid, setup):
    for block in grid["json"]["levels"]:
        for rec in block["images"]:
            a = load_rgb(setup["images"] / Path(rec["file"]).name)
            budget = rec["gancomp"]["bytes"]
            for name in other_codecs():
                fit = rec[name]
                data = pillow_file(name, a, fit["quality"])
                assert len(data) == fit["bytes"]
                if fit["over_budget"]:
                    assert fit["quality"] == 0 and fit["bytes"] > budget
                else:
                    assert fit["bytes"] <= budget
                    if fit["quality"] < 100:
                        assert len(pillow_file(name, a, fit["quality"] + 1)) > budget


def test_png_holds_rows_times_columns_tiles_in_a_grid_per_level(grid, setup):
    sheet = grid["sheet"]
    others = other_codecs()
    blocks = []
    for block in grid["json"]["levels"]:
        positions = []  # [row][column] -> (y, x)
        for rec in block["images"]:
            path = setup["images"] / Path(rec["file"]).name
            a = load_rgb(path)
            gcz = gancomp.compress(path, "airplane", block["level"], models_dir=setup["models"])
            tiles = [a]
            tiles += [gancomp.decompress(gcz, setup["models"], realism=r) for r in WEIGHTS]
            for name in others:
                with Image.open(io.BytesIO(pillow_file(name, a, rec[name]["quality"]))) as im:
                    tiles.append(np.asarray(im.convert("RGB")))
            row = []
            for tile in tiles:
                found = find_tile(sheet, upscale(tile))
                assert found, f"a tile of {path.name} is missing at level {block['level']}"
                row.append(found)
            positions.append(row)
        blocks.append(positions)
    n_cols = 1 + len(WEIGHTS) + len(others)
    tile = 32 * SCALE
    assert sheet.shape[1] >= n_cols * tile
    assert sheet.shape[0] >= len(LEVELS) * len(IMAGES) * tile
    previous_bottom = -1
    for positions in blocks:
        # The same image appears in every level's block: keep the hit inside this block.
        chosen = [
            [min(p for p in hits if p[0] > previous_bottom) for hits in row] for row in positions
        ]
        for row in chosen:
            assert len({y for y, _ in row}) == 1  # one row: one top edge
            xs = [x for _, x in row]
            assert xs == sorted(xs) and all(b - a >= tile for a, b in zip(xs, xs[1:]))
        for c in range(n_cols):
            assert len({row[c][1] for row in chosen}) == 1  # one column: one left edge
        ys = [row[0][0] for row in chosen]
        assert all(b - a >= tile for a, b in zip(ys, ys[1:]))
        previous_bottom = ys[-1] + tile - 1


def test_realism_changes_the_gancomp_tiles_not_the_file(grid, setup):
    path = setup["images"] / IMAGES[0]
    gcz_plain = gancomp.compress(path, "airplane", 1, models_dir=setup["plain"])
    gcz = gancomp.compress(path, "airplane", 1, models_dir=setup["models"])
    assert gcz == gcz_plain
    decoded = [upscale(gancomp.decompress(gcz, setup["models"], realism=r)) for r in WEIGHTS]
    for i in range(len(decoded)):
        for j in range(i + 1, len(decoded)):
            assert not np.array_equal(decoded[i], decoded[j])
    hits = [find_tile(grid["sheet"], d) for d in decoded]
    assert all(hits)
    # r = 0, 0.5, 1 sit left to right in the first block's first row.
    tops = [min(h) for h in hits]
    assert len({y for y, _ in tops}) == 1 and [x for _, x in tops] == sorted(x for _, x in tops)


def test_a_model_without_realism_branches_is_one_line_error(setup, tmp_path):
    out = tmp_path / "out"
    result = run_script(
        "--category", "airplane", "--models-dir", setup["plain"], "--data", setup["images"],
        "--levels", "1", "--count", 2, "--out", out,
    )  # fmt: skip
    assert result.returncode == 1
    assert "no realism control" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not out.exists() or not any(out.iterdir())


def test_refuses_to_overwrite_without_force(setup, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "realism_airplane.json").write_text("mine\n")
    args = ["--category", "airplane", "--models-dir", setup["models"], "--data", setup["images"]]
    args += ["--levels", "1", "--count", 2, "--out", out]
    result = run_script(*args)
    assert result.returncode == 1
    assert "already exists" in result.stderr and "--force" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert (out / "realism_airplane.json").read_text() == "mine\n"
    assert not (out / "realism_airplane.png").exists()
    result = run_script(*args, "--force")
    assert result.returncode == 0, result.stderr
    assert json.loads((out / "realism_airplane.json").read_text())["category"] == "airplane"
    assert load_rgb(out / "realism_airplane.png").shape[1] >= 128 * 4
