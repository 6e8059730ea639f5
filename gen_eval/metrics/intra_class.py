"""Intra-class diversity: how varied each class's generated samples are, relative to the real ones.

Per class c, the mean pairwise Euclidean distance between the features of distinct generated
samples requested as c, divided by the same for the real samples of class c: 1 when the model
varies within the class as much as real data, near 0 when it draws the same sample (or a few near
copies) for the class. The result is the unweighted mean of the ratios over the classes in both
sets; ``details["per_class"]`` holds each class's ratio, ``details["collapsed_classes"]`` those
below :data:`COLLAPSED_RATIO`, which the collapse check reports as within-class collapse.

Why the mean pairwise distance and not the Vendi score (``gen_eval/collapse/vendi.py``, which the
per-class collapse check runs as well): it is a U-statistic whose expectation does not depend on
the number of samples, so classes of different sizes, and a generated class of 50 against a real
one of 400, compare directly, and a random subset (``intra_class_samples``, to bound the n x n
distances) leaves it unbiased; the Vendi score grows with n and must compare equal-size subsets.
Its blind spot, two far-apart images per class scoring as diverse, is the Vendi score's strength.

Interval: a stratified bootstrap: in each replicate every class's generated samples are resampled
within the class (seed ``random_state + class``), the reference fixed; a resample's repeated
samples form zero-distance pairs, so the percentile interval is shifted by the replicates' bias
(:func:`gen_eval.metrics.bootstrap.recentred_interval`), as for FID.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch

from gen_eval.metrics.bootstrap import recentred_interval, resample_counts
from gen_eval.metrics.conditional import class_rows
from gen_eval.metrics.result import Result

if TYPE_CHECKING:
    from gen_eval.metrics.base import MetricContext

# A class whose generated samples vary less than this share of the real ones' is collapsed within
# the class (the same threshold as the Vendi ratio of the collapse verdict).
COLLAPSED_RATIO = 0.5


def _subset(rows: np.ndarray, limit: int, rng: np.random.Generator) -> np.ndarray:
    return rows if len(rows) <= limit else np.sort(rng.choice(rows, size=limit, replace=False))


def mean_pairwise_distance(features: torch.Tensor) -> float:
    """Mean Euclidean distance over the n (n - 1) ordered pairs of distinct rows."""
    n = len(features)
    return float(torch.cdist(features, features).sum() / (n * (n - 1)))


def intra_class_diversity(generated: dict, reference: dict, context: MetricContext) -> dict[str, Result]:
    """Per class, generated / real mean pairwise feature distance, and its mean over classes.

    Parameters
    ----------
    generated, reference : dict of str to torch.Tensor
        Feature dicts (``"features"``).
    context : MetricContext
        Both sets' labels, seed, resamples, option ``intra_class_samples`` (1,000 per class and set).

    Returns
    -------
    dict
        ``{"intra_class_diversity": Result}``, or empty without labels or a class with 2 samples in both sets.
    """
    x = generated["features"].double().cpu()
    y = reference["features"].double().cpu()
    split = class_rows(context, len(x), len(y))
    if split is None:
        return {}
    rows, generated_only, reference_only = split
    limit = int(context.option("intra_class_samples", 1000))
    rng = np.random.default_rng(context.random_state)
    ratios, generated_spread, real_spread, replicates, too_few, degenerate = {}, {}, {}, {}, [], []
    for c, (gen_rows, ref_rows) in rows.items():
        if min(len(gen_rows), len(ref_rows)) < 2:
            too_few.append(c)
            continue
        xg = x[_subset(gen_rows, limit, rng)]
        real = mean_pairwise_distance(y[_subset(ref_rows, limit, rng)])
        if real <= 0:  # real samples of the class all identical: no scale to compare with
            degenerate.append(c)
            continue
        distances = torch.cdist(xg, xg)
        n = len(xg)
        spread = float(distances.sum() / (n * (n - 1)))
        ratios[c], generated_spread[c], real_spread[c] = spread / real, spread, real
        if context.num_resamples > 0:
            counts = resample_counts(n, context.num_resamples, context.random_state + int(c))
            # Resample r weights pair (a, b) by w_a w_b; same-sample pairs have distance 0.
            replicates[c] = torch.einsum("ra,ab,rb->r", counts, distances, counts) / (n * (n - 1)) / real
    if not ratios:
        return {}
    value = float(np.mean(list(ratios.values())))
    interval = None
    if replicates:
        stacked = torch.stack([replicates[c] for c in ratios]).mean(0)
        interval = recentred_interval(stacked, value, context.confidence, lower=0.0, upper=float("inf"))
    collapsed = [c for c, r in ratios.items() if r < COLLAPSED_RATIO]
    warnings = []
    if collapsed:
        shown = ", ".join(f"class {c} {ratios[c]:.2f}" for c in collapsed)
        warnings.append(f"collapsed within class (diversity below {COLLAPSED_RATIO} of real): {shown}")
    for classes, why in (
        (too_few, "fewer than 2 samples in a set"),
        (degenerate, "its real samples are all identical"),
        (generated_only, "in the generated set only"),
        (reference_only, "in the reference only"),
    ):
        if classes:
            warnings.append(f"classes {', '.join(map(str, classes))} skipped: {why}")
    return {
        "intra_class_diversity": Result(
            "intra_class_diversity",
            value,
            "higher",
            sum(min(len(rows[c][0]), limit) for c in ratios),
            sum(min(len(rows[c][1]), limit) for c in ratios),
            interval=interval,
            interval_covers=None
            if interval is None
            else (
                "the mean ratio over classes at these per-class sizes, each class's generated samples "
                "resampled within the class (stratified bootstrap, shifted by its bias), the reference fixed"
            ),
            warnings=warnings,
            details={
                "means": "per class: mean pairwise feature distance of generated samples / of real samples; "
                "1 matches real diversity, near 0 is within-class collapse; the value is the mean over classes",
                "per_class": {str(c): r for c, r in ratios.items()},
                "generated_distance": {str(c): d for c, d in generated_spread.items()},
                "reference_distance": {str(c): d for c, d in real_spread.items()},
                "collapsed_classes": [int(c) for c in collapsed],
                "collapsed_below": COLLAPSED_RATIO,
                "skipped_classes": [int(c) for c in too_few + degenerate],
                "num_resamples": context.num_resamples,
            },
        )
    }
