"""Improved precision and recall (Kynkäänniemi et al. 2019), as torch-fidelity computes them.

Each sample's ball has the radius to its k-th nearest neighbour in its own set (k = 3).
precision = fraction of generated samples inside at least one reference ball;
recall = fraction of reference samples inside at least one generated ball. Generated is
torch-fidelity's ``features_1``, reference its ``features_2``.

Ties (one convention for all four k-NN metrics, here and in density/coverage): balls are closed,
a sample at exactly the radius is inside (``d <= radius``), as in Kynkäänniemi et al.'s
definition and torch-fidelity. prdc uses open balls (``d < radius``); the two differ only when a
distance equals a radius exactly, which duplicated or quantised features make common: with
integer features and duplicates, a radius is often 0, and an open ball then holds nothing, not even
an exact copy of its own centre (prdc's precision on a 6-d lattice: 0.40 where closed balls give
1.0). ``pr_ball="open"`` (``dc_ball`` for density/coverage) reproduces prdc's numbers.

Intervals resample the generated set with replacement, the reference fixed, and keep the k-NN
radii of the original sets: they measure the variability due to which generated samples were
drawn. The generated radii are not recomputed per replicate because duplicated samples would
shrink them to 0. Precision is a mean of per-sample indicators (weighted by the resample
counts); recall per replicate counts the reference samples inside the ball of at least one
generated sample present in that replicate (see :func:`gen_eval.metrics.knn.ball_scans`). A
resample holds only ~63% distinct samples, so recall replicates are biased low; its percentile
interval is shifted by that bias (:func:`gen_eval.metrics.bootstrap.recentred_interval`).
"""

from __future__ import annotations

import torch

from gen_eval.errors import GenEvalError
from gen_eval.metrics.base import MetricContext
from gen_eval.metrics.bootstrap import mean_interval, recentred_interval, resample_counts
from gen_eval.metrics.knn import Balls, ball_scans, default_memory_budget, knn_radii
from gen_eval.metrics.result import Result


def check_knn_inputs(x: torch.Tensor, y: torch.Tensor, k: int, metric: str) -> None:
    """Raise a :class:`GenEvalError` unless x, y are (N, D) sets of equal D with more than k samples."""
    if x.ndim != 2 or y.ndim != 2 or x.shape[1] != y.shape[1]:
        raise GenEvalError(
            f"{metric} needs (N, D) features of equal D; got {tuple(x.shape)} and {tuple(y.shape)}"
        )
    if k < 1 or min(len(x), len(y)) <= k:
        raise GenEvalError(
            f"{metric} with k={k} needs k >= 1 and more than k samples in each set; "
            f"got {len(x)} generated and {len(y)} reference"
        )


BALLS = {"closed": False, "open": True}  # option value -> strict membership (d < radius)


def open_balls(context: MetricContext, prefix: str) -> bool:
    """Whether option ``<prefix>_ball`` asks for open balls (``"open"``, prdc) rather than closed (default)."""
    value = context.option(f"{prefix}_ball", "closed")
    if value not in BALLS:
        raise GenEvalError(
            f"option {prefix}_ball={value!r}: choose 'closed' (d <= radius, the default) or 'open' (d < radius, prdc)"
        )
    return BALLS[value]


def membership(strict: bool) -> str:
    """How ball membership was decided, for a Result's details."""
    return (
        "open balls (d < radius), as prdc"
        if strict
        else "closed balls (d <= radius), as torch-fidelity and Kynkäänniemi et al."
    )


def knn_options(context: MetricContext, prefix: str) -> dict:
    """Chunking options ``<prefix>_chunk_size`` and ``<prefix>_memory_mb`` (default 32 MB; 1 GB on CUDA)."""
    memory_mb = context.option(f"{prefix}_memory_mb", default_memory_budget(context.device) / 2**20)
    return {
        "chunk_size": context.option(f"{prefix}_chunk_size", None),
        "device": context.device,
        "memory_budget": int(memory_mb * 2**20),
    }


def precision_recall(
    generated: dict[str, torch.Tensor],
    reference: dict[str, torch.Tensor],
    context: MetricContext | None = None,
) -> dict[str, Result]:
    """k-NN precision and recall of the ``"features"`` of two feature dicts.

    Parameters
    ----------
    generated, reference : dict of str to torch.Tensor
        Feature dicts; ``"features"`` (N, D) and (M, D) are used.
    context : MetricContext, optional
        Device, seed, bootstrap resamples (0: no interval) and options ``pr_k`` (3),
        ``pr_ball`` ("closed", default, or "open" as prdc), ``pr_chunk_size`` (rows per distance block; from the budget when unset) and
        ``pr_memory_mb`` (32; 1024 on CUDA).

    Returns
    -------
    dict
        ``{"precision": Result, "recall": Result}``, both ``direction="higher"``.
    """
    context = context or MetricContext(num_resamples=0)
    x, y = generated["features"], reference["features"]
    k = int(context.option("pr_k", 3))
    check_knn_inputs(x, y, k, "precision/recall")
    options = knn_options(context, "pr")
    strict = open_balls(context, "pr")
    generated_radii = knn_radii(x, k, **options)
    reference_radii = knn_radii(y, k, **options)
    counts = None
    if context.num_resamples > 0:
        counts = resample_counts(len(x), context.num_resamples, context.random_state, context.device)
    # One pass over cdist(reference, generated), the orientation torch-fidelity uses for both.
    balls = [Balls(reference_radii, "rows", strict), Balls(generated_radii, "cols", strict, replicates=True)]
    precision_scan, recall_scan = ball_scans(y, x, balls, counts, **options)
    in_reference_balls = precision_scan.col_any

    precision = int(in_reference_balls.sum()) / len(x)
    recall = int(recall_scan.row_any.sum()) / len(y)
    return ball_results(
        ("precision", precision, in_reference_balls.double()),
        ("recall", recall, recall_scan.row_replicates),
        x,
        y,
        k,
        context,
        membership=membership(strict),
        covers=(
            "precision at this N, M and k ({sizes}), the generated set resampled and the reference balls fixed; k-NN values drift with N, so compare runs of equal N, M and k",
            "recall at this N, M and k ({sizes}), the generated set resampled and the reference fixed; k-NN values drift with N, so compare runs of equal N, M and k",
        ),
    )


def ball_results(
    per_generated: tuple[str, float, torch.Tensor],
    per_reference: tuple[str, float, torch.Tensor | None],
    x: torch.Tensor,
    y: torch.Tensor,
    k: int,
    context: MetricContext,
    membership: str,
    covers: tuple[str, str] = ("", ""),
) -> dict[str, Result]:
    """The two results of a k-NN ball scan, with their bootstrap intervals when resampling.

    Parameters
    ----------
    per_generated : (name, value, per-sample values)
        A mean over generated samples (precision, density); its interval is the percentile
        interval of resample means of the per-sample values.
    per_reference : (name, value, replicates or None)
        A fraction of reference samples (recall, coverage) with its bootstrap replicates; their
        percentile interval is shifted by the bootstrap bias.
    x, y : torch.Tensor
        Generated and reference features (for the counts and dimension recorded).
    k : int
        The k of the k-NN radii.
    context : MetricContext
        Resamples (0: no intervals), seed and confidence.
    membership : str
        How ball membership is decided, recorded in the details.
    covers : (str, str)
        What each interval covers (``Result.interval_covers``); ``{sizes}`` is filled in with N, M, k.

    Returns
    -------
    dict
        The two names mapped to ``Result`` objects, both ``direction="higher"``.
    """
    (mean_name, mean_value, per_sample), (covered_name, covered_value, replicates) = (
        per_generated,
        per_reference,
    )
    generated_interval = covered_interval = None
    if context.num_resamples and replicates is not None:
        generated_interval = mean_interval(
            per_sample, context.num_resamples, context.random_state, context.confidence
        )
        covered_interval = recentred_interval(replicates, covered_value, context.confidence)
    details = {
        "k": k,
        "feature_dim": x.shape[1],
        "num_resamples": context.num_resamples,
        "membership": membership,
    }
    common = {"direction": "higher", "num_generated": len(x), "num_reference": len(y)}
    sizes = f"{len(x):,} generated vs {len(y):,} reference, k={k}"
    return {
        mean_name: Result(
            name=mean_name,
            value=mean_value,
            interval=generated_interval,
            interval_covers=covers[0].format(sizes=sizes) if generated_interval and covers[0] else None,
            details={**details, "interval_method": "percentile of resample means"},
            **common,
        ),
        covered_name: Result(
            name=covered_name,
            value=covered_value,
            interval=covered_interval,
            interval_covers=covers[1].format(sizes=sizes) if covered_interval and covers[1] else None,
            details={**details, "interval_method": "percentile, shifted by the bootstrap bias"},
            **common,
        ),
    }
