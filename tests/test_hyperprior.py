"""Codec v2: the mean-scale hyperprior through the runtime, format version 2, and the
architecture description that makes the runtime run exactly what was trained.

Runtime tests use the tiny committed hyperprior models (hp-airplane: stride 8,
hp-flower: stride 16); the comparisons with Keras need the training stack.
"""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import gancomp
from gancomp.coding import container
from gancomp.errors import GancompError
from gancomp.runtime import codec
from helpers import build_keras_model, run_cli, tiny_model_config

DATA = Path(__file__).parent / "data"


def _photo(h: int = 70, w: int = 90) -> np.ndarray:
    return np.ascontiguousarray(np.asarray(Image.open(DATA / "flower_0.jpg"))[:h, :w])


@pytest.mark.parametrize("category", ["hp-airplane", "hp-flower"])
@pytest.mark.parametrize("quality", [1, 8])
def test_round_trip_writes_format_2(models_dir, category, quality):
    img = _photo()
    data = gancomp.compress(img, category=category, quality=quality, models_dir=models_dir)
    header, _ = container.unpack(data)
    assert header.version == 2 and header.entropy_model == "hyperprior"
    out = gancomp.decompress(data, models_dir=models_dir)
    assert out.shape == img.shape and out.dtype == np.uint8
    c = codec.load_codec(category, models_dir)
    streams = c.decode_symbols([container.unpack(data)])[0]
    h, w = -(-70 // c.stride), -(-90 // c.stride)
    assert streams["y"].shape == (h, w, 16)
    assert streams["z"].shape == (-(-h // 4), -(-w // 4), 8)


def test_factorized_models_still_write_version_1(models_dir):
    data = gancomp.compress(_photo(), category="flower", quality=3, models_dir=models_dir)
    assert data[2] >> 4 == 1


def test_bytes_do_not_depend_on_the_batch(models_dir):
    imgs = [_photo(32, 32), _photo(70, 90), _photo(32, 32)[::-1].copy()]
    alone = [
        gancomp.compress(im, category="hp-flower", quality=4, models_dir=models_dir) for im in imgs
    ]
    together = codec.compress_many(imgs, "hp-flower", 4, models_dir)
    assert alone == together


def test_decoding_does_not_depend_on_the_batch(models_dir):
    # Decoding runs every file's z first, then the scale indexes of same-shaped z in one
    # batch, then every y: the result must be the one of decoding each file alone.
    imgs = [_photo(32, 32), _photo(70, 90), _photo(32, 32)[::-1].copy(), _photo(33, 40)]
    blobs = [
        gancomp.compress(im, category="hp-flower", quality=q, models_dir=models_dir)
        for im, q in zip(imgs, (4, 4, 7, 1))
    ]
    c = codec.load_codec("hp-flower", models_dir)
    parsed = [container.unpack(b) for b in blobs]
    together = c.decode_symbols(parsed)
    for item, sym in zip(parsed, together):
        (alone,) = c.decode_symbols([item])
        assert np.array_equal(alone["z"], sym["z"]) and np.array_equal(alone["y"], sym["y"])
    pixels = [d.rgb for d in c.decode_payloads(parsed)]
    for b, px in zip(blobs, pixels):
        assert np.array_equal(gancomp.decompress(b, models_dir=models_dir), px)


def test_a_file_from_a_model_of_the_other_kind_is_refused(models_dir, tmp_path):
    """Same category name, other entropy model: one clear line, not garbage pixels."""
    data = gancomp.compress(_photo(), category="hp-flower", quality=2, models_dir=models_dir)
    other = tmp_path / "models"
    shutil.copytree(models_dir / "flower", other / "hp-flower")
    cfg = json.loads((other / "hp-flower" / "config.json").read_text())
    (other / "hp-flower" / "config.json").write_text(json.dumps({**cfg, "category": "hp-flower"}))
    with pytest.raises(GancompError, match="written by model"):
        gancomp.decompress(data, models_dir=other)


def _damaged_copy(models_dir: Path, tmp_path: Path, edit) -> Path:
    root = tmp_path / "models"
    shutil.copytree(models_dir / "hp-airplane", root / "hp-airplane")
    edit(root / "hp-airplane")
    return root


def _edit_config(fn):
    def edit(folder: Path) -> None:
        cfg = json.loads((folder / "config.json").read_text())
        fn(cfg)
        (folder / "config.json").write_text(json.dumps(cfg))

    return edit


def _edit_weights(fn):
    def edit(folder: Path) -> None:
        with np.load(folder / "weights.npz") as z:
            w = {k: z[k] for k in z.files}
        fn(w)
        np.savez(folder / "weights.npz", **w)

    return edit


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            lambda f: (f / "weights.npz").write_bytes((f / "weights.npz").read_bytes()[:500]),
            "weights.npz is damaged",
        ),
        (lambda f: (f / "tables.npz").write_bytes(b"junk"), "tables.npz is damaged"),
        (_edit_config(lambda c: c["architecture"].update(version=99)), "architecture version 99"),
        (
            _edit_config(lambda c: c["architecture"]["analysis"].insert(0, {"op": "swish"})),
            "unknown op 'swish'",
        ),
        (_edit_config(lambda c: c.update(entropy_model="vq")), "unknown entropy model"),
        (
            _edit_weights(lambda w: w.update({"gancodec/encoder/extra/kernel": np.zeros(3)})),
            "unknown weight",
        ),
        (_edit_weights(lambda w: w.pop("gancodec/h_a/conv1/bias")), "missing weight"),
        (
            _edit_weights(lambda w: w.pop("gancodec/h_s_scale/iout/bias_int")),
            "missing weights of iout",
        ),
        (
            _edit_weights(
                lambda w: w.update(
                    {
                        "gancodec/h_s_scale/iout/kernel_int": w[
                            "gancodec/h_s_scale/iout/kernel_int"
                        ].astype(np.float32)
                    }
                )
            ),
            "stored as integers",
        ),
    ],
)
def test_a_damaged_model_folder_is_one_clear_line(models_dir, tmp_path, edit, message):
    root = _damaged_copy(models_dir, tmp_path, edit)
    src = tmp_path / "a.png"
    shutil.copy(DATA / "airplane_0.png", src)
    r = run_cli("compress", src, "-c", "hp-airplane", "--models-dir", root)
    assert r.returncode == 1, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0] and "internal error" not in lines[0], lines
    assert not (tmp_path / "a.gcz").exists()


@pytest.mark.train
def test_runtime_runs_what_keras_trains(models_dir):
    """The NumPy interpreter of the exported description equals the Keras layers built from
    the same description: float transforms to float32 precision, scale indexes exactly."""
    from gancomp.training._tf import tf as import_tf
    from gancomp.training.trainer import inference_weights

    tf = import_tf()
    model = build_keras_model(tiny_model_config("hyperprior"))
    rng = np.random.default_rng(0)
    for v in model.h_s_scale.weights:  # off the initial values, as training moves them
        v.assign(v + rng.normal(0, 0.5, v.shape).astype(np.float32))
    from gancomp.runtime.transforms import Transforms
    from gancomp.training.trainer import export_files

    config_json, weights, _ = export_files(model)
    net = Transforms(weights, json.loads(config_json))
    x = rng.uniform(0, 1, (2, 64, 96, 3)).astype(np.float32)
    y = model.encoder(tf.constant(x)).numpy()
    np.testing.assert_allclose(net.analysis(x), y, atol=1e-4 * np.abs(y).max())
    z = model.h_a(tf.constant(y)).numpy()
    np.testing.assert_allclose(net.hyper_analysis(y), z, atol=1e-4 * np.abs(z).max())
    z_hat = np.round(z * 20)  # a spread of integers
    mean = model.h_s_mean(tf.constant(z_hat, tf.float32)).numpy()
    np.testing.assert_allclose(net.hyper_mean(z_hat), mean, atol=1e-4 * np.abs(mean).max())
    index = model.h_s_scale(tf.constant(z_hat, tf.float32)).numpy()
    assert np.array_equal(net.scale_index(z_hat), index.astype(np.int32))
    assert len(np.unique(index)) > 3
    x_hat = model.generator(tf.constant(y)).numpy()
    np.testing.assert_allclose(net.synthesis(y), x_hat, atol=1e-4)
    assert set(weights) == set(inference_weights(model))


@pytest.mark.parametrize("threads", ["1", "2"])
def test_format_2_bytes_and_pixels_do_not_move_with_threads(models_dir, tmp_path, threads):
    """Fresh processes with one or two BLAS and gancomp threads write and read the same."""
    src = tmp_path / "p.png"
    Image.fromarray(_photo(96, 130)).save(src)
    ref = gancomp.compress(src, category="hp-flower", quality=6, models_dir=models_dir)
    ref_pixels = gancomp.decompress(ref, models_dir=models_dir)
    env = {"OPENBLAS_NUM_THREADS": threads, "GANCOMP_THREADS": threads}
    gcz, png = tmp_path / "p.gcz", tmp_path / "p.decoded.png"
    r = run_cli("compress", src, "-c", "hp-flower", "-q", "6", "--models-dir", models_dir, env=env)
    assert r.returncode == 0, r.stderr
    assert gcz.read_bytes() == ref
    r = run_cli("decompress", gcz, "--models-dir", models_dir, env=env)
    assert r.returncode == 0, r.stderr
    assert np.array_equal(np.asarray(Image.open(png)), ref_pixels)


@pytest.mark.parametrize("category", ["flower", "hp-flower"])
def test_shrunk_weights_halve_the_folder_and_barely_move_pixels(models_dir, tmp_path, category):
    from gancomp.runtime.models import read_model_folder, shrink_weights, write_model_folder

    src = models_dir / category
    folder = read_model_folder(src)
    with np.load(io.BytesIO(folder.weights)) as z:
        weights = {k: z[k] for k in z.files}
    small = shrink_weights(weights)
    kernels = [k for k, a in weights.items() if a.ndim == 4 and a.dtype.kind == "f"]
    assert kernels and all(small[k].dtype == np.float16 for k in kernels)
    assert all(small[k].dtype == np.float32 for k in weights if k.endswith("log_gain"))
    for k, a in weights.items():
        if a.dtype.kind in "iu":  # the exact index path: the same integers
            assert np.array_equal(small[k], a)
            assert small[k].dtype == np.int16 or not k.endswith("kernel_int")
    out = tmp_path / category
    write_model_folder(
        out, (src / "config.json").read_text(), small, folder.tables, {"category": category}
    )
    assert len(read_model_folder(out).weights) < 0.6 * len(folder.weights)
    img = _photo()
    ref = gancomp.decompress(
        gancomp.compress(img, category=category, quality=6, models_dir=models_dir),
        models_dir=models_dir,
    )
    got = gancomp.decompress(
        gancomp.compress(img, category=category, quality=6, models_dir=tmp_path),
        models_dir=tmp_path,
    )
    diff = np.abs(ref.astype(int) - got.astype(int))
    assert diff.max() <= 8 and diff.mean() < 0.5
