"""Bootstrap helpers shared by the metrics: resampling the generated set, the reference fixed.

Each metric computes its replicates in its own vectorised way (weighted moments for FID,
per-sample indicators for precision/density, ...); these helpers keep the resampling and
the interval rule identical across metrics. Intervals are percentile intervals.
"""

from __future__ import annotations

import warnings

import torch

# Leaving out a share f of the replicates can move each end of the interval by up to f in
# probability (a 95% interval reads as anywhere from 95 - 100f to 95 + 100f %): 1% keeps it within 94-96%.
MAX_UNDEFINED_SHARE = 0.01


def resample_counts(
    n: int, num_resamples: int, random_state: int, device: str | torch.device = "cpu"
) -> torch.Tensor:
    """Multinomial counts (num_resamples, n): how often each of n samples is drawn in each resample.

    A resample with replacement of size n is the same as weighting sample i by its count; the
    counts sum to n in every row. Drawn with a seeded CPU generator so results do not depend
    on the device.
    """
    generator = torch.Generator().manual_seed(random_state)
    indices = torch.randint(0, n, (num_resamples, n), generator=generator)
    counts = torch.zeros(num_resamples, n, dtype=torch.float64)
    counts.scatter_add_(1, indices, torch.ones_like(indices, dtype=torch.float64))
    return counts.to(device)


def resample_indices(n: int, num_resamples: int, random_state: int) -> torch.Tensor:
    """Indices (num_resamples, n) drawn with replacement, seeded (the same draws as :func:`resample_counts`)."""
    generator = torch.Generator().manual_seed(random_state)
    return torch.randint(0, n, (num_resamples, n), generator=generator)


def undefined_replicates(replicates: torch.Tensor, metric: str) -> tuple[bool, list[str]]:
    """Whether an interval may be read from ``replicates``, and a warning if some are NaN or infinite.

    A resample can make a statistic undefined (KID: a subset holding copies of one sample has
    no pair of distinct samples). The intervals here leave such replicates out, which
    conditions the bootstrap on the resamples where it is defined; that is acceptable for a
    share of at most :data:`MAX_UNDEFINED_SHARE`, not above.

    Parameters
    ----------
    replicates : torch.Tensor
        Bootstrap replicates.
    metric : str
        Name used in the warning (``"KID"``).

    Returns
    -------
    usable : bool
        False when more than ``MAX_UNDEFINED_SHARE`` of the replicates are undefined.
    warnings : list of str
        Empty when every replicate is finite, else one sentence for ``Result.warnings``.
    """
    undefined = int((~torch.isfinite(replicates)).sum())
    total = replicates.numel()
    if undefined == 0:
        return True, []
    usable = undefined <= MAX_UNDEFINED_SHARE * total
    action = "left out of the interval" if usable else f"no interval (more than {MAX_UNDEFINED_SHARE:.0%})"
    return usable, [f"{metric}: {undefined} of {total} bootstrap replicates undefined (NaN); {action}"]


def percentile_interval(replicates: torch.Tensor, confidence: float = 0.95) -> tuple[float, float]:
    """The central ``confidence`` percentile interval of bootstrap replicates.

    Non-finite replicates are left out with a ``RuntimeWarning`` (never silently): metrics
    that can produce them check first with :func:`undefined_replicates` and carry its warning
    in their Result.
    """
    values = replicates.detach().to("cpu", torch.float64).flatten()
    finite = torch.isfinite(values)
    if not bool(finite.all()):
        warnings.warn(
            f"{int((~finite).sum())} of {len(values)} bootstrap replicates are NaN or infinite; "
            "left out of the interval",
            RuntimeWarning,
            stacklevel=2,
        )
        values = values[finite]
    if len(values) == 0:
        return float("nan"), float("nan")
    tail = (1 - confidence) / 2
    low, high = torch.quantile(values, torch.tensor([tail, 1 - tail], dtype=torch.float64))
    return float(low), float(high)


def basic_interval(
    replicates: torch.Tensor, point: float, confidence: float = 0.95, lower_bound: float | None = None
) -> tuple[float, float]:
    """The basic (reverse-percentile) bootstrap interval [2*point - q_hi, 2*point - q_lo].

    For estimators whose bootstrap replicates are biased relative to the point estimate.
    FID is the case in point: a resample with replacement holds only ~63% distinct samples,
    and FID's small-sample bias grows as N shrinks, so its replicates sit almost entirely
    above the point and a percentile interval would barely contain it. Reflecting the
    quantiles around the point corrects that shift. ``lower_bound`` clamps (FID >= 0).
    """
    q_low, q_high = percentile_interval(replicates, confidence)
    low, high = 2 * point - q_high, 2 * point - q_low
    if lower_bound is not None:
        low, high = max(low, lower_bound), max(high, lower_bound)
    return low, high


def mean_interval(
    per_sample: torch.Tensor, context_resamples: int, random_state: int, confidence: float
) -> tuple[float, float]:
    """Bootstrap interval of the mean of per-sample values (precision, density, ...)."""
    counts = resample_counts(len(per_sample), context_resamples, random_state, per_sample.device)
    replicates = counts @ per_sample.to(torch.float64) / len(per_sample)
    return percentile_interval(replicates, confidence)


def recentred_interval(
    replicates: torch.Tensor, point: float, confidence: float, lower: float = 0.0, upper: float = 1.0
) -> tuple[float, float]:
    """Percentile interval of ``replicates`` shifted by their bias (mean - ``point``), within [lower, upper].

    Recall and coverage of a resample can only drop: its distinct generated samples are a subset
    (about 63%) of the original ones and the radii are fixed, so the replicates lie below the point
    value and the plain percentile interval would exclude it. FID's replicates lie above it (a
    resample's duplicates inflate the covariance mismatch). The spread is kept, the location
    corrected (the usual bootstrap bias correction applied to both ends). Unlike the basic
    (reflected) interval, it keeps the point inside when the bias exceeds the spread.

    Parameters
    ----------
    replicates : torch.Tensor
        (R,) bootstrap replicates of a fraction.
    point : float
        The value on the original sets.
    confidence : float
        Interval coverage (0.95).
    lower, upper : float
        The statistic's range (a fraction: [0, 1]; FID: [0, inf)).

    Returns
    -------
    tuple of float
        (low, high), clipped to [lower, upper].
    """
    low, high = percentile_interval(replicates, confidence)
    finite = replicates[torch.isfinite(replicates)]  # the ones the percentiles were read from
    bias = float(finite.mean()) - point if len(finite) else float("nan")
    if bias != bias:  # no finite replicate: max/min below would silently pick the bounds over NaN
        return float("nan"), float("nan")
    return max(lower, low - bias), min(upper, high - bias)
