"""Bootstrap helpers: undefined (non-finite) replicates are counted and never dropped silently."""

from __future__ import annotations

import math
import warnings

import pytest
import torch

from gen_eval.metrics.bootstrap import (
    MAX_UNDEFINED_SHARE,
    percentile_interval,
    recentred_interval,
    undefined_replicates,
)


def test_all_finite_replicates_need_no_warning():
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a RuntimeWarning here would fail the test
        low, high = percentile_interval(torch.arange(101, dtype=torch.float64), 0.9)
        assert undefined_replicates(torch.arange(101.0), "KID") == (True, [])
    assert (low, high) == pytest.approx((5.0, 95.0))


def test_percentile_interval_warns_when_it_leaves_replicates_out():
    replicates = torch.cat([torch.arange(100, dtype=torch.float64), torch.tensor([math.nan, math.inf])])
    with pytest.warns(RuntimeWarning, match="2 of 102 bootstrap replicates are NaN or infinite"):
        low, high = percentile_interval(replicates, 0.9)
    assert (low, high) == pytest.approx((4.95, 94.05))  # the 100 finite ones only


@pytest.mark.parametrize(("undefined", "usable"), [(1, True), (2, True), (3, False), (200, False)])
def test_undefined_share_above_one_percent_refuses_the_interval(undefined, usable):
    assert MAX_UNDEFINED_SHARE == 0.01
    replicates = torch.randn(200, dtype=torch.float64)
    replicates[:undefined] = math.nan
    ok, notes = undefined_replicates(replicates, "KID")
    assert ok is usable
    assert notes == [
        f"KID: {undefined} of 200 bootstrap replicates undefined (NaN); "
        + ("left out of the interval" if usable else "no interval (more than 1%)")
    ]


def test_recentred_interval_reads_the_bias_from_the_finite_replicates():
    finite = torch.linspace(1.0, 2.0, 101, dtype=torch.float64)  # mean 1.5
    with pytest.warns(RuntimeWarning):
        low, high = recentred_interval(torch.cat([finite, torch.tensor([math.nan])]), 1.0, 0.9, 0.0, math.inf)
    # bias 0.5 from the finite mean; a NaN bias used to turn (max(0, nan), min(inf, nan)) into (0, inf)
    assert (low, high) == pytest.approx((1.05 - 0.5, 1.95 - 0.5))
    with pytest.warns(RuntimeWarning):
        nothing = recentred_interval(torch.full((5,), math.nan, dtype=torch.float64), 1.0, 0.9)
    assert all(math.isnan(v) for v in nothing)
