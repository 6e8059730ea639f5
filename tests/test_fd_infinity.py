"""FD-infinity: dgm-eval's subset sizes, its FIDs equal fid()'s, and an interval that covers."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import stats

from gen_eval.errors import GenEvalError
from gen_eval.metrics import MetricContext, get_metric
from gen_eval.metrics.fd_infinity import _subset_fid, fd_infinity, subset_sizes
from gen_eval.metrics.fid import covariance_factor, fid
from gen_eval.metrics.stats import Moments


def _dgm_eval_sizes(n: int, num_points: int = 15) -> list[int]:
    # dgm_eval/metrics/fd.py, compute_FD_infinity, as published.
    return np.linspace(min(5000, max(len(range(n)) // 10, 2)), n, num_points).astype("int32").tolist()


@pytest.mark.parametrize("n", [12, 30, 999, 4000, 50000, 123456])
def test_default_sizes_are_dgm_eval_s_including_repeats(n):
    assert subset_sizes(n).tolist() == _dgm_eval_sizes(n)


def test_repeated_sizes_are_kept_and_legacy_drops_them():
    sizes = subset_sizes(12)  # linspace(2, 12, 15): steps of 0.71 truncate to repeats
    assert len(sizes) == 15 and len(np.unique(sizes)) < 15
    assert subset_sizes(12, convention="legacy").tolist() == np.unique(sizes).tolist()
    assert subset_sizes(100000)[0] == 5000  # dgm-eval's cap
    assert subset_sizes(100000, convention="legacy")[0] == 10000  # the old uncapped N // 10
    x = torch.randn(300, 3, generator=torch.Generator().manual_seed(0))
    context = MetricContext(num_resamples=0, options={"fd_inf_min": 290})
    result = fd_infinity({"features": x}, {"features": x + 1}, context)["fd_inf"]
    assert result.details["sizes"] == np.linspace(290, 300, 15).astype(int).tolist()
    assert result.details["convention"] == "dgm-eval"
    assert any("dgm-eval" in w for w in result.warnings)


@pytest.mark.parametrize("n", [40, 300])  # the low-rank (n <= D) and the eigh path
def test_subset_fids_equal_fid(n):
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(n, 50, generator=gen, dtype=torch.float64)
    y = torch.randn(400, 50, generator=gen, dtype=torch.float64) * 1.1 + 0.2
    moments_y = Moments.from_features(y)
    value = _subset_fid(x, y, moments_y, covariance_factor(moments_y.cov))
    assert value == pytest.approx(fid({"features": x}, {"features": y})["fid"].value, rel=1e-10)


def test_interval_covers_the_closed_form_fid_where_the_ols_interval_did_not():
    # Gaussian features with a closed-form FID: generated N(mu, diag(s)), reference N(0, I) large
    # enough (20,000 x 8) that its own noise is negligible. Over 40 independent generated sets of
    # 400, the default interval holds the population FID in 36 (90%); the old OLS t-interval of the
    # intercept, which sees only the subsets' noise, in 23 (58%).
    dim, n, seeds = 8, 400, 40
    rng = np.random.default_rng(2)
    mu = 0.15 * rng.standard_normal(dim)
    scales = 1 + 0.3 * rng.uniform(-1, 1, dim)
    population = float(mu @ mu + ((np.sqrt(scales) - 1) ** 2).sum())
    metric = get_metric("fd_inf")
    t = stats.t.ppf(0.975, 13)
    hits, ols_hits, widths = 0, 0, []
    for seed in range(seeds):
        gen = torch.Generator().manual_seed(seed)
        x = (
            torch.from_numpy(mu)
            + torch.randn(n, dim, generator=gen, dtype=torch.float64) * torch.from_numpy(scales).sqrt()
        )
        y = torch.randn(20000, dim, generator=gen, dtype=torch.float64)
        result = metric({"features": x}, {"features": y}, MetricContext(random_state=seed, num_resamples=100))
        result = result["fd_inf"]
        low, high = result.interval
        hits += low <= population <= high
        ols_hits += abs(result.value - population) <= t * result.details["ols_intercept_se"]
        widths.append(high - low)
    assert hits / seeds >= 0.8
    assert ols_hits / seeds < 0.7  # the old interval fails this test
    assert result.interval_covers.startswith("the large-sample FID")
    assert result.details["interval_kind"] == "bootstrap+ols"


def test_no_resamples_falls_back_to_ols_with_a_warning_and_refit_runs():
    gen = torch.Generator().manual_seed(3)
    x = torch.randn(200, 4, generator=gen) + 0.3
    y = torch.randn(1000, 4, generator=gen)
    plain = fd_infinity({"features": x}, {"features": y}, MetricContext(num_resamples=0))["fd_inf"]
    assert plain.details["interval_kind"] == "ols"
    assert any("too narrow" in w for w in plain.warnings)
    refit = fd_infinity(
        {"features": x}, {"features": y}, MetricContext(num_resamples=8, options={"fd_inf_interval": "refit"})
    )["fd_inf"]
    assert refit.value == plain.value  # same seed, same subsets
    assert refit.interval[0] < refit.value < refit.interval[1]
    assert refit.details["refit_sd"] > 0


@pytest.mark.parametrize(
    "options", [{"fd_inf_interval": "jackknife"}, {"fd_inf_convention": "paper"}, {"fd_inf_min": 200}]
)
def test_bad_options_are_one_line_errors(options):
    x = torch.randn(200, 4, generator=torch.Generator().manual_seed(4))
    with pytest.raises(GenEvalError):
        fd_infinity({"features": x}, {"features": x}, MetricContext(num_resamples=0, options=options))


def test_warnings_name_small_subsets_and_a_small_reference():
    gen = torch.Generator().manual_seed(5)
    x = torch.randn(600, 40, generator=gen, dtype=torch.float64)
    context = MetricContext(num_resamples=20)
    # Subsets from 60 < 2 x 40 dims; a reference of 200 whose own bias (~slope / 200) dwarfs the interval.
    small = fd_infinity({"features": x}, {"features": torch.randn(200, 40, generator=gen)}, context)["fd_inf"]
    assert any("fd_inf_min to at least 80" in w for w in small.warnings)
    assert any("reference's own small-sample bias" in w for w in small.warnings)
    assert small.details["reference_bias_estimate"] > (small.interval[1] - small.interval[0]) / 2
    context.options["fd_inf_min"] = 100
    large = fd_infinity({"features": x}, {"features": torch.randn(50000, 40, generator=gen)}, context)[
        "fd_inf"
    ]
    assert not any("fd_inf_min" in w or "reference's own" in w for w in large.warnings)
