"""Degenerate inputs for the distribution distances, found once and explained in one line.

Three cases make a number or its interval mean something other than it seems:

* **identical sets** (the generated samples are exactly the reference's, in any order): FID is
  0 by construction, and resampling the generated set against a fixed copy of itself measures
  nothing (the recentred FID interval read [0, 1.3e5] with 360 x 1,024 pixels); KID's
  unbiased estimator assumes independent sets and reads far below 0;
* **shared samples** (some generated samples also in the reference): KID is biased below 0;
* **zero variance** (every generated sample has the same features): every resample is the
  same set, so a bootstrap interval has zero width whatever the truth.

Fewer samples than feature dimensions (N <= D) is FID's own warning (:mod:`gen_eval.metrics.fid`).
"""

from __future__ import annotations

import torch


def shared_rows(x: torch.Tensor, y: torch.Tensor) -> int:
    """How many rows of ``x`` occur exactly (bit for bit) among the rows of ``y``.

    Rows are first compared by one random projection (a matrix-vector product), and only rows
    whose projections coincide are compared in full, so the cost is O(N D) rather than O(N M D).

    Parameters
    ----------
    x, y : torch.Tensor
        (N, D) and (M, D) features of one dtype.

    Returns
    -------
    int
    """
    if x.shape[1:] != y.shape[1:] or not len(x) or not len(y):
        return 0
    direction = torch.randn(x.shape[1], generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    px = x.to(torch.float64) @ direction.to(x.device)
    py = y.to(torch.float64) @ direction.to(y.device)
    positions: dict[float, list[int]] = {}
    for j, value in enumerate(py.tolist()):
        positions.setdefault(value, []).append(j)
    count = 0
    for i, value in enumerate(px.tolist()):
        if any(torch.equal(x[i], y[j]) for j in positions.get(value, ())):
            count += 1
    return count


def identical_sets(x: torch.Tensor, y: torch.Tensor) -> bool:
    """True when ``x`` and ``y`` hold the same rows, each as often (in any order).

    Parameters
    ----------
    x, y : torch.Tensor
        (N, D) and (M, D) features.

    Returns
    -------
    bool
    """
    import numpy as np

    if x.shape != y.shape:
        return False
    if torch.equal(x, y):
        return True
    if not torch.equal(x.sum(0), y.sum(0)) and shared_rows(x, y) < len(x):  # cheap rejection first
        return False
    a, b = x.cpu().numpy(), y.cpu().numpy()
    return bool(np.array_equal(a[np.lexsort(a.T[::-1])], b[np.lexsort(b.T[::-1])]))


def zero_variance(x: torch.Tensor) -> bool:
    """True when every row of ``x`` equals the first (one point in feature space)."""
    return len(x) > 1 and bool((x == x[0]).all())


IDENTICAL_FID = (
    "the generated and reference sets are identical: FID is 0 by construction, and no interval "
    "(resampling a set against itself measures nothing)"
)
IDENTICAL_KID = (
    "the generated and reference sets are identical: KID's unbiased estimator assumes independent "
    "sets and reads below 0 here; no interval"
)
ZERO_VARIANCE = (
    "every generated sample has the same features (zero variance): every resample is the same set, "
    "so no interval"
)


def shared_warning(count: int, n: int) -> str:
    """KID's warning when ``count`` of the ``n`` generated samples are also reference samples."""
    return (
        f"{count:,} of the {n:,} generated samples are also in the reference: KID assumes independent "
        "sets and is biased below 0 by shared samples"
    )
