"""Channel-conditional context coding (gancomp.coding.context): exact round trips, a real
saving where channels share a spatial scale, table serialisation and corrupt streams."""

from __future__ import annotations

import numpy as np
import pytest

from gancomp.coding.context import (
    MAGNITUDE_CLIP,
    ContextCoder,
    ContextTables,
    activity,
    fit_context_tables,
    magnitude_boxes,
)
from gancomp.coding.entropy import MAX_HALF_RANGE, LatentCoder, tables_from_pmf
from gancomp.errors import InputError

LEVELS, M = 2, 6


def _latents(rng: np.random.Generator, n: int, h: int = 12, w: int = 10) -> list[list[np.ndarray]]:
    """Per level, n latent grids whose channels share one spatial scale field (as learned
    latents do), at a larger scale for the second level."""
    out: list[list[np.ndarray]] = [[] for _ in range(LEVELS)]
    for _ in range(n):
        field = np.exp(1.5 * rng.standard_normal((h // 4 + 1, w // 4 + 1)))
        field = np.kron(field, np.ones((4, 4)))[:h, :w, None]  # constant on 4x4 blocks
        for q in range(LEVELS):
            y = rng.laplace(size=(h, w, M)) * field * (1 + q) * np.linspace(0.5, 2, M)
            out[q].append(np.round(y).astype(np.int32))
    return out


def _factorized(train: list[list[np.ndarray]]):
    """Factorized tables from the marginal histograms (the best a context-free coder does)."""
    lo = -MAX_HALF_RANGE
    pmf = np.full((LEVELS * M, 2 * MAX_HALF_RANGE + 1), 1e-9)
    for q in range(LEVELS):
        flat = np.concatenate([y.reshape(-1, M) for y in train[q]])
        for c in range(M):
            np.add.at(pmf[q * M + c], np.clip(flat[:, c] - lo, 0, pmf.shape[1] - 1), 1.0)
    return tables_from_pmf(pmf, lo, LEVELS, M)


@pytest.fixture(scope="module")
def fitted():
    rng = np.random.default_rng(0)
    train = _latents(rng, 40)
    factorized = _factorized(train)
    return fit_context_tables(train, factorized, buckets=6), factorized, _latents(rng, 10)


def test_round_trip_is_exact_with_escapes_and_every_level(fitted):
    tables, _, test = fitted
    coder = ContextCoder(tables)
    for q in range(LEVELS):
        for y in test[q]:
            y = y.copy()
            y[0, 0, 0] = 5000  # far beyond every table's support: an escape
            y[3, 4, M - 1] = -70000
            got = coder.decode(coder.encode(y, q), q, y.shape[:2])
            assert got.dtype == np.int32
            np.testing.assert_array_equal(got, y)


def test_context_payload_is_smaller_where_channels_share_a_scale(fitted):
    tables, factorized, test = fitted
    ctx, fact = ContextCoder(tables), LatentCoder(factorized)
    for q in range(LEVELS):
        new = sum(len(ctx.encode(y, q)) for y in test[q])
        old = sum(len(fact.encode(y, q)) for y in test[q])
        assert new < 0.97 * old, (q, new, old)
        # The estimate is what the coder writes, to within the coder's overhead.
        bits = sum(ctx.estimate_bits(y, q) for y in test[q])
        assert abs(8 * new - bits) < 0.02 * bits + 64 * len(test[q])


def test_tables_survive_serialisation_and_code_the_same_bytes(fitted):
    tables, _, test = fitted
    again = ContextTables.from_bytes(tables.to_bytes())
    y = test[1][0]
    assert ContextCoder(again).encode(y, 1) == ContextCoder(tables).encode(y, 1)


def test_negative_edges_before_unused_ones_load(fitted):
    """Negative weights give negative edges; an unused edge (int64 max) after one must not
    read as decreasing (max - negative overflows in a difference)."""
    tables, _, test = fitted
    edges = tables.edges.copy()
    edges[0, 1] = np.iinfo(np.int64).max
    edges[0, 1, 0] = -589824
    again = ContextTables.from_bytes(
        ContextTables(tables.weights, edges, tables.entropy).to_bytes()
    )
    np.testing.assert_array_equal(again.edges, edges)
    y = test[0][0]
    coder = ContextCoder(again)
    np.testing.assert_array_equal(coder.decode(coder.encode(y, 0), 0, y.shape[:2]), y)


def test_inconsistent_tables_are_refused(fitted):
    tables, _, _ = fitted
    broken = ContextTables(tables.weights, tables.edges[:, :, ::-1].copy(), tables.entropy)
    with pytest.raises(ValueError, match="inconsistent"):
        ContextTables.from_bytes(broken.to_bytes())


def test_activity_is_exact_integer_arithmetic(fitted):
    tables, _, test = fitted
    y = test[0][0].astype(np.int64)
    y[2, 2, 0] = 10**6  # clipped to MAGNITUDE_CLIP in the activity
    boxes = magnitude_boxes(y)
    w = tables.weights[0]
    c = M - 1
    i, j = 2, 3
    expect = 0
    for cc in range(c):
        box = sum(
            min(
                abs(int(y[min(max(a, 0), y.shape[0] - 1), min(max(b, 0), y.shape[1] - 1), cc])),
                MAGNITUDE_CLIP,
            )
            for a in range(i - 1, i + 2)
            for b in range(j - 1, j + 2)
        )
        expect += int(w[c, cc]) * box
    assert int(activity(boxes, w, c)[i, j]) == expect


def test_short_stream_or_bad_level_is_a_clean_error(fitted):
    tables, _, test = fitted
    coder = ContextCoder(tables)
    y = test[1][0]
    data = coder.encode(y, 1)
    # A few bytes cannot hold a grid this large: refused before decoding it.
    with pytest.raises(InputError, match="corrupt payload"):
        coder.decode(data[:8], 1, (400, 400))
    with pytest.raises(InputError, match="no tables"):
        coder.decode(data, LEVELS, y.shape[:2])


def test_batched_and_per_symbol_paths_write_the_grouped_bytes(fitted, monkeypatch):
    """encode_many / decode_many over mixed shapes give each grid's own bytes and latents,
    and the one-call-per-channel path codes exactly what one call per bucket codes."""
    import gancomp.coding.context as context

    tables, _, test = fitted
    rng = np.random.default_rng(5)
    grids = test[1][:3] + [np.round(rng.laplace(size=(3, 7, M)) * 4).astype(np.int32)]
    coder = ContextCoder(tables)
    batched = coder.encode_many(grids, 1)
    monkeypatch.setattr(context, "PER_SYMBOL_MODELS_MAX", 0)
    grouped = [ContextCoder(tables).encode(y, 1) for y in grids]
    assert batched == grouped
    monkeypatch.undo()
    decoded = coder.decode_many([(p, 1, y.shape[:2]) for p, y in zip(batched, grids)])
    for y, got in zip(grids, decoded):
        np.testing.assert_array_equal(got, y)
