"""The FactorVAE disentanglement score (Kim & Mnih, 2018).

Kim and Mnih, "Disentangling by Factorising", ICML 2018. Follows disentanglement_lib's
``factor_vae_score`` (its gin defaults: batch_size 64, num_train 10,000, num_eval 5,000,
num_variance_estimate 10,000, ``prune_dims.threshold`` 0.05).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from gen_eval.latent.disentangle.common import RandomState, RepresentationFn, as_rng, encode, sample_factors


def factor_vae_score(
    representation_fn: RepresentationFn,
    factor_sizes: Sequence[int],
    random_state: RandomState = 0,
    *,
    batch_size: int = 64,
    num_train: int = 10_000,
    num_eval: int = 5_000,
    num_variance_estimate: int = 10_000,
    prune_threshold: float = 0.05,
) -> dict[str, float]:
    """Accuracy of a majority-vote classifier from "least-varying code dimension" to fixed factor.

    The global variance of each code dimension is estimated on ``num_variance_estimate`` random
    codes; dimensions whose standard deviation is below ``prune_threshold`` (collapsed to the
    prior, or constant) are pruned. Each point: pick a factor k, draw ``batch_size`` combinations
    that share the value of factor k, encode them, and vote for the active dimension with the
    smallest variance (ddof=1) divided by its global variance. The classifier maps each code
    dimension to the factor it got most votes for; accuracy is the share of votes it gets right,
    on the ``num_train`` training votes and on ``num_eval`` fresh ones. Chance is about 1/K.

    Pruning matters: a constant dimension's variance ratio is 0/0, which argmin would pick for
    every vote. Unlike disentanglement_lib, the argmin over the active dimensions is mapped back
    to the dimension's own index before voting (there, votes after a pruned dimension land one
    column early; the accuracy is the same, the vote table's labels are not), and
    ``num_active_dims`` counts the active dimensions (there, all of them).

    Dividing by the global variance makes the score invariant to per-dimension scale. Rotations
    fool it less than the BetaVAE score but still partly: with a factor fixed, the dimension that
    loads most on it varies least, consistently, so the majority vote still succeeds for most
    factors (0.77 for the random rotation below, against BetaVAE's 0.91).

    On shapes (procedural dSprites) orientation is only partly identifiable from images (the
    inclusive 0..2*pi grid and the square's and ellipse's symmetries), which lowers the score
    of any image encoder on that factor.

    Measured at the defaults on shapes' factor grid (K=5), codes from the standardised factor
    values, seed 0 (tests/test_disentangle.py): eval accuracy perfect 1.000, randomly rotated
    0.770, duplicated [z, z] 1.000, pure noise (L=10) 0.196 (chance 0.2).

    Parameters
    ----------
    representation_fn : maps (n, K) int factor indices to (n, L) codes.
    factor_sizes : number of values of each factor (``shapes.FACTOR_SIZES``).
    random_state : seed or ``numpy.random.Generator``.
    batch_size : combinations sharing the fixed factor per vote (64).
    num_train : training votes (10,000); each costs ``batch_size`` encodings.
    num_eval : evaluation votes (5,000).
    num_variance_estimate : codes for the global variances (10,000).
    prune_threshold : minimum standard deviation of an active dimension (0.05).

    Returns
    -------
    dict with ``train_accuracy``, ``eval_accuracy`` (the score), ``num_active_dims`` and
    ``chance`` (1/K); both accuracies are 0 when no dimension is active.
    """
    rng = as_rng(random_state)
    num_factors = len(factor_sizes)
    global_codes = encode(representation_fn, sample_factors(num_variance_estimate, factor_sizes, rng))
    global_var = np.var(global_codes, axis=0, ddof=1)
    active = np.flatnonzero(np.sqrt(global_var) >= prune_threshold)
    if len(active) == 0:
        return {"train_accuracy": 0.0, "eval_accuracy": 0.0, "num_active_dims": 0, "chance": 1 / num_factors}

    train_votes = _votes(representation_fn, factor_sizes, batch_size, num_train, rng, global_var, active)
    classifier = np.argmax(train_votes, axis=0)  # factor predicted for each code dimension
    eval_votes = _votes(representation_fn, factor_sizes, batch_size, num_eval, rng, global_var, active)
    dims = np.arange(train_votes.shape[1])
    return {
        "train_accuracy": float(train_votes[classifier, dims].sum() / train_votes.sum()),
        "eval_accuracy": float(eval_votes[classifier, dims].sum() / eval_votes.sum()),
        "num_active_dims": len(active),
        "chance": 1.0 / num_factors,
    }


def _votes(
    representation_fn: RepresentationFn,
    factor_sizes: Sequence[int],
    batch_size: int,
    num_points: int,
    rng: np.random.Generator,
    global_var: np.ndarray,
    active: np.ndarray,
) -> np.ndarray:
    """(K, L) counts of (fixed factor, least-varying active dimension) over ``num_points`` votes."""
    if batch_size < 2 or num_points < 1:
        raise ValueError("batch_size must be at least 2 (a variance) and num_points positive")
    labels = rng.integers(0, len(factor_sizes), size=num_points)
    factors = sample_factors(num_points * batch_size, factor_sizes, rng).reshape(num_points, batch_size, -1)
    points = np.arange(num_points)
    # Every combination in a batch takes the fixed factor's value from the batch's first row.
    factors[points, :, labels] = factors[points, 0, labels][:, None]
    codes = encode(representation_fn, factors.reshape(num_points * batch_size, -1))
    local_var = np.var(codes.reshape(num_points, batch_size, -1), axis=1, ddof=1)
    argmin = active[np.argmin(local_var[:, active] / global_var[active], axis=1)]
    votes = np.zeros((len(factor_sizes), len(global_var)), dtype=np.int64)
    np.add.at(votes, (labels, argmin), 1)
    return votes
