"""FID against closed forms and an independent matrix square root; mergeable moments."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg
import torch

from gen_eval.metrics.fid import fid, frechet_distance, trace_sqrt_product, trace_sqrt_product_lowrank
from gen_eval.metrics.stats import Moments


def _random_spd(dim: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(dim, dim))
    return a @ a.T / dim + 0.1 * np.eye(dim)


def test_fid_of_diagonal_gaussians_equals_closed_form():
    # For commuting (here diagonal) covariances, FID = |m1 - m2|^2 + sum (s1 - s2)^2 with s the std devs.
    rng = np.random.default_rng(0)
    mean1, mean2 = rng.normal(size=16), rng.normal(size=16)
    std1, std2 = rng.uniform(0.5, 2, 16), rng.uniform(0.5, 2, 16)
    expected = np.sum((mean1 - mean2) ** 2) + np.sum((std1 - std2) ** 2)
    value = frechet_distance(*map(torch.tensor, (mean1, np.diag(std1**2), mean2, np.diag(std2**2))))
    assert value == pytest.approx(expected, rel=1e-12)


def test_fid_of_general_gaussians_matches_scipy_sqrtm_reference():
    cov1, cov2 = _random_spd(32, 1), _random_spd(32, 2)
    mean1, mean2 = np.zeros(32), np.full(32, 0.3)
    reference = (
        np.sum((mean1 - mean2) ** 2)
        + np.trace(cov1)
        + np.trace(cov2)
        - 2 * np.trace(scipy.linalg.sqrtm(cov1 @ cov2)).real
    )
    value = frechet_distance(*map(torch.tensor, (mean1, cov1, mean2, cov2)))
    assert value == pytest.approx(reference, rel=1e-9)


def test_fid_of_a_set_with_itself_is_zero_and_symmetric():
    x = torch.randn(400, 24, generator=torch.Generator().manual_seed(0))
    y = torch.randn(300, 24, generator=torch.Generator().manual_seed(1)) * 1.5 + 0.2
    assert abs(fid({"features": x}, {"features": x})["fid"].value) < 1e-8
    assert fid({"features": x}, {"features": y})["fid"].value == pytest.approx(
        fid({"features": y}, {"features": x})["fid"].value
    )
    assert fid({"features": x}, {"features": y})["fid"].value > 1.0


def test_lowrank_trace_equals_eigen_path_when_samples_are_fewer_than_dimensions():
    gen = torch.Generator().manual_seed(3)
    x, y = torch.randn(40, 100, generator=gen), torch.randn(50, 100, generator=gen) + 0.1
    eig = trace_sqrt_product(Moments.from_features(x).cov, Moments.from_features(y).cov)
    assert trace_sqrt_product_lowrank(x, y) == pytest.approx(eig, rel=1e-6)
    result = fid({"features": x}, {"features": y})["fid"]
    assert result.details["method"] == "lowrank"
    assert any("fewer samples" in warning for warning in result.warnings)
    assert np.isfinite(result.value)


def test_moments_merged_per_batch_equal_all_at_once():
    x = torch.randn(1000, 12, generator=torch.Generator().manual_seed(4)).double() * 3 + 50  # large mean
    whole = Moments.from_features(x)
    merged = Moments.empty(12)
    for chunk in torch.split(x, 77):
        merged = merged.update(chunk)
    halves = Moments.from_features(x[:333]).merge(Moments.from_features(x[333:]))
    for candidate in (merged, halves):
        assert candidate.count == 1000
        assert torch.allclose(candidate.mean, whole.mean, rtol=0, atol=1e-10)
        assert torch.allclose(candidate.cov, whole.cov, rtol=0, atol=1e-10)
    assert torch.allclose(whole.cov, torch.from_numpy(np.cov(x.numpy(), rowvar=False)), atol=1e-10)


def test_fid_matches_sample_statistics_formula():
    gen = torch.Generator().manual_seed(5)
    x, y = torch.randn(500, 8, generator=gen), torch.randn(600, 8, generator=gen) * 2
    xs, ys = x.double().numpy(), y.double().numpy()
    c1, c2 = np.cov(xs, rowvar=False), np.cov(ys, rowvar=False)
    expected = (
        np.sum((xs.mean(0) - ys.mean(0)) ** 2)
        + np.trace(c1)
        + np.trace(c2)
        - 2 * np.trace(scipy.linalg.sqrtm(c1 @ c2)).real
    )
    result = fid({"features": x}, {"features": y})["fid"]
    assert result.details["method"] == "eigh" and not result.warnings
    assert result.value == pytest.approx(expected, rel=1e-9)


@pytest.mark.parametrize(("n", "dim", "method"), [(300, 8, "eigh"), (30, 50, "lowrank")])
def test_bootstrap_replicates_equal_fid_of_explicit_resamples(n, dim, method):
    from gen_eval.metrics.base import MetricContext
    from gen_eval.metrics.bootstrap import resample_indices
    from gen_eval.metrics.fid import _bootstrap_fid

    gen = torch.Generator().manual_seed(6)
    x = torch.randn(n, dim, generator=gen, dtype=torch.float64)
    y = torch.randn(n + 20, dim, generator=gen, dtype=torch.float64) + 0.3
    context = MetricContext(num_resamples=5, random_state=11)
    replicates = _bootstrap_fid(x, y, method == "lowrank", context)
    for b, indices in enumerate(resample_indices(n, 5, 11)):
        explicit = fid({"features": x[indices]}, {"features": y})["fid"]
        assert replicates[b].item() == pytest.approx(explicit.value, rel=1e-8, abs=1e-10)
    result = fid({"features": x}, {"features": y}, context)["fid"]
    assert result.details["method"] == method
    low, high = result.interval
    assert low < high
    assert result.interval == fid({"features": x}, {"features": y}, context)["fid"].interval  # seeded


def test_bootstrap_interval_covers_the_point_and_narrows_with_n():
    from gen_eval.metrics.base import MetricContext

    gen = torch.Generator().manual_seed(7)
    widths = []
    for n in (200, 2000):
        x = torch.randn(n, 4, generator=gen) + 0.5
        y = torch.randn(4000, 4, generator=gen)
        result = fid({"features": x}, {"features": y}, MetricContext(num_resamples=200))["fid"]
        assert result.interval[0] <= result.value <= result.interval[1]
        widths.append(result.interval[1] - result.interval[0])
    assert widths[1] < widths[0] / 2


def test_fd_infinity_extrapolates_a_planted_one_over_n_bias():
    from gen_eval.metrics.base import MetricContext
    from gen_eval.metrics.fd_infinity import fd_infinity

    # Same distribution: true FD is 0 and FID_N is pure finite-sample bias ~ c/N, so the
    # intercept is far closer to 0 than the plain FID at full N.
    gen = torch.Generator().manual_seed(8)
    x = torch.randn(4000, 16, generator=gen)
    y = torch.randn(20000, 16, generator=gen)
    context = MetricContext(num_resamples=0, options={"fd_inf_min": 400})
    result = fd_infinity({"features": x}, {"features": y}, context)["fd_inf"]
    plain = fid({"features": x}, {"features": y})["fid"].value
    assert abs(result.value) < plain / 4
    assert result.interval[0] <= 0 <= result.interval[1] or abs(result.value) < 2e-3
    assert result.details["slope"] > 0 and len(result.details["sizes"]) == 15
    # A real shift survives extrapolation: mean offset 0.5 in each of 16 dims gives FD = 4.
    shifted = fd_infinity({"features": x + 0.5}, {"features": y}, context)["fd_inf"]
    assert shifted.value == pytest.approx(4.0, abs=0.1)


def test_float64_kernels_equal_torch_s_own():
    from gen_eval.metrics import linalg

    gen = torch.Generator().manual_seed(3)
    a = torch.randn(70, 40, generator=gen, dtype=torch.float64)
    b = torch.randn(40, 50, generator=gen, dtype=torch.float64)
    sym = a.T @ a
    assert torch.allclose(linalg.eigvalsh(sym), torch.linalg.eigvalsh(sym), rtol=1e-12, atol=1e-12)
    assert torch.allclose(linalg.svdvals(a), torch.linalg.svdvals(a), rtol=1e-12, atol=1e-12)
    assert torch.allclose(linalg.matmul(a, b), a @ b, rtol=1e-12, atol=1e-12)
    assert linalg.matmul(a.float(), b.float()).dtype == torch.float64
