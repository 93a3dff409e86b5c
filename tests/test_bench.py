"""`gancomp bench`: BD-rate maths on synthetic curves, and the command on tiny random models."""

import io
import json
import math
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image as PILImage

from gancomp.cli import main
from gancomp.evaluation import bench
from gancomp.evaluation.bench import bd_rate, bd_rate_report, parse_codecs, parse_levels

DATA = Path(__file__).parent / "data"
AIRPLANES = sorted(DATA.glob("airplane_*.png"))


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


# -- BD-rate --------------------------------------------------------------------------


def _curve(psnr):
    """log(rate) is an exact cubic of PSNR, so the BD fit reproduces it exactly."""
    d = np.asarray(psnr, dtype=float)
    x = (d - 30.0) / 10.0
    return np.exp(0.2 + 1.5 * x + 0.3 * x**2 + 0.1 * x**3), d


def test_bd_rate_identical_curves_is_zero():
    r, d = _curve([24, 28, 32, 36, 40])
    assert bd_rate(r, d, r, d) == pytest.approx(0.0, abs=1e-9)


def test_bd_rate_scaled_rate_same_points():
    r, d = _curve([24, 28, 32, 36, 40])
    assert bd_rate(r, d, 0.8 * r, d) == pytest.approx(-20.0, abs=1e-9)
    assert bd_rate(0.8 * r, d, r, d) == pytest.approx(25.0, abs=1e-9)


def test_bd_rate_scaled_rate_other_points_and_partial_overlap():
    ra, da = _curve([22, 25, 28, 31, 34, 37])
    rb, db = _curve([27.5, 30, 33, 36, 39, 42])
    rep = bd_rate_report(ra, da, 0.8 * rb, db)
    assert rep["bd_rate"] == pytest.approx(-20.0, abs=1e-8)
    assert rep["interval"] == pytest.approx([27.5, 37.0])
    assert rep["reason"] is None


def test_bd_rate_distortion_shift_known_answer():
    # log r = a + b*d; B reaches each rate with 1 dB more, i.e. log r_B(d) = log r_A(d - 1):
    # the mean log difference is -b, so BD-rate = exp(-b) - 1.
    b = 0.23
    d = np.array([25.0, 28.0, 31.0, 34.0, 37.0])
    ra = np.exp(0.5 + b * d)
    rb = np.exp(0.5 + b * (d - 1.0))
    assert bd_rate(ra, d, rb, d) == pytest.approx((math.exp(-b) - 1) * 100, abs=1e-9)


def test_bd_rate_monotonic_cleaning():
    r, d = _curve([24, 28, 32, 36, 40])
    ref = bd_rate(r, d, 0.8 * r, d)
    # Shuffled input, a dominated point (more bits, lower PSNR) and a duplicate setting.
    order = [3, 0, 4, 1, 2]
    r2 = list(r[order]) + [r[2] * 1.1, r[1]]
    d2 = list(d[order]) + [d[1] + 0.5, d[1]]
    assert bd_rate(r2, d2, 0.8 * r, d) == pytest.approx(ref, abs=1e-9)
    rep = bd_rate_report(r2, d2, 0.8 * r, d)
    assert rep["points_a"] == 5


def test_bd_rate_none_with_reason():
    r, d = _curve([24, 28, 32, 36, 40])
    rep = bd_rate_report(r, d, r[:3], d[:3])
    assert rep["bd_rate"] is None and ">= 4" in rep["reason"]
    # 5 points, but only 2 survive: PSNR falls as the rate grows.
    assert bd_rate(r, d, r, d[::-1]) is None
    ro, do = _curve([45, 48, 51, 54])
    rep = bd_rate_report(r, d, ro, do)
    assert rep["bd_rate"] is None and "do not overlap" in rep["reason"]
    # Infinite PSNR (lossless) and zero rate are dropped, not fitted.
    assert bd_rate(list(r) + [r[-1] * 2], list(d) + [math.inf], r, d) == pytest.approx(0.0)


# -- argument parsing -----------------------------------------------------------------


def test_parse_levels():
    assert parse_levels("1-8") == list(range(1, 9))
    assert parse_levels("1,3,5") == [1, 3, 5]
    assert parse_levels("4") == [4]
    assert parse_levels("5,1-3,3") == [1, 2, 3, 5]
    for bad in ("", "a", "3-1", "0", "1-", "1,,2", "1.5"):
        with pytest.raises(ValueError):
            parse_levels(bad)


def test_parse_codecs():
    assert parse_codecs("webp,JPEG,webp") == ["webp", "jpeg"]
    for bad in ("", "png", "jpeg,bpg"):
        with pytest.raises(ValueError):
            parse_codecs(bad)


# -- the command ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def airplane_dir(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("airplanes")
    for f in AIRPLANES:
        shutil.copy(f, d / f.name)
    (d / "notes.txt").write_text("not an image")
    return d


@pytest.fixture(scope="module")
def bench_run(airplane_dir, models_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("bench") / "out.json"
    result = run(
        "bench",
        *("--category", "airplane", "--data", airplane_dir, "--models-dir", models_dir),
        *("--levels", "1,8", "--codecs", "jpeg,webp", "--json", out),
    )
    assert result.exit_code == 0, result.output
    return result, out, json.loads(out.read_text())


def test_bench_json_structure(bench_run, models_dir):
    result, _, doc = bench_run
    from gancomp.runtime.models import read_model_folder

    assert doc["category"] == "airplane"
    assert doc["images"] == len(AIRPLANES)
    assert doc["model_fingerprint"] == read_model_folder(models_dir / "airplane").fingerprint
    assert doc["codecs"] == ["jpeg", "webp"]
    assert set(doc["curves"]) == {"gancomp", "jpeg", "webp"}
    assert [p["quality"] for p in doc["curves"]["gancomp"]] == [1, 8]
    assert doc["settings"]["gancomp"]["levels"] == [1, 8]
    for name in ("jpeg", "webp"):
        qs = doc["settings"][name]["qualities"]
        assert [p["quality"] for p in doc["curves"][name]] == qs
    keys = {"bpp", "psnr", "ms_ssim", "ms_ssim_db", "mse", "l1", "bytes"}
    keys |= {"encode_s_per_image", "decode_s_per_image"}
    for points in doc["curves"].values():
        for p in points:
            assert keys <= set(p)
            assert p["images"] == len(AIRPLANES)
            assert p["bpp"] > 0 and p["encode_s_per_image"] >= 0
    for name in ("jpeg", "webp"):
        for m in ("psnr", "ms_ssim_db"):
            rep = doc["bd_rate"][name][m]
            # Two gancomp levels are too few for a cubic fit: None, with the reason.
            assert rep["bd_rate"] is None and ">= 4" in rep["reason"]
    out = result.output
    assert "BD-rate" in out and "jpeg" in out and "level=8" in out and "q=50" in out


def test_bench_bpp_counts_whole_files(bench_run, models_dir):
    _, _, doc = bench_run
    images = [np.asarray(PILImage.open(f).convert("RGB")) for f in AIRPLANES]
    opts = doc["settings"]["jpeg"]["options"]
    point = next(p for p in doc["curves"]["jpeg"] if p["quality"] == 50)
    sizes = []
    for a in images:
        buf = io.BytesIO()
        PILImage.fromarray(a).save(buf, "JPEG", quality=50, **opts)
        sizes.append(len(buf.getvalue()))
    assert point["bytes"] == sum(sizes)
    assert point["bpp"] == pytest.approx(np.mean([8 * n / (32 * 32) for n in sizes]))

    import gancomp

    for p in doc["curves"]["gancomp"]:
        blobs = [gancomp.compress(f, "airplane", p["quality"], models_dir) for f in AIRPLANES]
        assert p["bytes"] == sum(len(b) for b in blobs)  # header + payload
        assert p["bpp"] == pytest.approx(np.mean([8 * len(b) / (32 * 32) for b in blobs]))


def test_bench_refuses_to_overwrite_json(bench_run, airplane_dir, models_dir):
    _, out, _ = bench_run
    before = out.read_text()
    args = ("--category", "airplane", "--data", airplane_dir, "--models-dir", models_dir)
    result = run("bench", *args, "--levels", "1", "--codecs", "jpeg", "--json", out)
    assert result.exit_code == 1
    assert "already exists" in result.output and "--force" in result.output
    assert out.read_text() == before
    result = run("bench", *args, "--levels", "1", "--codecs", "jpeg", "--json", out, "--force")
    assert result.exit_code == 0, result.output
    assert json.loads(out.read_text())["settings"]["gancomp"]["levels"] == [1]


def test_run_bench_api(models_dir):
    res = bench.run_bench(
        "airplane", AIRPLANES[:2], ["jpeg"], [2], models_dir=models_dir, qualities={"jpeg": [40]}
    )
    assert res["images"] == 2
    assert [p["quality"] for p in res["curves"]["jpeg"]] == [40]
    assert [p["quality"] for p in res["curves"]["gancomp"]] == [2]


def test_bench_skips_missing_avif(airplane_dir, models_dir, monkeypatch):
    monkeypatch.setattr(bench, "codec_available", lambda n: "no AVIF here" if n == "avif" else None)
    result = run(
        "bench",
        *("--category", "airplane", "--data", airplane_dir, "--models-dir", models_dir),
        *("--levels", "1", "--codecs", "avif", "--limit", "1"),
    )
    assert result.exit_code == 0, result.output
    assert "warning: skipping avif: no AVIF here" in result.stderr
    assert "no classical codec ran" in result.stdout


@pytest.mark.train  # matplotlib comes with the plot extra (in the test extra), not the runtime
def test_bench_plot(airplane_dir, models_dir, tmp_path):
    out = tmp_path / "rd.png"
    result = run(
        "bench",
        *("--category", "airplane", "--data", airplane_dir, "--models-dir", models_dir),
        *("--levels", "1", "--codecs", "jpeg", "--limit", "1", "--plot", out),
    )
    assert result.exit_code == 0, result.output
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_bench_plot_without_matplotlib(airplane_dir, models_dir, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)  # import now fails
    result = run(
        "bench",
        *("--category", "airplane", "--data", airplane_dir, "--models-dir", models_dir),
        *("--plot", tmp_path / "rd.png"),
    )
    assert result.exit_code == 1
    assert "--plot needs matplotlib: pip install 'gancomp[plot]'" in result.output


@pytest.mark.parametrize(
    "extra, code, message",
    [
        (("--data", "{missing}"), 1, "does not exist"),
        (("--data", "{empty}"), 1, "no images in"),
        (("--data", "{images}", "--codecs", "jpeg,bpg"), 2, "unknown codec 'bpg'"),
        (("--data", "{images}", "--levels", "8-1"), 2, "bad level range"),
        (("--data", "{images}", "--levels", "x"), 2, "bad level list"),
        (("--data", "{images}", "--levels", "9"), 1, "out of range"),
    ],
)
def test_bench_bad_input(extra, code, message, airplane_dir, models_dir, tmp_path):
    (tmp_path / "empty").mkdir()
    names = {"missing": tmp_path / "nope", "empty": tmp_path / "empty", "images": airplane_dir}
    extra = [str(e).format(**names) for e in extra]
    result = run("bench", "--category", "airplane", "--models-dir", models_dir, *extra)
    assert result.exit_code == code, result.output
    assert message in result.output
    if code == 1:
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("gancomp: error:")


def test_bench_anchors_reuse_the_classical_curves(
    bench_run, airplane_dir, models_dir, monkeypatch, tmp_path
):
    _, _, doc = bench_run
    anchors = tmp_path / "anchors.json"  # the fixture's file may be overwritten by another test
    anchors.write_text(json.dumps(doc))
    images = bench.load_rgb(AIRPLANES)
    assert doc["images_sha256"] == bench.images_digest(images)

    def no_encoding(*args, **kwargs):
        raise AssertionError("a codec held by the anchors file was encoded again")

    monkeypatch.setattr(bench, "_pillow_point", no_encoding)
    result = run(
        "bench",
        *("--category", "airplane", "--data", airplane_dir, "--models-dir", models_dir),
        *("--levels", "1,8", "--codecs", "jpeg,webp", "--anchors", anchors),
    )
    assert result.exit_code == 0, result.output
    assert "curves of jpeg, webp reused from the anchors file" in result.stdout
    again = bench.run_bench(
        "airplane", images, ["jpeg", "webp"], [1, 8], models_dir=models_dir, anchors=doc
    )
    assert again["anchor_codecs"] == ["jpeg", "webp"]
    for name in ("jpeg", "webp"):
        assert again["curves"][name] == doc["curves"][name]
        assert again["settings"][name] == doc["settings"][name]
        assert again["bd_rate"][name] == doc["bd_rate"][name]
    # A codec the anchors file lacks is encoded as usual.
    monkeypatch.undo()
    mixed = bench.run_bench(
        "airplane",
        images,
        ["jpeg", "avif"],
        [1],
        models_dir=models_dir,
        anchors=doc,
        qualities={"avif": [50]},
    )
    assert mixed["anchor_codecs"] == ["jpeg"]
    assert [p["quality"] for p in mixed["curves"]["avif"]] == [50]


def test_bench_anchors_measured_with_other_settings_are_encoded_again(
    bench_run, models_dir, monkeypatch
):
    """A curve is reused only if it was measured as this run would measure it: another
    quality sweep or another library version means encoding again."""
    _, _, doc = bench_run
    images = bench.load_rgb(AIRPLANES)
    older = json.loads(json.dumps(doc))
    older["settings"]["webp"]["library_version"] = "0.0.1"
    encoded = []
    real_point = bench._pillow_point

    def counting(name, *args, **kwargs):
        encoded.append(name)
        return real_point(name, *args, **kwargs)

    monkeypatch.setattr(bench, "_pillow_point", counting)
    result = bench.run_bench(
        "airplane",
        images,
        ["jpeg", "webp"],
        [1],
        models_dir=models_dir,
        anchors=older,
        qualities={"jpeg": [40, 60]},
    )
    assert "anchor_codecs" not in result  # nothing reused
    assert sorted(set(encoded)) == ["jpeg", "webp"]
    assert [p["quality"] for p in result["curves"]["jpeg"]] == [40, 60]
    assert result["settings"]["webp"]["library_version"] != "0.0.1"
    # The default sweep with the same library version is still reused.
    encoded.clear()
    again = bench.run_bench("airplane", images, ["jpeg"], [1], models_dir=models_dir, anchors=doc)
    assert again["anchor_codecs"] == ["jpeg"] and encoded == []


def test_bench_anchors_of_other_images_are_refused(bench_run, airplane_dir, models_dir, tmp_path):
    _, _, doc = bench_run
    other = dict(doc, images_sha256="0" * 64)
    (tmp_path / "other.json").write_text(json.dumps(other))
    (tmp_path / "old.json").write_text(
        json.dumps({k: v for k, v in doc.items() if k != "images_sha256"})
    )
    (tmp_path / "bad.json").write_text("{not json")
    args = ("--category", "airplane", "--data", airplane_dir, "--models-dir", models_dir)
    for name, message in [
        ("other.json", "measured on other images"),
        ("old.json", "not a bench result with images_sha256"),
        ("bad.json", "is not JSON"),
        ("missing.json", "cannot read the anchors file"),
    ]:
        result = run(
            "bench", *args, "--levels", "1", "--codecs", "jpeg", "--anchors", tmp_path / name
        )
        assert result.exit_code == 1, (name, result.output)
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and message in lines[0], (name, result.stderr)
