"""`gancomp train --init-from MODEL --residual-blocks N`: a deeper generator that starts as
the source.

The source's blocks keep their weights and every new block's last convolution starts at zero
(gancomp.training.deepen), so before any step the deeper model gives the source's
reconstruction and rates. One block is the generator of every model exported before the
setting existed, op for op.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from gancomp import architecture
from helpers import (
    assert_same_outputs,
    build_keras_model,
    init_from_trainer,
    random_factorized_folder,
    run_cli,
    tiny_model_config,
    write_keras_model,
)

SHIPPED = Path(__file__).resolve().parent.parent / "models" / "airplane" / "config.json"


def _names(ops):
    return [op.get("name", op["op"]) for op in ops]


def test_one_block_is_the_generator_of_the_shipped_models():
    config = json.loads(SHIPPED.read_text())
    shipped = config.pop("architecture")
    assert "residual_blocks" not in config  # written before the field: means one block
    assert architecture.describe(config) == shipped
    assert architecture.synthesis({**config, "residual_blocks": 1}) == shipped["synthesis"]
    deeper = architecture.synthesis({**config, "residual_blocks": 3})
    assert _names(deeper)[:5] == ["head", "res0", "res1", "res2", "igdn0"]
    assert [op for op in deeper if op.get("name") not in ("res1", "res2")] == shipped["synthesis"]
    with pytest.raises(ValueError):
        architecture.synthesis({**config, "residual_blocks": 0})


def test_the_first_realism_branch_follows_the_last_residual_block():
    config = {"channels": 16, "num_down": 3, "kernel_size": 5, "residual_blocks": 2}
    ops = architecture.realism_synthesis(config, 2)
    assert _names(ops) == [
        "head",
        "res0",
        "res1",
        "realism0",
        "igdn0",
        "deconv0",
        "realism1",
        "igdn1",
        "deconv1",
        "igdn2",
        "deconv2",
        "add_constant",
    ]
    assert architecture.without_realism(ops) == architecture.synthesis(config)


@pytest.fixture(scope="module")
def deep_source(tmp_path_factory):
    """A source with two blocks, both with random (trained-like) weights."""
    folder = tmp_path_factory.mktemp("deep") / "airplane"
    random_factorized_folder(folder, residual_blocks=2)
    return folder


@pytest.mark.train
def test_old_configs_mean_one_block():
    from gancomp.training.model import ModelConfig

    config = json.loads(SHIPPED.read_text())
    assert ModelConfig.from_dict(config).residual_blocks == 1
    assert ModelConfig.from_dict({**config, "residual_blocks": 3}).residual_blocks == 3


@pytest.mark.train
@pytest.mark.parametrize(
    "which, kw",
    [
        ("source", {"residual_blocks": 3}),
        ("deep_source", {"residual_blocks": 3}),
        ("source", {"residual_blocks": 2, "channels": 12}),  # deeper and wider at once
    ],
)
def test_the_deeper_model_computes_what_the_source_did(request, images, tmp_path, which, kw):
    src = request.getfixturevalue(which)
    source_blocks = 2 if which == "deep_source" else 1
    same = init_from_trainer(images, src, tmp_path / "same")
    deep = init_from_trainer(images, src, tmp_path / "deep", **kw)
    blocks = kw["residual_blocks"]
    assert same.cfg.residual_blocks == source_blocks and deep.cfg.residual_blocks == blocks
    names = _names(deep.model.architecture["synthesis"])
    assert names[1 : blocks + 2] == [f"res{i}" for i in range(blocks)] + ["igdn0"]

    assert_same_outputs(same.model, deep.model, images)

    weights = {v.path: v.numpy() for v in deep.model.generator.weights}
    source_weights = {v.path: v.numpy() for v in same.model.generator.weights}
    prefix = "gancodec/generator/"
    for i in range(blocks):
        c1, c2 = (f"{prefix}res{i}/{conv}" for conv in ("c1", "c2"))
        if i < source_blocks:  # trained: loaded (the wider model's in its leading channels)
            n = source_weights[f"{c2}/bias"].shape[0]
            assert np.array_equal(weights[f"{c2}/bias"][:n], source_weights[f"{c2}/bias"])
            assert np.abs(weights[f"{c2}/kernel"]).sum() > 0
        else:  # new: the identity, with fresh filters that read x
            assert not weights[f"{c2}/kernel"].any() and not weights[f"{c2}/bias"].any()
            assert np.abs(weights[f"{c1}/kernel"]).sum() > 0


@pytest.mark.train
def test_the_runtime_decodes_a_deeper_model_as_keras_does(tmp_path):
    import tensorflow as tf

    from gancomp.runtime.codec import Codec

    cfg = tiny_model_config(
        "factorized", category="airplane", channels=8, latent_channels=8, residual_blocks=3
    )
    model = build_keras_model(cfg, seed=5)  # every block's c2 has its (non-zero) fresh init
    rng = np.random.default_rng(0)
    folder = tmp_path / "airplane"
    config_json, _, _ = write_keras_model(model, folder)
    exported = json.loads(config_json)
    assert exported["residual_blocks"] == 3
    assert _names(exported["architecture"]["synthesis"])[1:4] == ["res0", "res1", "res2"]

    codec = Codec.from_path(folder)
    codec._build()
    latent = np.round(rng.normal(0, 3, (2, 3, 5, 8))).astype(np.float32)
    want = model.generator(tf.constant(latent)).numpy()
    got = codec._net.synthesis(latent)
    assert np.abs(want).max() > 0.1
    np.testing.assert_allclose(got, want, atol=2e-4, rtol=1e-4)
    # Not vacuous: the last block changes the output by far more than the tolerance.
    res2 = model.generator.sublayers[3]
    assert res2.name == "res2"
    res2.sublayers[-1].kernel.assign(np.zeros(res2.sublayers[-1].kernel.shape, np.float32))
    assert np.abs(model.generator(tf.constant(latent)).numpy() - got).max() > 1e-2


@pytest.mark.train
def test_shallower_and_a_realism_phase_are_one_line_errors(deep_source, source, images, tmp_path):
    common = ["train", "-c", "airplane", "--data", images, "--steps", "2", "-o"]
    r = run_cli(*common, tmp_path / "a", "--init-from", deep_source, "--residual-blocks", "1")
    assert r.returncode == 1, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in r.stderr, r.stderr
    assert "has 2 residual blocks" in lines[0]
    assert "can deepen a model, not make it shallower" in lines[0]

    args = ["--init-from", source, "--realism-phase", "--residual-blocks", "2"]
    r = run_cli(*common, tmp_path / "b", *args)
    assert r.returncode == 1, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in r.stderr, r.stderr
    assert lines[0].endswith("it cannot change --residual-blocks")
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()
