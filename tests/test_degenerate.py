"""Degenerate inputs (identical sets, shared samples, zero variance) are explained, not reported as numbers."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from gen_eval.cli import app
from gen_eval.metrics.base import MetricContext
from gen_eval.metrics.degenerate import identical_sets, shared_rows, zero_variance
from gen_eval.metrics.fid import fid, frechet_distance
from gen_eval.metrics.kid import kid
from gen_eval.metrics.stats import Moments


def _features(n: int, dim: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(n, dim, generator=torch.Generator().manual_seed(seed), dtype=torch.float64) * 10


def _both(x: torch.Tensor, y: torch.Tensor, resamples: int = 20) -> tuple:
    context = MetricContext(num_resamples=resamples)
    return fid({"features": x}, {"features": y}, context)["fid"], kid(
        {"features": x}, {"features": y}, context
    )["kid"]


@pytest.mark.parametrize(("n", "dim"), [(300, 1024), (360, 64)])  # N < D and N > D, as in the issue
def test_identical_sets_give_fid_zero_and_no_interval(n, dim):
    x = _features(n, dim)
    for y in (x.clone(), x[torch.randperm(n, generator=torch.Generator().manual_seed(1))]):
        f, k = _both(x, y)
        assert f.value == 0.0 and math.copysign(1.0, f.value) == 1.0  # never -0.0
        assert f.interval is None and any("identical: FID is 0 by construction" in w for w in f.warnings)
        assert k.interval is None and any("identical: KID's unbiased estimator" in w for w in k.warnings)
        assert k.value < 0  # what the warning explains


def test_a_distinct_set_keeps_its_intervals_and_no_degenerate_warning():
    x, y = _features(200, 16, 0), _features(200, 16, 1)
    f, k = _both(x, y)
    assert f.interval is not None and k.interval is not None
    assert not [
        w
        for w in f.warnings + k.warnings
        if "identical" in w or "also in the reference" in w or "zero variance" in w
    ]


def test_fid_is_clipped_at_zero_not_negative():
    # Almost identical sets whose FID rounds below 0 (-4.5e-13 with this seed, checked here).
    x = torch.randn(100, 8, generator=torch.Generator().manual_seed(3), dtype=torch.float64) * 10
    y = x.clone()
    y[0, 0] += 1e-13
    a, b = Moments.from_features(x), Moments.from_features(y)
    assert frechet_distance(a.mean, a.cov, b.mean, b.cov) < 0
    f = fid({"features": x}, {"features": y}, MetricContext(num_resamples=0))["fid"]
    assert f.value == 0.0 and math.copysign(1.0, f.value) == 1.0


def test_shared_samples_are_counted_and_warned_for_kid():
    x, other = _features(100, 8, 0), _features(100, 8, 1)
    y = torch.cat([other, x[[3, 50, 97]], x[[50]]])  # 3 distinct generated samples also in the reference
    assert shared_rows(x, y) == 3
    brute = sum(any(torch.equal(row, ref) for ref in y) for row in x)  # independent count
    assert brute == 3
    k = kid({"features": x}, {"features": y}, MetricContext(num_resamples=0))["kid"]
    assert "3 of the 100 generated samples are also in the reference" in " ".join(k.warnings)
    assert not identical_sets(x, y)


def test_zero_variance_has_no_interval():
    x = torch.ones(50, 8, dtype=torch.float64)
    y = _features(60, 8)
    assert zero_variance(x) and not zero_variance(y)
    f, k = _both(x, y)
    assert f.interval is None and k.interval is None
    assert any("zero variance" in w for w in f.warnings) and any("zero variance" in w for w in k.warnings)
    assert f.value == pytest.approx(float((y.mean(0) - 1).square().sum() + torch.trace(torch.cov(y.T))))


def test_cli_explains_identical_sets(tmp_path):
    images = np.random.default_rng(0).integers(0, 256, (60, 1, 8, 8), dtype=np.uint8)
    np.save(tmp_path / "a.npy", images)
    np.save(tmp_path / "b.npy", images[::-1].copy())
    result = CliRunner().invoke(
        app,
        [
            "evaluate",
            str(tmp_path / "a.npy"),
            "-r",
            str(tmp_path / "b.npy"),
            "--features",
            "identity",
            "--metrics",
            "fid,kid",
            "--no-save",
            "--no-collapse",
            "--num-resamples",
            "10",
            "-q",
            "--no-cache",
        ],
    )
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert "-0.0000" not in text and "identical: FID is 0 by construction" in text
    assert "identical: KID's unbiased estimator" in text
