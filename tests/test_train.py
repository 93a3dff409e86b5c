"""`gancomp train`: data loading, a few real steps, resume, export, and use of the export.

The tests that build or train a Keras model are marked ``train`` (not in the runtime-only CI
step) and ``slow`` (skippable with -m "not slow" while working on something else).
"""

import json
import pickle
import re
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from gancomp.cli import main
from gancomp.errors import InputError, Interrupted
from gancomp.training.data import load_folder
from helpers import run_cli, run_cli_without_tensorflow, tiny_train_settings

TINY = ["--channels", "8", "--latent-channels", "8", "--batch-size", "4", "--patch-size", "16"]


def _cli(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def _train_dir(tmp_path, data_dir):
    d = tmp_path / "imgs" / "nested"
    d.mkdir(parents=True)
    for f in data_dir.glob("airplane_*.png"):
        shutil.copy(f, d / f.name)
    (d / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    return tmp_path / "imgs"


@pytest.mark.train
@pytest.mark.slow
def test_train_resume_export_and_compress(tmp_path, data_dir):
    data = _train_dir(tmp_path, data_dir)
    out = tmp_path / "models" / "ship"
    args = ["train", "-c", "ship", "--data", data, "--val-data", data, "-o", out, *TINY]
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
    # Not a terminal: the last step's plain progress line instead of a progress bar.
    assert re.search(r"^step 6/6 bpp [\d.]+ psnr [\d.]+ ", r.output, re.M), r.output
    meta = json.loads((out / "metadata.json").read_text())
    assert meta["training"]["skipped_files"] == 1 and len(meta["validation"]) == 8
    assert meta["training"]["beta"] == 0.01 and meta["training"]["rd_steps"] == 3
    # A factorized model is exported with context tables fitted on the training images.
    n_train = len(list(data_dir.glob("airplane_*.png")))
    assert meta["context_tables"]["train_images"] == n_train
    assert meta["context_tables"]["fitted_for"] != meta["fingerprint"]
    assert list((tmp_path / "tb").iterdir()), "TensorBoard events written"

    # Resume continues from step 6 with the optimizer state and step counter restored.
    ckpt = np.load(str(out) + ".ckpt/checkpoint.npz")
    assert int(ckpt["step"]) == 6
    # Without --batch-size and --patch-size the run keeps its own (4 and 16; before, a
    # resumed run silently went back to the default patch), and --lambdas re-targets the
    # levels.
    no_batch = [a for a in args if a not in ("--batch-size", "4", "--patch-size", "16")]
    new_lambdas = ",".join(str(0.001 * 2**i) for i in range(8))
    r = _cli(*no_batch, "--steps", "7", "--resume", "--lambdas", "0.1,0.2")
    assert r.exit_code == 1 and "2 values but the checkpoint has 8 levels" in r.output
    # A run's architecture is fixed: options that would change it are errors, not ignored.
    for flag, value, have in (("--residual-blocks", "2", "1"), ("--channels", "12", "8")):
        r = _cli(*no_batch, "--steps", "7", "--resume", flag, value)
        assert r.exit_code == 1, r.output
        assert f"{flag} {value}: the checkpoint's model has {have}, and --resume" in r.output
    r = _cli(*no_batch, "--steps", "8", "--resume", "--lambdas", new_lambdas)
    assert r.exit_code == 0, r.output
    assert "8 steps" in r.output
    meta = json.loads((out / "metadata.json").read_text())
    assert meta["training"]["batch_size"] == 4
    assert meta["training"]["patch_size"] == 16
    assert meta["training"]["rd_steps"] == 3  # it had an adversarial phase: the new steps too
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
    r = run_cli("info", gcz)
    assert r.returncode == 0 and re.search(r"^format_version +3$", r.stdout, re.M), r.stdout


@pytest.mark.train
def test_context_tables_at_export_or_not(tmp_path, data_dir):
    """--context-images N fits the tables on N evenly spaced images; 0 exports a plain
    factorized model (format version 1)."""
    import gancomp
    from gancomp.coding import container
    from gancomp.coding.context import ContextTables
    from gancomp.runtime.codec import Codec
    from gancomp.runtime.models import read_model_folder
    from gancomp.training.trainer import train
    from helpers import copy_airplane_images

    (tmp_path / "imgs").mkdir()
    data = copy_airplane_images(tmp_path / "imgs")
    tiny = dict(channels=8, latent_channels=8, steps=2, rd_steps=2)
    train(tiny_train_settings(data, tmp_path / "a" / "airplane", context_images=3, **tiny))
    train(tiny_train_settings(data, tmp_path / "b" / "airplane", context_images=0, **tiny))
    ctx, plain = (read_model_folder(tmp_path / d / "airplane") for d in ("a", "b"))
    note = ctx.metadata["context_tables"]
    assert note["train_images"] == 3 and note["buckets"] == 8
    assert note["fitted_for"] != ctx.fingerprint
    assert "context_tables" not in plain.metadata
    assert ContextTables.from_model_tables(plain.tables) is None
    assert Codec(ctx).entropy_model == "channel-context"
    assert Codec(plain).entropy_model == "factorized"
    im = np.asarray(Image.open(data_dir / "airplane_0.png").convert("RGB"))
    for q in (1, 8):
        a, b = Codec(ctx).compress_arrays([im], q)[0], Codec(plain).compress_arrays([im], q)[0]
        assert container.unpack(a)[0].version == 3 and container.unpack(b)[0].version == 1
        for gcz, d in ((a, "a"), (b, "b")):
            assert gancomp.decompress(gcz, models_dir=tmp_path / d).shape == im.shape


@pytest.mark.train
def test_refuses_to_replace_output(tmp_path, data_dir):
    out = tmp_path / "m"
    out.mkdir()
    r = CliRunner().invoke(
        main, ["train", "-c", "x", "--data", str(data_dir), "-o", str(out), "--steps", "1"]
    )
    assert r.exit_code == 1 and "exists" in r.output


@pytest.mark.train
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


@pytest.mark.train
@pytest.mark.slow
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


def test_unreadable_files_are_one_plain_line_each(tmp_path, data_dir, capsys, recwarn):
    """Not a UserWarning with its source line: one "gancomp: warning:" line per skipped file."""
    data = _train_dir(tmp_path, data_dir)
    (data / "nested" / "empty.jpg").write_bytes(b"")
    images = load_folder(data)
    assert len(images) == 3 and len(images.skipped) == 2
    assert not recwarn.list
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 2
    for line, name in zip(lines, ("broken.png", "empty.jpg")):
        assert line.startswith(f"gancomp: warning: skipping {data / 'nested' / name}: ")


def test_train_without_the_train_extra_says_how_to_install_it(tmp_path, data_dir):
    out = tmp_path / "models" / "ship"
    r = run_cli_without_tensorflow("train", "-c", "ship", "--data", data_dir, "-o", out)
    assert r.returncode == 1, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in r.stderr, r.stderr
    assert lines[0].startswith("gancomp: error: training needs TensorFlow and Keras")
    assert lines[0].endswith("pip install 'gancomp[train]'")
    assert not out.parent.exists()


def _tiny_settings(data, out, **kw):
    """A tiny 8-channel run; steps, rd_steps and patch size stay unset (TrainSettings'
    defaults), so that --resume keeps the run's own."""
    return tiny_train_settings(
        data,
        out,
        **{
            "category": "ship",
            "steps": None,
            "rd_steps": None,
            "patch_size": None,
            "batch_size": 4,
            "channels": 8,
            "latent_channels": 8,
            "checkpoint_every": 100,
            **kw,
        },
    )


@pytest.mark.train
@pytest.mark.slow
def test_interrupt_saves_then_resume_finishes(tmp_path, data_dir, capsys):
    """Ctrl-C during step 3 of 4: a checkpoint at step 2, Interrupted (exit status 130), and
    --resume runs steps 3 and 4. Every step prints a plain progress line (log_every=1)."""
    from gancomp.training.trainer import Trainer

    data = tmp_path / "d"
    data.mkdir()
    for f in data_dir.glob("airplane_*.png"):
        shutil.copy(f, data / f.name)
    out = tmp_path / "models" / "ship"
    trainer = Trainer(_tiny_settings(data, out, steps=4, rd_steps=4, log_every=1))
    step, calls = trainer._rd_step, []

    def ctrl_c_in_third_step(iterator):
        calls.append(1)
        if len(calls) == 3:
            signal.raise_signal(signal.SIGINT)  # Python turns it into KeyboardInterrupt
        return step(iterator)

    trainer._rd_step = ctrl_c_in_third_step
    # A shell's background job starts with SIGINT ignored: give this test Python's handler.
    saved = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with pytest.raises(Interrupted) as info:
            trainer.run()
    finally:
        signal.signal(signal.SIGINT, saved)
    ckpt = tmp_path / "models" / "ship.ckpt"
    assert str(info.value) == (
        f"interrupted at step 2; checkpoint saved in {ckpt} (continue with --resume)"
    )
    assert info.value.exit_code == 130
    assert int(np.load(ckpt / "checkpoint.npz")["step"]) == 2 and not out.exists()
    progress = [line for line in capsys.readouterr().err.splitlines() if line.startswith("step")]
    assert len(progress) == 2
    for line, n in zip(progress, (1, 2)):
        assert re.fullmatch(
            rf"step {n}/4 bpp [\d.]+ psnr [\d.]+ d 0\.000 g 0\.000 \([\d.]+ steps/s\)", line
        )

    # No steps given: a resumed run keeps its own total (4), not the default.
    result = Trainer(_tiny_settings(data, out, log_every=1, resume=True)).run()
    assert result["steps"] == 4 and (out / "weights.npz").is_file()
    progress = [line for line in capsys.readouterr().err.splitlines() if line.startswith("step")]
    assert [line.split()[1] for line in progress] == ["3/4", "4/4"]

    # A new total for this rate-distortion-only run (rd_steps = steps = 4) extends it
    # without an adversarial phase: no discriminator loss in steps 5 and 6.
    result = Trainer(_tiny_settings(data, out, log_every=1, resume=True, steps=6)).run()
    assert result["steps"] == 6
    assert json.loads((out / "metadata.json").read_text())["training"]["rd_steps"] == 6
    progress = [line for line in capsys.readouterr().err.splitlines() if line.startswith("step")]
    assert [line.split()[1] for line in progress] == ["5/6", "6/6"]
    assert all(" d 0.000 g 0.000 " in line for line in progress), progress


@pytest.mark.train
@pytest.mark.slow
def test_ctrl_c_through_the_cli(tmp_path, data_dir):
    """SIGINT to a running `gancomp train`: exit status 130, one line naming the checkpoint."""
    data = tmp_path / "d"
    data.mkdir()
    for f in data_dir.glob("airplane_*.png"):
        shutil.copy(f, data / f.name)
    out = tmp_path / "models" / "ship"
    ckpt = tmp_path / "models" / "ship.ckpt" / "checkpoint.npz"
    args = ["train", "-c", "ship", "--data", data, "-o", out, *TINY, "--steps", "100000"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "gancomp", *map(str, args), "--checkpoint-every", "1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # As from a terminal: a background shell would start the child with SIGINT ignored.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        # Wait until training runs (its first checkpoint); the deadline only guards a hang.
        deadline = time.monotonic() + 600
        while not ckpt.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        assert proc.poll() is None, proc.communicate()[1]
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, stderr
    # A request, not a failure (stderr in the message: this failed once, unexplained).
    assert "Traceback" not in stderr and "error" not in stderr, stderr
    step = int(np.load(ckpt)["step"])
    last = stderr.strip().splitlines()[-1]
    assert re.fullmatch(
        rf"gancomp: interrupted at step {step}; checkpoint saved in "
        rf"{re.escape(str(ckpt.parent))} \(continue with --resume\)",
        last,
    ), stderr


def test_every_train_option_has_a_help_text():
    import click

    options = [p for p in main.commands["train"].params if isinstance(p, click.Option)]
    assert len(options) > 20
    assert [p.name for p in options if not (p.help or "").strip()] == []
