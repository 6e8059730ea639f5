"""KID and IS: parity with torch-fidelity's own functions, closed forms, bootstrap behaviour."""

from __future__ import annotations

import itertools
import warnings

import numpy as np
import pytest
import torch
from torch_fidelity.metric_isc import isc_features_to_metric
from torch_fidelity.metric_kid import kid_features_to_metric

from gen_eval.errors import GenEvalError
from gen_eval.metrics import get_metric
from gen_eval.metrics.base import MetricContext
from gen_eval.metrics.inception_score import inception_score
from gen_eval.metrics.kid import KID_MIN_INTERVAL_SAMPLES, _poly_kernel, _SubsetMMD, kid

SEED = 1234


def _gaussians(n: int = 300, dim: int = 64, shift: float = 0.1, seed: int = 0) -> tuple[torch.Tensor, ...]:
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(n, dim, generator=gen), torch.randn(n, dim, generator=gen) * 1.1 + shift


def _kid(x, y, seed=SEED, resamples=0, **options) -> object:
    context = MetricContext(random_state=seed, num_resamples=resamples, options=options)
    return kid({"features": x}, {"features": y}, context)["kid"]


def _torch_fidelity_kid(x, y, subsets, size, degree=3, gamma=None, coef0=1) -> dict:
    # torch-fidelity's kernel kwargs are kid_kernel_poly_*; other names would be silently ignored.
    return kid_features_to_metric(
        x,
        y,
        kid_subsets=subsets,
        kid_subset_size=size,
        kid_kernel="poly",
        kid_kernel_poly_degree=degree,
        kid_kernel_poly_gamma=gamma,
        kid_kernel_poly_coef0=coef0,
        rng_seed=SEED,
        verbose=False,
    )


@pytest.mark.parametrize(("size", "max_elements"), [(100, None), (300, None), (100, 0)])
def test_kid_matches_torch_fidelity_on_the_same_features_and_seed(size, max_elements):
    x, y = _gaussians()
    options = {"kid_subsets": 20, "kid_subset_size": size}
    if max_elements is not None:  # 0 forces the per-subset path
        options["kid_max_kernel_elements"] = max_elements
    ours = _kid(x, y, **options)
    # float64 inputs: torch-fidelity then computes in float64 too, so both compute the same sums
    theirs = _torch_fidelity_kid(x.double(), y.double(), 20, size)
    assert ours.value == pytest.approx(theirs["kernel_inception_distance_mean"], rel=1e-6)
    if size < len(x):
        assert ours.details["std"] == pytest.approx(theirs["kernel_inception_distance_std"], rel=1e-6)
    else:  # subset = whole set: every subset gives the same value, std is rounding noise
        assert ours.details["std"] < 1e-12 and theirs["kernel_inception_distance_std"] < 1e-12
    # float32 inputs (what real features are): torch-fidelity sums in float32, we in float64
    theirs32 = _torch_fidelity_kid(x, y, 20, size)
    assert ours.value == pytest.approx(theirs32["kernel_inception_distance_mean"], rel=1e-4)


def test_kid_kernel_options_match_torch_fidelity():
    x, y = _gaussians(200, 16)
    ours = _kid(x, y, kid_subsets=5, kid_subset_size=50, kid_degree=2, kid_gamma=0.3, kid_coef0=0.5)
    theirs = _torch_fidelity_kid(x.double(), y.double(), 5, 50, degree=2, gamma=0.3, coef0=0.5)
    assert ours.value == pytest.approx(theirs["kernel_inception_distance_mean"], rel=1e-6)
    assert (ours.details["degree"], ours.details["gamma"], ours.details["coef0"]) == (2, 0.3, 0.5)


def test_kid_equals_double_loop_mmd_on_a_tiny_case():
    x = torch.tensor([[0.5, 1.0], [-1.0, 2.0], [0.3, -0.7]])
    y = torch.tensor([[1.5, 0.2], [0.0, -1.0], [2.0, 2.0]])

    def k(a, b):
        return (float(a.double() @ b.double()) / 2 + 1) ** 3

    m = 3
    within_x = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    within_y = sum(k(y[i], y[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    cross = sum(k(x[i], y[j]) for i in range(m) for j in range(m)) / (m * m)
    expected = within_x + within_y - 2 * cross
    for max_elements in (None, 0):
        options = {"kid_subsets": 3, "kid_subset_size": 3}
        if max_elements is not None:
            options["kid_max_kernel_elements"] = max_elements
        assert _kid(x, y, **options).value == pytest.approx(expected, rel=1e-12)


def test_kid_of_a_set_with_itself_is_the_estimators_closed_form():
    # torch-fidelity's "unbiased" estimator keeps the diagonal in the cross term, so with
    # X = Y it is not 0 but 2 (mean K - mean diag K) / (m - 1) < 0, O(1/N).
    x, _ = _gaussians(150, 8)
    kernel = _poly_kernel(x.double(), x.double(), 1 / 8, 1, 3)
    expected = 2 * (kernel.mean() - kernel.diagonal().mean()) / (len(x) - 1)
    value = _kid(x, x, kid_subsets=3, kid_subset_size=len(x)).value
    assert value == pytest.approx(float(expected), rel=1e-10)
    assert value < 0 and abs(value) < 5 * float(kernel.diagonal().mean()) / len(x)


def test_kid_grows_with_a_mean_shift():
    values = [
        _kid(*_gaussians(200, 16, shift=shift), kid_subsets=10, kid_subset_size=100).value
        for shift in (0, 0.5, 1, 2)
    ]
    assert all(a < b for a, b in itertools.pairwise(values))
    assert abs(values[0]) < 0.1 * values[1]


def test_kid_clips_the_subset_size_with_a_warning():
    x, y = _gaussians(120, 8)
    result = _kid(x, y[:80], kid_subsets=4)
    assert result.details["subset_size"] == 80
    assert any("clipped to 80" in warning for warning in result.warnings)


def test_copies_of_one_sample_in_a_subset_are_not_paired():
    # A bootstrap subset [0, 0, 1, 1] holds two originals: its within-set average must be k(x0, x1),
    # the same as the subset [0, 1], not pulled up by the k(x0, x0), k(x1, x1) pairs of copies.
    x, y = _gaussians(6, 4)
    x, y = x.double(), y.double()
    for max_elements in (10**6, 0):
        evaluate = _SubsetMMD(x, y, 0.25, 1.0, 3, max_elements)
        with_copies = evaluate(torch.tensor([[0, 0, 1, 1]]), torch.tensor([[2, 3, 4, 5]]))
        kyy, kxy = _poly_kernel(y, y, 0.25, 1, 3), _poly_kernel(x, y, 0.25, 1, 3)
        ref = [2, 3, 4, 5]
        within_y = (kyy[ref][:, ref].sum() - kyy.diagonal()[ref].sum()) / 12
        cross = kxy[[0, 0, 1, 1]][:, ref].mean()
        expected = _poly_kernel(x[:1], x[1:2], 0.25, 1, 3)[0, 0] + within_y - 2 * cross
        assert float(with_copies[0]) == pytest.approx(float(expected), rel=1e-12)


def test_kid_bootstrap_interval_is_unbiased_by_resampled_copies():
    # Same distribution, subsets of the whole (resampled) set: a resample holds ~N pairs of
    # copies, and k(x, x) ~ 8 vs k(x, y) ~ 1 here, so counting them would shift every replicate
    # up by ~0.034, far above the point estimate (~0) and the whole interval.
    x, y = _gaussians(200, 32, shift=0.0, seed=5)
    result = _kid(x, y, seed=1, resamples=200, kid_subset_size=200)
    low, high = result.interval
    assert low < result.value < high
    assert abs((low + high) / 2 - result.value) < 0.01


def test_kid_bootstrap_is_deterministic_and_narrows_with_n():
    small, large = _gaussians(100, 16, shift=0.5), _gaussians(800, 16, shift=0.5)
    first = _kid(*small, resamples=50, kid_subsets=10, kid_subset_size=100)
    assert first.interval == _kid(*small, resamples=50, kid_subsets=10, kid_subset_size=100).interval
    assert first.interval[0] < first.value < first.interval[1]
    assert first.details["bootstrap_subsets"] == 10
    # Same options with the per-subset path give the same interval.
    direct = _kid(*small, resamples=50, kid_subsets=10, kid_subset_size=100, kid_max_kernel_elements=0)
    assert direct.interval == pytest.approx(first.interval, rel=1e-9)
    wide = first.interval[1] - first.interval[0]
    large_result = _kid(*large, resamples=50, kid_subsets=10, kid_subset_size=800)
    assert large_result.interval[1] - large_result.interval[0] < 0.6 * wide


def test_kid_needs_two_samples_and_one_dimension():
    x, y = _gaussians(10, 4)
    with pytest.raises(GenEvalError, match="at least 2 samples"):
        _kid(x[:1], y)
    with pytest.raises(GenEvalError, match="one dimension"):
        _kid(x, torch.randn(10, 5))
    with pytest.raises(GenEvalError, match="kid_subset_size >= 2"):
        _kid(x, y, kid_subset_size=1)


@pytest.mark.parametrize("n", [2, 3, KID_MIN_INTERVAL_SAMPLES - 1])
def test_kid_gives_no_interval_below_its_minimum_and_says_why(n):
    # n = 2 used to report an interval collapsed onto the point: half its resamples repeat one
    # sample (undefined, silently dropped), the other half are the original set.
    x, y = _gaussians(n, 8, shift=0.5)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nor any replicate left out behind the Result's back
        result = _kid(x, y, resamples=100)
    assert result.interval is None and np.isfinite(result.value)
    assert f"no KID interval below 10 generated samples (got {n})" in result.warnings[-1]


@pytest.mark.parametrize("n", [KID_MIN_INTERVAL_SAMPLES, KID_MIN_INTERVAL_SAMPLES + 1, 30])
def test_kid_interval_from_its_minimum_on_is_a_real_interval(n):
    x, y = _gaussians(n, 8, shift=0.5)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = _kid(x, y, resamples=100)
    low, high = result.interval
    assert low < result.value < high and high - low > 0.1 * abs(result.value)  # not collapsed
    assert not any("bootstrap replicates" in w or "no KID interval" in w for w in result.warnings)


def test_kid_undefined_replicates_are_counted_and_refuse_the_interval_above_one_percent():
    # Subsets of 2 from a resample of 100 hold two copies of one sample ~1% of the time.
    x, y = _gaussians(100, 8, shift=0.5)
    refused = _kid(x, y, seed=0, resamples=2000, kid_subset_size=2)  # 10 subsets: ~9.6% undefined
    assert refused.interval is None
    assert refused.warnings == [
        "KID: 189 of 2000 bootstrap replicates undefined (NaN); no interval (more than 1%)"
    ]
    kept = _kid(x, y, seed=0, resamples=2000, kid_subset_size=2, kid_bootstrap_subsets=1)  # ~1%
    assert kept.warnings == ["KID: 19 of 2000 bootstrap replicates undefined (NaN); left out of the interval"]
    assert kept.interval[0] < kept.value < kept.interval[1]


def test_is_replicates_stay_defined_at_the_smallest_sizes():
    # IS has no undefined resample (a split is never empty, xlogy(0, 0) = 0): nothing to drop.
    logits = torch.randn(10, 5, generator=torch.Generator().manual_seed(4)) * 3
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for n, splits in ((2, 1), (3, 1), (10, 2), (10, 5)):
            result = _is(logits[:n], resamples=200, is_splits=splits)
            assert result.interval[0] <= result.value <= result.interval[1]


def test_is_with_one_sample_per_split_gives_no_interval_and_says_why():
    # Splits of one sample score exactly 1 whatever the samples: an interval [1, 1] would mislead.
    logits = torch.randn(10, 5, generator=torch.Generator().manual_seed(4)) * 3
    result = _is(logits, resamples=200, is_splits=10)
    assert result.value == pytest.approx(1.0)
    assert result.interval is None
    assert result.warnings and "fewer splits (-o is_splits=...)" in result.warnings[0]
    assert _is(logits, resamples=200, is_splits=5).warnings == []


def _is(logits, seed=SEED, resamples=0, reference=None, key="logits", **options):
    context = MetricContext(random_state=seed, num_resamples=resamples, options=options)
    return inception_score({key: logits}, reference or {}, context)["is"]


@pytest.mark.parametrize(
    ("n", "classes", "shuffle"), [(1003, 10, True), (1003, 10, False), (2000, 1008, True)]
)
def test_is_matches_torch_fidelity(n, classes, shuffle):
    logits = torch.randn(n, classes, generator=torch.Generator().manual_seed(n)) * 3
    theirs = isc_features_to_metric(logits, splits=10, shuffle=shuffle, rng_seed=SEED)
    ours = _is(logits, is_shuffle=shuffle)
    assert ours.value == pytest.approx(theirs["inception_score_mean"], rel=1e-9)
    assert ours.details["std"] == pytest.approx(theirs["inception_score_std"], rel=1e-9)


def test_is_of_planted_logits():
    classes = 10
    one_hot = 30.0 * torch.nn.functional.one_hot(torch.arange(1000) % classes, classes).float()
    # each unshuffled split of 100 uses every class 10 times: IS = C
    assert _is(one_hot, is_shuffle=False).value == pytest.approx(classes, rel=1e-9)
    assert _is(one_hot).value == pytest.approx(classes, rel=0.05)  # shuffled splits: nearly uniform
    identical = torch.randn(1, classes).repeat(500, 1)
    assert _is(identical).value == pytest.approx(1.0, abs=1e-12)


def test_is_prefers_unbiased_logits_and_reports_reference():
    gen = torch.Generator().manual_seed(2)
    logits, shifted = torch.randn(200, 5, generator=gen), torch.randn(200, 5, generator=gen) * 4
    context = MetricContext(random_state=SEED, num_resamples=0)
    result = inception_score({"logits": logits, "logits_unbiased": shifted}, {"logits": logits}, context)[
        "is"
    ]
    assert result.details["logits_key"] == "logits_unbiased"
    assert result.value == pytest.approx(_is(shifted).value, rel=1e-12)
    assert result.details["reference_is"] == pytest.approx(_is(logits).value, rel=1e-12)
    assert get_metric("is") is inception_score and get_metric("kid") is kid


def test_is_bootstrap_is_deterministic_contains_the_value_and_narrows_with_n():
    gen = torch.Generator().manual_seed(3)
    logits = torch.randn(4000, 20, generator=gen) * 2
    small = _is(logits[:400], resamples=100)
    assert small.interval == _is(logits[:400], resamples=100).interval
    assert small.interval[0] < small.value < small.interval[1]
    large = _is(logits, resamples=100)
    assert large.interval[1] - large.interval[0] < 0.6 * (small.interval[1] - small.interval[0])


def test_is_errors_are_clear():
    with pytest.raises(GenEvalError, match="IS needs class logits"):
        inception_score({"features": torch.randn(20, 4)}, {}, MetricContext(num_resamples=0))
    with pytest.raises(GenEvalError, match="at least"):
        _is(torch.randn(1, 4), is_splits=1)
    with pytest.raises(GenEvalError, match="at least"):
        _is(torch.randn(5, 4))  # fewer samples than the 10 splits
    assert np.isfinite(_is(torch.randn(2, 4), is_splits=1).value)


def test_compare_refuses_kid_replicates_below_the_interval_minimum():
    # compare's own KID bootstrap follows kid(): below the minimum, a one-line reason, not NaNs.
    from gen_eval.comparison.bootstrap import replicates
    from gen_eval.errors import GenEvalError

    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(5, 4, generator=g), torch.randn(30, 4, generator=g)
    context = MetricContext(num_resamples=0, options={"kid_subset_size": 5})
    with pytest.raises(GenEvalError, match="no bootstrap below 10 generated samples"):
        replicates("kid", {"features": x}, {"features": y}, context, 20, 0)
