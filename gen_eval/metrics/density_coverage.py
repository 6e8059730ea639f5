"""Density and coverage (Naeem et al. 2020), as the reference ``prdc`` package computes them.

Only the reference (real) samples X_1..X_N carry balls, of radius NND_k(X_i), the distance to
their k-th nearest neighbour among the other reference samples (k = 5). With Y_1..Y_M generated:

    density  = 1 / (k M) * sum_j sum_i 1[Y_j in B(X_i, NND_k(X_i))]
    coverage = 1 / N * sum_i 1[exists j: Y_j in B(X_i, NND_k(X_i))]

Balls are closed (``d <= radius``), the convention of all four k-NN metrics (see
:mod:`gen_eval.metrics.precision_recall`); prdc's open balls (``d < radius``) with
``dc_ball="open"``. The two differ only on exact ties. Density counts how many reference balls hold
each generated sample, divided by k: about 1 when the two sets come from one distribution,
above 1 when generated samples crowd dense reference regions, so it is not bounded by 1.

Intervals resample the generated set with replacement, the reference (and its radii) fixed:
they measure the variability due to which generated samples were drawn. Density is a mean of
per-generated-sample counts / k; coverage per replicate counts the reference balls holding at
least one generated sample present in that replicate; a resample holds only ~63% distinct
samples, so coverage replicates are biased low and their percentile interval is shifted by that
bias (:func:`gen_eval.metrics.bootstrap.recentred_interval`).
"""

from __future__ import annotations

import torch

from gen_eval.metrics.base import MetricContext
from gen_eval.metrics.bootstrap import resample_counts
from gen_eval.metrics.knn import ball_scan, knn_radii
from gen_eval.metrics.precision_recall import (
    ball_results,
    check_knn_inputs,
    knn_options,
    membership,
    open_balls,
)
from gen_eval.metrics.result import Result


def density_coverage(
    generated: dict[str, torch.Tensor],
    reference: dict[str, torch.Tensor],
    context: MetricContext | None = None,
) -> dict[str, Result]:
    """Density and coverage of the generated ``"features"`` with respect to the reference ones.

    Parameters
    ----------
    generated, reference : dict of str to torch.Tensor
        Feature dicts; ``"features"`` (M, D) generated and (N, D) reference are used.
    context : MetricContext, optional
        Device, seed, bootstrap resamples (0: no interval) and options ``dc_k`` (5),
        ``dc_ball`` ("closed", default, or "open" as prdc),
        ``dc_chunk_size`` and ``dc_memory_mb`` (32; 1024 on CUDA).

    Returns
    -------
    dict
        ``{"density": Result, "coverage": Result}``, both ``direction="higher"``.
    """
    context = context or MetricContext(num_resamples=0)
    x, y = generated["features"], reference["features"]
    k = int(context.option("dc_k", 5))
    check_knn_inputs(x, y, k, "density/coverage")
    options = knn_options(context, "dc")
    strict = open_balls(context, "dc")
    reference_radii = knn_radii(y, k, **options)
    counts = None
    if context.num_resamples > 0:
        counts = resample_counts(len(x), context.num_resamples, context.random_state, context.device)
    # Rows: reference balls; columns: generated samples. One pass gives both metrics.
    scan = ball_scan(y, x, reference_radii, "rows", strict=strict, counts=counts, **options)
    per_sample_density = scan.col_count.double() / k

    density = int(scan.col_count.sum()) / (k * len(x))
    coverage = int(scan.row_any.sum()) / len(y)
    return ball_results(
        ("density", density, per_sample_density),
        ("coverage", coverage, scan.row_replicates),
        x,
        y,
        k,
        context,
        membership=membership(strict),
        covers=(
            "density at this N, M and k ({sizes}), the generated set resampled and the reference balls fixed, though they carry much of its noise: the interval is too narrow (reports/coverage.md); compare runs of equal N, M and k",
            "coverage at this N, M and k ({sizes}), the generated set resampled and the reference balls fixed; compare runs of equal N, M and k",
        ),
    )
