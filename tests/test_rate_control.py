"""Rate control (`compress --target-bpp/--target-bytes/--target-psnr`): the chosen level is
checked against every level's file and PSNR computed independently, one image at a time.

The tiny random models are far from monotone in size and PSNR across levels (asserted below),
which is what makes these checks bite: a search that assumed monotone levels would pick
other files.
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

import gancomp
from gancomp.batch import compress_files
from gancomp.cli import main
from gancomp.coding.container import unpack
from gancomp.errors import UsageError
from gancomp.evaluation.metrics import psnr as psnr_of
from gancomp.io.images import load_image, save_image, to_rgb_for_metrics
from gancomp.runtime import codec as codec_mod
from gancomp.runtime import rate_control
from gancomp.runtime.rate_control import RateTarget, TargetUnreachable

DATA = Path(__file__).parent / "data"
IMAGES = ("flower_0.jpg", "airplane_0.png", "automobile_1.png")
MODELS = ("airplane", "hp-flower")  # factorized (format v1) and hyperprior (v2)
LEVELS = range(1, 9)


def _cli(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def _compare_psnr(source: Path, data: bytes, models_dir: Path, scratch: Path) -> float:
    """PSNR as `gancomp decompress` then `gancomp compare` would measure it."""
    decoded = codec_mod.decompress(data, models_dir)
    out = scratch / "decoded.png"
    save_image(out, decoded.rgb, decoded.alpha, decoded.grayscale, force=True)
    return psnr_of(to_rgb_for_metrics(load_image(source)), to_rgb_for_metrics(load_image(out)))


@pytest.fixture(scope="module")
def table(models_dir, tmp_path_factory):
    """(model, image) -> {quality: (file, PSNR)}, every level coded on its own."""
    scratch = tmp_path_factory.mktemp("oracle")
    rows = {}
    for model in MODELS:
        for name in IMAGES:
            rows[model, name] = {}
            for q in LEVELS:
                data = codec_mod.compress(DATA / name, model, q, models_dir)
                rows[model, name][q] = (data, _compare_psnr(DATA / name, data, models_dir, scratch))
    return rows


def _expected_size(levels: dict, fits) -> int | None:
    """The highest quality whose file fits, or None."""
    return max((q for q, (data, _) in levels.items() if fits(len(data))), default=None)


def _expected_psnr(levels: dict, target: float) -> int | None:
    """The quality of the smallest file meeting ``target`` (ties: higher quality), or None."""
    ok = [q for q, (_, p) in levels.items() if p >= target]
    return min(ok, key=lambda q: (len(levels[q][0]), -q)) if ok else None


def _table_encoder(table, model, images):
    """A level encoder that returns the independently coded files (exercises the search
    alone, over many targets, without re-encoding), counting its calls."""
    by_id = {id(im): name for im, name in images}
    calls = []

    def encode(batch, quality):
        calls.append((quality, len(batch)))
        return [table[model, by_id[id(im)]][quality][0] for im in batch]

    return encode, calls


def test_tiny_models_are_not_monotone(table):
    """Otherwise the sweeps below could not tell a monotone-assuming search from this one."""
    sizes_back = psnr_back = 0
    for levels in table.values():
        for q in range(1, 8):
            sizes_back += len(levels[q + 1][0]) < len(levels[q][0])
            psnr_back += levels[q + 1][1] < levels[q][1]
    assert sizes_back > 0 and psnr_back > 0


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("kind", ["bytes", "bpp"])
def test_size_targets_over_a_sweep(table, models_dir, model, kind):
    images = [(load_image(DATA / name), name) for name in IMAGES]
    codec = codec_mod.load_codec(model, models_dir)
    for im, name in images:
        levels = table[model, name]
        pixels = im.width * im.height
        sizes = sorted({len(data) for data, _ in levels.values()})
        values = {s + d for s in sizes for d in (-1, 0, 1)} | {sizes[0] // 2, sizes[-1] * 2}
        for value in sorted(values):
            if kind == "bpp":
                value = 8 * value / pixels  # exactly at (and beside) each file's own bpp
            target = RateTarget(kind, value)
            encode, _ = _table_encoder(table, model, [(im, name)])
            [choice] = rate_control.search([im], target, codec, encode)
            if kind == "bytes":
                want = _expected_size(levels, lambda n, v=value: n <= v)
            else:
                want = _expected_size(levels, lambda n, v=value, p=pixels: 8 * n / p <= v)
            if want is None:
                smallest = min(len(d) for d, _ in levels.values())
                assert not choice.met and choice.size == smallest
                assert choice.quality == max(q for q in LEVELS if len(levels[q][0]) == smallest)
            else:
                assert choice.met and choice.quality == want
                assert choice.data == levels[want][0]
                assert choice.size <= value if kind == "bytes" else choice.bpp <= value


@pytest.mark.parametrize("model", MODELS)
def test_psnr_target_over_a_sweep(table, models_dir, model):
    images = [(load_image(DATA / name), name) for name in IMAGES]
    codec = codec_mod.load_codec(model, models_dir)
    for im, name in images:
        levels = table[model, name]
        values = sorted({p for _, p in levels.values()})
        values = values + [v + 1e-9 for v in values] + [values[0] / 2, values[-1] + 1]
        for value in values:
            encode, _ = _table_encoder(table, model, [(im, name)])
            [choice] = rate_control.search([im], RateTarget("psnr", value), codec, encode)
            want = _expected_psnr(levels, value)
            # The search's own PSNR is the one compare computes on the decompressed file.
            assert choice.psnr == levels[choice.quality][1]
            if want is None:
                best = max(p for _, p in levels.values())
                assert not choice.met and choice.psnr == best
            else:
                assert choice.met and choice.quality == want and choice.psnr >= value
                assert choice.data == levels[want][0]


def test_size_search_stops_at_the_first_fit_with_one_batch_per_level(table, models_dir):
    images = [(load_image(DATA / name), name) for name in IMAGES]
    codec = codec_mod.load_codec("airplane", models_dir)
    # Fits every 32x32 file at once, and the flower photo only at some lower level.
    flower = table["airplane", "flower_0.jpg"]
    limit = sorted(len(d) for d, _ in flower.values())[2]
    encode, calls = _table_encoder(table, "airplane", images)
    rate_control.search([im for im, _ in images], RateTarget("bytes", limit), codec, encode)
    want = _expected_size(flower, lambda n: n <= limit)
    assert calls[0] == (8, 3)  # every image in one call
    assert calls[1:] == [(q, 1) for q in range(7, want - 1, -1)]  # then the flower alone


def test_compress_files_writes_the_expected_level(table, tmp_path, models_dir):
    folder = tmp_path / "in"
    folder.mkdir()
    for name in IMAGES:
        shutil.copy(DATA / name, folder / name)
    for model in MODELS:
        flower = table[model, "flower_0.jpg"]
        sizes = sorted(len(d) for d, _ in flower.values())
        for limit in (sizes[1], sizes[5] - 1):
            results = compress_files(
                folder, model, models_dir=models_dir, force=True, target_bytes=limit
            )
            assert all(r.ok for r in results), [r.error for r in results]
            for r in results:
                levels = table[model, r.path.name]
                want = _expected_size(levels, lambda n, limit=limit: n <= limit)
                data = r.output.read_bytes()
                assert data == levels[want][0] and len(data) <= limit
                assert (r.quality, r.output_bytes, r.target_met) == (want, len(data), True)
                assert unpack(data)[0].quality == want


def test_cli_psnr_target_is_what_compare_measures(table, tmp_path, models_dir):
    """--target-psnr, then decompress and `gancomp compare`: at least the target."""
    src = tmp_path / "flower_0.jpg"
    shutil.copy(DATA / "flower_0.jpg", src)
    levels = table["hp-flower", "flower_0.jpg"]
    value = sorted(p for _, p in levels.values())[3]
    r = _cli("compress", src, "-c", "hp-flower", "--models-dir", models_dir,
             "--target-psnr", repr(value))  # fmt: skip
    assert r.exit_code == 0, r.output
    gcz = tmp_path / "flower_0.gcz"
    assert gcz.read_bytes() == levels[_expected_psnr(levels, value)][0]
    assert _cli("decompress", gcz, "--models-dir", models_dir).exit_code == 0
    r = _cli("compare", src, tmp_path / "flower_0.decoded.png", "--json")
    assert json.loads(r.output)["psnr"] >= value


def test_unreachable_size_target(table, tmp_path, models_dir):
    folder = tmp_path / "in"
    folder.mkdir()
    for name in ("airplane_0.png", "flower_0.jpg"):
        shutil.copy(DATA / name, folder / name)
    levels = table["airplane", "flower_0.jpg"]
    smallest = min(len(d) for d, _ in levels.values())
    at = max(q for q in LEVELS if len(levels[q][0]) == smallest)
    args = ("compress", folder, "-c", "airplane", "--models-dir", models_dir)
    r = _cli(*args, "--target-bytes", 1000)
    assert r.exit_code == 1
    assert (
        f"{folder / 'flower_0.jpg'}: smallest file is {smallest} bytes (quality {at}), "
        "above the target 1000 bytes"
    ) in r.stderr
    assert "1 of 2 files failed" in r.stderr
    assert (folder / "airplane_0.gcz").exists() and not (folder / "flower_0.gcz").exists()

    r = _cli(*args, "--target-bytes", 1000, "--nearest", "--force")
    assert r.exit_code == 0, r.output
    assert (folder / "flower_0.gcz").read_bytes() == levels[at][0]
    line = next(x for x in r.stdout.splitlines() if "flower_0" in x)
    assert "nearest written" in line and f"smallest file is {smallest} bytes" in line


def test_unreachable_psnr_target(table, tmp_path, models_dir):
    src = tmp_path / "airplane_0.png"
    shutil.copy(DATA / "airplane_0.png", src)
    levels = table["hp-flower", "airplane_0.png"]
    best = max(p for _, p in levels.values())
    # Of equal PSNRs the smaller file, of equal files the higher quality.
    at = min((q for q in LEVELS if levels[q][1] == best), key=lambda q: (len(levels[q][0]), -q))
    args = ("compress", src, "-c", "hp-flower", "--models-dir", models_dir, "--target-psnr", 60)
    r = _cli(*args)
    assert r.exit_code == 1 and not (tmp_path / "airplane_0.gcz").exists()
    assert f"highest PSNR is {best:.2f} dB (quality {at}" in r.stderr
    assert "below the target 60 dB" in r.stderr
    r = _cli(*args, "--nearest", "--json")
    assert r.exit_code == 0, r.output
    row = json.loads(r.stdout)
    assert row["target_met"] is False and row["quality"] == at and row["psnr"] == best
    assert (tmp_path / "airplane_0.gcz").read_bytes() == levels[at][0]


def test_json_fields(table, tmp_path, models_dir):
    src = tmp_path / "flower_0.jpg"
    shutil.copy(DATA / "flower_0.jpg", src)
    levels = table["airplane", "flower_0.jpg"]
    value = 8 * sorted(len(d) for d, _ in levels.values())[4] / (334 * 250)
    r = _cli("compress", src, "-c", "airplane", "--models-dir", models_dir,
             "--target-bpp", repr(value), "--json")  # fmt: skip
    assert r.exit_code == 0, r.output
    row = json.loads(r.stdout)
    data = (tmp_path / "flower_0.gcz").read_bytes()
    want = _expected_size(levels, lambda n: 8 * n / (334 * 250) <= value)
    assert row["quality"] == want == unpack(data)[0].quality
    assert row["output_bytes"] == len(data) and row["bpp"] == 8 * len(data) / (334 * 250)
    assert row["bpp"] <= value and row["target"] == value
    assert (row["target_kind"], row["target_met"], row["psnr"]) == ("bpp", True, None)

    r = _cli("compress", src, "-c", "airplane", "--models-dir", models_dir,
             "--target-psnr", "5", "--json", "--force")  # fmt: skip
    row = json.loads(r.stdout)
    want = _expected_psnr(levels, 5)
    assert (row["quality"], row["target_kind"], row["target"], row["target_met"]) == (
        want,
        "psnr",
        5.0,
        True,
    )
    assert row["psnr"] == levels[want][1]
    # Without a target, the rows stay as they were.
    r = _cli("compress", src, "-c", "airplane", "--models-dir", models_dir, "--json", "--force")
    assert "target_met" not in json.loads(r.stdout)


@pytest.mark.parametrize(
    "extra",
    [
        ["-q", "3", "--target-bpp", "1"],
        ["--quality", "4", "--target-psnr", "20"],
        ["--target-bpp", "1", "--target-bytes", "100"],
        ["--target-bytes", "100", "--target-psnr", "20"],
        ["--target-bpp", "nan"],
        ["--target-bpp", "0"],
        ["--target-bpp", "-1"],
        ["--target-psnr", "inf"],
        ["--target-psnr", "NaN"],
        ["--target-psnr", "0"],
        ["--target-bytes", "0"],
        ["--target-bytes", "-5"],
        ["--target-bytes", "2.5"],
        ["--nearest"],
    ],
)
def test_usage_errors(tmp_path, models_dir, extra):
    src = tmp_path / "airplane_0.png"
    shutil.copy(DATA / "airplane_0.png", src)
    r = _cli("compress", src, "-c", "airplane", "--models-dir", models_dir, *extra)
    assert r.exit_code == 2, r.output
    assert "Traceback" not in r.output and not (tmp_path / "airplane_0.gcz").exists()


@pytest.mark.parametrize(
    "kwargs",
    [
        {"quality": 4, "target_bytes": 100},
        {"target_bpp": 1.0, "target_psnr": 20.0},
        {"target_bpp": math.nan},
        {"target_psnr": -1.0},
        {"target_bytes": 0},
        {"target_bytes": 10.5},
        {"target_bpp": True},
        {"nearest": True},
    ],
)
def test_api_usage_errors(tmp_path, models_dir, kwargs):
    src = tmp_path / "airplane_0.png"
    shutil.copy(DATA / "airplane_0.png", src)
    with pytest.raises(UsageError):
        compress_files(src, "airplane", models_dir=models_dir, **kwargs)
    assert not (tmp_path / "airplane_0.gcz").exists()


def test_python_api(table, models_dir):
    levels = table["hp-flower", "flower_0.jpg"]
    sizes = sorted(len(d) for d, _ in levels.values())
    choice = gancomp.compress_to_target(
        DATA / "flower_0.jpg", "hp-flower", target_bytes=sizes[3], models_dir=models_dir
    )
    want = _expected_size(levels, lambda n: n <= sizes[3])
    assert choice.met and choice.quality == want and choice.data == levels[want][0]
    assert gancomp.decompress(choice.data, models_dir).shape == (250, 334, 3)

    with pytest.raises(TargetUnreachable, match="above the target 10 bytes") as caught:
        gancomp.compress_to_target(
            DATA / "flower_0.jpg", "hp-flower", target_bytes=10, models_dir=models_dir
        )
    assert caught.value.choice.size == sizes[0]
    nearest = gancomp.compress_to_target(
        Image.open(DATA / "flower_0.jpg"),
        "hp-flower",
        target_bytes=10,
        nearest=True,
        models_dir=models_dir,
    )
    assert not nearest.met and nearest.size == sizes[0]
    with pytest.raises(UsageError):
        gancomp.compress_to_target(DATA / "flower_0.jpg", "hp-flower", models_dir=models_dir)


@pytest.mark.parametrize("mode", ["RGBA", "LA", "I;16"])
def test_alpha_gray_and_16bit_inputs(tmp_path, models_dir, mode):
    """Bytes count the whole file (alpha included); the PSNR is compare's, on the decoded
    file (gray as its channel mean, alpha on white, 16 bits scaled to 8)."""
    rgb = np.asarray(Image.open(DATA / "flower_0.jpg").convert("RGB"))
    ramp = np.add.outer(np.arange(250), np.arange(334)) % 256
    if mode == "I;16":
        im = Image.fromarray((rgb.mean(axis=2) * 257).astype(np.uint16))
    else:
        im = Image.fromarray(rgb).convert(mode[0] if mode == "LA" else "RGB")
        im.putalpha(Image.fromarray(ramp.astype(np.uint8)))
    src = tmp_path / "img.png"
    im.save(src)
    files = {q: codec_mod.compress(src, "airplane", q, models_dir) for q in LEVELS}
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    psnrs = {q: _compare_psnr(src, f, models_dir, scratch) for q, f in files.items()}
    levels = {q: (files[q], psnrs[q]) for q in LEVELS}

    limit = sorted(len(f) for f in files.values())[4]
    [r] = compress_files(src, "airplane", models_dir=models_dir, target_bytes=limit)
    want = _expected_size(levels, lambda n: n <= limit)
    assert r.ok and r.quality == want and r.output.read_bytes() == files[want]
    assert r.output_bytes <= limit

    value = sorted(psnrs.values())[4]
    [r] = compress_files(src, "airplane", models_dir=models_dir, target_psnr=value, force=True)
    want = _expected_psnr(levels, value)
    assert r.ok and r.quality == want and r.output.read_bytes() == files[want]
    assert r.psnr == psnrs[want] >= value
    header = unpack(files[want])[0]
    assert (header.alpha is not None) == ("A" in mode) and header.grayscale == (mode != "RGBA")


def test_auto_category(tmp_path, models_dir):
    """auto: the model auto picks at quality 4, then that model's levels are searched."""
    from gancomp.runtime.auto import compress_auto

    for name in ("flower_0.jpg", "airplane_0.png"):
        src = tmp_path / name
        shutil.copy(DATA / name, src)
        [(_, picked)] = compress_auto([load_image(src)], 4, models_dir)
        files = {q: codec_mod.compress(src, picked, q, models_dir) for q in LEVELS}
        limit = sorted(len(f) for f in files.values())[3]
        [r] = compress_files(src, "auto", models_dir=models_dir, target_bytes=limit)
        want = max(q for q in LEVELS if len(files[q]) <= limit)
        assert r.ok and r.category == picked and r.quality == want
        assert r.output.read_bytes() == files[want] and r.output_bytes <= limit


def test_shortfall_tells_values_apart():
    choice = rate_control.RateChoice(
        b"x" * 3001, "a", 1, 200, 100, RateTarget("bpp", 1.2), met=False
    )
    assert choice.shortfall() == (
        "smallest file is 1.2004 bpp (quality 1, 3001 bytes), above the target 1.2 bpp"
    )
