"""Outputs are atomic and never clobber: refusals, failures mid-write and Ctrl-C lose nothing."""

from __future__ import annotations

import errno
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner, Result
from PIL import Image

from gancomp.cli import main
from gancomp.coding import container
from gancomp.io import files as fileio
from gancomp.runtime import codec
from helpers import run_cli

DATA = Path(__file__).parent / "data"
PRECIOUS = b"precious bytes that must survive"


def _cli(*args) -> Result:
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def _hidden(folder: Path) -> list[str]:
    return [p.name for p in folder.iterdir() if p.name.startswith(".")]


def _inputs(folder: Path, n: int = 3) -> list[Path]:
    folder.mkdir()
    names = ["airplane_0.png", "airplane_1.png", "automobile_0.png"][:n]
    for name in names:
        shutil.copy(DATA / name, folder / name)
    return [folder / name for name in names]


def test_batch_refuses_to_overwrite_without_force(tmp_path, models_dir):
    _inputs(tmp_path / "in")
    out = tmp_path / "out"
    out.mkdir()
    (out / "airplane_1.gcz").write_bytes(PRECIOUS)
    args = ["compress", tmp_path / "in", "-c", "airplane", "-o", out, "--models-dir", models_dir]
    r = _cli(*args)
    assert r.exit_code == 1
    assert "airplane_1.png" in r.stderr and "--force" in r.stderr
    assert (out / "airplane_1.gcz").read_bytes() == PRECIOUS
    assert container.unpack((out / "airplane_0.gcz").read_bytes())[0].width == 32  # others done
    assert (out / "automobile_0.gcz").exists()

    r = _cli(*args)
    assert r.exit_code == 1 and "3 of 3 files failed" in r.stderr  # now all exist
    r = _cli(*args, "--force")
    assert r.exit_code == 0, r.output
    assert container.unpack((out / "airplane_1.gcz").read_bytes())[0].category == "airplane"

    decoded = tmp_path / "decoded"
    decoded.mkdir()
    (decoded / "automobile_0.decoded.png").write_bytes(PRECIOUS)
    r = _cli("decompress", out, "-o", decoded, "--models-dir", models_dir)
    assert r.exit_code == 1 and "automobile_0.gcz" in r.stderr and "--force" in r.stderr
    assert (decoded / "automobile_0.decoded.png").read_bytes() == PRECIOUS
    assert Image.open(decoded / "airplane_0.decoded.png").size == (32, 32)
    assert _hidden(out) == [] and _hidden(decoded) == []


def test_single_output_refuses_to_overwrite_without_force(tmp_path, models_dir):
    src = _inputs(tmp_path / "in", 1)[0]
    gcz, png = tmp_path / "x.gcz", tmp_path / "x.png"
    for target in (gcz, png):
        target.write_bytes(PRECIOUS)
    r = _cli("compress", src, "-c", "airplane", "-o", gcz, "--models-dir", models_dir)
    assert r.exit_code == 1 and "already exists" in r.stderr
    assert gcz.read_bytes() == PRECIOUS
    r = _cli("compress", src, "-c", "airplane", "-o", gcz, "--force", "--models-dir", models_dir)
    assert r.exit_code == 0 and container.unpack(gcz.read_bytes())
    r = _cli("decompress", gcz, "-o", png, "--models-dir", models_dir)
    assert r.exit_code == 1 and "already exists" in r.stderr
    assert png.read_bytes() == PRECIOUS
    r = _cli("decompress", gcz, "-o", png, "--force", "--models-dir", models_dir)
    assert r.exit_code == 0 and Image.open(png).size == (32, 32)
    assert _hidden(tmp_path) == []


def _fail_writes(monkeypatch, exc: BaseException, after: int = 0) -> None:
    """Make the (after+1)-th atomic output fail halfway through writing its temp file."""
    real = tempfile.NamedTemporaryFile
    opened = []

    def named_temporary_file(*args, **kwargs):
        tmp = real(*args, **kwargs)
        opened.append(tmp.name)
        if len(opened) <= after:
            return tmp
        raw_write = tmp.file.write

        def write(data) -> int:
            raw_write(bytes(data)[: max(1, len(data) // 2)])
            tmp.file.flush()
            assert os.path.getsize(tmp.name) > 0  # a partial temp file really exists
            raise exc

        tmp.write = write
        return tmp

    monkeypatch.setattr(fileio.tempfile, "NamedTemporaryFile", named_temporary_file)


ENOSPC = OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


@pytest.mark.parametrize(
    ("exc", "code", "message"),
    [(ENOSPC, 1, os.strerror(errno.ENOSPC)), (KeyboardInterrupt(), 130, "interrupted")],
    ids=["disk-full", "ctrl-c"],
)
def test_failure_mid_write_leaves_nothing(tmp_path, models_dir, monkeypatch, exc, code, message):
    src = _inputs(tmp_path / "in", 1)[0]
    gcz = tmp_path / "in" / "airplane_0.gcz"
    good = codec.compress(src, "airplane", 4, models_dir)
    gcz.write_bytes(good)
    with monkeypatch.context() as m:
        _fail_writes(m, exc)
        r = _cli(
            "compress", src, "-c", "airplane", "-o", tmp_path / "c.gcz", "--models-dir", models_dir
        )
        assert r.exit_code == code and message in r.stderr
        r = _cli("decompress", gcz, "-o", tmp_path / "d.png", "--models-dir", models_dir)
        assert r.exit_code == code and message in r.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in"]
    assert sorted(p.name for p in (tmp_path / "in").iterdir()) == ["airplane_0.gcz", src.name]


def test_failure_in_the_middle_of_a_batch(tmp_path, models_dir, monkeypatch):
    _inputs(tmp_path / "in")
    out = tmp_path / "out"
    _fail_writes(monkeypatch, KeyboardInterrupt(), after=1)
    r = _cli("compress", tmp_path / "in", "-c", "airplane", "-o", out, "--models-dir", models_dir)
    assert r.exit_code == 130 and r.stderr.strip() == "gancomp: interrupted"
    # One write completed in full (writes run on a pool, so which one is not fixed); the
    # interrupted one and those not started left nothing behind.
    written = [p.name for p in out.iterdir()]
    assert len(written) == 1 and written[0].endswith(".gcz"), written
    src = tmp_path / "in" / (written[0][: -len(".gcz")] + ".png")
    assert (out / written[0]).read_bytes() == codec.compress(src, "airplane", 4, models_dir)


# Simulates a slow disk (every fsync takes 50 ms) so that the interrupt reliably lands in the
# middle of the batch's writes. Loaded through PYTHONPATH: the command itself is unchanged.
SLOW_FSYNC = """
import os, time

_fsync = os.fsync


def _slow_fsync(fd):
    # Writes run on a pool of 4 threads: 60 files x 0.2 s / 4 leaves a 3 s window for Ctrl-C.
    time.sleep(0.2)
    return _fsync(fd)


os.fsync = _slow_fsync
"""


def test_ctrl_c_in_a_batch_leaves_only_complete_files(tmp_path, models_dir):
    src = DATA / "airplane_0.png"
    folder, out, site = tmp_path / "in", tmp_path / "out", tmp_path / "site"
    folder.mkdir()
    site.mkdir()
    n = 60
    for i in range(n):
        shutil.copy(src, folder / f"img_{i:02d}.png")
    (site / "sitecustomize.py").write_text(SLOW_FSYNC)
    expected = codec.compress(src, "airplane", 4, models_dir)
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")])),
    }
    cmd = [sys.executable, "-m", "gancomp", "compress", folder, "-o", out, "-c", "airplane"]
    proc = subprocess.Popen(
        [*map(str, cmd), "--models-dir", str(models_dir)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        # A shell's background job inherits SIGINT ignored, and Python then keeps ignoring
        # it: give the child the default disposition, as an interactive terminal would.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        deadline = time.monotonic() + 240
        while proc.poll() is None and not (out.is_dir() and any(out.glob("*.gcz"))):
            assert time.monotonic() < deadline, "no output appeared"
            time.sleep(0.01)
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    # A shell sees 130 either way. CI saw -2 (death by SIGINT) once under load, after the
    # one-line message; the cause is not found yet (a KeyboardInterrupt caught after leaving
    # exec() of a string does not reproduce it).
    assert proc.returncode in (130, -signal.SIGINT), stderr
    assert stderr.strip().splitlines() == ["gancomp: interrupted"]
    names = sorted(p.name for p in out.iterdir())
    assert 1 <= len(names) < n
    assert _hidden(out) == []  # no temp files left behind
    for name in names:
        assert name.endswith(".gcz")
        data = (out / name).read_bytes()
        container.unpack(data)  # complete: the checksum passes
        assert data == expected


def test_decompress_batch_with_corrupt_files(tmp_path, models_dir):
    srcs = _inputs(tmp_path / "in")
    gczs = tmp_path / "gcz"
    gczs.mkdir()
    for src in srcs:
        (gczs / (src.stem + ".gcz")).write_bytes(codec.compress(src, "airplane", 4, models_dir))
    good = (gczs / "airplane_0.gcz").read_bytes()
    flipped = bytearray(good)
    flipped[20] ^= 0x10
    (gczs / "bad_crc.gcz").write_bytes(bytes(flipped))  # fails at the header check
    header, payload = container.unpack(good)
    header.fingerprint = b"\0\0\0\0"
    (gczs / "bad_model.gcz").write_bytes(container.pack(header, payload))  # fails in the codec
    out = tmp_path / "out"
    r = _cli("decompress", gczs, "-o", out, "--models-dir", models_dir)
    assert r.exit_code == 1
    errors = r.stderr.strip().splitlines()
    assert len(errors) == 3 and errors[-1] == "gancomp: 2 of 5 files failed"
    assert "bad_crc.gcz" in r.stderr and "checksum" in r.stderr
    assert "bad_model.gcz" in r.stderr and "written by model" in r.stderr
    assert sorted(p.name for p in out.iterdir()) == sorted(s.stem + ".decoded.png" for s in srcs)
    for src in srcs:
        alone = codec.decompress((gczs / (src.stem + ".gcz")).read_bytes(), models_dir)
        decoded = np.asarray(Image.open(out / (src.stem + ".decoded.png")))
        assert np.array_equal(decoded, alone.rgb)


def test_two_inputs_with_one_output_name(tmp_path, models_dir, data_dir):
    """a.jpg and a.png both map to a.gcz: the first is written, the second is an error,
    even with --force (it would silently replace the first)."""
    src = tmp_path / "in"
    src.mkdir()
    shutil.copy(data_dir / "flower_1.jpg", src / "a.jpg")
    Image.open(data_dir / "airplane_0.png").save(src / "a.png")
    r = run_cli(
        "compress",
        src,
        "-c",
        "flower",
        "-o",
        tmp_path / "out",
        "--force",
        "--models-dir",
        models_dir,
    )
    assert r.returncode == 1
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["a.gcz"]
    assert "is also the output of" in r.stderr and r.stderr.count("gancomp: error:") == 1
    first = sorted(src.iterdir())[0]
    assert str(first) in r.stderr  # the message names the input that kept the name


# The temp files of outputs after the first FULL_AFTER sit on a full disk: their descriptor
# is replaced by /dev/full, so writes fail with ENOSPC in the kernel, through Python's own
# buffering (the failing flush repeats when the file is closed).
DISK_FULL = """
import os, tempfile

_real = tempfile.NamedTemporaryFile
_created = []


def _named_temporary_file(*args, **kwargs):
    tmp = _real(*args, **kwargs)
    _created.append(tmp.name)
    if len(_created) > int(os.environ["FULL_AFTER"]):
        full = os.open("/dev/full", os.O_WRONLY)
        os.dup2(full, tmp.fileno())
        os.close(full)
    return tmp


tempfile.NamedTemporaryFile = _named_temporary_file
"""


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full (Linux)")
def test_full_disk_is_one_clear_line(tmp_path, models_dir):
    """A full disk used to end with "internal error: OSError: [Errno 28]"; now one line names
    the file and how many were written, exit 1, no temporary or partial file left."""
    site, folder = tmp_path / "site", tmp_path / "in"
    site.mkdir()
    (site / "sitecustomize.py").write_text(DISK_FULL)
    srcs = _inputs(folder)
    names = ["b0.png", "b1.png", "b2.png"]
    for src, name in zip(srcs, names):
        shutil.copy(src, folder / name)
    pythonpath = os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")]))
    env = {"PYTHONPATH": pythonpath, "FULL_AFTER": "2"}
    out = tmp_path / "out"
    r = run_cli(
        "compress", folder, "-c", "airplane", "-o", out, "--models-dir", models_dir, env=env
    )
    assert r.returncode == 1
    [line] = r.stderr.splitlines()
    assert line.startswith(f"gancomp: error: cannot write '{out}{os.sep}")
    assert line.endswith("No space left on device (stopped after writing 2 of 6 files)")
    written = sorted(p.name for p in out.iterdir())
    assert len(written) == 2 and _hidden(out) == []
    assert len(r.stdout.splitlines()) == 2  # the files written are reported
    for name in written:
        container.unpack((out / name).read_bytes())  # complete

    decoded = tmp_path / "decoded"
    env["FULL_AFTER"] = "1"
    r = run_cli("decompress", out, "-o", decoded, "--models-dir", models_dir, env=env)
    assert r.returncode == 1
    [line] = r.stderr.splitlines()
    assert line.endswith("No space left on device (stopped after writing 1 of 2 files)")
    assert len(list(decoded.iterdir())) == 1 and _hidden(decoded) == []

    env["FULL_AFTER"] = "0"
    one = tmp_path / "one.gcz"
    r = run_cli(
        "compress", srcs[0], "-c", "airplane", "-o", one, "--models-dir", models_dir, env=env
    )
    assert r.returncode == 1
    assert r.stderr == f"gancomp: error: cannot write '{one}': No space left on device\n"
    assert not one.exists() and _hidden(tmp_path) == []
