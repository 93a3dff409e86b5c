import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image as PILImage

from gancomp import __version__
from gancomp.cli import main
from gancomp.evaluation import metrics
from gancomp.io.images import load_image

DATA = Path(__file__).parent / "data"
A0 = str(DATA / "airplane_0.png")
A1 = str(DATA / "airplane_1.png")
F0 = str(DATA / "flower_0.jpg")


def run(*args: str):
    return CliRunner().invoke(main, list(args))


def _noisy_copy(tmp_path: Path, src: str, name: str) -> str:
    rgb = load_image(src).rgb
    rng = np.random.default_rng(1)
    out = np.clip(rgb + rng.normal(0, 6, rgb.shape), 0, 255).astype(np.uint8)
    PILImage.fromarray(out).save(tmp_path / name)
    return str(tmp_path / name)


def test_table_output(tmp_path):
    b = _noisy_copy(tmp_path, F0, "n.png")
    result = run("compare", F0, b)
    assert result.exit_code == 0, result.output
    expected = metrics.compare(load_image(F0).rgb, load_image(b).rgb)
    lines = result.stdout.splitlines()
    assert lines[0] == f"{F0} vs {b} (334x250)"
    table = {line[:23].strip(): line[23:].split() for line in lines[1:]}
    assert float(table["MSE"][0]) == pytest.approx(expected["mse"], abs=1e-4)
    assert table["PSNR"] == [f"{expected['psnr']:.2f}", "dB"]
    assert float(table["MS-SSIM"][0]) == pytest.approx(expected["ms_ssim"], abs=1e-6)
    assert table["MS-SSIM in dB"][0] == f"{expected['ms_ssim_db']:.2f}"
    assert table["MS-SSIM scales"] == ["5"]
    assert float(table["L1 (mean abs error)"][0]) == pytest.approx(expected["l1"], abs=1e-4)
    assert int(table["SAD"][0]) == expected["sad"]
    # Values are right-aligned in one column.
    assert len({len(line.rstrip(" dB")) for line in lines[1:]}) == 1


def test_json_output(tmp_path):
    b = _noisy_copy(tmp_path, A0, "n.png")
    result = run("compare", "--json", A0, b)
    assert result.exit_code == 0
    data = json.loads(result.stdout)
    expected = metrics.compare(load_image(A0).rgb, load_image(b).rgb)
    for key in ("mse", "psnr", "ms_ssim", "ms_ssim_db", "l1"):
        assert data[key] == pytest.approx(expected[key], rel=1e-12)
    assert data["sad"] == expected["sad"] and isinstance(data["sad"], int)
    assert data["ms_ssim_scales"] == 2
    assert (data["width"], data["height"], data["identical"]) == (32, 32, False)


def test_identical_images():
    result = run("compare", A0, A0)
    assert result.exit_code == 0
    assert "images are identical" in result.stdout
    psnr_line = next(line for line in result.stdout.splitlines() if "PSNR" in line)
    assert psnr_line.split()[-2:] == ["inf", "dB"]
    data = json.loads(run("compare", A0, A0, "--json").stdout)
    assert data["psnr"] is None and data["ms_ssim_db"] is None
    assert data["identical"] is True and data["ms_ssim"] == 1.0 and data["mse"] == 0.0


def test_alpha_is_composited_on_white(tmp_path):
    rgb = load_image(A0).rgb
    alpha = np.zeros((32, 32), np.uint8)
    PILImage.fromarray(np.dstack([rgb, alpha])).save(tmp_path / "t.png")
    PILImage.new("RGB", (32, 32), (255, 255, 255)).save(tmp_path / "w.png")
    data = json.loads(
        run("compare", "--json", str(tmp_path / "t.png"), str(tmp_path / "w.png")).stdout
    )
    assert data["identical"] is True


def test_size_mismatch_is_one_line_error():
    result = run("compare", A0, F0)
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr == (
        f"gancomp: error: images differ in size: '{A0}' is 32x32, '{F0}' is 334x250\n"
    )


def test_bad_files(tmp_path):
    text = tmp_path / "notes.png"
    text.write_text("not an image")
    result = run("compare", A0, str(text))
    assert result.exit_code == 1
    assert result.stderr == f"gancomp: error: cannot read '{text}': not a recognised image file\n"
    result = run("compare", str(tmp_path / "missing.png"), A0)
    assert result.exit_code == 1 and "no such file" in result.stderr


def test_usage_errors_exit_2():
    assert run("compare", A0).exit_code == 2
    assert run("compare", A0, A1, "--bogus").exit_code == 2
    assert run("nosuchcommand").exit_code == 2


def test_version_and_help():
    result = run("--version")
    assert result.exit_code == 0 and __version__ in result.stdout
    result = run("compare", "--help")
    assert result.exit_code == 0
    for word in ("MSE", "PSNR", "MS-SSIM", "L1", "SAD", "white"):
        assert word in result.stdout


def test_internal_error_and_debug(monkeypatch):
    def broken(a, b):
        raise ZeroDivisionError("oops")

    monkeypatch.setattr(metrics, "compare", broken)
    result = run("compare", A0, A1)
    assert result.exit_code == 1
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith("gancomp: internal error: ZeroDivisionError: oops")
    assert "Traceback" not in result.stderr
    result = run("--debug", "compare", A0, A1)
    assert result.exit_code == 1
    assert "Traceback" in result.stderr and "ZeroDivisionError: oops" in result.stderr


def test_keyboard_interrupt(monkeypatch):
    def interrupted(a, b):
        raise KeyboardInterrupt

    monkeypatch.setattr(metrics, "compare", interrupted)
    result = run("compare", A0, A1)
    assert result.exit_code == 130
    assert result.stderr == "gancomp: interrupted\n"


def _python(*args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env.pop("TF_CPP_MIN_LOG_LEVEL", None)
    return subprocess.run(
        [sys.executable, *args], capture_output=True, text=True, env=env, timeout=120
    )


def test_subprocess_exit_codes(tmp_path):
    ok = _python("-m", "gancomp", "compare", A0, A1, "--json")
    assert ok.returncode == 0, ok.stderr
    assert ok.stderr == ""
    data = json.loads(ok.stdout)
    assert data["mse"] == pytest.approx(metrics.mse(load_image(A0).rgb, load_image(A1).rgb))
    assert math.isfinite(data["psnr"])

    bad = tmp_path / "bad.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    for args in ([A0, F0], [A0, str(bad)], [A0, str(tmp_path)]):
        proc = _python("-m", "gancomp", "compare", *args)
        assert proc.returncode == 1
        assert proc.stdout == ""
        assert proc.stderr.startswith("gancomp: error: ")
        assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr

    usage = _python("-m", "gancomp", "compare", A0)
    assert usage.returncode == 2 and "Traceback" not in usage.stderr


def test_compare_does_not_import_tensorflow():
    code = (
        "import sys\n"
        "from click.testing import CliRunner\n"
        "from gancomp.cli import main\n"
        f"r = CliRunner().invoke(main, ['compare', {A0!r}, {A1!r}])\n"
        "assert r.exit_code == 0, r.output\n"
        "r = CliRunner().invoke(main, ['--help'])\n"
        "assert r.exit_code == 0, r.output\n"
        "assert 'tensorflow' not in sys.modules\n"
        "print('ok')\n"
    )
    proc = _python("-c", code)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "ok"


def test_interrupted_run_is_not_an_error(monkeypatch):
    """A run that saved its state and stopped on Ctrl-C (errors.Interrupted): exit 130, and
    the message does not call it an error."""
    from gancomp.errors import Interrupted

    def interrupted(a, b):
        raise Interrupted("interrupted at step 120; checkpoint saved, --resume continues")

    monkeypatch.setattr(metrics, "compare", interrupted)
    result = run("compare", A0, A1)
    assert result.exit_code == 130
    assert result.stderr == (
        "gancomp: interrupted at step 120; checkpoint saved, --resume continues\n"
    )


def test_closed_pipe_is_a_quiet_exit():
    """`gancomp compare A B | head -3`: no "internal error: BrokenPipeError", no "Exception
    ignored" at interpreter exit; the status of a tool ended by SIGPIPE."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "gancomp", "compare", A0, A1],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    proc.stdout.close()  # the reader is gone before the first write
    stderr = proc.stderr.read()
    assert proc.wait(timeout=120) == 141
    assert stderr == ""
