"""`gancomp train`: data loading, a few real steps, resume, export, and use of the export."""

import json
import pickle
import shutil

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from gancomp.cli import main
from gancomp.errors import InputError
from gancomp.training.data import load_folder
from helpers import run_cli

TINY = ["--channels", "8", "--latent-channels", "8", "--batch-size", "4"]


def _cli(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def _train_dir(tmp_path, data_dir):
    d = tmp_path / "imgs" / "nested"
    d.mkdir(parents=True)
    for f in data_dir.glob("airplane_*.png"):
        shutil.copy(f, d / f.name)
    (d / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    return tmp_path / "imgs"


def test_train_resume_export_and_compress(tmp_path, data_dir):
    data = _train_dir(tmp_path, data_dir)
    out = tmp_path / "models" / "ship"
    args = ["train", "-c", "ship", "--data", data, "--val-data", data, "-o", out, *TINY]
    with pytest.warns(UserWarning, match="broken.png"):
        r = _cli(
            *args,
            "--steps",
            "6",
            "--rd-steps",
            "3",
            "--checkpoint-every",
            "2",
            "--log-dir",
            tmp_path / "tb",
        )
    assert r.exit_code == 0, r.output
    meta = json.loads((out / "metadata.json").read_text())
    assert meta["training"]["skipped_files"] == 1 and len(meta["validation"]) == 8
    assert meta["training"]["beta"] == 0.01 and meta["training"]["rd_steps"] == 3
    assert list((tmp_path / "tb").iterdir()), "TensorBoard events written"

    # Resume continues from step 6 with the optimizer state and step counter restored.
    ckpt = np.load(str(out) + ".ckpt/checkpoint.npz")
    assert int(ckpt["step"]) == 6
    # Without --batch-size the run keeps its own (4), and --lambdas re-targets the levels.
    no_batch = [a for a in args if a not in ("--batch-size", "4")]
    new_lambdas = ",".join(str(0.001 * 2**i) for i in range(8))
    r = _cli(*no_batch, "--steps", "7", "--resume", "--lambdas", "0.1,0.2")
    assert r.exit_code == 1 and "2 values but the checkpoint has 8 levels" in r.output
    with pytest.warns(UserWarning):
        r = _cli(*no_batch, "--steps", "8", "--resume", "--lambdas", new_lambdas)
    assert r.exit_code == 0, r.output
    assert "8 steps" in r.output
    meta = json.loads((out / "metadata.json").read_text())
    assert meta["training"]["batch_size"] == 4
    assert meta["training"]["lambdas"] == pytest.approx([0.001 * 2**i for i in range(8)])
    assert json.loads((out / "config.json").read_text())["lambdas"] == meta["training"]["lambdas"]
    ckpt2 = np.load(str(out) + ".ckpt/checkpoint.npz")
    assert int(ckpt2["step"]) == 8
    assert any(k.startswith("og/") and not np.array_equal(ckpt[k], ckpt2[k]) for k in ckpt.files)

    # The exported folder works at once for a new category, through the CLI.
    gcz = tmp_path / "a.gcz"
    r = run_cli(
        "compress", data_dir / "airplane_0.png", "-c", "ship", "-o", gcz, "--models-dir", out.parent
    )
    assert r.returncode == 0, r.stderr
    r = run_cli("decompress", gcz, "-o", tmp_path / "a.png", "--models-dir", out.parent)
    assert r.returncode == 0, r.stderr
    assert Image.open(tmp_path / "a.png").size == (32, 32)


def test_refuses_to_replace_output(tmp_path, data_dir):
    out = tmp_path / "m"
    out.mkdir()
    r = CliRunner().invoke(
        main, ["train", "-c", "x", "--data", str(data_dir), "-o", str(out), "--steps", "1"]
    )
    assert r.exit_code == 1 and "exists" in r.output


def test_bad_data_errors_before_model(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    r = CliRunner().invoke(
        main, ["train", "-c", "x", "--data", str(empty), "-o", str(tmp_path / "o")]
    )
    assert r.exit_code == 1 and "no images" in r.output
    r = CliRunner().invoke(
        main, ["train", "-c", "x", "--data", str(tmp_path / "nope"), "-o", str(tmp_path / "o")]
    )
    assert r.exit_code == 1 and "does not exist" in r.output
    r = CliRunner().invoke(
        main, ["train", "-c", "Bad Name!", "--data", str(empty), "-o", str(tmp_path / "o")]
    )
    assert r.exit_code == 1 and "invalid category name" in r.output
    assert not (tmp_path / "o").exists()


def test_cifar_batches_folder(tmp_path):
    rng = np.random.default_rng(0)
    labels = [0, 1, 0, 2, 0]
    data = rng.integers(0, 256, (5, 3072), dtype=np.uint8)
    with open(tmp_path / "data_batch_1", "wb") as f:
        pickle.dump({"data": data, "labels": labels}, f)
    with open(tmp_path / "batches.meta", "wb") as f:
        pickle.dump({"label_names": ["airplane", "automobile", "bird"]}, f)
    s = load_folder(tmp_path, "airplane")
    assert len(s) == 3
    assert np.array_equal(s.images[1], data[2].reshape(3, 32, 32).transpose(1, 2, 0))
    with pytest.raises(InputError, match="no class 'frog'"):
        load_folder(tmp_path, "frog")


MIRRORED = r"""
import sys, json
import tensorflow as tf
tf.config.set_logical_device_configuration(
    tf.config.list_physical_devices("CPU")[0],
    [tf.config.LogicalDeviceConfiguration(), tf.config.LogicalDeviceConfiguration()],
)
from gancomp.training.trainer import TrainSettings, Trainer
s = TrainSettings(category="ship", data=sys.argv[1], output=sys.argv[2], steps=4, rd_steps=2,
                  batch_size=4, channels=8, latent_channels=8, strategy="mirrored",
                  checkpoint_every=100, progress=False)
t = Trainer(s)
print(json.dumps({"replicas": t.strategy.num_replicas_in_sync, **{k: v for k, v in t.run().items() if k != "skipped"}}))
"""


def test_mirrored_strategy_on_two_logical_cpus(tmp_path, data_dir):
    import subprocess
    import sys

    data = tmp_path / "d"
    data.mkdir()
    for f in data_dir.glob("airplane_*.png"):
        shutil.copy(f, data / f.name)
    out = tmp_path / "models" / "ship"
    r = subprocess.run(
        [sys.executable, "-c", MIRRORED, str(data), str(out)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert r.returncode == 0, r.stderr[-3000:]
    res = json.loads(r.stdout.strip().splitlines()[-1])
    assert res["replicas"] == 2 and res["steps"] == 4
    gcz = tmp_path / "m.gcz"
    r = run_cli(
        "compress", data_dir / "airplane_1.png", "-c", "ship", "-o", gcz, "--models-dir", out.parent
    )
    assert r.returncode == 0, r.stderr
    r = run_cli("decompress", gcz, "-o", tmp_path / "m.png", "--models-dir", out.parent)
    assert r.returncode == 0, r.stderr
