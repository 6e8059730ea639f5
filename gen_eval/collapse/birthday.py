"""Birthday-paradox test of support size (Arora & Zhang 2017, "Do GANs learn the distribution?
Some theory and empirics").

A batch of s draws from N equally likely distinct samples holds a repeat with probability
P(s) = 1 - exp(-s(s-1) / (2N)), which reaches 1/2 at N = s(s-1) / (2 ln 2), about s^2 / 1.4: when
batches of s generated samples hold a duplicate at least half of the time, the support is about
s^2 or smaller. Arora & Zhang judge each batch's closest pair by eye; here a pair is a duplicate
when its feature distance is at most the ``threshold_quantile`` (1%) of the reference set's
nearest-neighbour distances, and the same batches drawn from the reference measure how often that
threshold fires on real data (its false-positive rate).

So s = 32, the largest default, detects supports below 32*31 / (2 ln 2) = 716 samples; a larger
support is not flagged, though the rates still estimate it. Measured in
tests/test_collapse_birthday_memorisation.py (digits-classifier features, reference: the 1,437
digits training images): a sampler over 50 distinct images has rates 0.46 / 0.91 / 1.00 / 1.00 at
s = 8 / 16 / 24 / 32 (200 batches) and a support estimate of 50; one over 1,700 distinct images
0.020 / 0.065 / 0.141 / 0.255 (1,000 batches; the law: 0.016 / 0.068 / 0.150 / 0.253), an
estimate of 1,685, and is not flagged. The 360 real held-out images have a rate of 0.5% at s = 32,
and so has the reference (the threshold's false-positive rate; 0.4% over 1,000 batches).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
import torch

from gen_eval.collapse.memorisation import (
    MEMORY_BUDGET,
    as_feature_pair,
    calibrated_threshold,
    nearest_neighbours,
)


@dataclass
class BirthdayResult:
    """Outcome of :func:`birthday_test`; rates are per batch size, in ``batch_sizes`` order."""

    batch_sizes: list[int]
    duplicate_rates: list[float]
    reference_duplicate_rates: list[float]
    threshold: float
    threshold_quantile: float
    batch_size: int
    duplicate_rate: float
    small_support: bool
    support_estimate: float | None
    closest_pairs: list[tuple[int, int, float]]
    num_batches: int
    num_generated: int
    warnings: list[str]
    support_batch_size: int | None = None  # the batch size whose rate gave support_estimate

    def to_dict(self) -> dict:
        """JSON-serialisable fields (pairs as lists)."""
        out = asdict(self)
        out["closest_pairs"] = [[int(i), int(j), float(d)] for i, j, d in self.closest_pairs]
        return out


@torch.no_grad()
def _batch_closest_pairs(
    x: torch.Tensor, batch_size: int, num_batches: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Per random batch (without replacement), the closest pair's distance (B,) and indices (B, 2)."""
    idx = torch.from_numpy(
        np.stack([rng.choice(len(x), size=batch_size, replace=False) for _ in range(num_batches)])
    )
    upper = torch.ones(batch_size, batch_size, dtype=torch.bool).triu(1)
    group = max(1, MEMORY_BUDGET // (4 * batch_size * (x.shape[1] + batch_size)))
    best, pos = [], []
    for b0 in range(0, num_batches, group):
        stack = x[idx[b0 : b0 + group]]  # (b, s, D)
        # The direct form: the matmul form puts identical samples ~1e-3 of their norm apart.
        dist = torch.cdist(stack, stack, compute_mode="donot_use_mm_for_euclid_dist")
        values, flat = dist.masked_fill(~upper, torch.inf).flatten(1).min(dim=1)
        best.append(values)
        pos.append(flat)
    flat, rows = torch.cat(pos), torch.arange(num_batches)
    pairs = torch.stack([idx[rows, flat // batch_size], idx[rows, flat % batch_size]], dim=1)
    return torch.cat(best).double().numpy(), pairs.numpy()


def _support_from_rates(
    sizes: list[int], hits: list[int], num_batches: int
) -> tuple[float | None, int | None, bool]:
    """N solved from P = 1 - exp(-s(s-1)/2N) at the most informative s: (N, s, whether a bound).

    Informative: of the sizes with 0 < hits < B, the one with the smallest delta-method relative
    error of N, sqrt(P / ((1 - P) B)) / -ln(1 - P) (rates near 0 rest on a few hits, rates near 1
    barely move with N). With every size saturated, P = 1 - 1/(2B) at the smallest bounds N.
    """
    best: tuple[float, int, float] | None = None
    for s, k in zip(sizes, hits, strict=True):
        if 0 < k < num_batches:
            p = k / num_batches
            rel_se = math.sqrt(p / ((1 - p) * num_batches)) / -math.log1p(-p)
            if best is None or rel_se < best[0]:
                best = (rel_se, s, p)
    bound = best is None
    if bound:
        if not any(hits):
            return None, None, False
        best = (0.0, sizes[hits.index(num_batches)], 1 - 0.5 / num_batches)
    _, s, p = best
    return s * (s - 1) / (-2 * math.log1p(-p)), s, bound


def birthday_test(
    generated: np.ndarray | torch.Tensor,
    reference: np.ndarray | torch.Tensor,
    batch_sizes: Sequence[int] = (8, 16, 24, 32),
    num_batches: int = 200,
    threshold_quantile: float = 0.01,
    num_pairs: int = 8,
    random_state: int = 0,
) -> BirthdayResult:
    """Duplicate rates in random batches of generated samples, and the support size they imply.

    Parameters
    ----------
    generated, reference : array or tensor
        (N, D) and (M, D) features of generated and real samples, N, M >= 4.
    batch_sizes : sequence of int
        Batch sizes s >= 2; clipped to min(N, M) // 2 so that batches differ from each other.
    num_batches : int
        Random batches per size (and per set).
    threshold_quantile : float
        Quantile in (0, 0.5) of the reference 1-NN distances used as the duplicate threshold.
        Exact repeats (closer than 1e-4 of the median feature norm and 1% of the median 1-NN
        distance) always count as duplicates and are left out of the quantile, so repeats in
        the reference cannot pull it to 0.
    num_pairs : int
        How many of the batches' closest generated pairs to list.
    random_state : int
        Seed of ``numpy.random.default_rng`` drawing the batches.

    Returns
    -------
    BirthdayResult
        ``small_support`` when a size has a duplicate rate >= 1/2 and no reference rate reaches 1/2; ``support_estimate`` is N
        from the collision law at the most informative size (None without any duplicate).
    """
    if not 0 < threshold_quantile < 0.5:
        raise ValueError(f"threshold_quantile must lie in (0, 0.5); got {threshold_quantile}")
    if num_batches < 1 or num_pairs < 0 or not batch_sizes or min(batch_sizes) < 2:
        raise ValueError(
            f"need num_batches >= 1, num_pairs >= 0 and batch sizes >= 2; got {num_batches}, "
            f"{num_pairs}, {list(batch_sizes)}"
        )
    gen, ref = as_feature_pair(generated, reference, "reference", min_rows=4)
    warnings: list[str] = []
    limit = min(len(gen), len(ref)) // 2
    sizes = sorted({min(int(s), limit) for s in batch_sizes})
    if max(batch_sizes) > limit:
        warnings.append(
            f"batch sizes clipped to {limit} = half the smaller set (generated {len(gen)}, reference "
            f"{len(ref)}); more than {2 * max(batch_sizes)} samples are needed to test s = {max(batch_sizes)}"
        )

    ref_nn, _ = nearest_neighbours(ref, ref, exclude_self=True)
    threshold, repeats = calibrated_threshold(ref, ref_nn, threshold_quantile)
    if repeats:
        warnings.append(f"{repeats} reference samples have an exact repeat in the reference set")

    rng = np.random.default_rng(random_state)
    runs = [_batch_closest_pairs(gen, s, num_batches, rng) for s in sizes]
    hits = [int((d <= threshold).sum()) for d, _ in runs]
    rates = [k / num_batches for k in hits]
    ref_rates = [
        float(np.mean(_batch_closest_pairs(ref, s, num_batches, rng)[0] <= threshold)) for s in sizes
    ]

    # Pairs are unordered: (i, j) from one batch and (j, i) from another are the same pair.
    all_d, all_p = np.concatenate([d for d, _ in runs]), np.sort(np.concatenate([p for _, p in runs]), axis=1)
    order = np.argsort(all_d, kind="stable")
    _, first = np.unique(all_p[order], axis=0, return_index=True)
    keep = order[np.sort(first)][:num_pairs]
    closest = [(int(all_p[k, 0]), int(all_p[k, 1]), float(all_d[k])) for k in keep]

    support, support_s, bound = _support_from_rates(sizes, hits, num_batches)
    # Data with natural repeats (names drawn by frequency) fill real batches with duplicates too:
    # then only an excess over the reference says anything, so small support is not claimed.
    small = max(rates) >= 0.5 and max(ref_rates) < 0.5
    if max(rates) >= 0.5 and not small:
        warnings.append(
            f"real batches repeat too ({max(ref_rates):.0%} at s = {sizes[int(np.argmax(ref_rates))]}): the "
            "reference itself has a small support, so only an excess over it is evidence"
        )
    s_max = sizes[-1]
    if bound:
        warnings.append(
            f"every batch size with duplicates has them in all batches; the support is at most about "
            f"{support:.3g} (smaller batch sizes would measure it)"
        )
    if not small:
        warnings.append(
            f"the test only detects supports up to about s^2 at the largest s = {s_max}: a rate of 1/2 "
            f"needs N <= s(s-1)/(2 ln 2) = {s_max * (s_max - 1) / (2 * math.log(2)):.0f}"
        )
    if ref_rates[-1] >= 0.1:
        warnings.append(
            f"the threshold flags {ref_rates[-1]:.0%} of real batches at s = {s_max}; duplicates at that "
            f"rate are not evidence of a small support"
        )
    return BirthdayResult(
        batch_sizes=sizes,
        duplicate_rates=rates,
        reference_duplicate_rates=ref_rates,
        threshold=threshold,
        threshold_quantile=threshold_quantile,
        batch_size=s_max,
        duplicate_rate=rates[-1],
        small_support=small,
        support_estimate=support,
        closest_pairs=closest,
        num_batches=num_batches,
        num_generated=len(gen),
        warnings=warnings,
        support_batch_size=support_s,
    )
