"""Disentanglement, Completeness and Informativeness, DCI (Eastwood & Williams, 2018).

Eastwood and Williams, "A Framework for the Quantitative Evaluation of Disentangled
Representations", ICLR 2018. Follows disentanglement_lib's ``dci`` (gin defaults: num_train
10,000, num_test 5,000), which takes importances from scikit-learn's
``GradientBoostingClassifier`` with default settings (100 stages of depth-3 trees).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from joblib import Parallel, delayed
from sklearn.ensemble import GradientBoostingClassifier

from gen_eval.latent.disentangle.common import (
    RandomState,
    RepresentationFn,
    as_rng,
    sample_codes,
    sklearn_seed,
    train_test,
)


def dci(
    codes: np.ndarray,
    factors: np.ndarray,
    codes_test: np.ndarray | None = None,
    factors_test: np.ndarray | None = None,
    *,
    train_fraction: float = 2 / 3,
    n_estimators: int = 100,
    random_state: RandomState = 0,
    n_jobs: int | None = None,
) -> dict[str, Any]:
    """DCI from the feature importances of one gradient-boosted classifier per factor.

    For each factor k a ``GradientBoostingClassifier(n_estimators)`` predicts the factor index
    from all codes; its impurity-based ``feature_importances_`` form column k of the (L, K)
    importance matrix R. Disentanglement is the mean over codes of ``1 - H_K(R[i] / sum R[i])``
    weighted by each code's share of total importance; completeness is the same over factors
    with ``H_L``. Informativeness is the classifiers' mean accuracy on the train and the test
    points (disentanglement_lib's keys, which hold accuracies, not losses).

    Cost. GradientBoostingClassifier grows one tree per class per stage, so shapes' factors
    (3 + 6 + 40 + 32 + 32 classes) take 11,300 trees at the default 100 stages. Measured at the
    defaults (10,000 + 5,000 points, one core of a shared 2-core machine): 57 s for the perfect
    5-d code, 166 s for [z, z] (L=10), 343 s for the rotated 5-d code, 423 s for 10-d noise
    (entangled and noisy codes grow fuller trees). We keep this model rather than a faster one
    because the importances, and so D and C, depend on it. For speed: ``n_jobs=2`` fits factors
    in parallel with the same numbers (the rotated code: 122 s wall, 3.3 CPU-minutes, on a
    quieter moment of the same machine), and a lower ``n_estimators`` (the tests use 10 on
    1,000 + 500 points) gives a quicker, noisier estimate.

    A code that duplicates dimensions ([z, z]) keeps D about 1 (each code still serves one factor)
    while completeness drops to about 1 - log 2 / log L: D alone does not penalise redundancy.

    Measured on shapes factors (K=5), codes from the standardised factor values, seed 0, as
    D / C / test informativeness. At the defaults: perfect 1.000 / 1.000 / 1.000; randomly
    rotated 0.124 / 0.126 / 0.47; duplicated [z, z] 1.000 / 0.700 / 1.000; pure noise (L=10)
    0.002 / 0.002 / 0.12. In tests/test_disentangle.py (1,000 + 500 points, 10 stages): perfect
    1.000 / 1.000, rotated 0.101 / 0.106, duplicated 1.000 / 0.702, noise 0.014 / 0.011.

    Parameters
    ----------
    codes, factors : (N, L) float codes and (N, K) int factor indices for training; defaults in
        disentanglement_lib are 10,000 train and 5,000 test points.
    codes_test, factors_test : held-out points; if omitted, the first ``train_fraction`` of the
        given points train and the rest test (2/3 turns 15,000 points into 10,000 + 5,000).
    train_fraction : used only without a test set.
    n_estimators : boosting stages (100, scikit-learn's and disentanglement_lib's default).
    random_state : seed or ``numpy.random.Generator`` for the classifiers.
    n_jobs : factors fitted in parallel (joblib; None is one at a time). Results do not depend
        on it: each factor's seed is drawn before the fits.

    Returns
    -------
    dict with ``disentanglement``, ``completeness``, ``informativeness_train``,
    ``informativeness_test`` and ``importance_matrix`` (a nested (L, K) list).
    """
    x_train, y_train, x_test, y_test = train_test(codes, factors, codes_test, factors_test, train_fraction)
    rng = as_rng(random_state)
    seeds = [sklearn_seed(rng) for _ in range(y_train.shape[1])]
    fits = Parallel(n_jobs=n_jobs)(
        delayed(_fit_one)(x_train, y_train[:, k], x_test, y_test[:, k], n_estimators, seeds[k])
        for k in range(y_train.shape[1])
    )
    importance = np.stack([f[0] for f in fits], axis=1)
    train_acc, test_acc = [f[1] for f in fits], [f[2] for f in fits]
    return {
        "disentanglement": _weighted_specificity(importance),
        "completeness": _weighted_specificity(importance.T),
        "informativeness_train": float(np.mean(train_acc)),
        "informativeness_test": float(np.mean(test_acc)),
        "importance_matrix": importance.tolist(),
    }


def _fit_one(
    x: np.ndarray, y: np.ndarray, x_test: np.ndarray, y_test: np.ndarray, n_estimators: int, seed: int
) -> tuple[np.ndarray, float, float]:
    """Importances, train accuracy and test accuracy of one factor's boosted classifier."""
    model = GradientBoostingClassifier(n_estimators=n_estimators, random_state=seed).fit(x, y)
    return np.abs(model.feature_importances_), model.score(x, y), model.score(x_test, y_test)


def _weighted_specificity(importance: np.ndarray) -> float:
    """Sum over rows of (1 - normalised entropy of the row) times the row's share of importance."""
    rows, cols = importance.shape
    if cols < 2:  # one column: every row is perfectly specific
        return 1.0
    totals = importance.sum(axis=1)
    p = importance / np.where(totals > 0, totals, 1.0)[:, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        h = -np.where(p > 0, p * np.log(p), 0.0).sum(axis=1) / np.log(cols)
    # An all-zero row says nothing; give it entropy 1 (as a uniform row) and, below, weight 0.
    h = np.where(totals > 0, h, 1.0)
    weights = totals / totals.sum() if totals.sum() > 0 else np.full(rows, 1.0 / rows)
    return float(np.sum((1.0 - h) * weights))


def dci_score(
    representation_fn: RepresentationFn,
    factor_sizes: Sequence[int],
    random_state: RandomState = 0,
    *,
    num_train: int = 10_000,
    num_test: int = 5_000,
    n_estimators: int = 100,
    n_jobs: int | None = None,
) -> dict[str, Any]:
    """:func:`dci` on ``num_train`` (10,000) + ``num_test`` (5,000) sampled combinations.

    Parameters
    ----------
    representation_fn : maps (n, K) int factor indices to (n, L) codes.
    factor_sizes : number of values of each factor (``shapes.FACTOR_SIZES``).
    random_state : seed or ``numpy.random.Generator`` for sampling and the classifiers.
    num_train, num_test : points (10,000 and 5,000).
    n_estimators : boosting stages (100).
    n_jobs : factors fitted in parallel (None: one at a time).

    Returns
    -------
    As :func:`dci`.
    """
    rng = as_rng(random_state)
    codes, factors = sample_codes(representation_fn, factor_sizes, num_train, rng)
    codes_test, factors_test = sample_codes(representation_fn, factor_sizes, num_test, rng)
    return dci(
        codes, factors, codes_test, factors_test, n_estimators=n_estimators, random_state=rng, n_jobs=n_jobs
    )
