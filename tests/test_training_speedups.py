"""Training speed options: bfloat16 mixed precision, the patch cache, XLA and thread settings.

None of them may change what a checkpoint or a model folder holds, nor the distribution of
the training patches; mixed precision must give the float32 step's loss within a few
percent, with float32 variables and gradients.
"""

from __future__ import annotations

import json
import math
import os
import pickle
import shutil
import subprocess
import sys

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from gancomp.cli import main
from gancomp.errors import InputError
from gancomp.training import data as data_mod
from gancomp.training.data import ImageSet, PatchSampler, load_cached, load_folder
from helpers import run_cli, tiny_train_settings

#: A tiny hyperprior model: total stride 8, so 32 px patches.
TINY = {
    "num_down": 2,
    "channels": 8,
    "latent_channels": 8,
    "disc_channels": 4,
    "hyper_channels": 8,
    "hyper_down": 1,
}


def _image_folder(tmp_path, data_dir, broken: bool = True):
    d = tmp_path / "imgs"
    (d / "sub").mkdir(parents=True)
    for f in data_dir.glob("airplane_*.png"):
        shutil.copy(f, d / f.name)
    for f in data_dir.glob("flower_*.jpg"):
        shutil.copy(f, d / "sub" / f.name)
    if broken:
        (d / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    return d


def _no_decoding(monkeypatch):
    def refuse(path):
        raise AssertionError(f"decoded {path}")

    monkeypatch.setattr(data_mod, "_decode", refuse)


# -- the patch cache ---------------------------------------------------------------------------


def test_cache_holds_exactly_the_decoded_pixels(tmp_path, data_dir, monkeypatch, capsys):
    folder = _image_folder(tmp_path, data_dir)
    direct = load_folder(folder)
    cache = tmp_path / "cache"
    built = load_cached(folder, None, cache)
    assert "decoding" in capsys.readouterr().err
    again_err = []
    for loaded in (built, None):
        if loaded is None:
            # Second time: memory-mapped, nothing decoded, the same skipped file warned about.
            _no_decoding(monkeypatch)
            loaded = load_cached(folder, None, cache)
            again_err = capsys.readouterr().err
        assert loaded.cached and not direct.cached
        assert len(loaded) == len(direct) == 6
        for a, b in zip(loaded.images, direct.images):
            assert a.dtype == np.uint8 and a.shape == b.shape and np.array_equal(a, b)
        assert loaded.skipped == direct.skipped and len(loaded.skipped) == 1
        assert loaded.source == direct.source
    assert "skipping" in again_err and "broken.png" in again_err and "decoding" not in again_err
    assert all(_memory_mapped(a) for a in loaded.images)
    assert not any(_memory_mapped(a) for a in direct.images)


def _memory_mapped(a: np.ndarray) -> bool:
    while a is not None:
        if isinstance(a, np.memmap):
            return True
        a = a.base if isinstance(a, np.ndarray) else None
    return False


def test_cache_is_rebuilt_when_the_images_change(tmp_path, data_dir, capsys):
    folder = _image_folder(tmp_path, data_dir, broken=False)
    cache = tmp_path / "cache"
    load_cached(folder, None, cache)
    # Another picture under the same name (a different size and modification time).
    Image.new("RGB", (40, 24), (200, 10, 30)).save(folder / "airplane_0.png")
    capsys.readouterr()
    loaded = load_cached(folder, None, cache)
    assert "decoding" in capsys.readouterr().err
    assert [np.array_equal(a, b) for a, b in zip(loaded.images, load_folder(folder).images)] == [
        True
    ] * 6
    assert loaded.images[0].shape == (24, 40, 3)
    # One build's files remain, and the folder is keyed by the data folder.
    (where,) = list(cache.iterdir())
    assert where == data_mod.cache_folder(cache, folder)
    assert len(list(where.glob("pixels-*.u8"))) == len(list(where.glob("index-*.npy"))) == 1


def test_runs_started_together_build_the_cache_once(tmp_path, data_dir, monkeypatch):
    # Two trainings on the same data started at once: the second waits for the first's
    # build and uses it (two overlapping builds each deleted the other's files).
    import threading
    import time

    folder = _image_folder(tmp_path, data_dir, broken=False)
    builds = []
    slow_decoded = data_mod._decoded

    def counted(files, workers):
        builds.append(threading.get_ident())
        for item in slow_decoded(files, workers):
            time.sleep(0.05)
            yield item

    monkeypatch.setattr(data_mod, "_decoded", counted)
    loaded, errors = [], []

    def run():
        try:
            loaded.append(load_cached(folder, None, tmp_path / "cache"))
        except Exception as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors and len(loaded) == 2 and len(builds) == 1
    direct = load_folder(folder)
    for one in loaded:
        assert all(np.array_equal(a, b) for a, b in zip(one.images, direct.images))


def test_cache_of_cifar_batches_is_per_class(tmp_path):
    src = tmp_path / "cifar"
    src.mkdir()
    rng = np.random.default_rng(0)
    data = rng.integers(0, 256, (5, 3072), dtype=np.uint8)
    with open(src / "data_batch_1", "wb") as f:
        pickle.dump({"data": data, "labels": [0, 1, 0, 2, 0]}, f)
    with open(src / "batches.meta", "wb") as f:
        pickle.dump({"label_names": ["airplane", "automobile", "bird"]}, f)
    cache = tmp_path / "cache"
    for cls, n in (("airplane", 3), ("bird", 1)):
        loaded = load_cached(src, cls, cache)
        direct = load_folder(src, cls)
        assert len(loaded) == len(direct) == n
        assert all(np.array_equal(a, b) for a, b in zip(loaded.images, direct.images))
    assert len(list(cache.iterdir())) == 2
    with pytest.raises(InputError, match="no class 'frog'"):
        load_cached(src, "frog", cache)


def test_cache_dir_must_be_a_folder(tmp_path, data_dir):
    folder = _image_folder(tmp_path, data_dir)
    (tmp_path / "file").write_text("x")
    with pytest.raises(InputError, match="is not a folder"):
        load_cached(folder, None, tmp_path / "file")
    with pytest.raises(InputError, match="does not exist"):
        load_cached(tmp_path / "nope", None, tmp_path / "cache")


def _windows(image: np.ndarray, patch: int) -> dict[bytes, tuple[int, int, bool]]:
    """Every patch a crop can give, flipped or not -> (top, left, flipped)."""
    out = {}
    for top in range(image.shape[0] - patch + 1):
        for left in range(image.shape[1] - patch + 1):
            w = image[top : top + patch, left : left + patch]
            out[w.tobytes()] = (top, left, False)
            out[np.ascontiguousarray(w[:, ::-1]).tobytes()] = (top, left, True)
    return out


def _check_uniform(positions: list[tuple[int, int, bool]], spans: tuple[int, int]) -> None:
    """Every offset occurs, the mean offset is the middle, about half are flipped (four
    standard deviations of a uniform sample)."""
    n = len(positions)
    for axis, span in enumerate(spans):
        v = np.array([p[axis] for p in positions])
        assert set(v.tolist()) == set(range(span + 1))
        assert abs(v.mean() - span / 2) < 4 * math.sqrt(((span + 1) ** 2 - 1) / 12 / n)
    flips = np.array([p[2] for p in positions])
    assert abs(flips.mean() - 0.5) < 4 * math.sqrt(0.25 / n)


def test_sampler_visits_every_image_once_per_epoch(tmp_path):
    rng = np.random.default_rng(1)
    images = [rng.integers(0, 256, (20 + i, 30, 3), dtype=np.uint8) for i in range(5)]
    images.append(rng.integers(0, 256, (6, 9, 3), dtype=np.uint8))  # smaller than the patch
    sampler = PatchSampler(ImageSet(images, "t"), patch=8, batch=4, seed=0)
    lookups = [_windows(data_mod.pad_to_patch(a, 8), 8) for a in images]
    seen = []
    for _ in range(15):  # 60 patches: 10 epochs of 6 images, epochs running across batches
        batch = sampler.next_batch()
        assert batch.shape == (4, 8, 8, 3) and batch.dtype == np.uint8
        for p in batch:
            owners = [i for i, lk in enumerate(lookups) if p.tobytes() in lk]
            assert len(owners) == 1
            seen.append(owners[0])
    for epoch in range(10):
        assert sorted(seen[6 * epoch : 6 * epoch + 6]) == list(range(6))
    # Another seed or another start step: another stream.
    again = PatchSampler(ImageSet(images, "t"), 8, 4, seed=0).next_batch()
    other = PatchSampler(ImageSet(images, "t"), 8, 4, seed=0, start=100).next_batch()
    assert np.array_equal(again, PatchSampler(ImageSet(images, "t"), 8, 4, 0).next_batch())
    assert not np.array_equal(again, other)


def test_sampler_places_patches_uniformly():
    rng = np.random.default_rng(2)
    image = rng.integers(0, 256, (14, 14, 3), dtype=np.uint8)
    lookup = _windows(image, 8)
    sampler = PatchSampler(ImageSet([image], "t"), patch=8, batch=50, seed=3)
    positions = [lookup[p.tobytes()] for _ in range(40) for p in sampler.next_batch()]
    _check_uniform(positions, (6, 6))


def test_cached_pipeline_gives_the_tf_data_distribution(tmp_path):
    """The same one image through both pipelines: float patches of the same windows,
    offsets and flips spread the same way."""
    import tensorflow as tf  # noqa: F401  (marks the test ``train``)

    rng = np.random.default_rng(4)
    image = rng.integers(0, 256, (13, 12, 3), dtype=np.uint8)
    lookup = _windows(image, 8)
    for cached in (False, True):
        ds = data_mod.make_dataset(ImageSet([image], "t", cached=cached), 8, 40, seed=5)
        positions = []
        for batch in ds.take(40):
            arr = batch.numpy()
            assert arr.dtype == np.float32 and arr.shape == (40, 8, 8, 3)
            pixels = np.rint(arr * 255).astype(np.uint8)
            assert np.allclose(pixels / 255.0, arr, atol=1e-6)
            positions += [lookup[p.tobytes()] for p in pixels]
        _check_uniform(positions, (5, 4))


# -- mixed precision ---------------------------------------------------------------------------


def _tiny_config(entropy_model="hyperprior"):
    from gancomp.training.model import ModelConfig

    return ModelConfig(category="t", entropy_model=entropy_model, **TINY)


def _pair(cfg):
    """A float32 model and a mixed-precision one with the same weights."""
    import keras

    from gancomp.training.model import GANModel

    keras.utils.set_random_seed(0)
    models = []
    for precision in ("float32", "mixed_bfloat16"):
        m = GANModel(cfg, precision=precision, name="gancodec")
        m.build_all()
        models.append(m)
    for a, b in zip(models[0].weights, models[1].weights):
        assert a.path == b.path
        b.assign(a)
    return models


def _crops(data_dir, size=32):
    from gancomp.io.images import load_image, to_rgb_for_metrics

    crops = []
    for i in range(3):
        a = to_rgb_for_metrics(load_image(data_dir / f"flower_{i}.jpg"))
        crops += [a[:size, :size], a[100 : 100 + size, 100 : 100 + size]]
    return np.stack(crops).astype(np.float32) / 255


def test_mixed_precision_layers_compute_in_bfloat16_on_float32_variables():
    from gancomp.training.hyperprior import IntegerConv
    from gancomp.training.model import GANModel

    cfg = _tiny_config()
    _, mixed = _pair(cfg)
    assert {v.dtype for v in mixed.weights} == {"float32"}
    for net in (mixed.encoder, mixed.generator, mixed.h_a, mixed.h_s_mean):
        assert net.compute_dtype == "bfloat16"
        assert {layer.compute_dtype for layer in net.sublayers} == {"bfloat16"}
    assert {layer.compute_dtype for layer in mixed.discriminator.nets[0]} == {"bfloat16"}
    # What decides the rate stays float32.
    assert mixed.density.compute_dtype == "float32"
    assert all(isinstance(layer, IntegerConv) for layer in mixed.h_s_scale.sublayers)
    assert {layer.compute_dtype for layer in mixed.h_s_scale.sublayers} == {"float32"}
    with pytest.raises(ValueError, match="unknown precision"):
        GANModel(cfg, precision="float16")


@pytest.mark.parametrize("entropy_model", ["hyperprior", "factorized"])
def test_mixed_precision_step_matches_float32(data_dir, entropy_model):
    """Same weights, batch, levels and noise: the loss and the rate within a few percent,
    float32 gradients, all finite, pointing the same way."""
    import tensorflow as tf

    cfg = _tiny_config(entropy_model)
    f32, mixed = _pair(cfg)
    x = tf.constant(_crops(data_dir))
    levels = tf.constant([0, 1, 3, 4, 6, 7])
    lambdas = tf.gather(tf.constant(cfg.lambdas), levels)
    results = []
    for model in (f32, mixed):
        tf.random.set_seed(7)  # the same quantisation noise for both
        with tf.GradientTape() as tape:
            out = model(x, levels, training=True)
            for lik in out["likelihoods"].values():
                assert lik.dtype == tf.float32
            assert out["x_hat"].dtype == out["y_hat"].dtype == tf.float32
            bits = tf.add_n(
                [
                    -tf.reduce_sum(tf.math.log(lik), axis=[1, 2, 3]) / math.log(2)
                    for lik in out["likelihoods"].values()
                ]
            )
            bpp = bits / (32 * 32)
            mse = tf.reduce_mean(tf.square((out["x_hat"] - x) * 255.0), axis=[1, 2, 3])
            loss = tf.reduce_mean(bpp + lambdas * mse)
        variables = model.transform_weights() + model.density.trainable_weights
        grads = tape.gradient(loss, variables)
        assert all(g is not None and g.dtype == tf.float32 for g in grads)
        # The gains' gradients are gathered rows (IndexedSlices): densify.
        dense = [tf.convert_to_tensor(g).numpy().ravel() for g in grads]
        assert all(np.isfinite(g).all() for g in dense)
        results.append((float(loss), float(tf.reduce_mean(bpp)), dense))
    (loss32, bpp32, g32), (loss16, bpp16, g16) = results
    assert loss16 == pytest.approx(loss32, rel=0.03)
    assert bpp16 == pytest.approx(bpp32, rel=0.03)
    # Every variable's gradient, not only the whole: a bias of a full-resolution layer (a
    # sum over every pixel of the batch) summed in bfloat16 came out at 60% of its value.
    for v, a, b in zip(variables, g32, g16):
        assert np.linalg.norm(a - b) <= 0.1 * np.linalg.norm(a) + 1e-6, v.path


# -- training runs -----------------------------------------------------------------------------


def _settings(tmp_path, data, **kw):
    return tiny_train_settings(
        data,
        tmp_path / "models" / "t",
        **{
            "category": "t",
            "steps": 2,
            "rd_steps": 2,
            "entropy_model": "hyperprior",
            "checkpoint_every": 100,
            "extra": {"config": dict(TINY)},
            **kw,
        },
    )


def _checkpoint(tmp_path):
    ckpt = tmp_path / "models" / "t.ckpt"
    with np.load(ckpt / "checkpoint.npz") as z:
        arrays = {k: z[k] for k in z.files}
    return arrays, json.loads((ckpt / "train.json").read_text())


@pytest.mark.slow
def test_mixed_precision_model_exports_the_float32_format(tmp_path, data_dir):
    """A model trained in mixed precision is an ordinary model folder: float32 weights under
    the usual names, which the NumPy runtime computes like float32 Keras layers and codes."""
    import tensorflow as tf

    from gancomp.runtime.codec import compress, decompress
    from gancomp.runtime.models import read_model_folder
    from gancomp.runtime.transforms import Transforms
    from gancomp.training.model import GANModel
    from gancomp.training.trainer import Trainer, init_model_folder

    data = _image_folder(tmp_path, data_dir, broken=False)
    s = _settings(tmp_path, data, steps=3, rd_steps=2, precision="mixed_bfloat16")
    trainer = Trainer(s)
    trainer.run()
    out = tmp_path / "models" / "t"
    meta = json.loads((out / "metadata.json").read_text())
    assert meta["training"]["precision"] == "mixed_bfloat16"
    arrays, saved = _checkpoint(tmp_path)
    assert saved["precision"] == "mixed_bfloat16"
    assert {a.dtype for k, a in arrays.items() if k.startswith("m/")} == {np.dtype(np.float32)}

    folder = read_model_folder(out)
    with np.load(out / "weights.npz") as z:
        weights = {k: z[k] for k in z.files}
    init_model_folder(trainer.cfg, tmp_path / "f32")
    with np.load(tmp_path / "f32" / "weights.npz") as z:
        reference = {k: (z[k].dtype, z[k].shape) for k in z.files}
    assert {k: (a.dtype, a.shape) for k, a in weights.items()} == reference

    # The runtime against float32 Keras inference with the same weights.
    f32 = GANModel(trainer.cfg, precision="float32", name="gancodec")
    f32.build_all()
    for a, b in zip(trainer.model.weights, f32.weights):
        b.assign(a)
    net = Transforms(weights, folder.config)
    x = _crops(data_dir)
    y = f32.encoder(tf.constant(x)).numpy()
    assert np.abs(net.analysis(x) - y).max() <= 1e-4 * np.abs(y).max()
    z = f32.h_a(tf.constant(y)).numpy()
    assert np.abs(net.hyper_analysis(y) - z).max() <= 1e-4 * np.abs(z).max()
    x_hat = f32.generator(tf.constant(np.round(y))).numpy()
    assert np.abs(net.synthesis(np.round(y)) - x_hat).max() <= 1e-4

    image = np.rint(x[0] * 255).astype(np.uint8)
    blob = compress(image, "t", 4, models_dir=out.parent)
    decoded = decompress(blob, models_dir=out.parent)
    assert decoded.rgb.shape == image.shape and decoded.category == "t"


@pytest.mark.slow
def test_resume_keeps_precision_and_cache(tmp_path, data_dir, monkeypatch, capsys):
    """A float32 checkpoint written before --precision existed resumes in float32, and under
    mixed precision when asked; the choice is kept by later resumes; a cached run resumes
    from its cache without decoding an image."""
    from gancomp.training.trainer import Trainer

    data = _image_folder(tmp_path, data_dir, broken=False)
    cache = tmp_path / "cache"
    Trainer(_settings(tmp_path, data, cache_dir=str(cache))).run()
    first, saved = _checkpoint(tmp_path)
    assert saved["precision"] == "float32" and int(first["step"]) == 2
    # As the code before this option wrote it.
    train_json = tmp_path / "models" / "t.ckpt" / "train.json"
    del saved["precision"]
    train_json.write_text(json.dumps(saved))

    assert "decoding" in capsys.readouterr().err
    _no_decoding(monkeypatch)
    t = Trainer(_settings(tmp_path, data, steps=3, resume=True, cache_dir=str(cache)))
    assert t.s.precision == "float32" and t.model.precision == "float32"
    t.run()
    t = Trainer(
        _settings(
            tmp_path, data, steps=4, resume=True, precision="mixed_bfloat16", cache_dir=str(cache)
        )
    )
    assert t.model.encoder.compute_dtype == "bfloat16"
    t.run()
    arrays, saved = _checkpoint(tmp_path)
    assert saved["precision"] == "mixed_bfloat16" and int(arrays["step"]) == 4
    assert {k: (a.dtype, a.shape) for k, a in arrays.items()} == {
        k: (a.dtype, a.shape) for k, a in first.items()
    }
    assert any(not np.array_equal(arrays[k], first[k]) for k in arrays if k.startswith("m/"))
    t = Trainer(_settings(tmp_path, data, steps=5, resume=True, cache_dir=str(cache)))
    assert t.s.precision == "mixed_bfloat16"
    assert "decoding" not in capsys.readouterr().err


@pytest.mark.slow
def test_xla_steps_run(tmp_path, data_dir):
    from gancomp.training.trainer import Trainer

    data = _image_folder(tmp_path, data_dir, broken=False)
    t = Trainer(_settings(tmp_path, data, steps=2, rd_steps=1, jit=True))
    for step in (t._rd_step, t._gan_step):
        res = {k: float(v) for k, v in step(t.dist_ds).items()}
        assert all(math.isfinite(v) for v in res.values()), res
    assert res["d_loss"] > 0


@pytest.mark.train
@pytest.mark.slow
def test_every_option_through_the_cli(tmp_path, data_dir):
    """A fresh process, as users run it: mixed precision (with oneDNN), XLA, the patch cache
    and both thread pools, through the rate-distortion and the adversarial phase."""
    data = _image_folder(tmp_path, data_dir)
    out = tmp_path / "models" / "t"
    args = ["train", "-c", "t", "--data", data, "-o", out, "--entropy-model", "hyperprior"]
    args += ["--channels", "8", "--latent-channels", "8", "--num-down", "2", "--batch-size", "2"]
    args += ["--patch-size", "32", "--steps", "3", "--rd-steps", "2", "--precision"]
    args += ["mixed_bfloat16", "--jit", "--cache-dir", tmp_path / "cache"]
    args += ["--intra-op-threads", "1", "--inter-op-threads", "1"]
    r = run_cli(*args, timeout=1200)
    assert r.returncode == 0, r.stderr
    assert "model written to" in r.stdout
    training = json.loads((out / "metadata.json").read_text())["training"]
    assert training["precision"] == "mixed_bfloat16" and training["onednn"] is True
    assert training["jit"] is True and training["skipped_files"] == 1
    assert (training["intra_op_threads"], training["inter_op_threads"]) == (1, 1)
    assert len(list((tmp_path / "cache").iterdir())) == 1


@pytest.mark.train
@pytest.mark.slow
def test_onednn_in_float32(tmp_path, data_dir):
    """--onednn gives a float32 run (a fresh process) oneDNN's kernels, which it otherwise
    leaves off; the model folder records it."""
    data = _image_folder(tmp_path, data_dir, broken=False)
    out = tmp_path / "models" / "t"
    args = ["train", "-c", "t", "--data", data, "-o", out, "--channels", "8"]
    args += ["--latent-channels", "8", "--num-down", "2", "--batch-size", "2", "--patch-size"]
    args += ["32", "--steps", "2", "--rd-steps", "2", "--precision", "float32", "--onednn"]
    r = run_cli(*args, timeout=600)
    assert r.returncode == 0, r.stderr
    training = json.loads((out / "metadata.json").read_text())["training"]
    assert training["precision"] == "float32" and training["onednn"] is True


def test_bad_precision_is_a_usage_error(tmp_path):
    r = CliRunner().invoke(
        main, ["train", "-c", "t", "--data", str(tmp_path), "--precision", "float16"]
    )
    assert r.exit_code == 2 and "float16" in r.output


@pytest.mark.train
def test_thread_pools_cannot_change_once_tensorflow_runs(tmp_path):
    """TensorFlow fixes its pools at its first operation: asking for other sizes later is a
    clear error, asking for the sizes it has is fine."""
    code = (
        "from gancomp.training._tf import tf\n"
        "from gancomp.training.trainer import _set_threads\n"
        "from gancomp.errors import GancompError\n"
        "_set_threads(1, 2)\n"
        "float(tf().reduce_sum(tf().ones([2])))\n"
        "_set_threads(1, 2)\n"
        "try:\n"
        "    _set_threads(2, None)\n"
        "except GancompError as exc:\n"
        "    print(exc)\n"
    )
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    r = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=600
    )
    assert r.returncode == 0, r.stderr
    assert "--intra-op-threads 2: TensorFlow has already started" in r.stdout
    assert "with 1" in r.stdout
