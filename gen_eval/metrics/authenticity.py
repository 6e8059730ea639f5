"""Memorisation metrics from the literature: AuthPct (Alaa et al. 2022) and the C_T test (Meehan et al. 2020).

Both need the model's training set T (``--train``; by default the reference dataset's train split)
besides the generated set G and the reference, which should be held-out real data (a test split).
gen-eval's own memorisation check (``gen_eval/collapse/memorisation.py``) asks the same question per
sample with a threshold calibrated on T; these two are the published measures, for comparison.

AuthPct ("How faithful is your synthetic data?", Alaa et al. 2022, the authenticity of their code).
For g in G let t(g) be its nearest training sample and r(t) the distance from t to t's own nearest
other training sample. g is *unauthentic* when it is closer to t(g) than t's nearest real neighbour
is, d(g, t(g)) <= r(t(g)) (their code: authentic when r < d, strictly), and

    AuthPct = 100 * share of authentic g.

Fresh samples from the data distribution are not 100% authentic: a fresh sample falls inside its
nearest training sample's neighbour distance quite often (about half the time in moderate
dimensions). So the same score of the reference (held-out) set against T is reported beside it
(``details["held_out_authpct"]``), and the model is flagged (``likely_copying``) when its AuthPct
is below that by more than 3 standard errors of the difference of two proportions.

C_T (Meehan, Chaudhuri & Dasgupta 2020, "A non-parametric test to detect data-copying"). T is
partitioned into cells by k-means (``ct_cells``, 20 by default; scikit-learn's KMeans, seeded); the
test set P (the reference) and G are assigned to the nearest centre. In each cell pi, L(x) is the
distance from x to its nearest training sample in that cell, and the Mann-Whitney U of
L(G_pi) against L(P_pi), U = #{(q, p): L(q) > L(p)} + #{ties} / 2, is z-scored with the reference
code's continuity correction:

    Z_pi = (U - (n_pi m_pi / 2 - 0.5)) / sqrt(n_pi m_pi (n_pi + m_pi + 1) / 12)

C_T is the average of Z_pi weighted by the share of test samples in each cell, over the cells
holding more than a share tau of G (``ct_tau``, default 20 / m as in the reference code's
examples). C_T << 0: generated samples sit closer to the training data than held-out data does
(data-copying); C_T >> 0: farther (underfitting); 0 is ideal. Under no copying each Z_pi is about
standard normal, so C_T (a weighted mean of them) is at most as spread as one: gen-eval flags
copying (``likely_copying``) below -3, which a copy-free model reaches with probability < 0.2%.

Intervals resample the generated set (T, P, the cells and every distance fixed): AuthPct a
percentile interval of the resample means; C_T a percentile interval of the statistic recomputed
from the resample's counts per cell.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from threadpoolctl import threadpool_limits

from gen_eval.errors import GenEvalError
from gen_eval.metrics.base import MetricContext
from gen_eval.metrics.bootstrap import mean_interval, percentile_interval, resample_counts
from gen_eval.metrics.knn import centred_float32
from gen_eval.metrics.result import Result

COPYING_Z = -3.0  # C_T and the AuthPct difference z below this flag data-copying
_BLOCK_ELEMENTS = 1 << 22


def nearest(
    queries: torch.Tensor, keys: torch.Tensor, exclude_self: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """Distance to (float64) and index of each query's nearest key; ``exclude_self``: queries are the keys.

    The neighbour is found in centred float32 blocks; its distance is then recomputed in float64
    from the features (the float32 expansion loses the last digits, and an exact copy must give 0).
    """
    q32, k32 = centred_float32(queries, keys, device="cpu")
    rows = max(1, _BLOCK_ELEMENTS // max(1, len(keys)))
    index = torch.empty(len(queries), dtype=torch.int64)
    for start in range(0, len(queries), rows):
        block = torch.cdist(q32[start : start + rows], k32)
        if exclude_self:
            local = torch.arange(len(block))
            block[local, local + start] = torch.inf
        index[start : start + len(block)] = block.argmin(1)
    distance = (queries.double().cpu() - keys.double().cpu()[index]).norm(dim=1)
    return distance.numpy(), index.numpy()


def _train_features(context: MetricContext, metric: str) -> torch.Tensor:
    train = (context.train_features or {}).get("features")
    if train is None:
        raise GenEvalError(
            f"{metric} needs the model's training set: give --train SPEC (the samples the model was trained on)"
        )
    return train


def _check(x: torch.Tensor, other: torch.Tensor, what: str, metric: str, least: int) -> None:
    if x.ndim != 2 or other.ndim != 2 or x.shape[1] != other.shape[1]:
        raise GenEvalError(
            f"{metric} needs (N, D) features of equal D; got generated {tuple(x.shape)} and {what} {tuple(other.shape)}"
        )
    if len(other) < least:
        raise GenEvalError(f"{metric} needs at least {least} {what} samples; got {len(other)}")


def authentic(samples: torch.Tensor, train: torch.Tensor, train_radius: np.ndarray) -> np.ndarray:
    """Per sample: True when d(s, t(s)) > r(t(s)) (Alaa et al.'s authentic), as a bool array."""
    distance, index = nearest(samples, train)
    return distance > train_radius[index]


def authpct(
    generated: dict[str, torch.Tensor],
    reference: dict[str, torch.Tensor],
    context: MetricContext | None = None,
) -> dict[str, Result]:
    """AuthPct of the generated features against the training set's (``context.train_features``).

    Parameters
    ----------
    generated, reference : dict of str to torch.Tensor
        Feature dicts; the reference (held-out real data) gives the baseline AuthPct.
    context : MetricContext
        With ``train_features``; seed, resamples and confidence for the interval.

    Returns
    -------
    dict
        ``{"authpct": Result}`` in percent, ``direction="higher"``; ``details`` hold the held-out
        baseline, the z of the difference and ``likely_copying``.
    """
    context = context or MetricContext(num_resamples=0)
    train = _train_features(context, "AuthPct")
    x, y = generated["features"], reference["features"]
    _check(x, train, "training", "AuthPct", 2)
    _check(x, y, "reference", "AuthPct", 1)
    radius, _ = nearest(train, train, exclude_self=True)
    flags = authentic(x, train, radius)
    value = 100 * float(flags.mean())
    held_out = 100 * float(authentic(y, train, radius).mean())
    warnings: list[str] = []
    if held_out == 0:
        warnings.append(
            "AuthPct: the reference set is 0% authentic against the training set; is the reference the training "
            "set itself? Give held-out data as --reference for a baseline"
        )
    p1, p2, n1, n2 = value / 100, held_out / 100, len(x), len(y)
    pooled = (p1 * n1 + p2 * n2) / (n1 + n2)
    spread = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    z = (p1 - p2) / spread if spread > 0 else 0.0
    interval = covers = None
    if context.num_resamples > 0:
        low, high = mean_interval(
            torch.from_numpy(flags.astype(np.float64)),
            context.num_resamples,
            context.random_state,
            context.confidence,
        )
        interval = (100 * low, 100 * high)
        covers = (
            f"AuthPct of this model against this training set ({n1:,} generated, {len(train):,} training "
            "samples), the generated set resampled and the training set fixed"
        )
    result = Result(
        name="authpct",
        value=value,
        direction="higher",
        num_generated=n1,
        num_reference=n2,
        interval=interval,
        interval_covers=covers,
        warnings=warnings,
        details={
            "held_out_authpct": held_out,
            "z_vs_held_out": z,
            "likely_copying": bool(z < COPYING_Z),
            "num_train": len(train),
            "rule": "unauthentic when d(g, nearest training sample t) <= t's own nearest-neighbour distance",
            "num_resamples": context.num_resamples,
            "interval_method": None if interval is None else "percentile of resample means",
        },
    )
    return {"authpct": result}


def _cells(train: torch.Tensor, cells: int, seed: int) -> tuple[Any, np.ndarray]:
    from sklearn.cluster import KMeans

    # One OpenMP thread: on a shared 2-core machine scikit-learn's threads spin against each other
    # (600 x 8 points, 5 cells: 7.7 s with its default threads, 0.11 s with one; 5,000 x 64, 20 cells:
    # 29.5 s with two, 2.1 s with one).
    with threadpool_limits(1):
        model = KMeans(n_clusters=cells, random_state=seed, n_init=10).fit(train.double().cpu().numpy())
    return model, model.labels_


def _cell_distances(
    samples: torch.Tensor, labels: np.ndarray, train: torch.Tensor, train_labels: np.ndarray
) -> np.ndarray:
    """Distance from each sample to its nearest training sample in the same cell (inf if none there)."""
    out = np.full(len(samples), np.inf)
    for cell in np.unique(labels):
        members, keys = np.flatnonzero(labels == cell), np.flatnonzero(train_labels == cell)
        if len(keys):
            out[members] = nearest(samples[members], train[keys])[0]
    return out


def ct_statistic(
    test_distances: np.ndarray,
    test_labels: np.ndarray,
    generated_distances: np.ndarray,
    generated_labels: np.ndarray,
    cells: int,
    tau: float,
    counts: torch.Tensor | None = None,
) -> tuple[torch.Tensor, dict[str, object]]:
    """C_T from the in-cell distances, for the generated set as is or (``counts`` (R, m)) for resamples.

    Returns
    -------
    values : torch.Tensor
        (1,) or (R,) C_T; NaN where no cell qualifies.
    cells : dict
        Per cell: test and generated counts, Z (for the unresampled set).
    """
    m, n = len(generated_distances), len(test_distances)
    weights = torch.ones(1, m, dtype=torch.float64) if counts is None else counts.double().cpu()
    test_counts = np.bincount(test_labels, minlength=cells).astype(np.float64)
    # u_q = #{p in q's cell: L(p) < L(q)} + #{=} / 2: each generated sample's share of U.
    u = np.zeros(m)
    for cell in range(cells):
        tests = np.sort(test_distances[test_labels == cell])
        members = generated_labels == cell
        below = np.searchsorted(tests, generated_distances[members], side="left")
        not_above = np.searchsorted(tests, generated_distances[members], side="right")
        u[members] = below + (not_above - below) / 2
    one_hot = torch.zeros(m, cells, dtype=torch.float64)
    one_hot[torch.arange(m), torch.from_numpy(generated_labels).long()] = 1
    gen_counts = weights @ one_hot  # (R, cells)
    big_u = (weights * torch.from_numpy(u)) @ one_hot
    n_cell = torch.from_numpy(test_counts)[None, :]
    std = (n_cell * gen_counts * (n_cell + gen_counts + 1) / 12).sqrt()
    z = (big_u - (n_cell * gen_counts / 2 - 0.5)) / std
    kept = (gen_counts / m > tau) & (n_cell > 0)
    share = (n_cell / n).expand_as(z)
    total = torch.where(kept, share, 0).sum(1)
    values = torch.where(kept, share * z.nan_to_num(0), 0).sum(1) / total
    per_cell = {
        "test_counts": [int(c) for c in test_counts],
        "generated_counts": [int(c) for c in gen_counts[0]],
        "z": [float(v) if bool(k) else None for v, k in zip(z[0], kept[0], strict=True)],
    }
    return values, per_cell


def c_t(
    generated: dict[str, torch.Tensor],
    reference: dict[str, torch.Tensor],
    context: MetricContext | None = None,
) -> dict[str, Result]:
    """Meehan et al.'s C_T data-copying statistic: generated vs held-out (reference) distances to the training set.

    Parameters
    ----------
    generated, reference : dict of str to torch.Tensor
        Feature dicts; the reference must be held-out data (not the training set).
    context : MetricContext
        With ``train_features``; options ``ct_cells`` (20) and ``ct_tau`` (default 20 / m).

    Returns
    -------
    dict
        ``{"c_t": Result}``: a z-score, 0 ideal, << 0 copying; ``direction="higher"`` (less
        copying), though >> 0 means underfitting. ``details["likely_copying"]`` below -3.
    """
    context = context or MetricContext(num_resamples=0)
    train = _train_features(context, "C_T")
    x, y = generated["features"], reference["features"]
    _check(x, train, "training", "C_T", 2)
    _check(x, y, "reference", "C_T", 2)
    cells = int(context.option("ct_cells", 20))
    tau = context.option("ct_tau", None)
    tau = 20 / len(x) if tau is None else float(tau)
    if not 1 <= cells <= len(train):
        raise GenEvalError(f"C_T needs 1 <= ct_cells <= the training samples ({len(train)}); got {cells}")
    model, train_labels = _cells(train, cells, context.random_state)
    with threadpool_limits(1):
        test_labels = model.predict(y.double().cpu().numpy())
        gen_labels = model.predict(x.double().cpu().numpy())
    test_distances = _cell_distances(y, test_labels, train, train_labels)
    gen_distances = _cell_distances(x, gen_labels, train, train_labels)
    values, per_cell = ct_statistic(test_distances, test_labels, gen_distances, gen_labels, cells, tau)
    value = float(values[0])
    warnings = []
    if not math.isfinite(value):
        warnings.append(
            f"C_T: no cell holds more than tau = {tau:.3g} of the generated samples and a test sample; "
            "lower -o ct_cells or give more samples"
        )
    interval = covers = None
    if context.num_resamples > 0 and math.isfinite(value):
        counts = resample_counts(len(x), context.num_resamples, context.random_state)
        replicates, _ = ct_statistic(
            test_distances, test_labels, gen_distances, gen_labels, cells, tau, counts
        )
        interval = percentile_interval(replicates, context.confidence)
        covers = (
            f"C_T with these {cells} cells ({len(x):,} generated, {len(y):,} test, {len(train):,} training samples), "
            "the generated set resampled and the cells, test and training sets fixed"
        )
    result = Result(
        name="c_t",
        value=value,
        direction="higher",
        num_generated=len(x),
        num_reference=len(y),
        interval=interval,
        interval_covers=covers,
        warnings=warnings,
        details={
            "likely_copying": bool(value < COPYING_Z),
            "threshold": COPYING_Z,
            "cells": cells,
            "tau": tau,
            "cells_used": sum(z is not None for z in per_cell["z"]),
            "per_cell": per_cell,
            "num_train": len(train),
            "num_resamples": context.num_resamples,
            "interval_method": None if interval is None else "percentile",
        },
    )
    return {"c_t": result}
