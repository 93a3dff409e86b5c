"""The decode-time realism control (runtime, API, CLI, Pillow) on tiny models.

The realism branches here are random weights written with the runtime's own writer
(:func:`gancomp.runtime.realism.realism_files`), so these tests need no TensorFlow; the
trained branches and the Keras/NumPy agreement are in ``test_realism_training.py``.
"""

import json
import shutil

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

import gancomp
import gancomp.pillow  # noqa: F401  (registers the .gcz format)
from gancomp import architecture
from gancomp.cli import main
from gancomp.errors import GancompError, InputError
from gancomp.runtime.codec import Codec
from gancomp.runtime.models import read_model_folder
from gancomp.runtime.realism import REALISM_JSON, realism_files
from helpers import run_cli_without_tensorflow


def _cli(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def random_realism_weights(config: dict, branches: int, seed: int = 0) -> dict:
    """Random (non-zero) weights for every op of the realism branches."""
    rng = np.random.default_rng(seed)
    weights = {}
    channels = config["channels"]
    for op in architecture.realism_synthesis(config, branches):
        if op["op"] != "realism_residual":
            continue
        c_in = channels + 1
        for conv in op["body"]:
            if conv["op"] != "conv2d":
                continue
            k, f = conv["kernel"], conv["filters"]
            name = f"gancodec/generator/{op['name']}/{conv['name']}"
            weights[f"{name}/kernel"] = rng.normal(0, 0.1, (k, k, c_in, f)).astype(np.float32)
            weights[f"{name}/bias"] = rng.normal(0, 0.01, (f,)).astype(np.float32)
            c_in = f
    return weights


def add_random_realism(folder, branches: int = 2, seed: int = 0) -> None:
    model = read_model_folder(folder)
    weights = random_realism_weights(model.config, branches, seed)
    for name, data in realism_files(model.config, model.fingerprint, branches, weights).items():
        (folder / name).write_bytes(data)


@pytest.fixture(scope="module")
def realism_models(tmp_path_factory):
    """(plain models, the same models with random realism branches) folders."""
    from conftest import TINY_MODELS

    plain = tmp_path_factory.mktemp("plain")
    real = tmp_path_factory.mktemp("realism")
    for name in ("airplane", "hp-airplane", "flower"):
        shutil.copytree(TINY_MODELS / name, plain / name)
        shutil.copytree(TINY_MODELS / name, real / name)
        add_random_realism(real / name, branches=2 if name != "flower" else 3)
    return plain, real


@pytest.fixture(scope="module")
def files(realism_models):
    """.gcz bytes of a CIFAR image per model, written by the plain model."""
    from conftest import DATA as data_dir

    plain, _ = realism_models
    return {
        name: gancomp.compress(data_dir / "airplane_1.png", name, 3, models_dir=plain)
        for name in ("airplane", "hp-airplane", "flower")
    }


@pytest.mark.parametrize("name", ["airplane", "hp-airplane", "flower"])
def test_realism_zero_is_the_model_without_branches_bit_for_bit(realism_models, files, name):
    plain, real = realism_models
    data = files[name]
    expected = gancomp.decompress(data, plain)
    assert np.array_equal(gancomp.decompress(data, real), expected)
    assert np.array_equal(gancomp.decompress(data, real, realism=0.0), expected)


@pytest.mark.parametrize("name", ["airplane", "hp-airplane", "flower"])
def test_realism_changes_pixels_never_the_file(realism_models, files, name, data_dir):
    plain, real = realism_models
    data = files[name]
    # Branches are outside the fingerprint: the model writes the same bytes, and reads the
    # files its plain self wrote.
    assert gancomp.compress(data_dir / "airplane_1.png", name, 3, models_dir=real) == data
    assert Codec.from_path(real / name).fingerprint == Codec.from_path(plain / name).fingerprint
    at = {r: gancomp.decompress(data, real, realism=r) for r in (0.0, 0.5, 1.0)}
    assert at[0.5].shape == at[0.0].shape == (32, 32, 3)
    assert not np.array_equal(at[0.5], at[0.0])
    assert not np.array_equal(at[1.0], at[0.5])
    # Deterministic: the same r gives the same pixels.
    assert np.array_equal(gancomp.decompress(data, real, realism=0.5), at[0.5])


def test_realism_decodes_every_level_and_batch_like_one_at_a_time(realism_models, data_dir):
    _, real = realism_models
    blobs = [
        gancomp.compress(data_dir / f"airplane_{i}.png", "airplane", q, models_dir=real)
        for i, q in ((0, 1), (1, 8), (2, 8))
    ]
    from gancomp.runtime.codec import decompress, decompress_many

    together = decompress_many(blobs, real, realism=0.7)
    for data, image in zip(blobs, together):
        assert np.array_equal(decompress(data, real, realism=0.7).rgb, image.rgb)


@pytest.mark.parametrize("bad", [-0.1, 1.5, float("nan"), float("inf"), "high", True])
def test_api_refuses_realism_outside_zero_one(realism_models, files, bad):
    _, real = realism_models
    with pytest.raises(InputError, match="realism"):
        gancomp.decompress(files["airplane"], real, realism=bad)


def test_api_realism_on_a_model_without_branches_is_one_clear_error(realism_models, files):
    plain, _ = realism_models
    with pytest.raises(GancompError, match="has no realism control") as info:
        gancomp.decompress(files["airplane"], plain, realism=0.5)
    assert "\n" not in str(info.value)


def test_branches_trained_for_another_model_are_refused(realism_models, files, tmp_path):
    plain, real = realism_models
    folder = tmp_path / "airplane"
    shutil.copytree(real / "airplane", folder)
    description = json.loads((folder / REALISM_JSON).read_text())
    description["base_fingerprint"] = "00000000"
    (folder / REALISM_JSON).write_text(json.dumps(description))
    data = files["airplane"]
    assert np.array_equal(gancomp.decompress(data, tmp_path), gancomp.decompress(data, plain))
    with pytest.raises(GancompError, match="trained for model 00000000"):
        gancomp.decompress(data, tmp_path, realism=1.0)


def test_the_level_scale_multiplies_r_per_level(realism_models, files, tmp_path):
    """Level q decodes at r * level_scale[q - 1]: a scale of 0 is the fidelity decoder bit
    for bit, a scale of 0.5 at r = 1 is r = 0.5 at scale 1."""
    plain, real = realism_models
    src = read_model_folder(real / "airplane")
    weights = random_realism_weights(src.config, 2)
    levels = int(src.config["levels"])
    data = files["airplane"]  # level 3
    for scale_3, expected in ((0.0, "fidelity"), (0.5, "half")):
        folder = tmp_path / str(scale_3) / "airplane"
        shutil.copytree(plain / "airplane", folder)
        scale = [1.0] * levels
        scale[2] = scale_3
        for name, blob in realism_files(src.config, src.fingerprint, 2, weights, scale).items():
            (folder / name).write_bytes(blob)
        got = gancomp.decompress(data, folder.parent, realism=1.0)
        if expected == "fidelity":
            assert np.array_equal(got, gancomp.decompress(data, plain))
        else:
            half = gancomp.decompress(data, real, realism=0.5)
            assert np.array_equal(got, half)
            assert not np.array_equal(got, gancomp.decompress(data, real, realism=1.0))
        # The CLI says what r the generator ran at, and when the control does not act.
        gcz = tmp_path / f"{scale_3}.gcz"
        gcz.write_bytes(data)
        md = ("--models-dir", folder.parent)
        text = _cli("decompress", gcz, "-o", tmp_path / f"{scale_3}.png", "--realism", 1, *md)
        assert text.exit_code == 0, text.output
        silent = _cli("decompress", gcz, "-o", tmp_path / "r0.png", "--force", *md)
        assert "realism" not in silent.output
        as_json = _cli(
            "decompress", gcz, "-o", tmp_path / f"{scale_3}j.png", "--realism", 1, "--json", *md
        )
        assert json.loads(as_json.output)["realism"] == scale_3
        if expected == "fidelity":
            assert "realism 0 (the model's realism control does not act at this quality)" in (
                text.output
            )
        else:
            assert "quality 3, realism 0.5\n" in text.output


@pytest.mark.parametrize("bad", [[1.0] * 7, [1.0] * 7 + [1.5], [1.0] * 7 + ["x"]])
def test_a_bad_level_scale_is_one_clear_error(realism_models, files, tmp_path, bad):
    _, real = realism_models
    folder = tmp_path / "airplane"
    shutil.copytree(real / "airplane", folder)
    description = json.loads((folder / REALISM_JSON).read_text())
    description["level_scale"] = bad
    (folder / REALISM_JSON).write_text(json.dumps(description))
    with pytest.raises(GancompError, match="level_scale must be 8 numbers in"):
        gancomp.decompress(files["airplane"], tmp_path, realism=0.3)


@pytest.mark.parametrize("bad", [-1, 17, 1.5, "2", True])
def test_a_bad_noise_plane_count_is_one_clear_error(realism_models, files, tmp_path, bad):
    _, real = realism_models
    folder = tmp_path / "airplane"
    shutil.copytree(real / "airplane", folder)
    description = json.loads((folder / REALISM_JSON).read_text())
    branch = next(op for op in description["synthesis"] if op["op"] == "realism_residual")
    branch["noise"] = bad
    (folder / REALISM_JSON).write_text(json.dumps(description))
    with pytest.raises(GancompError, match=f"has noise {bad!r}"):
        gancomp.decompress(files["airplane"], tmp_path, realism=0.3)
    # A valid count whose weights do not read the planes is refused too, by their shape.
    branch["noise"] = 2
    (folder / REALISM_JSON).write_text(json.dumps(description))
    with pytest.raises(GancompError, match="has shape"):
        gancomp.decompress(files["airplane"], tmp_path, realism=0.3)


def test_a_realism_generator_that_changes_the_fidelity_generator_is_refused(
    realism_models, files, tmp_path
):
    _, real = realism_models
    folder = tmp_path / "airplane"
    shutil.copytree(real / "airplane", folder)
    description = json.loads((folder / REALISM_JSON).read_text())
    description["synthesis"][0]["filters"] = 8  # the head, not a branch
    (folder / REALISM_JSON).write_text(json.dumps(description))
    with pytest.raises(GancompError, match="not the model's generator plus branches"):
        gancomp.decompress(files["airplane"], tmp_path, realism=0.3)


def test_cli_realism_writes_what_the_api_decodes(realism_models, files, tmp_path):
    _, real = realism_models
    gcz = tmp_path / "a.gcz"
    gcz.write_bytes(files["airplane"])
    out = tmp_path / "a.png"
    r = _cli("decompress", gcz, "-o", out, "--realism", "0.5", "--models-dir", real)
    assert r.exit_code == 0, r.output
    expected = gancomp.decompress(files["airplane"], real, realism=0.5)
    assert np.array_equal(np.asarray(Image.open(out)), expected)
    assert gcz.read_bytes() == files["airplane"]


@pytest.mark.parametrize("bad", ["1.5", "-0.1", "nan", "inf", "x"])
def test_cli_realism_out_of_range_is_a_usage_error(realism_models, files, tmp_path, bad):
    _, real = realism_models
    gcz = tmp_path / "a.gcz"
    gcz.write_bytes(files["airplane"])
    r = _cli("decompress", gcz, f"--realism={bad}", "--models-dir", real)
    assert r.exit_code == 2
    assert "--realism" in r.output
    assert not (tmp_path / "a.decoded.png").exists()


def test_cli_realism_on_a_model_without_branches_exits_1_with_one_line(
    realism_models, files, tmp_path
):
    plain, _ = realism_models
    gcz = tmp_path / "a.gcz"
    gcz.write_bytes(files["airplane"])
    r = run_cli_without_tensorflow("decompress", gcz, "--realism", "1", "--models-dir", plain)
    assert r.returncode == 1
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "has no realism control" in lines[0], r.stderr
    assert "Traceback" not in r.stderr
    assert not (tmp_path / "a.decoded.png").exists()


def test_cli_realism_needs_no_tensorflow(realism_models, files, tmp_path):
    _, real = realism_models
    gcz = tmp_path / "a.gcz"
    gcz.write_bytes(files["hp-airplane"])
    r = run_cli_without_tensorflow("decompress", gcz, "--realism", "0.8", "--models-dir", real)
    assert r.returncode == 0, r.stderr
    expected = gancomp.decompress(files["hp-airplane"], real, realism=0.8)
    assert np.array_equal(np.asarray(Image.open(tmp_path / "a.decoded.png")), expected)


def test_pillow_realism_attribute(realism_models, files, tmp_path, monkeypatch):
    _, real = realism_models
    monkeypatch.setenv("GANCOMP_MODELS", str(real))
    gcz = tmp_path / "a.gcz"
    gcz.write_bytes(files["airplane"])
    with Image.open(gcz) as im:
        assert im.realism == 0.0
        im.load()
        assert np.array_equal(np.asarray(im), gancomp.decompress(files["airplane"], real))
    with Image.open(gcz) as im:
        im.realism = 0.6
        im.load()
        expected = gancomp.decompress(files["airplane"], real, realism=0.6)
        assert np.array_equal(np.asarray(im), expected)
    with Image.open(gcz) as im:
        im.realism = 1.2
        with pytest.raises(ValueError, match="realism"):
            im.load()


def test_pillow_realism_without_branches_is_a_gcz_error(
    realism_models, files, tmp_path, monkeypatch
):
    plain, _ = realism_models
    monkeypatch.setenv("GANCOMP_MODELS", str(plain))
    gcz = tmp_path / "a.gcz"
    gcz.write_bytes(files["airplane"])
    with Image.open(gcz) as im:
        im.realism = 0.5
        with pytest.raises(gancomp.pillow.GczError, match="has no realism control"):
            im.load()


def test_realism_branch_places():
    config = {"channels": 16, "num_down": 3, "kernel_size": 5}
    ops = architecture.realism_synthesis(config, 3)
    kinds = [op.get("name", op["op"]) for op in ops]
    assert kinds == [
        "head",
        "res0",
        "realism0",
        "igdn0",
        "deconv0",
        "realism1",
        "igdn1",
        "deconv1",
        "realism2",
        "igdn2",
        "deconv2",
        "add_constant",
    ]
    assert architecture.without_realism(ops) == architecture.synthesis(config)
    with pytest.raises(ValueError):
        architecture.realism_synthesis(config, 4)  # no feature branch after the RGB layer
    # The pixel branch: after the RGB output, on 3 channels (+ r) back to 3.
    ops = architecture.realism_synthesis(config, 1, pixel_branch=True)
    assert [op.get("name", op["op"]) for op in ops[-3:]] == [
        "deconv2",
        "add_constant",
        "realism_pixel",
    ]
    assert ops[-1]["body"][-1]["filters"] == 3
    assert architecture.without_realism(ops) == architecture.synthesis(config)
