"""Same input, category and quality: same .gcz bytes and decoded pixels, whatever the batch,
thread count or oneDNN setting (each run in its own process through the CLI)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from gancomp.runtime import codec
from helpers import run_cli

DATA = Path(__file__).parent / "data"
# The codec runs on NumPy (OpenBLAS threads); the TF settings must not matter either.
SINGLE = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "TF_ENABLE_ONEDNN_OPTS": "0"}
MULTI = {"OPENBLAS_NUM_THREADS": "2", "OMP_NUM_THREADS": "2", "TF_ENABLE_ONEDNN_OPTS": "1"}


def _batch_folder(folder: Path) -> Path:
    """99 different images (mostly 32x32, so they share network chunks with the target) + it."""
    folder.mkdir()
    rng = np.random.default_rng(11)
    bases = [np.asarray(Image.open(p).convert("RGB")) for p in sorted(DATA.glob("*_[0-2].png"))]
    for i in range(99):
        im = bases[i % len(bases)].astype(np.int16) + rng.integers(-25, 26, (32, 32, 3))
        im = np.clip(im, 0, 255).astype(np.uint8)
        if i % 3 == 1:
            im = im[:, ::-1]
        if i % 11 == 5:  # a few other sizes, batched in their own groups
            im = im[: 17 + i % 7, : 23 + i % 5]
        Image.fromarray(im).save(folder / f"{'a' if i < 50 else 'z'}_{i:02d}.png")
    target = folder / "m_target.png"  # sorts into the middle of the batch
    target.write_bytes((DATA / "airplane_0.png").read_bytes())
    return target


def test_bytes_and_pixels_independent_of_batch_and_threads(tmp_path, models_dir):
    target = _batch_folder(tmp_path / "in")
    args = ["-c", "airplane", "-q", "6", "--models-dir", models_dir]
    alone = tmp_path / "alone.gcz"
    r = run_cli("compress", target, "-o", alone, *args, env=SINGLE)
    assert r.returncode == 0, r.stderr
    batch = tmp_path / "batch"
    r = run_cli("compress", tmp_path / "in", "-o", batch, *args, env=MULTI)
    assert r.returncode == 0, r.stderr
    assert len(list(batch.iterdir())) == 100
    assert (batch / "m_target.gcz").read_bytes() == alone.read_bytes()
    # Every image of the batch matches a one-image call in this process, too.
    for src in sorted((tmp_path / "in").iterdir()):
        single = codec.compress(src, "airplane", 6, models_dir)
        assert (batch / f"{src.stem}.gcz").read_bytes() == single, src.name

    r = run_cli(
        "decompress", alone, "-o", tmp_path / "alone.png", "--models-dir", models_dir, env=MULTI
    )
    assert r.returncode == 0, r.stderr
    decoded = tmp_path / "decoded"
    r = run_cli("decompress", batch, "-o", decoded, "--models-dir", models_dir, env=SINGLE)
    assert r.returncode == 0, r.stderr
    pixels = np.asarray(Image.open(tmp_path / "alone.png"))
    assert pixels.shape == (32, 32, 3)
    assert np.array_equal(np.asarray(Image.open(decoded / "m_target.decoded.png")), pixels)
    in_process = codec.decompress(alone.read_bytes(), models_dir).rgb
    assert np.array_equal(in_process, pixels)


def test_shipped_model_batch_identical_across_thread_settings(tmp_path):
    """The real airplane model on 100 images: every file and every decoded pixel agree
    between one-thread and two-thread processes (BLAS and gancomp's own workers)."""
    _batch_folder(tmp_path / "in")
    one = {**SINGLE, "GANCOMP_THREADS": "1"}
    two = {**MULTI, "GANCOMP_THREADS": "2"}
    outs = {}
    for name, env in (("one", one), ("two", two)):
        r = run_cli("compress", tmp_path / "in", "-c", "airplane", "-o", tmp_path / name, env=env)
        assert r.returncode == 0, r.stderr
        outs[name] = {p.name: p.read_bytes() for p in (tmp_path / name).iterdir()}
    assert len(outs["one"]) == 100 and outs["one"] == outs["two"]
    pixels = {}
    for name, env in (("one", one), ("two", two)):
        dec = tmp_path / f"dec_{name}"
        r = run_cli("decompress", tmp_path / "one", "-o", dec, env=env)
        assert r.returncode == 0, r.stderr
        pixels[name] = {p.name: np.asarray(Image.open(p)).tobytes() for p in dec.iterdir()}
    assert len(pixels["one"]) == 100 and pixels["one"] == pixels["two"]
