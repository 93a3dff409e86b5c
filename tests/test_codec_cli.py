"""The codec end to end: Python API and CLI round trips on small random models."""

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

import gancomp
from gancomp.cli import main
from gancomp.coding.container import unpack
from gancomp.runtime.codec import Codec
from gancomp.runtime.models import available_categories
from helpers import run_cli


def _cli(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def _rng_image(h, w, seed=0):
    rng = np.random.default_rng(seed)
    base = np.linspace(0, 255, w)[None, :, None] * np.ones((h, 1, 3))
    return np.clip(base + rng.normal(0, 20, (h, w, 3)), 0, 255).astype(np.uint8)


@pytest.mark.parametrize("size", [(32, 32), (1, 1), (17, 31), (250, 333), (512, 768)])
def test_cli_round_trip_sizes(tmp_path, models_dir, size):
    h, w = size
    src = tmp_path / "img.png"
    Image.fromarray(_rng_image(h, w)).save(src)
    r = _cli("compress", src, "--category", "airplane", "--models-dir", models_dir)
    assert r.exit_code == 0, r.output
    gcz = tmp_path / "img.gcz"
    assert gcz.exists()
    r = _cli("decompress", gcz, "--models-dir", models_dir)
    assert r.exit_code == 0, r.output
    out = Image.open(tmp_path / "img.decoded.png")
    assert out.size == (w, h) and out.mode == "RGB"


def test_all_levels_and_modes(tmp_path, models_dir):
    rgb = _rng_image(20, 27, seed=4)
    gray = Image.fromarray(rgb).convert("L")
    rgba = Image.fromarray(rgb).convert("RGBA")
    alpha = np.tile(np.arange(27, dtype=np.uint8) * 9, (20, 1))
    rgba.putalpha(Image.fromarray(alpha))
    for name, img in (("gray.png", gray), ("rgba.png", rgba)):
        img.save(tmp_path / name)
    for q in range(1, 9):
        for name, mode in (("gray.png", "L"), ("rgba.png", "RGBA")):
            out = tmp_path / f"q{q}_{name}"
            gcz = tmp_path / f"q{q}_{name}.gcz"
            assert (
                _cli(
                    "compress",
                    tmp_path / name,
                    "-c",
                    "flower",
                    "-q",
                    q,
                    "-o",
                    gcz,
                    "--models-dir",
                    models_dir,
                ).exit_code
                == 0
            )
            assert _cli("decompress", gcz, "-o", out, "--models-dir", models_dir).exit_code == 0
            dec = Image.open(out)
            assert dec.mode == mode and dec.size == (27, 20)
            if mode == "RGBA":
                assert np.array_equal(np.asarray(dec)[..., 3], alpha)  # alpha is lossless
            assert unpack(gcz.read_bytes())[0].quality == q


def test_python_api_inputs(tmp_path, models_dir, data_dir):
    path = data_dir / "airplane_0.png"
    arr = np.asarray(Image.open(path).convert("RGB"))
    a = gancomp.compress(path, category="airplane", quality=5, models_dir=models_dir)
    b = gancomp.compress(Image.open(path), category="airplane", quality=5, models_dir=models_dir)
    c = gancomp.compress(arr, category="airplane", quality=5, models_dir=models_dir)
    assert a == b == c
    out = gancomp.decompress(a, models_dir=models_dir)
    assert out.shape == (32, 32, 3) and out.dtype == np.uint8


def test_batch_equals_single_and_file_size_estimate(tmp_path, models_dir, data_dir):
    folder = tmp_path / "in"
    folder.mkdir()
    for f in sorted(p for p in data_dir.iterdir() if p.is_file()):
        shutil.copy(f, folder / f.name)
    r = _cli("compress", folder, "-c", "flower", "-o", tmp_path / "out", "--models-dir", models_dir)
    assert r.exit_code == 0, r.output
    codec = Codec.load("flower", models_dir)
    for f in sorted(folder.iterdir()):
        single = gancomp.compress(f, category="flower", models_dir=models_dir)
        assert (tmp_path / "out" / (f.stem + ".gcz")).read_bytes() == single
    # The payload is within 1% (+ a few bytes of coder flush) of -log2 p of the symbols.
    flower = np.asarray(Image.open(data_dir / "flower_0.jpg").convert("RGB"))
    data = codec.compress_arrays([flower], 4)[0]
    header, payload = unpack(data)
    est = codec.coder.estimate_bits(codec.quantized_latents([flower], 4)[0], 3) / 8
    assert abs(len(payload) - est) <= 0.01 * est + 4


def test_no_overwrite_and_default_names(tmp_path, models_dir, data_dir):
    src = tmp_path / "img.png"
    shutil.copy(data_dir / "airplane_1.png", src)
    original = src.read_bytes()
    assert _cli("compress", src, "-c", "airplane", "--models-dir", models_dir).exit_code == 0
    gcz = (tmp_path / "img.gcz").read_bytes()
    r = _cli("compress", src, "-c", "airplane", "-q", 1, "--models-dir", models_dir)
    assert r.exit_code == 1 and "--force" in r.output
    assert (tmp_path / "img.gcz").read_bytes() == gcz
    assert _cli("decompress", tmp_path / "img.gcz", "--models-dir", models_dir).exit_code == 0
    assert src.read_bytes() == original  # img.png is never touched
    r = _cli("decompress", tmp_path / "img.gcz", "--models-dir", models_dir)
    assert r.exit_code == 1 and "exists" in r.output
    r = _cli("decompress", tmp_path / "img.gcz", "--force", "--models-dir", models_dir)
    assert r.exit_code == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["img.decoded.png", "img.gcz", "img.png"]


def test_info_and_json(tmp_path, models_dir, data_dir):
    gcz = tmp_path / "a.gcz"
    r = _cli(
        "compress",
        data_dir / "airplane_2.png",
        "-c",
        "ship",
        "-o",
        gcz,
        "--models-dir",
        models_dir,
        "--json",
    )
    assert json.loads(r.output)["effort"] == "normal"
    r = _cli("info", gcz, "--json")
    d = json.loads(r.output)
    assert d["category"] == "ship" and d["width"] == 32 and d["quality"] == 4
    assert d["file_bytes"] == gcz.stat().st_size
    assert abs(d["bpp"] - 8 * d["file_bytes"] / 1024) < 1e-9


def test_auto_category_picks_a_model(tmp_path, models_dir, data_dir):
    r = _cli(
        "compress",
        data_dir / "airplane_0.png",
        "-c",
        "auto",
        "-o",
        tmp_path / "x.gcz",
        "--json",
        "--models-dir",
        models_dir,
    )
    assert r.exit_code == 0, r.output
    d = json.loads(r.output)
    assert d["category"] in available_categories(models_dir)  # shipped models included
    assert unpack((tmp_path / "x.gcz").read_bytes())[0].category == d["category"]


def test_errors_are_one_line(tmp_path, models_dir, data_dir):
    r = run_cli(
        "compress",
        data_dir / "airplane_0.png",
        "-c",
        "boat",
        "-o",
        tmp_path / "x.gcz",
        "--models-dir",
        models_dir,
    )
    assert r.returncode == 1 and "no model for category 'boat'" in r.stderr
    assert "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1
    # A file written by another model of the same category is refused by fingerprint.
    other = tmp_path / "models"
    shutil.copytree(models_dir, other)
    from gancomp.training.model import ModelConfig
    from gancomp.training.trainer import init_model_folder

    init_model_folder(
        ModelConfig(category="airplane", channels=16, latent_channels=16),
        other / "airplane",
        seed=9,
        force=True,
    )
    gcz = tmp_path / "y.gcz"
    assert (
        _cli(
            "compress",
            data_dir / "airplane_0.png",
            "-c",
            "airplane",
            "-o",
            gcz,
            "--models-dir",
            other,
        ).exit_code
        == 0
    )
    r = run_cli("decompress", gcz, "-o", tmp_path / "y.png", "--models-dir", models_dir)
    assert r.returncode == 1 and "written by model" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "y.png").exists()


def test_batch_with_a_bad_file_continues(tmp_path, models_dir, data_dir):
    folder = tmp_path / "in"
    folder.mkdir()
    shutil.copy(data_dir / "airplane_0.png", folder / "good.png")
    (folder / "bad.png").write_text("not an image")
    r = run_cli(
        "compress", folder, "-c", "airplane", "-o", tmp_path / "out", "--models-dir", models_dir
    )
    assert r.returncode == 1
    assert (tmp_path / "out" / "good.gcz").exists() and not (tmp_path / "out" / "bad.gcz").exists()
    assert "bad.png" in r.stderr and "1 of 2 files failed" in r.stderr


def test_determinism_across_processes_and_thread_settings(tmp_path, models_dir, data_dir):
    """Encode in one process, decode in others with different threads / oneDNN settings."""
    src = data_dir / "flower_2.jpg"
    settings = [
        {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "TF_ENABLE_ONEDNN_OPTS": "1"},
        {"OPENBLAS_NUM_THREADS": "2", "OMP_NUM_THREADS": "2", "TF_ENABLE_ONEDNN_OPTS": "0"},
    ]
    blobs, pixels = [], []
    for i, env in enumerate(settings):
        gcz = tmp_path / f"e{i}.gcz"
        r = run_cli("compress", src, "-c", "flower", "-o", gcz, "--models-dir", models_dir, env=env)
        assert r.returncode == 0, r.stderr
        blobs.append(gcz.read_bytes())
    assert blobs[0] == blobs[1]
    for i, env in enumerate(settings):
        out = tmp_path / f"d{i}.png"
        r = run_cli(
            "decompress", tmp_path / "e0.gcz", "-o", out, "--models-dir", models_dir, env=env
        )
        assert r.returncode == 0, r.stderr
        pixels.append(np.asarray(Image.open(out)))
    assert np.array_equal(pixels[0], pixels[1])


def test_compress_and_decompress_do_not_import_tensorflow(tmp_path, data_dir):
    """The codec runs on NumPy: TensorFlow's import cost stays out of compress/decompress."""
    gcz, png = tmp_path / "a.gcz", tmp_path / "a.png"
    code = (
        "import sys\n"
        "from click.testing import CliRunner\n"
        "from gancomp.cli import main\n"
        f"r = CliRunner().invoke(main, ['compress', {str(data_dir / 'flower_1.jpg')!r}, "
        f"'-c', 'flower', '-o', {str(gcz)!r}])\n"
        "assert r.exit_code == 0, r.output\n"
        f"r = CliRunner().invoke(main, ['decompress', {str(gcz)!r}, '-o', {str(png)!r}])\n"
        "assert r.exit_code == 0, r.output\n"
        "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules\n"
        "print('ok')\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "ok" and png.exists()


def test_decoding_never_lands_on_the_source_image(tmp_path, models_dir, data_dir, monkeypatch):
    """compress a.png b.png, then decompress a.gcz b.gcz --force, in one folder: the
    originals survive (several files used to decode to <stem>.png, replacing them)."""
    for name in ("a", "b"):
        shutil.copy(data_dir / f"airplane_{'ab'.index(name)}.png", tmp_path / f"{name}.png")
    originals = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    monkeypatch.chdir(tmp_path)
    r = _cli("compress", "a.png", "b.png", "-c", "airplane", "--models-dir", models_dir)
    assert r.exit_code == 0, r.output
    r = _cli("decompress", "a.gcz", "b.gcz", "--force", "--models-dir", models_dir)
    assert r.exit_code == 0, r.output
    assert {name: (tmp_path / name).read_bytes() for name in originals} == originals
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "a.decoded.png", "a.gcz", "a.png", "b.decoded.png", "b.gcz", "b.png"
    ]  # fmt: skip
    assert r.output.splitlines()[0] == "a.gcz -> a.decoded.png: 32x32, airplane quality 4"


def test_outputs_go_next_to_the_inputs(tmp_path, models_dir, data_dir):
    """One input or many, outputs land beside each input, not in the current folder."""
    src, here = tmp_path / "src", tmp_path / "here"
    src.mkdir()
    here.mkdir()
    for i in (0, 1):
        shutil.copy(data_dir / f"airplane_{i}.png", src / f"p{i}.png")
    r = run_cli(
        "compress", src / "p0.png", src / "p1.png", "-c", "airplane", "--models-dir", models_dir,
        cwd=here,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    r = run_cli("decompress", src / "p0.gcz", src / "p1.gcz", "--models-dir", models_dir, cwd=here)
    assert r.returncode == 0, r.stderr
    assert list(here.iterdir()) == []
    assert sorted(p.name for p in src.iterdir()) == [
        "p0.decoded.png", "p0.gcz", "p0.png", "p1.decoded.png", "p1.gcz", "p1.png"
    ]  # fmt: skip


def test_output_option_with_one_input(tmp_path, models_dir, data_dir):
    folder = tmp_path / "existing"
    folder.mkdir()
    src = data_dir / "airplane_0.png"
    # An existing folder is written into, for one input as for many.
    r = _cli("compress", src, "-c", "airplane", "-o", folder, "--models-dir", models_dir)
    assert r.exit_code == 0, r.output
    r = _cli("decompress", folder / "airplane_0.gcz", "-o", folder, "--models-dir", models_dir)
    assert r.exit_code == 0, r.output
    assert sorted(p.name for p in folder.iterdir()) == ["airplane_0.decoded.png", "airplane_0.gcz"]
    # A .gcz under another name is refused: a usage error, nothing written.
    r = _cli(
        "compress", src, "-c", "airplane", "-o", tmp_path / "x.png", "--models-dir", models_dir
    )
    assert r.exit_code == 2 and "must end in .gcz" in r.stderr
    r = _cli("decompress", folder / "airplane_0.gcz", "-o", tmp_path / "x.jpg")
    assert r.exit_code == 2 and "unsupported output extension '.jpg'" in r.stderr
    # Several inputs need a folder: an existing file as -o is a usage error too.
    (tmp_path / "file.gcz").write_bytes(b"keep me")
    r = _cli("compress", src, src, "-c", "airplane", "-o", tmp_path / "file.gcz")
    assert r.exit_code == 2 and "several inputs need an output folder" in r.stderr
    assert (tmp_path / "file.gcz").read_bytes() == b"keep me"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["existing", "file.gcz"]


def test_error_lines_name_the_file_once(tmp_path, models_dir):
    bad = tmp_path / "notimage.png"
    bad.write_text("text")
    r = run_cli("compress", bad, "-c", "airplane", "--models-dir", models_dir)
    assert r.returncode == 1
    assert r.stderr == f"gancomp: error: cannot read '{bad}': not a recognised image file\n"
    junk = tmp_path / "junk.gcz"
    junk.write_bytes(b"junk")
    r = run_cli("info", junk)
    assert r.returncode == 1 and r.stderr.startswith(f"gancomp: error: {junk}: ")
    assert r.stderr.count(str(junk)) == 1 and len(r.stderr.splitlines()) == 1


def test_debug_shows_tracebacks_of_per_file_errors(tmp_path, models_dir):
    bad = tmp_path / "notimage.png"
    bad.write_text("text")
    r = run_cli("--debug", "compress", bad, "-c", "airplane", "--models-dir", models_dir)
    assert r.returncode == 1 and "Traceback" in r.stderr and "UnidentifiedImageError" in r.stderr
    assert (
        r.stderr.splitlines()[-1]
        == f"gancomp: error: cannot read '{bad}': not a recognised image file"
    )
    r = run_cli("compress", bad, "-c", "airplane", "--models-dir", models_dir)
    assert "Traceback" not in r.stderr


def test_info_takes_several_files(tmp_path, models_dir, data_dir):
    good = []
    for i in (0, 1):
        good.append(tmp_path / f"g{i}.gcz")
        compressed = gancomp.compress(data_dir / f"airplane_{i}.png", "ship", 4, models_dir)
        good[-1].write_bytes(compressed)
    missing = tmp_path / "missing.gcz"
    r = _cli("info", good[0], missing, good[1], "--json")
    assert r.exit_code == 1
    rows = [json.loads(line) for line in r.stdout.splitlines()]
    assert [row["file"] for row in rows] == [str(good[0]), str(good[1])]
    assert r.stderr.splitlines() == [
        f"gancomp: error: cannot read '{missing}': no such file",
        "gancomp: 1 of 3 files failed",
    ]
    r = _cli("info", good[0], good[1])
    assert r.exit_code == 0
    blocks = r.stdout.split("\n\n")  # one block per file, a blank line apart
    assert len(blocks) == 2 and blocks[1].startswith(f"file                {good[1]}\n")


def _closed_stdout(*args) -> subprocess.CompletedProcess:
    """Run gancomp with stdout a pipe whose reader has gone (as `gancomp ... | head -1`)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "gancomp", *map(str, args)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    proc.stdout.close()  # before the first write: every write gets EPIPE
    stderr = proc.stderr.read()
    proc.wait(timeout=120)
    return subprocess.CompletedProcess(args, proc.returncode, "", stderr)


def test_a_closed_pipe_is_a_quiet_exit(tmp_path, models_dir, data_dir):
    gcz = tmp_path / "a.gcz"
    gcz.write_bytes(gancomp.compress(data_dir / "airplane_0.png", "ship", 4, models_dir))
    r = _closed_stdout("info", gcz, gcz)
    assert (r.returncode, r.stderr) == (141, "")  # no "internal error", no "Exception ignored"
    src = tmp_path / "in"
    src.mkdir()
    shutil.copy(data_dir / "airplane_0.png", src)
    r = _closed_stdout("compress", src, "-c", "airplane", "--models-dir", models_dir)
    assert (r.returncode, r.stderr) == (141, "")
    container_bytes = (src / "airplane_0.gcz").read_bytes()  # the write itself completed
    assert unpack(container_bytes)[0].category == "airplane"
