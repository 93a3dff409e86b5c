"""Where models are found: a user's folder first, then the shipped models; checkpoints are not models.

The user folder here looks like a training output: ``ship`` (a model), ``ship.ckpt`` (its
checkpoint, as ``gancomp train`` leaves it beside the model) and ``airplane`` (the user's
own airplane model, which overrides the shipped one).
"""

import json
import os
import shutil

import numpy as np
import pytest
from click.testing import CliRunner

import gancomp
from gancomp.cli import main
from gancomp.coding.container import unpack
from gancomp.errors import GancompError, InputError
from gancomp.runtime.codec import load_codec
from gancomp.runtime.models import (
    available_categories,
    find_model,
    is_model_folder,
    model_search_path,
    read_model_folder,
    shipped_models_dir,
)

SHIPPED = shipped_models_dir()


def _copy_model(src_category: str, dest) -> None:
    """A shipped model copied under another name, its config renamed too (a distinct model)."""
    shutil.copytree(SHIPPED / src_category, dest)
    config = json.loads((dest / "config.json").read_text())
    config["category"] = dest.name
    (dest / "config.json").write_text(json.dumps(config))


@pytest.fixture(autouse=True)
def _no_env(monkeypatch):
    monkeypatch.delenv("GANCOMP_MODELS", raising=False)


@pytest.fixture
def trained(tmp_path):
    root = tmp_path / "trained"
    _copy_model("airplane", root / "ship")
    ckpt = root / "ship.ckpt"  # what a training run leaves: config, state, settings
    ckpt.mkdir()
    (ckpt / "config.json").write_text((root / "ship" / "config.json").read_text())
    np.savez(ckpt / "checkpoint.npz", step=np.array(250))
    (ckpt / "train.json").write_text("{}")
    _copy_model("automobile", root / "airplane")
    return root


def _cli(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def test_shipped_models_stay_available_beside_the_users(trained):
    assert available_categories(trained) == ["airplane", "automobile", "flower", "ship"]
    assert model_search_path(trained) == [trained, SHIPPED]
    assert find_model("ship", trained) == trained / "ship"
    assert find_model("flower", trained) == SHIPPED / "flower"


def test_a_user_model_overrides_the_shipped_one_of_the_same_name(trained):
    assert find_model("airplane", trained) == trained / "airplane"
    assert find_model("airplane") == SHIPPED / "airplane"
    mine, shipped = load_codec("airplane", trained), load_codec("airplane")
    assert mine.fingerprint == bytes.fromhex(read_model_folder(trained / "airplane").fingerprint)
    assert mine.fingerprint != shipped.fingerprint


def test_a_checkpoint_is_never_a_model(trained):
    assert "ship.ckpt" not in available_categories(trained)
    assert not is_model_folder(trained / "ship.ckpt")
    # Not even with every model file in it: the name is no category.
    for name in ("weights.npz", "tables.npz"):
        shutil.copy(trained / "ship" / name, trained / "ship.ckpt" / name)
    assert not is_model_folder(trained / "ship.ckpt")
    assert "ship.ckpt" not in available_categories(trained)
    with pytest.raises(InputError, match="invalid category name"):
        find_model("ship.ckpt", trained)


def test_auto_with_a_training_output_folder(tmp_path, trained, data_dir):
    # Before: "model folder trained/ship.ckpt is incomplete", exit 1.
    out = tmp_path / "x.gcz"
    r = _cli(
        "compress", data_dir / "airplane_0.png", "-c", "auto", "-o", out, "--json",
        "--models-dir", trained,
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    chosen = json.loads(r.output)["category"]
    assert chosen in {"airplane", "automobile", "flower", "ship"}
    assert unpack(out.read_bytes())[0].category == chosen
    r = _cli("decompress", out, "-o", tmp_path / "x.png", "--models-dir", trained)
    assert r.exit_code == 0, r.output


def test_auto_scores_the_users_models_and_the_shipped_ones(trained, data_dir):
    from gancomp.runtime.auto import choose_auto

    _, [choice] = choose_auto([data_dir / "automobile_1.png"], 4, trained)
    assert [c.category for c in choice.candidates] == ["airplane", "automobile", "flower", "ship"]
    # The user's "airplane" is the automobile model renamed: the same pixels, a new name.
    by_cat = {c.category: c for c in choice.candidates}
    assert by_cat["airplane"].mse == by_cat["automobile"].mse


def test_environment_folder_is_searched_like_models_dir(trained, monkeypatch, data_dir):
    before = load_codec("airplane")  # cached: a later search must still see the user's model
    assert before.folder.path == (SHIPPED / "airplane").resolve()
    monkeypatch.setenv("GANCOMP_MODELS", str(trained))
    assert available_categories() == ["airplane", "automobile", "flower", "ship"]
    assert load_codec("airplane").folder.path == (trained / "airplane").resolve()
    data = gancomp.compress(data_dir / "airplane_0.png", category="ship")
    assert unpack(data)[0].category == "ship"
    assert gancomp.decompress(data).shape == (32, 32, 3)


def test_a_model_replaced_on_disk_is_reloaded(trained):
    first = load_codec("ship", trained)
    replacement = trained.parent / "new-ship"
    _copy_model("flower", replacement)
    shutil.rmtree(trained / "ship")
    os.replace(replacement, trained / "ship")
    second = load_codec("ship", trained)
    assert second.fingerprint != first.fingerprint
    assert second.stride == 16


def test_a_missing_user_folder_is_an_error_not_a_silent_fallback(tmp_path, data_dir):
    with pytest.raises(InputError, match="does not exist"):
        find_model("airplane", tmp_path / "trainedd")
    src, missing = data_dir / "airplane_0.png", tmp_path / "nope"
    r = _cli("compress", src, "-c", "airplane", "-o", tmp_path / "a.gcz", "--models-dir", missing)
    assert r.exit_code == 1 and "does not exist" in r.output


def test_an_incomplete_model_says_what_it_lacks(trained):
    (trained / "boat").mkdir()
    (trained / "boat" / "config.json").write_text("{}")
    assert "boat" not in available_categories(trained)
    with pytest.raises(GancompError, match="boat is incomplete: it lacks weights.npz, tables.npz"):
        find_model("boat", trained)


def test_an_unknown_category_lists_models_but_no_checkpoint(trained):
    with pytest.raises(GancompError, match="no model for category 'truck'") as info:
        find_model("truck", trained)
    assert "available: airplane, automobile, flower, ship)" in str(info.value)
