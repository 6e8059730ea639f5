"""k-NN precision/recall and density/coverage: parity with torch-fidelity and prdc, planted
cases, chunking, bootstrap replicates."""

from __future__ import annotations

import contextlib
import io
import math

import pytest
import torch

from gen_eval.errors import GenEvalError
from gen_eval.metrics import knn, knn_tally
from gen_eval.metrics.base import MetricContext
from gen_eval.metrics.bootstrap import recentred_interval, resample_counts, resample_indices
from gen_eval.metrics.density_coverage import density_coverage
from gen_eval.metrics.precision_recall import precision_recall


def _gaussians(n_gen: int = 500, n_real: int = 600, dim: int = 64) -> tuple[torch.Tensor, torch.Tensor]:
    """Generated and real features from two overlapping Gaussians: no exact ties."""
    g = torch.Generator().manual_seed(0)
    return torch.randn(n_gen, dim, generator=g) * 1.1 + 0.3, torch.randn(n_real, dim, generator=g)


def _lattice() -> tuple[torch.Tensor, torch.Tensor]:
    """Integer features: squared distances are exact small integers, so ties are everywhere and
    ``<`` against ``<=`` matters; every chunking gives bit-identical distances."""
    g = torch.Generator().manual_seed(1)
    return torch.randint(0, 3, (300, 6), generator=g).float(), torch.randint(
        0, 3, (350, 6), generator=g
    ).float()


DATASETS = {"gaussians": _gaussians, "lattice": _lattice}


def _ours(x: torch.Tensor, y: torch.Tensor, **options) -> dict[str, float]:
    context = MetricContext(num_resamples=0, options=options)
    results = {**precision_recall({"features": x}, {"features": y}, context)}
    results.update(density_coverage({"features": x}, {"features": y}, context))
    return {name: result.value for name, result in results.items()}


def _prdc(x: torch.Tensor, y: torch.Tensor, k: int) -> dict[str, float]:
    prdc = pytest.importorskip("prdc")
    with contextlib.redirect_stdout(io.StringIO()):  # compute_prdc prints the sample sizes
        out = prdc.compute_prdc(real_features=y.numpy(), fake_features=x.numpy(), nearest_k=k)
    return {name: float(value) for name, value in out.items()}


@pytest.mark.parametrize("data", DATASETS)
def test_precision_recall_equal_torch_fidelity(data):
    metric_prc = pytest.importorskip("torch_fidelity.metric_prc")
    x, y = DATASETS[data]()
    expected = metric_prc.prc_features_to_metric(
        x, y, prc_neighborhood=3, prc_batch_size=10000, save_cpu_ram=False, verbose=False
    )
    ours = _ours(x, y)
    # torch-fidelity averages in float32: equal up to that rounding, i.e. the same counts.
    assert ours["precision"] == pytest.approx(expected["precision"], abs=1e-6)
    assert ours["recall"] == pytest.approx(expected["recall"], abs=1e-6)
    assert 0.05 < ours["precision"] < 0.95 or data == "lattice"  # a non-trivial case


@pytest.mark.parametrize("data", DATASETS)
def test_density_coverage_equal_prdc(data):
    # Without ties the ball convention does not matter; on the lattice, prdc's open balls.
    x, y = DATASETS[data]()
    options = {"dc_ball": "open"} if data == "lattice" else {}
    expected, ours = _prdc(x, y, k=5), _ours(x, y, **options)
    assert ours["density"] == pytest.approx(expected["density"], abs=1e-6)
    assert ours["coverage"] == pytest.approx(expected["coverage"], abs=1e-6)


def test_precision_recall_equal_prdc_except_on_ties():
    # prdc defines precision/recall as torch-fidelity does but with open balls ("<"): equal when
    # no distance equals a radius, lower on tied (here integer) features; pr_ball="open" is prdc.
    x, y = _gaussians()
    expected, ours = _prdc(x, y, k=3), _ours(x, y)
    assert (ours["precision"], ours["recall"]) == pytest.approx((expected["precision"], expected["recall"]))
    x, y = _lattice()
    expected, ours = _prdc(x, y, k=3), _ours(x, y)
    assert expected["precision"] < ours["precision"] - 0.1
    opened = _ours(x, y, pr_ball="open")
    assert (opened["precision"], opened["recall"]) == pytest.approx(
        (expected["precision"], expected["recall"]), abs=1e-12
    )


def test_ties_on_integer_features_follow_the_closed_ball_convention():
    # Brute force in float64 on integer features (exact distances, ties everywhere): closed balls
    # (d <= radius) by default for all four metrics, open balls on request.
    x, y = _lattice()
    xd, yd = x.double(), y.double()
    cross = torch.cdist(yd, xd)  # (reference, generated)
    real_r3 = torch.cdist(yd, yd).sort(dim=1).values[:, 3]
    gen_r3 = torch.cdist(xd, xd).sort(dim=1).values[:, 3]
    real_r5 = torch.cdist(yd, yd).sort(dim=1).values[:, 5]
    for ball, inside in [("closed", torch.le), ("open", torch.lt)]:
        ours = _ours(x, y, pr_ball=ball, dc_ball=ball)
        in_real = inside(cross, real_r3[:, None])
        in_real5 = inside(cross, real_r5[:, None])
        expected = {
            "precision": float(in_real.any(dim=0).double().mean()),
            "recall": float(inside(cross, gen_r3[None, :]).any(dim=1).double().mean()),
            "density": float(in_real5.sum()) / (5 * len(x)),
            "coverage": float(in_real5.any(dim=1).double().mean()),
        }
        assert ours == pytest.approx(expected, abs=1e-12), ball
    assert _ours(x, y)["precision"] == 1.0  # every generated point of the lattice has a real copy


def test_unknown_ball_convention_is_refused():
    x, y = _gaussians(20, 20, 4)
    with pytest.raises(GenEvalError, match=r"pr_ball='half'.*'closed'"):
        _ours(x, y, pr_ball="half")


def test_hand_computed_one_dimensional_case():
    # real = [0, 1, 2, 3], gen = [0.5, 1.5, 4, 5].
    # k = 1: every radius is 1 (nearest other point). precision: 0.5 (|0.5-0| <= 1), 1.5 and 4
    # (|4-3| = 1 <= 1, a tie) are in a real ball, 5 is not: 3/4. recall: 0 and 1 (near 0.5),
    # 2 (near 1.5), 3 (|3-4| = 1 <= 1, a tie): 1. prdc's open balls drop both ties: 2/4 and 3/4.
    # k = 2: real radii [2, 1, 1, 2]. Closed real balls holding each generated point:
    # 0.5 -> {0, 1}, 1.5 -> {0, 1, 2, 3}, 4 -> {3}, 5 -> {3} (|5-3| = 2 <= 2, a tie): 8 in all,
    # density = 8 / (k M) = 1; open balls drop the tie: 7 / 8 (prdc). coverage: 0, 1, 2 hold 0.5
    # or 1.5, 3 holds 4: 1.
    real = torch.tensor([[0.0], [1.0], [2.0], [3.0]])
    gen = torch.tensor([[0.5], [1.5], [4.0], [5.0]])
    ours = _ours(gen, real, pr_k=1, dc_k=2)
    assert ours == {"precision": 0.75, "recall": 1.0, "density": 1.0, "coverage": 1.0}
    opened = _ours(gen, real, pr_k=1, dc_k=2, pr_ball="open", dc_ball="open")
    assert opened == {"precision": 0.5, "recall": 0.75, "density": 0.875, "coverage": 1.0}
    strict_pr = _prdc(gen, real, k=1)
    assert (strict_pr["precision"], strict_pr["recall"]) == (0.5, 0.75)
    assert _prdc(gen, real, k=2)["density"] == pytest.approx(0.875)


def test_identical_sets_are_perfect_and_far_clouds_score_zero():
    x, _ = _gaussians(300, 300, 16)
    same = _ours(x, x.clone())
    assert (same["precision"], same["recall"], same["coverage"]) == (1.0, 1.0, 1.0)
    # Each closed ball holds its centre and its k nearest neighbours, the k-th on its edge:
    # density (k + 1) / k = 1.2 (an open ball drops the edge: exactly 1).
    assert same["density"] == pytest.approx(1.2, abs=1e-3)
    assert _ours(x, x.clone(), dc_ball="open")["density"] == pytest.approx(1.0, abs=1e-3)
    far = _ours(x, x + 100.0)
    assert far == {"precision": 0.0, "recall": 0.0, "density": 0.0, "coverage": 0.0}


def test_radii_and_membership_equal_brute_force():
    x, y = _gaussians(200, 250, 32)
    full = torch.cdist(y, y)
    assert torch.equal(knn.knn_radii(y, 3), full.sort(dim=1).values[:, 3])  # self at column 0
    radii = knn.knn_radii(x, 3)
    cross = torch.cdist(y, x)
    assert torch.equal(knn.any_within(y, x, radii), (cross <= radii).any(dim=1))
    real_radii = knn.knn_radii(y, 5)
    assert torch.equal(
        knn.count_within(x, y, real_radii, strict=True), (cross < real_radii[:, None]).sum(dim=0)
    )


@pytest.mark.parametrize("data", DATASETS)
@pytest.mark.parametrize("chunk_size", [1, 7, 26])
def test_tiny_chunks_give_the_one_chunk_results(data, chunk_size):
    x, y = DATASETS[data]()
    x, y = x[:70], y[:60]
    counts = resample_counts(len(x), 5, 0)
    outputs = {}
    for size in (chunk_size, 10**6):
        radii = knn.knn_radii(x, 3, chunk_size=size)
        scan = knn.ball_scan(y, x, radii, "cols", counts=counts, chunk_size=size)
        dc = knn.ball_scan(y, x, knn.knn_radii(y, 5, chunk_size=size), "rows", True, counts, chunk_size=size)
        outputs[size] = radii, scan, dc
    (radii, scan, dc), (radii1, scan1, dc1) = outputs.values()
    # Blocks of <= 25 rows take cdist's direct path, larger ones the matmul path: the same
    # distances up to float32 rounding (exactly, on the integer lattice).
    torch.testing.assert_close(radii, radii1, rtol=1e-5, atol=0 if data == "lattice" else 1e-5)
    for a, b in [(scan, scan1), (dc, dc1)]:
        for field in ("row_any", "col_any", "col_count", "row_replicates"):
            assert torch.equal(getattr(a, field), getattr(b, field)), field
    small_budget = _ours(x, y, pr_memory_mb=0.01, dc_memory_mb=0.01)  # chunk size from the budget
    assert small_budget == _ours(x, y)
    assert knn.auto_chunk_size(6, memory_budget=int(0.01 * 2**20)) < 40


def test_auto_chunk_size_keeps_a_block_within_the_budget():
    for dim, budget, resamples in [(2048, 256 * 2**20, 0), (64, 2**20, 1000), (2048, 16 * 2**20, 100)]:
        c = knn.auto_chunk_size(dim, budget, resamples)
        assert 12 * c * c + (8 * dim + 4 * resamples) * c <= budget
        assert 12 * (c + 1) ** 2 + (8 * dim + 4 * resamples) * (c + 1) > budget
    assert knn.auto_chunk_size(2048) > 1000  # 32 MB default: 50,000 samples in ~45 row blocks
    assert knn.default_memory_budget("cpu") == knn.default_memory_budget(None) == 32 * 2**20
    assert knn.default_memory_budget("cuda:0") == 2**30  # large GEMMs on a GPU


def test_squared_thresholds_decide_exactly_as_comparing_square_roots():
    g = torch.Generator().manual_seed(0)
    radii = torch.cat([torch.rand(2000, generator=g) * 30, torch.tensor([0.0, 1.0, 2.0, 1e-20, math.inf])])
    centre = (radii * radii).nan_to_num(posinf=3e38)
    # Squared distances a few ulps around r^2 (where sqrt maps two floats to one) and far from it.
    for steps in range(-4, 5):
        a = centre.clone()
        direction = torch.full_like(a, math.inf if steps > 0 else -math.inf)
        for _ in range(abs(steps)):
            a = torch.nextafter(a, direction)
        a = a.clamp_min(0.0)
        assert torch.equal(a <= knn.squared_thresholds(radii), a.sqrt() <= radii)
        assert torch.equal(a <= knn.squared_thresholds(radii, strict=True), a.sqrt() < radii)
    far = torch.rand(len(radii), generator=g) * 900
    assert torch.equal(far <= knn.squared_thresholds(radii), far.sqrt() <= radii)


# dense matmul / sparse CSR product (float32 path); index_add of pairs / densified (screen)
@pytest.mark.parametrize("sparse_max_density", [0.0, 1.0])
@pytest.mark.parametrize("screen", ["float32", "bfloat16"])
def test_replicates_equal_brute_force_resampled_sets(monkeypatch, sparse_max_density, screen):
    monkeypatch.setattr(knn_tally, "SPARSE_MAX_DENSITY", sparse_max_density)
    x, y = _gaussians(150, 120, 16)
    counts, indices = resample_counts(len(x), 4, 3), resample_indices(len(x), 4, 3)
    gen_radii, real_radii = knn.knn_radii(x, 3), knn.knn_radii(y, 5)
    options = {"chunk_size": 40, "screen": screen}
    recall = knn.ball_scan(y, x, gen_radii, "cols", counts=counts, **options).row_replicates
    coverage = knn.ball_scan(y, x, real_radii, "rows", True, counts, **options).row_replicates
    for r in range(4):
        resampled = x[indices[r]]  # with duplicates; radii kept from the original set
        brute_recall = knn.any_within(y, resampled, gen_radii[indices[r]]).double().mean()
        brute_coverage = knn.ball_scan(y, resampled, real_radii, "rows", strict=True).row_any.double().mean()
        assert float(recall[r]) == float(brute_recall)
        assert float(coverage[r]) == float(brute_coverage)
    point = float(knn.any_within(y, x, gen_radii).double().mean())
    assert (recall <= point).all()  # a resample's distinct samples are a subset: recall can only drop
    assert recall.min() < point


def test_intervals_are_seeded_and_contain_the_point_values():
    x, y = _gaussians(300, 300, 32)

    def run(seed: int) -> dict:
        context = MetricContext(num_resamples=60, random_state=seed)
        results = precision_recall({"features": x}, {"features": y}, context)
        return {**results, **density_coverage({"features": x}, {"features": y}, context)}

    first, again, other = run(0), run(0), run(1)
    for name, result in first.items():
        low, high = result.interval
        assert low <= result.value <= high, name
        assert 0 < high - low < 0.3, name
        assert again[name].interval == result.interval
        assert other[name].interval != result.interval
    replicates = knn.ball_scan(
        y, x, knn.knn_radii(x, 3), "cols", counts=resample_counts(300, 60, 0)
    ).row_replicates
    assert first["recall"].interval == recentred_interval(replicates, first["recall"].value, 0.95)


def test_bad_inputs_raise():
    x, y = _gaussians(10, 10, 4)
    with pytest.raises(GenEvalError, match="more than k"):
        precision_recall({"features": x[:3]}, {"features": y})
    with pytest.raises(GenEvalError, match="equal D"):
        density_coverage({"features": x}, {"features": y[:, :3]})
