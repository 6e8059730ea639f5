"""Per-class FID, KID, precision/recall and coverage of a labelled generated set, and their mean.

A class-conditional model is asked for class c; its class-c samples should match the real class-c
samples, not merely the whole reference. Each metric here splits both sets by label
(``MetricContext.generated_labels``: the requested classes; ``reference_labels``: the true ones),
runs the plain metric (:mod:`~gen_eval.metrics.fid`, :mod:`~gen_eval.metrics.kid`,
:mod:`~gen_eval.metrics.precision_recall`, :mod:`~gen_eval.metrics.density_coverage`) on each
class's rows, unchanged, and reports the unweighted mean over classes (each class counts once,
as the per-class FID of the conditional-GAN literature does) with every class's value in
``details["per_class"]`` (class -> value; JSON keys are strings, values numbers).

Classes are skipped, and named in a warning, when they are in one set only or when either set
has fewer samples of them than the metric is defined for: FID and KID need 2 per set (a
covariance, a pair of distinct samples), precision/recall and coverage more than their k
(``pr_k`` 3, ``dc_k`` 5) so that every k-NN radius exists. Above that, FID is still biased
upward while a class has no more samples than feature dimensions (its covariance is then
rank-deficient); the plain FID's warning says so and is passed on with the classes it concerns.

Interval: every class's own bootstrap interval, as the plain metric computes it (the class's
generated samples resampled, its reference fixed, seed ``random_state + class``), and for the
mean the classes' errors combined as independent (they are: each class is resampled on its
own): each side's half-width is the root sum of squares of the classes' half-widths on that
side, divided by the number of classes; a class without an interval of its own (KID below 10
samples) adds no spread, and a warning says so (a normal approximation to the stratified bootstrap;
``tests/test_conditional_metrics.py`` checks it against the brute-force stratified bootstrap
of per-class precision).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING

import numpy as np
from threadpoolctl import threadpool_limits

from gen_eval.metrics.result import Result

if TYPE_CHECKING:
    import torch

    from gen_eval.metrics.base import MetricContext

# A class whose largest set has at most this many feature values (rows x dimensions) runs its
# metric with one BLAS thread (see ``per_class``).
SMALL_CLASS_ELEMENTS = 1_000_000
RANGES = {"fid": (0.0, math.inf), "kid": (-math.inf, math.inf)}  # k-NN shares lie in [0, 1]


def class_rows(
    context: MetricContext, num_generated: int, num_reference: int
) -> tuple[dict[int, tuple[np.ndarray, np.ndarray]], list[int], list[int]] | None:
    """Rows of each class present in both sets, and the classes in the generated or reference set only.

    Parameters
    ----------
    context : MetricContext
        Its ``generated_labels`` and ``reference_labels`` (one per feature row).
    num_generated, num_reference : int
        Feature rows of each set (labels of another length are not these rows' labels).

    Returns
    -------
    tuple or None
        ({class: (generated rows, reference rows)}, generated-only classes, reference-only
        classes), or None when either set has no labels for its rows.
    """
    gen, ref = context.generated_labels, context.reference_labels
    if gen is None or ref is None:
        return None
    gen, ref = np.asarray(gen).reshape(-1), np.asarray(ref).reshape(-1)
    if len(gen) != num_generated or len(ref) != num_reference:
        return None
    gen_classes, ref_classes = set(np.unique(gen).tolist()), set(np.unique(ref).tolist())
    shared = sorted(gen_classes & ref_classes)
    rows = {c: (np.flatnonzero(gen == c), np.flatnonzero(ref == c)) for c in shared}
    return rows, sorted(gen_classes - ref_classes), sorted(ref_classes - gen_classes)


def _listing(classes: list[int]) -> str:
    return ", ".join(str(c) for c in classes)


def combined_interval(
    values: list[float], intervals: list[tuple[float, float] | None], bounds: tuple[float, float]
) -> tuple[float, float] | None:
    """Interval of the mean of independent per-class values from their own intervals (root sum of squares).

    Parameters
    ----------
    values : list of float
        Per-class point values.
    intervals : list of (low, high) or None
        Each class's interval; a missing one (identical sets, no resamples) counts as no spread.
    bounds : (float, float)
        The statistic's range; the ends are clipped to it.

    Returns
    -------
    (low, high) or None
        None when no class has an interval.
    """
    if not values or all(i is None for i in intervals):
        return None
    below = [v - i[0] if i is not None else 0.0 for v, i in zip(values, intervals, strict=True)]
    above = [i[1] - v if i is not None else 0.0 for v, i in zip(values, intervals, strict=True)]
    mean, count = float(np.mean(values)), len(values)
    low = mean - math.sqrt(sum(max(b, 0.0) ** 2 for b in below)) / count
    high = mean + math.sqrt(sum(max(a, 0.0) ** 2 for a in above)) / count
    return max(bounds[0], low), min(bounds[1], high)


def per_class(
    generated: dict[str, torch.Tensor],
    reference: dict[str, torch.Tensor],
    context: MetricContext,
    metric: Callable[..., dict[str, Result]],
    names: dict[str, str],
    minimum: int,
    why: str,
) -> dict[str, Result]:
    """Run ``metric`` on each class's rows and summarise each of its ``names`` as a per-class mean.

    Parameters
    ----------
    generated, reference : dict of str to torch.Tensor
        Feature dicts (``"features"`` is split by class).
    context : MetricContext
        The run's context, with both sets' labels.
    metric : callable
        A plain metric function ``(generated, reference, context) -> {name: Result}``.
    names : dict of str to str
        The plain result's name -> the per-class summary's name (``{"fid": "fid_per_class"}``).
    minimum : int
        Fewest samples of a class in each set for the metric to be defined; fewer: skipped.
    why : str
        Why that minimum, for the warning that names the skipped classes.

    Returns
    -------
    dict
        One Result per summary name; empty when a set has no labels or no class can be scored.
    """
    x, y = generated["features"], reference["features"]
    split = class_rows(context, len(x), len(y))
    if split is None:
        return {}
    rows, generated_only, reference_only = split
    per: dict[str, dict[int, Result]] = {name: {} for name in names}
    too_few = []
    largest = max((max(len(g), len(r)) for g, r in rows.values()), default=0)
    # Small classes: numpy's BLAS threads cost more than they save on matrices this size (per-class
    # FID, 100 vs 400 rows at 128-d, 100 resamples: 0.3 s on one thread, 21 s with OpenBLAS's
    # default threads on the busy 2-core machine), so one thread; large ones keep the threads.
    threads = 1 if largest * x.shape[1] <= SMALL_CLASS_ELEMENTS else None
    with threadpool_limits(limits=threads, user_api="blas"):
        # Each class is its own small pair of sets: no cached reference-derived tensors (FID's
        # factor of the whole reference's covariance would be wrong for a class's rows).
        for c, (gen_rows, ref_rows) in rows.items():
            if min(len(gen_rows), len(ref_rows)) < minimum:
                too_few.append(c)
                continue
            sub = replace(context, cache=None, reference_key=None, random_state=context.random_state + int(c))
            results = metric({"features": x[gen_rows]}, {"features": y[ref_rows]}, sub)
            for name in names:
                per[name][c] = results[name]
    out = {}
    for name, summary in names.items():
        classes = per[name]
        if not classes:
            continue
        warnings = []
        if too_few:
            warnings.append(f"classes {_listing(too_few)} skipped: {why}")
        if generated_only:
            warnings.append(f"classes {_listing(generated_only)} are in the generated set only: no value")
        if reference_only:
            warnings.append(
                f"classes {_listing(reference_only)} are in the reference only: never requested or produced"
            )
        # The plain metric's warnings, once per kind of warning (they differ only in the counts).
        by_kind: dict[str, tuple[list[int], str]] = {}
        for c, result in classes.items():
            for message in result.warnings:
                by_kind.setdefault(re.sub(r"\d[\d,.]*", "#", message), ([], message))[0].append(c)
        warnings += [
            f"classes {_listing(cs)}: {message}"
            + (f" (class {cs[0]}'s numbers; the others alike)" if len(cs) > 1 else "")
            for cs, message in by_kind.values()
        ]
        values = [r.value for r in classes.values()]
        intervals = [r.interval for r in classes.values()]
        first = next(iter(classes.values()))
        interval = (
            combined_interval(values, intervals, RANGES.get(name, (0.0, 1.0)))
            if context.num_resamples > 0
            else None
        )
        without = [c for c, r in classes.items() if r.interval is None]
        if interval is not None and without:  # KID: under 10 samples; FID: identical sets
            warnings.append(
                f"classes {_listing(without)} have no interval of their own: the mean's interval "
                "leaves their sampling noise out"
            )
        out[summary] = Result(
            summary,
            float(np.mean(values)),
            first.direction,
            sum(r.num_generated for r in classes.values()),
            sum(r.num_reference for r in classes.values()),
            interval=interval,
            interval_covers=None
            if interval is None
            else (
                f"the mean over {len(classes)} classes of {name} at these per-class sizes, each class's generated "
                "samples resampled within the class and its reference fixed (each class's own bootstrap "
                "interval), the classes' errors combined as independent (root sum of squares, a normal "
                "approximation)"
            ),
            warnings=warnings,
            details={
                "means": f"unweighted mean over classes of {name} computed on each class's rows alone",
                "per_class": {str(c): r.value for c, r in classes.items()},
                "per_class_interval": {
                    str(c): list(r.interval) for c, r in classes.items() if r.interval is not None
                },
                "per_class_counts": {str(c): [r.num_generated, r.num_reference] for c, r in classes.items()},
                "worst_class": str(
                    (max if first.direction == "lower" else min)(classes, key=lambda c: classes[c].value)
                ),
                "skipped_classes": [int(c) for c in too_few],
                "generated_only_classes": [int(c) for c in generated_only],
                "reference_only_classes": [int(c) for c in reference_only],
                "num_resamples": context.num_resamples,
            },
        )
    return out


def fid_per_class(generated: dict, reference: dict, context: MetricContext) -> dict[str, Result]:
    """FID on each class's rows (:func:`gen_eval.metrics.fid.fid`) and its mean over classes."""
    from gen_eval.metrics.fid import fid

    why = "FID needs 2 samples of a class in each set (a covariance)"
    return per_class(generated, reference, context, fid, {"fid": "fid_per_class"}, 2, why)


def kid_per_class(generated: dict, reference: dict, context: MetricContext) -> dict[str, Result]:
    """KID on each class's rows (:func:`gen_eval.metrics.kid.kid`) and its mean over classes."""
    from gen_eval.metrics.kid import kid

    why = "KID needs 2 samples of a class in each set (a pair of distinct samples)"
    return per_class(generated, reference, context, kid, {"kid": "kid_per_class"}, 2, why)


def precision_recall_per_class(generated: dict, reference: dict, context: MetricContext) -> dict[str, Result]:
    """k-NN precision and recall on each class's rows and their means over classes."""
    from gen_eval.metrics.precision_recall import precision_recall

    k = int(context.option("pr_k", 3))
    names = {"precision": "precision_per_class", "recall": "recall_per_class"}
    why = f"precision/recall with pr_k={k} needs more than {k} samples of a class in each set"
    return per_class(generated, reference, context, precision_recall, names, k + 1, why)


def coverage_per_class(generated: dict, reference: dict, context: MetricContext) -> dict[str, Result]:
    """Coverage (density/coverage's, Naeem et al. 2020) on each class's rows and its mean over classes."""
    from gen_eval.metrics.density_coverage import density_coverage

    k = int(context.option("dc_k", 5))
    why = f"coverage with dc_k={k} needs more than {k} samples of a class in each set"
    names = {"coverage": "coverage_per_class"}
    return per_class(generated, reference, context, density_coverage, names, k + 1, why)
