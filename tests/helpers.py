"""Shared test helpers (importable because pytest puts tests/ on sys.path)."""

import os
import subprocess
import sys

# `gancomp ARGS` in a process where TensorFlow and Keras cannot be imported.
NO_TENSORFLOW = """
import sys
sys.modules["tensorflow"] = sys.modules["keras"] = None  # as if not installed
from gancomp.cli import main
main(prog_name="gancomp")
"""


def run_cli_without_tensorflow(*args, timeout=300) -> subprocess.CompletedProcess:
    """Run ``gancomp ARGS`` as if the ``train`` extra were not installed."""
    return subprocess.run(
        [sys.executable, "-c", NO_TENSORFLOW, *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def run_cli(*args, env=None, cwd=None, timeout=300) -> subprocess.CompletedProcess:
    """Run ``python -m gancomp ARGS`` in a fresh process."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "gancomp", *map(str, args)],
        capture_output=True,
        text=True,
        env=full_env,
        cwd=cwd,
        timeout=timeout,
    )


def tiny_model_config(entropy_model: str, **overrides):
    """A training ``ModelConfig`` small enough to build in seconds (stride 8, 16 channels in
    E and G, 8 in D and in the hyperprior); ``overrides`` replace any field."""
    from gancomp.training.model import ModelConfig

    sizes = dict(
        category="t",
        num_down=3,
        channels=16,
        latent_channels=16,
        disc_channels=8,
        hyper_channels=8,
    )
    return ModelConfig(entropy_model=entropy_model, **{**sizes, **overrides})


def build_keras_model(cfg, seed: int | None = None, **model_args):
    """The built Keras ``GANModel`` of ``cfg`` (named as training names it, so its weight
    paths are a model folder's); ``seed`` seeds Keras, NumPy and Python first."""
    import keras

    from gancomp.training.model import GANModel

    if seed is not None:
        keras.utils.set_random_seed(seed)
    model = GANModel(cfg, name="gancodec", **model_args)
    model.build_all()
    return model


def write_keras_model(model, folder, leave_out=frozenset()):
    """Export a Keras model as training does and write it as model folder ``folder``, without
    the weights named in ``leave_out``; returns (config.json text, every exported weight,
    the folder's fingerprint)."""
    from gancomp.runtime.models import write_model_files
    from gancomp.training.trainer import export_files, model_files

    config_json, weights, tables = export_files(model)
    kept = {k: v for k, v in weights.items() if k not in leave_out}
    fingerprint = write_model_files(folder, model_files(model, config_json, kept, tables), {})
    return config_json, weights, fingerprint


def tiny_train_settings(data, output, **kw):
    """``TrainSettings`` of a few-step CIFAR-sized airplane run on ``data`` written to
    ``output`` (batch 2, patch 32, no progress bar); ``kw`` replace any field."""
    from gancomp.training.trainer import TrainSettings

    base = dict(
        category="airplane",
        data=str(data),
        output=str(output),
        steps=3,
        rd_steps=3,
        batch_size=2,
        patch_size=32,
        checkpoint_every=1000,
        progress=False,
    )
    return TrainSettings(**{**base, **kw})


def copy_airplane_images(folder):
    """Copy tests/data's airplane PNGs into ``folder`` (a training set); returns it."""
    import shutil
    from pathlib import Path

    for f in (Path(__file__).parent / "data").glob("airplane_*.png"):
        shutil.copy(f, Path(folder) / f.name)
    return folder


def random_factorized_folder(folder, latent_channels: int = 8, **overrides):
    """A tiny factorized airplane model folder whose every weight is random (not an initial
    value: GDN's off-diagonal gammas and the biases are non-zero, so a wrong copy shows);
    ``overrides`` replace config fields (e.g. ``residual_blocks``)."""
    import numpy as np

    from gancomp.runtime.models import weights_to_bytes
    from gancomp.training.trainer import init_model_folder

    cfg = tiny_model_config(
        "factorized",
        **{"category": "airplane", "channels": 8, "latent_channels": latent_channels, **overrides},
    )
    init_model_folder(cfg, folder)
    rng = np.random.default_rng(1)
    with np.load(folder / "weights.npz") as z:
        weights = {k: z[k] for k in z.files}
    for k, a in weights.items():
        if a.dtype.kind == "f" and ("/gamma" in k or "/beta" in k):
            weights[k] = (np.abs(a) + rng.uniform(0.05, 0.2, a.shape)).astype(a.dtype)
        elif a.dtype.kind == "f":
            weights[k] = (a + rng.normal(0, 0.05, a.shape)).astype(a.dtype)
    (folder / "weights.npz").write_bytes(weights_to_bytes(weights))
    return cfg


def init_from_trainer(images, source, out, **kw):
    """A ``Trainer`` of a tiny run on ``images`` that starts ``--init-from source``."""
    from gancomp.training.trainer import Trainer

    return Trainer(tiny_train_settings(images, out, init_from=str(source), **kw))


def model_outputs(model, x, level):
    """(reconstruction, total bits) of a Keras model on images ``x`` at 0-based ``level``."""
    from gancomp.training._tf import tf as import_tf

    tf = import_tf()
    out = model(tf.constant(x), tf.constant([level] * len(x)), training=False)
    bits = sum(float(-tf.reduce_sum(tf.math.log(v)).numpy()) for v in out["likelihoods"].values())
    return out["x_hat"].numpy(), bits


def assert_same_outputs(source_model, grown_model, images, levels=(0, 3)) -> None:
    """The grown (wider or deeper) model gives the source's reconstruction and bits on the
    first three PNGs of ``images`` at each 0-based level."""
    import numpy as np
    from PIL import Image

    files = sorted(images.glob("*.png"))[:3]
    x = np.stack([np.asarray(Image.open(f).convert("RGB")) for f in files])
    x = x.astype(np.float32) / np.float32(255)
    for level in levels:
        a, bits_a = model_outputs(source_model, x, level)
        b, bits_b = model_outputs(grown_model, x, level)
        np.testing.assert_allclose(b, a, atol=2e-5)
        np.testing.assert_allclose(bits_b, bits_a, rtol=1e-5)
