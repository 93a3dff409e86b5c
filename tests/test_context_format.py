""".gcz version 3: a factorized model with context tables (scripts/add_context_tables.py)
writes channel-context payloads that decode to the factorized model's latents and pixels;
the payload is decoded here from docs/FORMAT.md's description alone."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import sys
from pathlib import Path

import constriction
import numpy as np
import pytest

import gancomp
from gancomp.coding import container
from gancomp.coding.entropy import _decode_gamma
from gancomp.errors import InputError
from gancomp.io.images import load_image
from gancomp.runtime.codec import Codec
from gancomp.runtime.models import read_model_folder
from helpers import run_cli

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "add_context_tables.py"


@pytest.fixture(scope="module")
def context_models(tmp_path_factory, models_dir) -> Path:
    """A models folder holding the tiny flower model with context tables fitted on the
    test photos (and nothing else, so ``--models-dir`` picks it for "flower")."""
    root = tmp_path_factory.mktemp("ctx_models")
    train = tmp_path_factory.mktemp("ctx_train")
    for f in sorted(Path(__file__).parent.joinpath("data").glob("flower_*.jpg")):
        shutil.copy(f, train / f.name)
    res = subprocess.run(
        [sys.executable, str(SCRIPT), str(models_dir / "flower"), str(train)]
        + ["-o", str(root / "flower"), "--workers", "1", "--buckets", "4"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert res.returncode == 0, res.stderr
    return root


def _photos(data_dir: Path) -> list[np.ndarray]:
    return [load_image(p).rgb for p in sorted(data_dir.glob("flower_*.jpg"))]


def test_same_latents_and_pixels_as_the_factorized_model(context_models, models_dir, data_dir):
    ctx = Codec.from_path(context_models / "flower")
    fact = Codec.from_path(models_dir / "flower")
    assert ctx.entropy_model == "channel-context" and fact.entropy_model == "factorized"
    assert ctx.fingerprint != fact.fingerprint
    photos = _photos(data_dir)
    for q in (1, 8):
        files_ctx = ctx.compress_arrays(photos, q)
        files_fact = fact.compress_arrays(photos, q)
        for a, b, im in zip(files_ctx, files_fact, photos):
            header, _ = container.unpack(a)
            assert header.version == 3 and header.entropy_model == "channel-context"
            assert container.unpack(b)[0].version == 1
            got = gancomp.decompress(a, models_dir=context_models)
            want = gancomp.decompress(b, models_dir=models_dir)
            np.testing.assert_array_equal(got, want)
            np.testing.assert_array_equal(
                ctx.decode_latents([container.unpack(a)]),
                fact.decode_latents([container.unpack(b)]),
            )
            assert got.shape == im.shape


def test_folder_keeps_weights_and_carries_nothing_stale(context_models, models_dir):
    new, old = (
        read_model_folder(context_models / "flower"),
        read_model_folder(models_dir / "flower"),
    )
    assert new.weights == old.weights and new.config == old.config
    assert new.metadata["context_tables"]["fitted_for"] == old.fingerprint
    assert new.metadata["fingerprint"] == new.fingerprint


def test_version_3_file_is_refused_by_a_factorized_model(context_models, models_dir, data_dir):
    data = Codec.from_path(context_models / "flower").compress_arrays(_photos(data_dir)[:1], 2)[0]
    header, payload = container.unpack(data)
    # The same payload under the factorized model's fingerprint: the entropy model differs.
    forged = container.pack(
        container.Header(
            header.category,
            2,
            bytes.fromhex(read_model_folder(models_dir / "flower").fingerprint),
            header.width,
            header.height,
            entropy_model="channel-context",
        ),
        payload,
    )
    with pytest.raises(InputError, match="channel-context"):
        gancomp.decompress(forged, models_dir=models_dir)


def test_info_reports_the_file_version(context_models, data_dir, tmp_path):
    out = tmp_path / "f.gcz"
    src = data_dir / "flower_0.jpg"
    res = run_cli(
        "compress", src, "-c", "flower", "-q", "3", "-o", out, "--models-dir", context_models
    )
    assert res.returncode == 0, res.stderr
    res = run_cli("info", out, "--json")
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["format_version"] == 3


def _spec_decode(payload: bytes, tables_npz: bytes, level: int, h: int, w: int) -> np.ndarray:
    """The latents of a version 3 payload, following docs/FORMAT.md step by step (plain
    Python sums for the activity; constriction for the range coder)."""
    with np.load(io.BytesIO(tables_npz)) as z:
        weights, edges = z["context_weights"], z["context_edges"]
        lengths, offsets = z["context/lengths"], z["context/offsets"]
        freqs = z["context/freqs"]
        levels, rows_per_level = (int(v) for v in z["context/shape"])
    m = weights.shape[1]
    buckets = rows_per_level // m
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    words = np.frombuffer(payload + b"\0" * (-len(payload) % 4), "<u4").copy()
    dec = constriction.stream.queue.RangeDecoder(words)
    y = np.zeros((h, w, m), np.int64)

    def box(c: int, i: int, j: int) -> int:
        total = 0
        for a in range(i - 1, i + 2):
            for b in range(j - 1, j + 2):
                v = y[min(max(a, 0), h - 1), min(max(b, 0), w - 1), c]
                total += min(abs(int(v)), 1023)
        return total

    for c in range(m):
        row_of = {}
        for i in range(h):
            for j in range(w):
                act = sum(int(weights[level, c, k]) * box(k, i, j) for k in range(c))
                bucket = sum(1 for e in edges[level, c] if act >= int(e))
                row_of[(i, j)] = (level * m + c) * buckets + bucket
        escapes = []
        for row in sorted(set(row_of.values())):
            n, off = int(lengths[row]), int(offsets[row])
            model = constriction.stream.model.Categorical(
                freqs[starts[row] : starts[row] + n].astype(np.float64), perfect=False
            )
            for i, j in [p for p in sorted(row_of) if row_of[p] == row]:  # raster order
                k = int(dec.decode(model))
                y[i, j, c] = off + k - 1
                if k in (0, n - 1):
                    escapes.append((i, j, k == 0, off, n))
        for i, j, under, off, n in escapes:
            d = _decode_gamma(dec, True)  # version 2's exact-width escape code
            y[i, j, c] = off - 1 - d if under else off + n - 2 + d
    assert levels > level
    return y


def test_payload_decodes_as_the_spec_says(context_models, data_dir):
    codec = Codec.from_path(context_models / "flower")
    im = load_image(data_dir / "flower_1.jpg").rgb[:70, :90]  # 5x6 latents: quick in Python
    for q in (1, 6):
        header, payload = container.unpack(codec.compress_arrays([im], q)[0])
        s = codec.stride
        h, w = -(-header.height // s), -(-header.width // s)
        want = codec.quantized_latents([im], q)[0]
        got = _spec_decode(payload, codec.folder.tables, q - 1, h, w)
        np.testing.assert_array_equal(got, want)


def test_crafted_huge_image_is_refused_before_allocation(context_models):
    codec = Codec.from_path(context_models / "flower")
    header = container.Header(
        "flower", 1, codec.fingerprint, 65536, 1500, entropy_model="channel-context"
    )
    with pytest.raises(InputError, match="too short"):
        codec.decode_latents([(header, b"\x5a" * 100)])


def test_bit_flips_and_garbage_decode_or_fail_cleanly(context_models, data_dir):
    """Every flipped bit of a version 3 payload, and random payloads, give latents of the
    right shape or InputError, within test_fuzz's time bound."""
    from test_fuzz import _decode_symbols

    codec = Codec.from_path(context_models / "flower")
    im = load_image(data_dir / "flower_2.jpg").rgb[:40, :56]
    header, payload = container.unpack(codec.compress_arrays([im], 3)[0])
    buf = bytearray(payload)
    for bit in range(8 * len(buf)):
        buf[bit // 8] ^= 1 << (bit % 8)
        _decode_symbols(codec, header, bytes(buf))
        buf[bit // 8] ^= 1 << (bit % 8)
    rng = np.random.default_rng(3)
    for n in (0, 1, 7, 64, 1000):
        _decode_symbols(codec, header, rng.integers(0, 256, n, dtype=np.uint8).tobytes())
