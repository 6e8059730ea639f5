"""Memory-bounded k-nearest-neighbour balls, shared by precision/recall and density/coverage.

Every function walks the rows x columns distance matrix block by block and keeps only
per-sample summaries, so the full N x M matrix never exists: 50,000 x 50,000 samples at 2048-d
stay within ``memory_budget`` (32 MB by default on the CPU, 1 GB on CUDA) plus the inputs
themselves. Ball radii follow torch-fidelity and prdc: the distance to the k-th nearest
neighbour other than the point itself, i.e. the (k+1)-th smallest distance to its own set, the
point included.

Blocks hold squared distances in float32 from the same expansion ``torch.cdist`` uses on this
path (``|x|^2 + |y|^2 - 2 x.y``, one matmul, clamped at 0), without the square root and the
input copies: about a quarter less time. A comparison ``sqrt(a) <= r`` is decided exactly as
``a <= t(r)``, with t(r) the largest float32 whose float32 square root is at most r
(:func:`squared_thresholds`), so membership is what comparing ``sqrt`` of the same squared
distances would give; radii are the float32 square roots of the k-th smallest squared distance.

Translation and error. Every function first centres the sets on one common point
(:mod:`gen_eval.metrics.knn_centring`, which also derives the float32 error bound), so the
metrics are translation-invariant up to rounding.

Screening. On a CPU with native bfloat16 dot products, wide sets go through a bfloat16 GEMM
that decides every pair clearly inside or outside a ball under a rigorous error bound, and the
pairs near a radius are recomputed in float32 (:mod:`gen_eval.metrics.knn_screen`): the same
results as the float32 path (up to the summation order of one dot product) at about half the
time of precision/recall at 10,000 x 2048. ``screen="float32"`` (or GEN_EVAL_KNN_SCREEN=float32)
turns it off.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterator
from typing import Literal, NamedTuple

import torch

from gen_eval.metrics.knn_centring import (  # noqa: F401 (re-exported: the public k-NN API)
    UNIT_ROUNDOFF,
    _centred,
    _moved,
    centred_float32,
    common_shift,
    squared_distance_error_bound,
    squared_distances,
    squared_norms,
)
from gen_eval.metrics.knn_screen import use_screen
from gen_eval.metrics.knn_screened import ScreenGaveUp, screened_memberships, screened_radii
from gen_eval.metrics.knn_tally import BallScan, _tally

ScreenChoice = Literal["auto", "bfloat16", "float32"]

# Bytes of temporaries per block. On 2 CPU cores at 10,000 x 10,000 x 2048, 32 MB blocks (1,123
# rows) ran precision/recall in 4.8-5.2 s at 0.87 GB peak RSS (0.63 GB of it importing torch),
# 128 MB blocks in 5.6-6.1 s at 1.04 GB: smaller blocks stay in cache. A GPU wants large GEMMs.
DEFAULT_MEMORY_BUDGET = 32 * 2**20
CUDA_MEMORY_BUDGET = 1 << 30


def default_memory_budget(device: str | torch.device | None) -> int:
    """Bytes of block temporaries for ``device``: :data:`CUDA_MEMORY_BUDGET` on CUDA, else the CPU default."""
    return (
        CUDA_MEMORY_BUDGET
        if device is not None and torch.device(device).type == "cuda"
        else DEFAULT_MEMORY_BUDGET
    )


def auto_chunk_size(dim: int, memory_budget: int = DEFAULT_MEMORY_BUDGET, num_resamples: int = 0) -> int:
    """Rows (and columns) per block so that one block's temporaries fit ``memory_budget`` bytes.

    Parameters
    ----------
    dim : int
        Feature dimension D.
    memory_budget : int
        Bytes allowed for one block's temporaries.
    num_resamples : int
        Bootstrap replicates accumulated per row (0: none).

    Returns
    -------
    int
        The largest c with ``12 c^2 + (8 D + 4 R) c <= memory_budget`` (at least 1).
    """
    # The c x c float32 squared distances plus up to two block-sized temporaries (mask, top-k
    # merge, float membership): ~12 c^2. A matmul backend may copy the two c x D slices to
    # contiguous memory: 8 c D. Replicate sums: 4 R c.
    a, b = 12.0, 8.0 * dim + 4.0 * num_resamples
    return max(1, int((-b + math.sqrt(b * b + 4 * a * memory_budget)) / (2 * a)))


def squared_thresholds(radii: torch.Tensor, strict: bool = False) -> torch.Tensor:
    """Float32 thresholds t with ``a <= t`` exactly when ``sqrt(a) <= r`` (``< r`` when ``strict``).

    t is the largest float32 whose float32 square root is at most r (for ``strict``, at most the
    float before r; -1 when no non-negative a qualifies). It starts from r * r and moves by one
    ulp at a time; a few steps suffice because the square root is correctly rounded.
    """
    r = radii.to(torch.float32)
    if strict:
        r = torch.nextafter(r, torch.full_like(r, -math.inf))
    t = (r * r).nan_to_num(posinf=math.inf)
    inf, ninf = torch.full_like(t, math.inf), torch.full_like(t, -math.inf)
    for _ in range(8):
        too_big = t.sqrt() > r
        up = torch.nextafter(t, inf)
        fits_up = ~too_big & (up.sqrt() <= r) & torch.isfinite(t)
        if not (too_big.any() or fits_up.any()):
            break
        t = torch.where(too_big, torch.nextafter(t, ninf), torch.where(fits_up, up, t))
    return torch.where(r < 0, torch.full_like(t, -1.0), t)


def _blocks(rows: torch.Tensor, cols: torch.Tensor, chunk_size: int, row_shift: torch.Tensor):
    """Yield (row slice, column slice, squared-distance block), all column blocks of a row block in a row.

    ``cols`` are already centred; ``rows`` are centred on ``row_shift`` one row block at a time,
    so only one of the two sets is copied whole (400 MB less at 50,000 x 2048).
    """
    col_sq = squared_norms(cols)
    for r0 in range(0, len(rows), chunk_size):
        r = slice(r0, min(r0 + chunk_size, len(rows)))
        block_rows = _centred(rows[r], row_shift)
        block_sq = squared_norms(block_rows)
        for c0 in range(0, len(cols), chunk_size):
            c = slice(c0, min(c0 + chunk_size, len(cols)))
            yield r, c, squared_distances(block_rows, cols[c], block_sq, col_sq[c])


@torch.no_grad()
def knn_radii(
    features: torch.Tensor,
    k: int,
    chunk_size: int | None = None,
    device: str | torch.device | None = None,
    memory_budget: int = DEFAULT_MEMORY_BUDGET,
    screen: ScreenChoice = "auto",
) -> torch.Tensor:
    """Distance from each sample to its k-th nearest neighbour in the same set, itself excluded.

    Computed as torch-fidelity does, the (k+1)-th smallest distance with the point's own
    (near-)zero distance counted, keeping a running top-(k+1) per sample. Only the blocks on and
    above the diagonal of the symmetric distance matrix are computed; an off-diagonal block
    serves both its rows and (transposed) its columns. A distance then comes from the block
    (i, j) or (j, i), which can differ from the other in the last bit; radii agree with
    torch-fidelity's to float32 rounding.

    Parameters
    ----------
    features : torch.Tensor
        (N, D) samples, N > k.
    k : int
        Neighbourhood size.
    chunk_size : int, optional
        Rows and columns per block; derived from ``memory_budget`` when None.
    device : str or torch.device, optional
        Where to compute (default: where ``features`` are).
    memory_budget : int
        Bytes of temporaries allowed per block.
    screen : {"auto", "bfloat16", "float32"}
        "bfloat16" screens the blocks with a bfloat16 GEMM and refines the pairs near a radius
        in float32 (:mod:`gen_eval.metrics.knn_screen`); the radii are those of "float32".
        "auto" screens on a CPU with native bfloat16 for wide, large sets.

    Returns
    -------
    torch.Tensor
        (N,) float32 radii on ``device``.
    """
    (moved,) = _moved(features, device=device)
    if not 0 < k < len(moved):
        raise ValueError(f"k must be in [1, N - 1] = [1, {len(moved) - 1}]; got {k}")
    shift = common_shift(moved)
    chunk_size = chunk_size or auto_chunk_size(moved.shape[1], memory_budget)
    if use_screen(screen, moved.device, moved.shape[1], len(moved) ** 2 // 2):
        try:
            return screened_radii(moved, k, chunk_size, functools.partial(_centred, shift=shift)).sqrt()
        except ScreenGaveUp:
            pass  # quantised data with many ties near a radius: the float32 path below
    x = _centred(moved, shift)
    keep = k + 1
    best = torch.full((len(x), keep), math.inf, dtype=torch.float32, device=x.device)

    def merge(rows: slice, squared: torch.Tensor) -> None:
        # The block's own smallest first: the concatenation then holds 2 (k + 1) columns, not c.
        smallest = squared.topk(min(keep, squared.shape[1]), dim=1, largest=False, sorted=False).values
        merged = torch.cat([best[rows], smallest], dim=1)
        best[rows] = merged.topk(keep, dim=1, largest=False, sorted=True).values

    # The distance matrix is symmetric: each off-diagonal block serves its rows and, transposed,
    # its columns, so only blocks on or above the diagonal are computed (about half the work).
    norms = squared_norms(x)
    for r0 in range(0, len(x), chunk_size):
        rows = slice(r0, min(r0 + chunk_size, len(x)))
        for c0 in range(r0, len(x), chunk_size):
            cols = slice(c0, min(c0 + chunk_size, len(x)))
            squared = squared_distances(x[rows], x[cols], norms[rows], norms[cols])
            merge(rows, squared)
            if c0 != r0:
                merge(cols, squared.T)
    return best[:, k].sqrt()


class Balls(NamedTuple):
    """One family of balls for :func:`ball_scans`.

    Attributes
    ----------
    radii : torch.Tensor
        (M,) or (N,) radii of the side ``of`` names.
    of : {"rows", "cols"}
        Whose balls: ``"rows"``, column i lies in row j's ball; ``"cols"``, row j in column i's.
    strict : bool
        ``d < radius`` (prdc) instead of ``d <= radius`` (torch-fidelity).
    replicates : bool
        Whether to count, per resample, the rows reached (needs ``counts``).
    """

    radii: torch.Tensor
    of: Literal["rows", "cols"]
    strict: bool = False
    replicates: bool = False


@torch.no_grad()
def ball_scans(
    rows: torch.Tensor,
    cols: torch.Tensor,
    balls: list[Balls],
    counts: torch.Tensor | None = None,
    chunk_size: int | None = None,
    device: str | torch.device | None = None,
    memory_budget: int = DEFAULT_MEMORY_BUDGET,
    screen: ScreenChoice = "auto",
) -> list[BallScan]:
    """One pass over ``cdist(rows, cols)`` deciding ``inside[j, i]`` for each family of balls.

    With ``counts`` (R, N), the bootstrap weights of the columns, per replicate r the rows
    reached by a column present in r are counted: each block's membership is multiplied into
    the counts (a sparse CSR product for the usual sparse blocks) and summed over the column
    blocks of a row block, so the full membership matrix is never stored; beyond the block
    budget, only an (N, R) float32 copy of ``counts`` and (rows per block, R) sums are held.

    Parameters
    ----------
    rows, cols : torch.Tensor
        (M, D) and (N, D) samples.
    balls : list of Balls
        The ball families, sharing the distance computation.
    counts : torch.Tensor, optional
        (R, N) non-negative resample counts of the columns.
    chunk_size, device, memory_budget, screen
        As for :func:`knn_radii`.

    Returns
    -------
    list of BallScan
        One per family, in order.
    """
    y, raw_cols = _moved(rows, cols, device=device)  # y is centred a row block at a time
    shift = common_shift(y, raw_cols)
    screened = use_screen(screen, y.device, y.shape[1], len(y) * len(raw_cols))
    x = raw_cols if screened else _centred(raw_cols, shift)
    thresholds = [squared_thresholds(b.radii.to(y.device), b.strict) for b in balls]
    weights_t = None if counts is None else counts.to(y.device, torch.float32).T.contiguous()
    num_resamples = 0 if counts is None else len(counts)
    replicating = [b.replicates and counts is not None for b in balls]
    chunk_size = chunk_size or auto_chunk_size(y.shape[1], memory_budget, num_resamples * sum(replicating))
    shape = (len(y), len(x), num_resamples)
    if screened:
        centre = functools.partial(_centred, shift=shift)
        blocks = screened_memberships(y, x, chunk_size, thresholds, [b.of for b in balls], centre)
        try:
            return _tally(blocks, shape, replicating, weights_t, y.device)
        except ScreenGaveUp:  # quantised data with many ties near a radius: the float32 path
            x = _centred(x, shift)
    blocks = _float32_memberships(y, x, chunk_size, shift, thresholds, balls)
    return _tally(blocks, shape, replicating, weights_t, y.device)


def _float32_memberships(
    y: torch.Tensor,
    x: torch.Tensor,
    chunk_size: int,
    shift: torch.Tensor,
    thresholds: list[torch.Tensor],
    balls: list[Balls],
) -> Iterator[tuple[slice, slice, list[torch.Tensor]]]:
    """Yield (row slice, column slice, ``inside`` per family) from float32 blocks."""
    for r, c, squared in _blocks(y, x, chunk_size, shift):
        insides = []
        for n, family in enumerate(balls):
            bound = thresholds[n][r, None] if family.of == "rows" else thresholds[n][None, c]
            insides.append(squared <= bound)  # strictness is in the threshold
        yield r, c, insides


def ball_scan(
    rows: torch.Tensor,
    cols: torch.Tensor,
    radii: torch.Tensor,
    radii_of: Literal["rows", "cols"],
    strict: bool = False,
    counts: torch.Tensor | None = None,
    **kwargs,
) -> BallScan:
    """:func:`ball_scans` for one family of balls (with replicates when ``counts`` are given)."""
    return ball_scans(rows, cols, [Balls(radii, radii_of, strict, counts is not None)], counts, **kwargs)[0]


def any_within(
    queries: torch.Tensor, centres: torch.Tensor, radii: torch.Tensor, strict: bool = False, **kwargs
) -> torch.Tensor:
    """(Nq,) bool: whether each query lies in at least one ball (centres[i], radii[i]).

    ``kwargs`` (chunk_size, device, memory_budget) as for :func:`ball_scan`.
    """
    return ball_scan(queries, centres, radii, "cols", strict=strict, **kwargs).row_any


def count_within(
    queries: torch.Tensor, centres: torch.Tensor, radii: torch.Tensor, strict: bool = False, **kwargs
) -> torch.Tensor:
    """(Nq,) int64: how many balls (centres[i], radii[i]) contain each query.

    Scans ``cdist(centres, queries)`` so that the count accumulates per column.
    """
    return ball_scan(centres, queries, radii, "rows", strict=strict, **kwargs).col_count
