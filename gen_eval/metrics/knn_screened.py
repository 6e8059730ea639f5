"""k-NN radii and ball memberships through the bfloat16 screen (:mod:`gen_eval.metrics.knn_screen`).

The same block walks as :mod:`gen_eval.metrics.knn`, with one bfloat16 GEMM per block instead of
a float32 one, and float32 refinement of the pairs the screen cannot decide. Both functions
return exactly what the float32 path defines (module docstring of ``knn_screen``); they give up,
raising :class:`ScreenGaveUp`, when too many pairs need refining (ties in quantised data, or a
scale the bound cannot resolve), and the caller then runs the float32 path.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator

import torch

from gen_eval.metrics import knn_screen as screen
from gen_eval.metrics.knn_centring import squared_distances

# Refined pairs allowed per row before the screen gives up (the float32 path is then cheaper).
MAX_CANDIDATES_PER_ROW = 256
MAX_UNDECIDED_FRACTION = 1 / 16
# Screened values kept per row and block: candidates are the few smallest (about 1 per block).
TOP_CANDIDATES = 16


class ScreenGaveUp(RuntimeError):
    """Too many pairs lie near a radius for the screen to save time."""


Centre = Callable[[torch.Tensor], torch.Tensor]  # raw rows -> centred float32 rows


def _typical_squared_radius(source: torch.Tensor, k: int, centre: Centre, sample: int = 64) -> float:
    """Median squared k-NN radius of up to ``sample`` evenly spaced rows: the centre m (any value is sound)."""
    rows = centre(source[:: max(1, len(source) // sample)])
    best = torch.full((len(rows), k + 1), math.inf, device=source.device)
    for start in range(0, len(source), 4096):
        cols = centre(source[start : start + 4096])
        d = squared_distances(rows, cols, rows.square().sum(dim=1), cols.square().sum(dim=1))
        best = torch.cat([best, d], dim=1).topk(k + 1, dim=1, largest=False).values
    return float(best[:, k].clamp_min(0).median())


def _kth_smallest_per_row(rows: torch.Tensor, values: torch.Tensor, n: int, k: int) -> torch.Tensor:
    """(n,) the (k+1)-th smallest of ``values`` among entries with each row index."""
    order = torch.argsort(values, stable=True)
    order = order[torch.argsort(rows[order], stable=True)]
    counts = torch.bincount(rows, minlength=n)
    if bool((counts <= k).any()):  # cannot happen if the bound holds; never guess
        raise ScreenGaveUp("a row has fewer than k + 1 candidates")
    starts = torch.cumsum(counts, 0) - counts
    return values[order[starts + k]]


@torch.no_grad()
def screened_radii(source: torch.Tensor, k: int, chunk_size: int, centre: Centre) -> torch.Tensor:
    """(N,) float32 squared k-NN radii (the point itself counted), as the float32 path has them.

    ``centre`` maps raw ``source`` rows to centred float32 rows; it runs a chunk at a time and on
    the refined pairs' rows, so no whole centred copy is held besides the two bfloat16 matrices.
    """
    n, dim = source.shape
    m = _typical_squared_radius(source, k, centre)
    left = screen.prepare(source, m / 2, left=True, centre=centre)
    right = screen.mirror(left)
    keep = k + 1
    tau = torch.full((n, keep), math.inf, dtype=torch.float64, device=source.device)
    found: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = []
    stored = 0

    def collect(rows: slice, cols: slice, out: torch.Tensor, residual: torch.Tensor) -> None:
        # A row's candidates are among its smallest screened values: one top-K per row finds
        # them (and the k + 1 smallest for tau); a row whose K-th value still qualifies may
        # have more and is scanned whole.
        nonlocal stored
        width = min(out.shape[1], max(TOP_CANDIDATES, keep))
        values, index = out.topk(width, dim=1, largest=False, sorted=True)
        upper = screen.upper_bounds(values[:, :keep], residual, m)
        tau[rows] = torch.cat([tau[rows], upper], dim=1).topk(keep, dim=1, largest=False).values
        limits = screen.candidate_limits(tau[rows, k], residual, m)
        chosen = values <= limits[:, None]
        full = chosen[:, -1].clone() if width < out.shape[1] else torch.zeros_like(chosen[:, -1])
        chosen &= ~full[:, None]
        i, slot = chosen.nonzero(as_tuple=True)
        j, screened = index[i, slot], values[i, slot]
        if bool(full.any()):
            wide = full.nonzero().squeeze(1)
            wi, wj = (out[wide] <= limits[wide, None]).nonzero(as_tuple=True)
            i, j = torch.cat([i, wide[wi]]), torch.cat([j, wj])
            screened = torch.cat([screened, out[wide[wi], wj]])
        found.append((i + rows.start, j + cols.start, screen.lower_bounds(screened, residual[i], m)))
        stored += len(i)
        if stored > MAX_CANDIDATES_PER_ROW * n:
            raise ScreenGaveUp("too many candidates")

    for r0 in range(0, n, chunk_size):
        rows = slice(r0, min(r0 + chunk_size, n))
        for c0 in range(r0, n, chunk_size):
            cols = slice(c0, min(c0 + chunk_size, n))
            out = left.matrix[rows] @ right.matrix[cols].T
            row_residual, col_residual = screen.residual_bounds(left, right, rows, cols, dim)
            collect(rows, cols, out, row_residual)
            if c0 != r0:
                collect(cols, rows, out.T.contiguous(), col_residual)
        # tau only falls, so a candidate whose lower bound exceeds today's tau is never needed:
        # dropping them after each row block keeps storage near the final count (at 50,000 rows,
        # the loose early taus of rows not yet reached had stored about 1.7 GB).
        found[:] = [_pruned(found, tau[:, k])]
        stored = len(found[0][0])
    i, j, lower = found[0]
    return _refined_radii(lambda idx: centre(source[idx]), left.sq32, i, j, lower, k)


def _pruned(
    found: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]], tau: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The candidates (row, column, lower bound) whose lower bound is at most their row's tau."""
    i, j, lower = (torch.cat(parts) for parts in zip(*found, strict=True))
    kept = lower <= tau[i]
    return i[kept], j[kept], lower[kept]


def _refined_radii(
    rows_of: Centre, sq: torch.Tensor, i: torch.Tensor, j: torch.Tensor, lower: torch.Tensor, k: int
) -> torch.Tensor:
    """(N,) the (k+1)-th smallest refined value per row, refining as few candidates as it can.

    First the k + 1 candidates with the smallest lower bounds per row: the largest of their
    values, rho, bounds the answer from above. Then only the other candidates whose lower bound
    is at most rho can hold a value at or below the answer (about 40% fewer pairs refined).
    """
    n = len(sq)
    order = torch.argsort(lower, stable=True)
    order = order[torch.argsort(i[order], stable=True)]
    i, j, lower = i[order], j[order], lower[order]
    counts = torch.bincount(i, minlength=n)
    if bool((counts <= k).any()):  # cannot happen if the bound holds; never guess
        raise ScreenGaveUp("a row has fewer than k + 1 candidates")
    rank = torch.arange(len(i), device=sq.device) - (torch.cumsum(counts, 0) - counts)[i]
    first = rank <= k
    rows1, values1 = screen.refine_by_row(rows_of, sq, i[first], j[first])
    rho = torch.zeros(n, dtype=torch.float64, device=sq.device).scatter_reduce_(
        0, rows1, values1.double(), reduce="amax"
    )
    second = ~first & (lower <= rho[i])
    rows2, values2 = screen.refine_by_row(rows_of, sq, i[second], j[second])
    return _kth_smallest_per_row(torch.cat([rows1, rows2]), torch.cat([values1, values2]), n, k)


def screened_memberships(
    rows: torch.Tensor,
    cols: torch.Tensor,
    chunk_size: int,
    thresholds: list[torch.Tensor],
    of: list[str],
    centre: Centre,
) -> Iterator[tuple[slice, slice, list[tuple[torch.Tensor, torch.Tensor]]]]:
    """Yield (row slice, column slice, inside pairs per family) as the float32 path decides them.

    A family's inside pairs are (i, j) block-local index tensors.

    ``rows`` and ``cols`` are raw, centred by ``centre`` a block at a time; ``thresholds[n]``
    are float32 squared thresholds per row or column (``of[n]``).
    """
    finite = torch.cat([t[torch.isfinite(t) & (t >= 0)] for t in thresholds])
    m = float(finite.double().median()) if len(finite) else 0.0
    dim = cols.shape[1]
    right = screen.prepare(cols, m / 2, left=False, centre=centre)

    def col_gather(idx: torch.Tensor) -> torch.Tensor:
        return centre(cols[idx])

    for r0 in range(0, len(rows), chunk_size):
        r = slice(r0, min(r0 + chunk_size, len(rows)))
        block = centre(rows[r])
        left = screen.prepare(block, m / 2, left=True)
        whole = slice(0, r.stop - r.start)
        for c0 in range(0, len(cols), chunk_size):
            c = slice(c0, min(c0 + chunk_size, len(cols)))
            out = left.matrix @ right.matrix[c].T
            residuals = screen.residual_bounds(left, right, whole, c, dim)
            insides = []
            for t, side in zip(thresholds, of, strict=True):
                along = 0 if side == "rows" else 1
                bound = t[r] if along == 0 else t[c]
                sure, maybe = screen.decision_limits(bound, residuals[along], m)
                # Members are sparse: list the pairs that may be inside, then settle each.
                i, j = (out <= (maybe[:, None] if along == 0 else maybe[None, :])).nonzero(as_tuple=True)
                own = i if along == 0 else j
                inside = out[i, j] <= sure[own]
                undecided = (~inside).nonzero().squeeze(1)
                if len(undecided) > MAX_UNDECIDED_FRACTION * out.numel():
                    raise ScreenGaveUp("too many undecided pairs")
                if len(undecided):
                    ui, uj = i[undecided], j[undecided]
                    a = screen.refine(block.__getitem__, col_gather, left.sq32, right.sq32, ui, uj + c0)
                    inside[undecided] = a <= bound[own[undecided]]
                insides.append((i[inside], j[inside]))
            yield r, c, insides
