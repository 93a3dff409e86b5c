"""The realism phase (`gancomp train --realism-phase`) and the Keras realism branches.

Marked ``train`` (TensorFlow); the run of the trainer is also ``slow``.
"""

import json
import re
import shutil

import numpy as np
import pytest
from click.testing import CliRunner

from gancomp.cli import main
from gancomp.runtime.models import FILES, read_model_folder
from helpers import build_keras_model, tiny_model_config, write_keras_model

pytestmark = pytest.mark.train


def _cli(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture
def images(tmp_path, data_dir):
    folder = tmp_path / "imgs"
    folder.mkdir()
    for f in data_dir.glob("airplane_*.png"):
        shutil.copy(f, folder / f.name)
    return folder


@pytest.mark.parametrize(
    "entropy_model, pixel_branch, noise",
    [("factorized", False, 0), ("hyperprior", False, 0), ("factorized", True, 0)]
    + [("factorized", True, 2)],
)
def test_keras_and_numpy_realism_generators_agree(tmp_path, entropy_model, pixel_branch, noise):
    """The branches as Keras trains them and as the runtime runs them from the exported
    files: the same function of the latent at r = 0, 0.5 and 1. Noise planes are random in
    Keras and a position hash in the runtime: compared with their kernel rows at zero, and
    the runtime's noise must then move the pixels once they are not."""
    import tensorflow as tf

    from gancomp.runtime.codec import Codec
    from gancomp.runtime.realism import realism_files

    cfg = tiny_model_config(entropy_model, category="airplane", channels=8, latent_channels=8)
    model = build_keras_model(
        cfg, seed=3, realism_branches=3, realism_pixel_branch=pixel_branch, realism_noise=noise
    )
    branch_vars = [w for layer in model.realism_layers() for w in layer.weights]
    assert len(branch_vars) == 3 * 4 + (6 if pixel_branch else 0)
    rng = np.random.default_rng(0)
    for w in branch_vars:  # the last convolutions start at zero: give every weight a value
        w.assign(rng.normal(0, 0.2, w.shape).astype(np.float32))
    noise_rows = None
    if noise:
        (first,) = [w for w in branch_vars if w.path.endswith("realism_pixel/c1/kernel")]
        assert first.shape[2] == 3 + 1 + noise  # RGB, r, the noise planes
        noise_rows = first.numpy()[:, :, 4:].copy()
        first.assign(np.concatenate([first.numpy()[:, :, :4], 0 * noise_rows], axis=2))

    folder = tmp_path / "airplane"
    branch_names = {w.path for w in branch_vars}
    # The model folder without the branches, which ship in the realism add-on.
    config_json, weights, fp = write_keras_model(model, folder, leave_out=branch_names)
    assert branch_names <= set(weights)  # the generator's weights include the branches
    add_on = realism_files(
        json.loads(config_json),
        fp,
        3,
        {k: weights[k] for k in branch_names},
        pixel_branch=pixel_branch,
        noise=noise,
    )
    for name, data in add_on.items():
        (folder / name).write_bytes(data)
    if noise:
        assert json.loads(add_on["realism.json"])["synthesis"][-1]["noise"] == noise

    codec = Codec.from_path(folder)
    latent = rng.normal(0, 2, (2, 3, 5, 8)).astype(np.float32)
    for r in (0.0, 0.5, 1.0):
        keras_out = model.generator(tf.constant(latent), realism=tf.fill([2], r)).numpy()
        numpy_out = codec._realism_synthesis()(latent, r)
        np.testing.assert_allclose(numpy_out, keras_out, atol=2e-4, rtol=1e-4)
    # r = 0 in Keras (branches scaled by 0) is the generator without branches (skipped).
    codec._build()
    np.testing.assert_allclose(
        codec._net.synthesis(latent), model.generator(tf.constant(latent)).numpy(), atol=1e-4
    )
    at_half = codec._realism_synthesis()(latent, 0.5)
    assert np.abs(at_half - codec._net.synthesis(latent)).max() > 1e-2
    if noise:
        (first,) = [w for w in branch_vars if w.path.endswith("realism_pixel/c1/kernel")]
        first.assign(np.concatenate([first.numpy()[:, :, :4], noise_rows], axis=2))
        # Only the branch weights changed: take them from the variables, not a new export.
        branches = {w.path: w.numpy() for w in branch_vars}
        add_on = realism_files(
            json.loads(config_json), fp, 3, branches, None, pixel_branch=True, noise=noise
        )
        (folder / "realism.npz").write_bytes(add_on["realism.npz"])
        noisy = Codec.from_path(folder)._realism_synthesis()
        with_noise = noisy(latent, 0.5)
        assert np.abs(with_noise - at_half).max() > 1e-2
        np.testing.assert_array_equal(noisy(latent, 0.5), with_noise)  # a fixed field
        # ... of the position: a tile starting 3 latent rows down, beyond the receptive field
        # from its cut (where the tile's zero padding differs), is the whole image's rows.
        tall = rng.normal(0, 2, (1, 24, 4, 8)).astype(np.float32)
        whole = noisy(tall, 1.0)
        stride = whole.shape[1] // tall.shape[1]
        tile = noisy(tall[:, 3:], 1.0, origin=(3, 0))
        np.testing.assert_allclose(tile[:, 12 * stride :], whole[:, 15 * stride :], atol=1e-3)
        unplaced = noisy(tall[:, 3:], 1.0)  # as if it were the top of the image
        assert np.abs(unplaced[:, 12 * stride :] - whole[:, 15 * stride :]).max() > 1e-2


def test_realism_phase_needs_a_trained_model_and_keeps_it(tmp_path, images, models_dir):
    out = tmp_path / "models" / "airplane"
    r = _cli("train", "-c", "airplane", "--data", images, "--realism-phase", "-o", out)
    assert r.exit_code == 1
    assert "--realism-phase trains on a trained model: give --init-from" in r.output
    src = models_dir / "airplane"
    common = ["train", "--data", images, "--init-from", src, "--realism-phase", "-o", out]
    r = _cli(*common, "-c", "airplane", "--lambdas", "0.1,0.2,0.3,0.4,0.5,0.6,0.7,0.8")
    assert r.exit_code == 1 and "drop --lambdas" in r.output
    r = _cli(*common, "-c", "ship")
    assert r.exit_code == 1 and "its category is 'airplane'" in r.output
    r = _cli(*common, "-c", "airplane", "--realism-branches", "4")
    assert r.exit_code == 1 and "--realism-branches must be 1..3" in r.output
    r = _cli(*common, "-c", "airplane", "--realism-levels", "9")
    assert r.exit_code == 1 and "--realism-levels must be 1..8" in r.output
    r = _cli(*common, "-c", "airplane", "--realism-noise", "2")
    assert r.exit_code == 1 and "--realism-noise needs --realism-phase --realism-pixel-branch" in (
        r.output
    )
    assert not out.exists()


@pytest.mark.slow
def test_realism_phase_trains_branches_only_and_resumes(tmp_path, images, models_dir):
    import gancomp

    src = models_dir / "hp-airplane"
    out = tmp_path / "models" / "hp-airplane"
    args = ["train", "-c", "hp-airplane", "--data", images, "--val-data", images, "-o", out]
    args += ["--batch-size", "4", "--checkpoint-every", "2"]
    r = _cli(*args, "--init-from", src, "--realism-phase", "--steps", "3", "--texture", "0.1")
    assert r.exit_code == 0, r.output
    # The discriminator's accuracy is logged with the losses; no rate (none is trained).
    line = re.search(
        r"^step 3/3 psnr .* fm [\d.]+ tex [\d.]+ d_acc real ([\d.]+) fake ([\d.]+)", r.output, re.M
    )
    assert line, r.output
    assert "quality  realism    PSNR" in r.output

    # The model is the source's, byte for byte: same fingerprint, same files decode.
    for name in FILES:
        assert (out / name).read_bytes() == (src / name).read_bytes()
    assert read_model_folder(out).fingerprint == read_model_folder(src).fingerprint
    with np.load(out / "realism.npz") as z:
        weights = {k: z[k] for k in z.files}
    assert sorted({k.split("/")[2] for k in weights}) == ["realism0", "realism1"]
    # The zero-initialised last convolutions moved: the branches were trained.
    assert np.abs(weights["gancodec/generator/realism0/c2/kernel"]).max() > 0
    meta = json.loads((out / "metadata.json").read_text())
    assert meta["realism"]["training"]["beta"] == 0.5
    assert meta["realism"]["training"]["disc_lr"] == 4e-4
    assert meta["realism"]["training"]["texture"] == 0.1
    assert len(meta["realism_validation"]) == 6
    # Without --realism-levels every level trains, with a scale of r per level.
    scale = json.loads((out / "realism.json").read_text())["level_scale"]
    assert len(scale) == 8 and all(0.0 <= v <= 1.0 for v in scale)

    data = gancomp.compress(images / "airplane_0.png", "hp-airplane", 2, models_dir=src.parent)
    assert gancomp.compress(images / "airplane_0.png", "hp-airplane", 2, models_dir=out.parent) == (
        data
    )
    plain = gancomp.decompress(data, src.parent)
    assert np.array_equal(gancomp.decompress(data, out.parent), plain)
    assert gancomp.decompress(data, out.parent, realism=1.0).shape == plain.shape

    # --resume continues the realism phase (kept in train.json) and exports the same model.
    r = _cli(*args, "--steps", "4", "--resume")
    assert r.exit_code == 0, r.output
    assert "4 steps" in r.output
    assert read_model_folder(out).fingerprint == read_model_folder(src).fingerprint
    meta = json.loads((out / "metadata.json").read_text())
    assert meta["realism"]["training"]["realism_phase"] is True


@pytest.mark.slow
def test_whole_image_critic_trains_with_the_branches_and_resumes(tmp_path, images, models_dir):
    """--whole-image, --realism-pixel-branch and --realism-noise: trained, shipped, kept on
    --resume."""
    import gancomp

    src = models_dir / "airplane"
    out = tmp_path / "models" / "airplane"
    args = ["train", "-c", "airplane", "--data", images, "--val-data", images, "-o", out]
    args += ["--batch-size", "4", "--checkpoint-every", "2", "--val-limit", "2"]
    r = _cli(
        *args,
        *("--init-from", src, "--realism-phase", "--steps", "3", "--whole-image", "2"),
        *("--realism-pixel-branch", "--realism-noise", "2"),
    )
    assert r.exit_code == 0, r.output
    # Its accuracy (originals and reconstructions) is logged with the patch discriminator's.
    line = re.search(r"^step 3/3 .* d_acc real [\d.]+ fake [\d.]+ whole ([\d.]+)", r.output, re.M)
    assert line and 0.0 <= float(line.group(1)) <= 1.0, r.output
    assert (
        json.loads((out / "metadata.json").read_text())["realism"]["training"]["whole_image"] == 2.0
    )
    ckpt = tmp_path / "models" / "airplane.ckpt"
    assert json.loads((ckpt / "train.json").read_text())["whole_image"] == 2.0
    # The pixel branch ships in the add-on, after the RGB output.
    description = json.loads((out / "realism.json").read_text())
    assert description["pixel_branch"] is True
    assert description["synthesis"][-1]["name"] == "realism_pixel"
    assert description["synthesis"][-1]["noise"] == 2
    with np.load(out / "realism.npz") as z:
        assert np.abs(z["gancodec/generator/realism_pixel/c3/kernel"]).max() > 0  # trained

    def critic_weights():
        with np.load(ckpt / "checkpoint.npz") as z:
            return {k: z[k] for k in z.files if "discriminator/w_" in k}

    before = critic_weights()
    assert len(before) == 8, sorted(before)  # three convolutions and the dense layer
    # --resume keeps the critic and its weight, and trains it.
    r = _cli(*args, "--steps", "4", "--resume")
    assert r.exit_code == 0, r.output
    assert re.search(r"^step 4/4 .* whole [\d.]+", r.output, re.M), r.output
    after = critic_weights()
    assert after.keys() == before.keys()
    assert all(not np.array_equal(after[k], before[k]) for k in before if "kernel" in k)
    assert json.loads((out / "realism.json").read_text())["pixel_branch"] is True
    assert json.loads((out / "realism.json").read_text())["synthesis"][-1]["noise"] == 2
    data = gancomp.compress(images / "airplane_0.png", "airplane", 1, models_dir=out.parent)
    plain = gancomp.decompress(data, out.parent)
    assert np.abs(gancomp.decompress(data, out.parent, realism=1.0).astype(int) - plain).max() > 0


def test_whole_image_logit_judges_any_size_and_sees_one_pixel():
    from gancomp.training.model import Discriminator, ModelConfig

    disc = Discriminator(ModelConfig(category="t", disc_channels=16), whole_image=True)
    rng = np.random.default_rng(0)
    for size in (32, 48):
        x = rng.random((2, size, size, 3), dtype=np.float32)
        assert tuple(disc.whole_logit(x).shape) == (2, 1)
    # One changed pixel anywhere moves the logit.
    x = np.full((1, 64, 64, 3), 0.5, np.float32)
    y = x.copy()
    y[0, 40, 9] = 1.0
    assert abs(float(disc.whole_logit(y)[0, 0]) - float(disc.whole_logit(x)[0, 0])) > 1e-4


def texture_gap(a, b) -> float:
    """texture_distance of two single images, as the realism step computes it."""
    from gancomp.training.realism import texture_distance, texture_energy

    return float(texture_distance(texture_energy(a), texture_energy(b))[0])


def test_texture_distance_sees_lost_detail_not_its_place():
    """0 for the image itself; a blurred copy is far; the same detail shifted is near."""
    import tensorflow as tf

    rng = np.random.default_rng(0)
    x = rng.random((1, 32, 32, 3)).astype(np.float32)
    blurred = tf.nn.avg_pool2d(x, 3, 1, "SAME")
    shifted = np.roll(x, 1, axis=2)
    same = texture_gap(x, x)
    far = texture_gap(x, blurred)
    near = texture_gap(x, shifted)
    assert same < 0.01
    # A 1-pixel shift moves an eighth of each 8-pixel window's detail: near, not 0 (19.6x).
    assert far > 12 * max(near, 0.05), (far, near)
    # But an MSE view of the shifted copy is as bad as of the blurred one (or worse).
    assert np.mean((shifted - x) ** 2) > np.mean((blurred.numpy() - x) ** 2)


def test_texture_distance_sees_colour_speckle():
    """Detail of the original's strength in every RGB channel is far when it is chroma noise
    on a grey image (RGB channels disagree) and near when it is luma noise (they agree)."""
    rng = np.random.default_rng(1)
    noise = rng.normal(0, 0.05, (1, 32, 32, 1)).astype(np.float32)
    grey = 0.5 + np.repeat(noise, 3, axis=3)  # luma detail only
    luma_other = 0.5 + np.repeat(rng.normal(0, 0.05, (1, 32, 32, 1)), 3, 3).astype(np.float32)
    speckle = 0.5 + rng.normal(0, 0.05, (1, 32, 32, 3)).astype(np.float32)
    near = texture_gap(grey, luma_other)
    far = texture_gap(grey, speckle)
    assert far > 3 * near, (far, near)


@pytest.mark.slow
def test_realism_levels_leave_the_other_levels_at_the_fidelity_decoder(
    tmp_path, images, models_dir
):
    import gancomp

    src = models_dir / "airplane"
    out = tmp_path / "models" / "airplane"
    r = _cli(
        "train", "-c", "airplane", "--data", images, "-o", out, "--batch-size", "4",
        "--init-from", src, "--realism-phase", "--realism-levels", "2", "--steps", "2",
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    scale = json.loads((out / "realism.json").read_text())["level_scale"]
    assert scale == [1.0, 1.0] + [0.0] * 6
    for quality, same in ((2, False), (3, True)):
        data = gancomp.compress(
            images / "airplane_0.png", "airplane", quality, models_dir=src.parent
        )
        fidelity = gancomp.decompress(data, src.parent)
        assert np.array_equal(gancomp.decompress(data, out.parent, realism=1.0), fidelity) == same


@pytest.mark.slow
def test_realism_from_starts_the_branches_from_another_add_on(tmp_path, images, models_dir):
    """--realism-from: a new add-on starts from an existing one's branches and scale of r
    (its fingerprint may be another model's); mismatched branches are a one-line error."""
    src = models_dir / "airplane"
    first = tmp_path / "first" / "airplane"
    common = ["train", "-c", "airplane", "--data", images, "--batch-size", "4"]
    common += ["--init-from", src, "--realism-phase"]
    r = _cli(*common, "-o", first, "--steps", "3")
    assert r.exit_code == 0, r.output
    second = tmp_path / "second" / "airplane"
    r = _cli(*common, "-o", second, "--realism-from", first, "--realism-pixel-branch")
    assert r.exit_code == 1 and "its add-on has 2 branches; this run has 2 and the pixel" in (
        r.output
    )
    assert not second.exists()
    r = _cli(*common[:-1], "-o", second, "--realism-from", first)
    assert r.exit_code == 1 and "--realism-from starts a new --realism-phase run" in r.output
    r = _cli(*common, "-o", second, "--realism-from", src.parent)
    assert r.exit_code == 1 and "the folder has no realism add-on" in r.output

    # One step at a negligible learning rate: the branches are the first add-on's.
    r = _cli(*common, "-o", second, "--realism-from", first, "--steps", "1", "--lr", "1e-12")
    assert r.exit_code == 0, r.output
    with np.load(first / "realism.npz") as a, np.load(second / "realism.npz") as b:
        assert a.files == b.files
        for k in a.files:
            np.testing.assert_allclose(b[k], a[k], atol=1e-6)
        assert np.abs(b["gancodec/generator/realism0/c2/kernel"]).max() > 0  # not a fresh start
    scale = [json.loads((f / "realism.json").read_text())["level_scale"] for f in (first, second)]
    np.testing.assert_allclose(scale[1], scale[0], atol=1e-6)
    meta = json.loads((second / "metadata.json").read_text())
    assert meta["realism"]["training"]["realism_from"] == str(first)


@pytest.mark.parametrize("npz", [b"PK\x03\x04truncated", b"not an npz"])
def test_realism_from_a_damaged_add_on_is_an_input_error(tmp_path, npz):
    from gancomp.errors import InputError
    from gancomp.training.realism import load_branches

    (tmp_path / "realism.json").write_text('{"format": 1, "branches": 2}')
    (tmp_path / "realism.npz").write_bytes(npz)
    with pytest.raises(InputError, match="cannot read its realism add-on"):
        load_branches(None, tmp_path)  # fails before it looks at the model


@pytest.mark.slow
def test_discriminator_options_change_what_it_learns(tmp_path, images, models_dir):
    """--disc-weight-by-realism (examples weighed by 2r) and --r1 (a gradient penalty on
    the originals): with the same seed each trains other discriminator weights, the
    setting is recorded, and both belong to the realism phase."""
    src = models_dir / "airplane"
    common = ["train", "-c", "airplane", "--data", images, "--batch-size", "4"]
    common += ["--init-from", src, "--steps", "2", "--checkpoint-every", "1"]
    for flag in (["--disc-weight-by-realism"], ["--r1", "1"], ["--realism-ema", "0.9"]):
        r = _cli(*common, "-o", tmp_path / "x" / "airplane", *flag)
        assert r.exit_code == 1 and f"{flag[0]} belongs to --realism-phase" in r.output

    def disc_weights(name, *extra):
        out = tmp_path / name / "airplane"
        r = _cli(*common, "--realism-phase", "-o", out, *extra)
        assert r.exit_code == 0, r.output
        with np.load(out.with_name("airplane.ckpt") / "checkpoint.npz") as z:
            return {k: z[k] for k in z.files if "discriminator" in k and k.startswith("m/")}, out

    whole = ["--whole-image", "1"]  # --r1 also acts on the whole-image critic
    for name, base, flag, key, value in (
        ("weighted", [], ["--disc-weight-by-realism"], "disc_weight_by_realism", True),
        ("r1", whole, ["--r1", "10"], "r1", 10.0),
    ):
        plain, _ = disc_weights(f"{name}_off", *base)
        changed, out = disc_weights(name, *base, *flag)
        assert plain.keys() == changed.keys() and plain, name
        assert any(not np.allclose(plain[k], changed[k]) for k in plain), name
        if base:
            assert any("w_c0" in k for k in plain)
        meta = json.loads((out / "metadata.json").read_text())
        assert meta["realism"]["training"][key] == value
        train_json = json.loads((out.with_name("airplane.ckpt") / "train.json").read_text())
        assert train_json[key] == value


def test_moving_average_copies_first_then_follows_slowly():
    import tensorflow as tf

    from gancomp.training.realism import ema_update, ema_variables

    w = tf.Variable([1.0, -2.0])
    ema = ema_variables([w])
    ema[0].assign([50.0, 50.0])  # whatever it held: the first update replaces it
    ema_update(ema, [w], 0.9)
    np.testing.assert_array_equal(ema[0].numpy(), [1.0, -2.0])
    w.assign([2.0, 0.0])
    ema_update(ema, [w], 0.9)  # one update so far: d = 1/11
    np.testing.assert_allclose(ema[0].numpy(), [1 / 11 + 20 / 11, -2 / 11], rtol=1e-6)
    for _ in range(200):  # later the decay is the given one
        ema_update(ema, [w], 0.9)
    np.testing.assert_allclose(ema[0].numpy(), [2.0, 0.0], atol=1e-6)
    assert ema[-1].numpy() == 202.0


def test_realism_ema_exports_the_average_and_keeps_it_on_resume(tmp_path, images, models_dir):
    """--realism-ema: the add-on holds the moving average (in the checkpoint beside the
    weights, which it differs from); --resume keeps averaging, and a run without it may
    gain it on --resume."""
    src = models_dir / "hp-airplane"
    start = ["--init-from", src, "--realism-phase", "--realism-levels", "2"]

    def run(name, *extra):
        out = tmp_path / name / "hp-airplane"
        args = ["train", "-c", "hp-airplane", "--data", images, "-o", out, "--batch-size", "4"]
        r = _cli(*args, *extra)
        assert r.exit_code == 0, r.output
        return out

    def check(out, updates):
        with np.load(out / "realism.npz") as z:
            shipped = {k: z[k] for k in z.files}
        with np.load(out.parent / "hp-airplane.ckpt" / "checkpoint.npz") as z:
            averages = [z[k] for k in z.files if k.startswith("ema/")]
            raw = {k: z[f"m/{k}"] for k in shipped}
        assert averages[-1] == updates
        for k, v in shipped.items():
            assert any(a.shape == v.shape and np.array_equal(a, v) for a in averages), k
        assert any(not np.array_equal(raw[k], shipped[k]) for k in shipped)
        meta = json.loads((out / "metadata.json").read_text())
        assert meta["realism"]["training"]["realism_ema"] == 0.5

    out = run("a", *start, "--steps", "3", "--realism-ema", "0.5")
    check(out, 3)
    check(run("a", "--steps", "5", "--resume"), 5)
    # Started without it: averaging starts at the resume (its first update copies).
    out = run("b", *start, "--steps", "2")
    with np.load(out.parent / "hp-airplane.ckpt" / "checkpoint.npz") as z:
        assert not any(k.startswith("ema/") for k in z.files)
    check(run("b", "--steps", "4", "--resume", "--realism-ema", "0.5"), 2)


def test_snapshots_are_the_exports_of_their_steps(tmp_path, images, models_dir):
    """--snapshot-every N writes, every N steps, the model folder the run would export then
    (the average when there is one): the last one is the export, earlier ones differ and
    decode; a resumed run writes its own; outside the realism phase it is a usage error."""
    from PIL import Image

    from gancomp.coding.container import unpack
    from gancomp.runtime.codec import Codec

    src = models_dir / "hp-airplane"
    out = tmp_path / "run" / "hp-airplane"
    base = ["train", "-c", "hp-airplane", "--data", images, "-o", out, "--batch-size", "4"]
    r = _cli(
        *base,
        "--init-from",
        src,
        "--realism-phase",
        "--realism-levels",
        "2",
        "--realism-ema",
        "0.5",
        "--steps",
        "4",
        "--snapshot-every",
        "2",
    )
    assert r.exit_code == 0, r.output
    snaps = out.with_name("hp-airplane.snapshots")
    assert sorted(p.name for p in snaps.iterdir()) == ["step-2", "step-4"]

    def add_on(folder):
        with np.load(folder / "realism.npz") as z:
            return {k: z[k] for k in z.files}

    final, last, first = add_on(out), add_on(snaps / "step-4"), add_on(snaps / "step-2")
    assert final.keys() == last.keys() == first.keys()
    assert all(np.array_equal(final[k], last[k]) for k in final)
    assert any(not np.array_equal(final[k], first[k]) for k in final)
    for name in FILES:  # the base model's own files, unchanged
        assert (snaps / "step-2" / name).read_bytes() == (src / name).read_bytes()
    meta = json.loads((snaps / "step-2" / "metadata.json").read_text())
    assert meta["realism"]["training"]["step"] == 2
    codec = Codec.from_path(snaps / "step-2")
    img = np.asarray(Image.open(next(images.glob("*.png"))).convert("RGB"))
    parsed = [unpack(b) for b in codec.compress_arrays([img], 1)]
    (decoded,) = codec.decode_payloads(parsed, realism=1.0)
    assert decoded.rgb.shape == img.shape

    r = _cli(*base, "--resume", "--steps", "6", "--snapshot-every", "3")
    assert r.exit_code == 0, r.output
    assert sorted(p.name for p in snaps.iterdir()) == ["step-2", "step-4", "step-6"]
    assert all(np.array_equal(v, add_on(snaps / "step-6")[k]) for k, v in add_on(out).items())

    rd = ["train", "-c", "hp-airplane", "--data", images, "-o", tmp_path / "rd" / "m"]
    r = _cli(*rd, "--batch-size", "4", "--steps", "2", "--snapshot-every", "1")
    assert r.exit_code == 1 and "--snapshot-every belongs to --realism-phase" in r.output
