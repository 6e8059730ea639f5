"""Modularity and explicitness (Ridgeway & Zemel, 2018).

Ridgeway and Zemel, "Learning Deep Disentangled Embeddings With the F-Statistic Loss", NeurIPS
2018, Section 3. Follows disentanglement_lib's ``modularity_explicitness`` (gin defaults:
num_train 10,000, num_test 5,000, ``histogram_discretizer`` with 20 bins).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.preprocessing import label_binarize
from threadpoolctl import threadpool_limits

from gen_eval.latent.disentangle.common import (
    RandomState,
    RepresentationFn,
    as_rng,
    discrete_mutual_info,
    histogram_discretize,
    sample_codes,
    sklearn_seed,
    train_test,
)


def modularity_explicitness(
    codes: np.ndarray,
    factors: np.ndarray,
    codes_test: np.ndarray | None = None,
    factors_test: np.ndarray | None = None,
    *,
    num_bins: int = 20,
    train_fraction: float = 2 / 3,
    random_state: RandomState = 0,
) -> dict[str, Any]:
    """Modularity: does each code carry information about one factor only? Explicitness: can a
    linear model read every factor off the codes?

    Modularity: with m_ik = I(code_i; factor_k) (codes binned into ``num_bins`` equal-width
    bins), code i scores ``1 - sum_{k != k*} m_ik^2 / ((K - 1) m_ik*^2)`` with k* its most
    informative factor (0 if it carries no information); the score is the mean over codes.
    Explicitness: for each factor a ``LogisticRegression`` on the codes standardised with the
    train statistics (default settings as disentanglement_lib, with ``max_iter=1000`` so lbfgs
    converges on 40 classes); its one-vs-rest macro ROC-AUC on the train and the test points,
    averaged over factors. Classes missing from the evaluated points are skipped (ROC-AUC is
    undefined for them).

    Modularity is biased upward for uninformative codes: the plug-in MI of a noise code with a
    factor is about (bins - 1)(values - 1) / 2N, largest for the factor with most values, so
    noise looks specialised in it. On shapes (40 orientations, 32 positions, 6 scales, 3 shapes)
    pure noise scores about 0.67 (0.65 to 0.69 across our runs), not 0: a noise code's MIs are
    about (0.002, 0.005, 0.037, 0.029, 0.029) nats at N = 10,000, which gives about 0.68. Read
    modularity together with explicitness or MIG.

    On shapes, orientation's inclusive 0..2*pi grid and the square's and ellipse's symmetries
    make it partly unidentifiable from images, which lowers explicitness for image encoders.

    Measured on 10,000 train + 5,000 test shapes combinations (K=5), codes from the
    standardised factor values, seed 0 (tests/test_disentangle.py): modularity / test
    explicitness perfect 1.000 / 0.987, randomly rotated 0.813 / 0.987, duplicated [z, z]
    1.000 / 0.991, pure noise (L=10) 0.648 / 0.498.

    Parameters
    ----------
    codes, factors : (N, L) float codes and (N, K) int factor indices for training;
        disentanglement_lib's defaults are 10,000 train and 5,000 test points.
    codes_test, factors_test : held-out points for explicitness; if omitted, the first
        ``train_fraction`` of the given points train and the rest test.
    num_bins : histogram bins per code dimension for the MI (20).
    train_fraction : used only without a test set.
    random_state : seed or ``numpy.random.Generator`` for the classifiers.

    Returns
    -------
    dict with ``modularity``, ``explicitness_train``, ``explicitness_test`` and
    ``modularity_per_code`` (a list of L scores).
    """
    x, y, x_test, y_test = train_test(codes, factors, codes_test, factors_test, train_fraction)
    per_code = _modularity(discrete_mutual_info(histogram_discretize(x, num_bins), y))

    mean, std = x.mean(axis=0), x.std(axis=0)
    std = np.where(std > 0, std, 1.0)  # a constant code stays 0 rather than NaN
    x, x_test = (x - mean) / std, (x_test - mean) / std
    rng = as_rng(random_state)
    train_auc, test_auc = [], []
    # With L-column inputs, BLAS threads only spin-wait: one thread was 6x faster on 2 busy cores.
    with threadpool_limits(limits=1, user_api="blas"):
        for k in range(y.shape[1]):
            clf = LogisticRegression(max_iter=1000, random_state=sklearn_seed(rng)).fit(x, y[:, k])
            train_auc.append(_macro_auc(clf, x, y[:, k]))
            test_auc.append(_macro_auc(clf, x_test, y_test[:, k]))
    return {
        "modularity": float(per_code.mean()),
        "explicitness_train": float(np.nanmean(train_auc)),
        "explicitness_test": float(np.nanmean(test_auc)),
        "modularity_per_code": per_code.tolist(),
    }


def _modularity(mi: np.ndarray) -> np.ndarray:
    """(L,) per-code modularity from the (L, K) mutual-information matrix."""
    sq = mi**2
    top = sq.max(axis=1)
    if sq.shape[1] < 2:
        return np.where(top > 0, 1.0, 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        delta = (sq.sum(axis=1) - top) / (top * (sq.shape[1] - 1))
    return np.where(top > 0, 1.0 - delta, 0.0)


def _macro_auc(clf: LogisticRegression, x: np.ndarray, y: np.ndarray) -> float:
    """One-vs-rest ROC-AUC averaged over the classes that have positives and negatives in ``y``."""
    proba = clf.predict_proba(x)
    truth = label_binarize(y, classes=clf.classes_)
    if len(clf.classes_) == 2:  # label_binarize gives one column for two classes
        truth = np.hstack([1 - truth, truth])
    usable = (truth.min(axis=0) == 0) & (truth.max(axis=0) == 1)
    if not usable.any():
        return float("nan")
    return float(roc_auc_score(truth[:, usable], proba[:, usable], average="macro"))


def modularity_score(
    representation_fn: RepresentationFn,
    factor_sizes: Sequence[int],
    random_state: RandomState = 0,
    *,
    num_train: int = 10_000,
    num_test: int = 5_000,
    num_bins: int = 20,
) -> dict[str, Any]:
    """:func:`modularity_explicitness` on ``num_train`` (10,000) + ``num_test`` (5,000) sampled
    combinations.

    Parameters
    ----------
    representation_fn : maps (n, K) int factor indices to (n, L) codes.
    factor_sizes : number of values of each factor (``shapes.FACTOR_SIZES``).
    random_state : seed or ``numpy.random.Generator``.
    num_train, num_test : points (10,000 and 5,000).
    num_bins : histogram bins (20).

    Returns
    -------
    As :func:`modularity_explicitness`.
    """
    rng = as_rng(random_state)
    codes, factors = sample_codes(representation_fn, factor_sizes, num_train, rng)
    codes_test, factors_test = sample_codes(representation_fn, factor_sizes, num_test, rng)
    return modularity_explicitness(
        codes, factors, codes_test, factors_test, num_bins=num_bins, random_state=rng
    )
