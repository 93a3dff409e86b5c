"""The hyperprior's per-level z gain: z = h_a(y) * exp(log_z_gain[level]), encoder side only.

Runtime tests write ``gancodec/log_z_gain`` into copies of the tiny committed hyperprior
models (a folder without it, as every folder exported before it existed, codes with gain 1);
the comparison with Keras and the training tests need the training stack.
"""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from gancomp.architecture import Z_GAIN_WEIGHT
from gancomp.coding import container
from gancomp.coding.entropy import finish, new_encoder
from gancomp.errors import GancompError
from gancomp.runtime.codec import Codec
from gancomp.runtime.models import read_model_folder, write_model_folder
from helpers import build_keras_model, tiny_model_config, tiny_train_settings, write_keras_model

DATA = Path(__file__).parent / "data"
TINY = DATA / "tiny_models"


def _photo() -> np.ndarray:
    return np.ascontiguousarray(np.asarray(Image.open(DATA / "flower_0.jpg").convert("RGB")))


def _weights(folder: Path) -> dict[str, np.ndarray]:
    with np.load(folder / "weights.npz") as z:
        return {k: z[k] for k in z.files}


def _copy_with(source: Path, out: Path, edit) -> Path:
    """A copy of model folder ``source`` whose weights are ``edit(weights)``."""
    weights = edit(_weights(source))
    config = (source / "config.json").read_text()
    write_model_folder(out, config, weights, (source / "tables.npz").read_bytes(), {})
    return out


def _h_a_scaled(weights: dict, factor: float) -> dict:
    """h_a's last convolution (linear) times ``factor``: z times ``factor``."""
    last = sorted(k for k in weights if k.startswith("gancodec/h_a/") and k.endswith("kernel"))[-1]
    bias = last.rsplit("/", 1)[0] + "/bias"
    return {**weights, last: weights[last] * factor, bias: weights[bias] * factor}


def _with_z_gain(weights: dict, gain) -> dict:
    levels, _ = weights["gancodec/log_gain"].shape
    z_channels = weights["gancodec/h_a/conv0/bias"].shape[0]
    log = np.log(np.broadcast_to(np.asarray(gain, np.float64), (levels, z_channels)))
    return {**weights, Z_GAIN_WEIGHT: log.astype(np.float32)}


def _z_and_payload(codec: Codec, blob: bytes) -> tuple[np.ndarray, bytes]:
    header, payload = container.unpack(blob)
    return codec.decode_symbols([(header, payload)])[0]["z"], payload


def _z_bytes(codec: Codec, z: np.ndarray, quality: int) -> int:
    """Bytes of z's section alone (z is coded first, then y, in one stream)."""
    enc = new_encoder()
    codec.z_coder.encode_into(enc, z, quality - 1)
    return len(finish(enc))


@pytest.mark.parametrize("category", ["hp-airplane", "hp-flower"])
@pytest.mark.parametrize("quality", [1, 8])
def test_gain_one_codes_what_a_folder_without_it_codes(tmp_path, category, quality):
    """Gain 1 (log 0, a new export's start) == absent (every folder exported before it):
    the same payload, and that payload codes z = round(h_a(y)) as before the gain existed."""
    source = TINY / category
    assert Z_GAIN_WEIGHT not in _weights(source)
    with_gain = _copy_with(source, tmp_path / category, lambda w: _with_z_gain(w, 1.0))
    img = _photo()
    old, new = Codec.from_path(source), Codec.from_path(with_gain)
    blob = old.compress_arrays([img], quality)[0]
    assert container.unpack(new.compress_arrays([img], quality)[0])[1] == container.unpack(blob)[1]
    # As before the gain: z straight from h_a, given explicitly.
    ys = old.scaled_latents([img], quality)
    net = old._net
    f = 2**net.hyper_down
    y = ys[0]
    padded = np.pad(y, ((0, -y.shape[0] % f), (0, -y.shape[1] % f), (0, 0)), mode="edge")
    z = net.hyper_analysis(padded[None])[0]
    explicit = old.compress_latents([img.shape[:2]], ys, [z], quality)[0]
    assert explicit == blob


@pytest.mark.parametrize("quality", [1, 8])
def test_a_gain_below_one_codes_fewer_z_bits_and_round_trips(tmp_path, quality):
    """h_a's output made large enough for z to carry bits; a z gain of 1/2 then codes fewer
    z bits than the same model without it, and the file decodes (the decoder never reads the
    gain: it decodes whatever integer z the encoder chose)."""
    source = _copy_with(TINY / "hp-airplane", tmp_path / "big-z", lambda w: _h_a_scaled(w, 20.0))
    halved = _copy_with(source, tmp_path / "halved", lambda w: _with_z_gain(w, 0.5))
    img = _photo()
    plain, gained = Codec.from_path(source), Codec.from_path(halved)
    z_plain, _ = _z_and_payload(plain, plain.compress_arrays([img], quality)[0])
    blob = gained.compress_arrays([img], quality)[0]
    z_gained, _ = _z_and_payload(gained, blob)
    assert np.abs(z_plain).sum() > 100  # z carries information to begin with
    assert np.abs(z_gained).sum() < 0.7 * np.abs(z_plain).sum()
    assert _z_bytes(gained, z_gained, quality) < _z_bytes(plain, z_plain, quality)
    # What the encoder computed is what the decoder reads back.
    expected = np.round(gained.hyper_latents(gained.scaled_latents([img], quality), quality - 1)[0])
    assert np.array_equal(z_gained, expected)
    out = gained.decode_payloads([container.unpack(blob)])[0]
    assert out.rgb.shape == img.shape
    # The same payload through the model with another z gain (and so another fingerprint)
    # decodes to the same pixels: the decoder never reads the gain.
    other = Codec.from_path(_copy_with(halved, tmp_path / "other", lambda w: _with_z_gain(w, 3.0)))
    header, payload = container.unpack(blob)
    header = dataclasses.replace(header, fingerprint=other.fingerprint)
    again = other.decode_payloads([(header, payload)])[0]
    assert np.array_equal(again.rgb, out.rgb)


def test_the_gain_is_applied_to_h_a_s_output(tmp_path):
    """h_a's (linear) last layer times 4 with a z gain of 1/4 codes the bytes of the model
    as it was: the gain multiplies z, between h_a and the rounding."""
    source = TINY / "hp-airplane"
    edited = _copy_with(source, tmp_path / "x4", lambda w: _with_z_gain(_h_a_scaled(w, 4.0), 0.25))
    img = _photo()
    for quality in (1, 8):
        a = Codec.from_path(source).compress_arrays([img], quality)[0]
        b = Codec.from_path(edited).compress_arrays([img], quality)[0]
        assert container.unpack(a)[1] == container.unpack(b)[1]


@pytest.mark.parametrize(
    ("category", "edit", "message"),
    [
        ("flower", lambda w: {**w, Z_GAIN_WEIGHT: np.zeros((8, 8), np.float32)}, "has no z"),
        (
            "hp-flower",
            lambda w: {**w, Z_GAIN_WEIGHT: np.zeros((8, 3), np.float32)},
            r"gain gancodec/log_z_gain has shape \(8, 3\), expected \(8, 8\)",
        ),
        (
            "hp-flower",
            lambda w: {**w, Z_GAIN_WEIGHT: np.zeros((7, 8), np.float32)},
            r"gain gancodec/log_z_gain has shape \(7, 8\), expected \(8, 8\)",
        ),
        (
            "flower",
            lambda w: {**w, "gancodec/log_gain": w["gancodec/log_gain"][:7]},
            r"gain gancodec/log_gain has shape \(7, ",
        ),
        (
            "hp-flower",
            lambda w: {k: v for k, v in w.items() if k != "gancodec/log_inv_gain"},
            "missing weight gancodec/log_inv_gain",
        ),
    ],
)
def test_a_misplaced_or_misshapen_gain_is_one_clear_line(tmp_path, category, edit, message):
    folder = _copy_with(TINY / category, tmp_path / category, edit)
    with pytest.raises(GancompError, match=message) as err:
        Codec.from_path(folder).compress_arrays([_photo()[:64, :64]], 1)
    assert "\n" not in str(err.value)


def test_keras_and_numpy_agree_on_z_with_a_z_gain(tmp_path):
    """An exported hyperprior ships its z gain, and the NumPy encoder's z is the Keras
    model's, level by level."""
    import tensorflow as tf

    model = build_keras_model(tiny_model_config("hyperprior", category="zgain"), seed=7)
    cfg = model.cfg
    rng = np.random.default_rng(0)
    # Gains of 30 to 300, different per level and channel: an untrained h_a's output is
    # small, and z must spread over many integers.
    log_z_gain = rng.uniform(np.log(30.0), np.log(300.0), (cfg.levels, cfg.hyper_channels))
    model.log_z_gain.assign(log_z_gain.astype(np.float32))
    folder = tmp_path / "zgain"
    _, weights, _ = write_keras_model(model, folder)
    np.testing.assert_array_equal(weights[Z_GAIN_WEIGHT], model.log_z_gain.numpy())
    codec = Codec(read_model_folder(folder))
    img = _photo()[:64, :96]
    x = tf.constant(img[None].astype(np.float32) / 255.0)
    for level in (0, 5):
        levels = tf.constant([level])
        y = model.scaled_latent(x, levels)
        z_keras = model.hyper_latent(y, levels).numpy()[0]
        z_numpy = codec.hyper_latents(codec.scaled_latents([img], level + 1), level)[0]
        np.testing.assert_allclose(z_numpy, z_keras, atol=1e-4 * np.abs(z_keras).max())
        assert np.abs(np.round(z_keras)).max() >= 3
        # The integers agree wherever float rounding cannot flip them.
        safe = np.abs(np.abs(z_keras - np.floor(z_keras)) - 0.5) > 1e-3
        assert np.array_equal(np.round(z_numpy)[safe], np.round(z_keras)[safe])
        z_coded, _ = _z_and_payload(codec, codec.compress_arrays([img], level + 1)[0])
        assert np.array_equal(z_coded[safe], np.round(z_keras)[safe])


# -- training ------------------------------------------------------------------------


def _settings(tmp_path: Path, **kw):
    data = tmp_path / "imgs"
    if not data.exists():
        data.mkdir(parents=True)
        for f in DATA.glob("flower_*.jpg"):
            shutil.copy(f, data / f.name)
    return tiny_train_settings(
        data,
        tmp_path / "out" / "hp-flower",
        **{
            "category": "hp-flower",
            "patch_size": 64,
            "lr": 1e-2,
            "init_from": str(TINY / "hp-flower"),
            **kw,
        },
    )


@pytest.mark.slow
@pytest.mark.train
@pytest.mark.parametrize("freeze", [False, True])
def test_training_moves_the_z_gain_and_exports_it(tmp_path, freeze):
    """--init-from a folder without the gain starts it at 0 (gain 1); it gets gradients,
    with --freeze-transforms too (it belongs to the hyperprior), and ships in weights.npz."""
    from gancomp.training.trainer import Trainer

    s = _settings(tmp_path, freeze_transforms=freeze, rd_steps=0 if freeze else 3)
    trainer = Trainer(s)
    gain = trainer.model.log_z_gain
    assert np.array_equal(gain.numpy(), np.zeros(gain.shape, np.float32))
    assert gain.path in {v.path for v in trainer.g_vars}
    trainer.run()
    trained = gain.numpy()
    assert np.abs(trained).max() > 0  # it got gradients (tiny in a 3-step joint run)
    out = Path(s.output)
    np.testing.assert_array_equal(_weights(out)[Z_GAIN_WEIGHT], trained)
    codec = Codec.from_path(out)
    img = _photo()[:128, :128]
    blob = codec.compress_arrays([img], 2)[0]
    assert codec.decode_payloads([container.unpack(blob)])[0].rgb.shape == img.shape
    # --init-from a folder that has it starts from its values.
    again = Trainer(_settings(tmp_path / "again", init_from=str(out)))
    np.testing.assert_array_equal(again.model.log_z_gain.numpy(), trained)


@pytest.mark.slow
@pytest.mark.train
def test_a_checkpoint_from_before_the_z_gain_resumes(tmp_path):
    """A hyperprior run checkpointed before the z gain existed (no model entry, no optimizer
    slots for it) resumes: every other weight and slot as saved, the z gain at 0."""
    from gancomp.training.trainer import Trainer

    s = _settings(tmp_path, steps=2, rd_steps=2)
    first = Trainer(s)
    first.run()
    ckpt = first.ckpt_path
    with np.load(ckpt) as z:
        saved = {k: z[k] for k in z.files}
    # Rewrite it as the code before the gain wrote it.
    del saved[f"m/{first.model.log_z_gain.path}"]
    slot = first.model.log_z_gain.path.replace("/", "_") + "_"
    old_g = [
        saved[f"og/{i}"] for i, v in enumerate(first.opt_g.variables) if not v.name.startswith(slot)
    ]
    assert len(old_g) == len(first.opt_g.variables) - 2  # Adam: momentum and velocity
    saved = {k: v for k, v in saved.items() if not k.startswith("og/")}
    saved.update({f"og/{i}": a for i, a in enumerate(old_g)})
    np.savez(ckpt, **saved)

    resumed = Trainer(_settings(tmp_path, steps=3, rd_steps=3, resume=True, init_from=None))
    resumed.load_checkpoint()
    assert np.array_equal(resumed.model.log_z_gain.numpy(), np.zeros((8, 8), np.float32))
    for v in resumed.model.weights:
        if v.path != resumed.model.log_z_gain.path:
            assert np.array_equal(v.numpy(), saved[f"m/{v.path}"]), v.path
    kept = [v for v in resumed.opt_g.variables if not v.name.startswith(slot)]
    for i, v in enumerate(kept):
        assert np.array_equal(v.numpy(), old_g[i]), v.path
    resumed.run()
    assert resumed.step == 3
