"""k-NN metrics do not move when both sets are translated or rotated, and equal prdc there.

The audit's reproduction: two Gaussian sets in 16-d shifted by a common offset; before the
distances were centred, density fell from 1.41 to 1.13 at offset 1,000 and precision/recall
became 1.0 (density 0.004) at 3,000. The float32 error of the centred distances is measured
against float64 and checked against the bound derived in :mod:`gen_eval.metrics.knn`.
"""

from __future__ import annotations

import contextlib
import io

import numpy as np
import pytest
import torch

from gen_eval.metrics import knn
from gen_eval.metrics.base import MetricContext
from gen_eval.metrics.density_coverage import density_coverage
from gen_eval.metrics.precision_recall import precision_recall

OFFSETS = [0.0, 1e2, 1e3, 3e3, 1e4]  # in units of the sets' spread (standard deviation 1)


def _sets(n: int = 400, dim: int = 16, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    reference = rng.standard_normal((n, dim))
    generated = rng.standard_normal((n, dim)) * 1.1 + 0.2
    return generated, reference


def _ours(generated: np.ndarray, reference: np.ndarray, k: int = 5) -> dict[str, float]:
    context = MetricContext(num_resamples=0, options={"pr_k": k, "dc_k": k})
    x, y = {"features": torch.from_numpy(generated)}, {"features": torch.from_numpy(reference)}
    results = {**precision_recall(x, y, context), **density_coverage(x, y, context)}
    return {name: r.value for name, r in results.items()}


def _prdc(generated: np.ndarray, reference: np.ndarray, k: int = 5) -> dict[str, float]:
    prdc = pytest.importorskip("prdc")
    with contextlib.redirect_stdout(io.StringIO()):  # compute_prdc prints the sample sizes
        out = prdc.compute_prdc(real_features=reference, fake_features=generated, nearest_k=k)
    return {name: float(value) for name, value in out.items()}


@pytest.mark.parametrize("offset", OFFSETS)
def test_translation_leaves_the_metrics_unchanged_and_equal_to_prdc(offset):
    generated, reference = _sets()
    shift = np.random.default_rng(1).standard_normal(16)
    shift *= offset / np.linalg.norm(shift) if offset else 0.0
    at_origin = _ours(generated, reference)
    moved = _ours(generated + shift, reference + shift)
    # Continuous data: no ties, so prdc's open balls and our closed ones agree.
    expected = _prdc(generated + shift, reference + shift)
    assert 0.3 < at_origin["precision"] < 0.95  # a case where every metric can move
    # float64 inputs: the translation is removed before any float32 rounding, so the counts are
    # the same; tolerance one sample in 400 for a pair that sits within rounding of a radius.
    assert moved == pytest.approx(at_origin, abs=1 / 400 + 1e-12)
    assert moved == pytest.approx(expected, abs=1 / 400 + 1e-12)


def test_float32_inputs_far_from_the_origin():
    # Features stored in float32 at 1e4 standard deviations carry a rounding of ~6e-4 of the
    # spread in the data themselves (no metric can undo that); the metrics still stay within a
    # few samples of the origin's values (the old code gave precision 1.0, density 0.0 here).
    generated, reference = _sets()
    at_origin = _ours(generated, reference)
    shift = np.full(16, 1e4 / 4.0)
    moved = _ours(
        (generated + shift).astype(np.float32).astype(np.float64),
        (reference + shift).astype(np.float32).astype(np.float64),
    )
    assert moved == pytest.approx(at_origin, abs=4 / 400)


def test_rotation_leaves_the_metrics_unchanged():
    generated, reference = _sets()
    q, _ = np.linalg.qr(np.random.default_rng(2).standard_normal((16, 16)))
    rotated = _ours(generated @ q + 3e3, reference @ q + 3e3)
    assert rotated == pytest.approx(_ours(generated, reference), abs=2 / 400 + 1e-12)


def test_integer_data_stays_exact_after_centring():
    # Integer features far from the origin: the shift is an integer vector, so every squared
    # distance (and every tie) is exact and the radii equal float64 brute force bit for bit.
    g = torch.Generator().manual_seed(3)
    x = torch.randint(0, 4, (300, 6), generator=g).double() + 1000.0
    shift = knn.common_shift(x)
    assert torch.equal(shift, shift.round())
    exact = torch.cdist(x - 1000.0, x - 1000.0).sort(dim=1).values[:, 3].float()
    assert torch.equal(knn.knn_radii(x, 3), exact)


@pytest.mark.parametrize("dim", [16, 256, 2048])
def test_float32_distance_error_is_within_the_stated_bound(dim):
    rng = np.random.default_rng(dim)
    offset = 1e4 * rng.standard_normal(dim) / np.sqrt(dim)
    rows = rng.standard_normal((200, dim)) + offset
    cols = rng.standard_normal((300, dim)) * 1.2 + offset + 0.1
    y, x = knn.centred_float32(torch.from_numpy(rows), torch.from_numpy(cols), device="cpu")
    computed = knn.squared_distances(y, x, knn.squared_norms(y), knn.squared_norms(x)).double()
    shift = knn.common_shift(torch.from_numpy(rows), torch.from_numpy(cols))
    exact = torch.cdist(torch.from_numpy(rows) - shift, torch.from_numpy(cols) - shift).square()
    bound = knn.squared_distance_error_bound(dim, y.double().square().sum(1), x.double().square().sum(1))
    error = (computed - exact).abs()
    assert (error <= bound).all()
    # The bound is useful: relative to the typical squared distance it is ~(D + 4) 2^-24 x 4,
    # at most 6e-4 at D = 2048, and the measured error is far below it.
    assert float((bound / exact).median()) < 5 * (dim + 4) * 2.0**-24
    assert float((error / exact).max()) < 1e-4
    # Without centring, the same float32 arithmetic errs 100s of times more (at 16-d by more
    # than the squared distances themselves).
    raw_y, raw_x = torch.from_numpy(rows).float(), torch.from_numpy(cols).float()
    raw = knn.squared_distances(raw_y, raw_x, knn.squared_norms(raw_y), knn.squared_norms(raw_x)).double()
    assert float(((raw - exact).abs() / exact).max()) > 100 * float((error / exact).max())


def test_memorisation_check_finds_the_same_copies_far_from_the_origin():
    # Its neighbour search is float32 cdist: centred first, it picks the same neighbours at 1e4
    # (without centring it found 3 of the 41 copies there). Float32 features at 1e4 resolve
    # ~1e-3, well below the copies' noise of 5e-2.
    from gen_eval.collapse.memorisation import memorisation_check

    rng = np.random.default_rng(4)
    train = rng.standard_normal((400, 16))
    copies = train[:40] + 5e-2 * rng.standard_normal((40, 16))
    generated = np.concatenate([copies, rng.standard_normal((160, 16))])
    near = memorisation_check(generated, train)
    far = memorisation_check(generated + 1e4, train + 1e4)
    assert near.num_copies >= 40
    assert far.num_copies == near.num_copies
    assert [pair[:2] for pair in far.pairs] == [pair[:2] for pair in near.pairs]


def test_parity_report_rows_for_translated_and_integer_features_hold():
    pytest.importorskip("prdc")
    from gen_eval.bench.parity_knn import knn_section

    lines, rows = knn_section(tolerance=1e-9)
    assert len(rows) == 5 * 4 + 8  # 4 offsets + a rotation, 4 metrics each; 8 tie rows
    assert all(row["difference"] <= 1e-9 for row in rows), [r for r in rows if r["difference"] > 1e-9]
    assert any("open balls" in line for line in lines)
    closed = {r["metric"]: r["ours"] for r in rows if r["case"].startswith("integer features, closed")}
    opened = {r["metric"]: r["ours"] for r in rows if r["case"] == "integer features, open balls"}
    assert closed["precision"] > opened["precision"]  # the tie convention matters on integer features
