"""Sliced Wasserstein distance (Rabin et al. 2011; Bonneel et al. 2015) between feature sets.

Each of L directions theta_l, drawn uniformly on the unit sphere of R^D from the run's seed,
projects both sets to the line; on the line the p-Wasserstein distance between two empirical
distributions with uniform weights is the integral over t in (0, 1) of |F^-1(t) - G^-1(t)|^p
(the quantile functions, i.e. the sorted projections). Then

    SWD_p = ( 1/L sum_l W_p^p(theta_l . x, theta_l . y) )^(1/p)

which is POT's ``ot.sliced_wasserstein_distance`` (tests and ``gen-eval bench parity`` compare the
two on the same directions). The quantile functions are piecewise constant between the points
i/n and j/m; those are merged as exact integers (i m and j n over n m), so unequal set sizes are
handled exactly. Hand-written rather than calling POT for every projection and bootstrap
replicate: POT takes numpy or torch arrays but draws its own directions, and the bootstrap
reuses the sorted reference projections (only the generated ones are re-sorted per replicate).

The value is in the features' units (Euclidean distances between embeddings). It depends on L
through the Monte Carlo average over directions: the interval holds the directions fixed (it
covers the SWD with these L directions, not the integral over the sphere), and a rerun with
another seed moves the value by about the spread over directions / sqrt(L), given in the details.
"""

from __future__ import annotations

import torch

from gen_eval.errors import GenEvalError
from gen_eval.metrics.base import MetricContext
from gen_eval.metrics.bootstrap import recentred_interval, resample_indices
from gen_eval.metrics.result import Result


def random_directions(dim: int, count: int, seed: int) -> torch.Tensor:
    """(dim, count) float64 unit vectors, uniform on the sphere (normalised Gaussians), seeded on the CPU."""
    generator = torch.Generator().manual_seed(seed)
    directions = torch.randn(dim, count, generator=generator, dtype=torch.float64)
    return directions / directions.norm(dim=0, keepdim=True)


def wasserstein_1d(u_sorted: torch.Tensor, v_sorted: torch.Tensor, p: float) -> torch.Tensor:
    """W_p^p between the rows of (L, n) and (L, m) sorted samples, uniform weights: (L,).

    Parameters
    ----------
    u_sorted, v_sorted : torch.Tensor
        Each row sorted ascending; row l of one is compared with row l of the other.
    p : float
        The order, p >= 1.

    Returns
    -------
    torch.Tensor
        (L,) the p-th powers of the distances.
    """
    n, m = u_sorted.shape[1], v_sorted.shape[1]
    device = u_sorted.device
    # Breakpoints of both quantile functions in units of 1 / (n m): exact integers, merged.
    ends = torch.unique(
        torch.cat([torch.arange(1, n + 1, device=device) * m, torch.arange(1, m + 1, device=device) * n])
    )
    widths = torch.diff(ends, prepend=ends.new_zeros(1)).to(torch.float64) / (n * m)
    # On (t_{k-1}, t_k] the quantile of the sorted u is u[ceil(t_k n) - 1] (t_k in units 1/(n m)).
    iu = (ends + m - 1) // m - 1
    iv = (ends + n - 1) // n - 1
    gaps = (u_sorted[:, iu] - v_sorted[:, iv]).abs()
    return (gaps if p == 1 else gaps.pow(p)) @ widths


def sliced_wasserstein(
    generated: dict[str, torch.Tensor],
    reference: dict[str, torch.Tensor],
    context: MetricContext | None = None,
) -> dict[str, Result]:
    """Sliced Wasserstein distance between the ``"features"`` of two feature dicts.

    Parameters
    ----------
    generated, reference : dict of str to torch.Tensor
        Feature dicts; ``"features"`` (n, D) and (m, D) are used.
    context : MetricContext, optional
        Device, seed (the directions are drawn from it), bootstrap resamples (0: no interval) and
        options ``swd_projections`` (L, 256) and ``swd_p`` (2).

    Returns
    -------
    dict
        ``{"swd": Result}``, ``direction="lower"``; ``details["projection_spread"]`` is the
        standard error of the mean of W_p^p over the directions (the Monte Carlo error of using L).
    """
    context = context or MetricContext(num_resamples=0)
    x = generated["features"].to(context.device, torch.float64)
    y = reference["features"].to(context.device, torch.float64)
    if x.ndim != 2 or y.ndim != 2 or x.shape[1] != y.shape[1]:
        raise GenEvalError(f"SWD needs (N, D) features of equal D; got {tuple(x.shape)} and {tuple(y.shape)}")
    if min(len(x), len(y)) < 1:
        raise GenEvalError("SWD needs at least 1 sample in each set")
    count = int(context.option("swd_projections", 256))
    p = float(context.option("swd_p", 2))
    if count < 1 or p < 1:
        raise GenEvalError(f"SWD needs swd_projections >= 1 and swd_p >= 1; got {count} and {p}")
    directions = random_directions(x.shape[1], count, context.random_state).to(context.device)
    # Centred on the reference mean: a common shift moves every projection alike and W not at all.
    shift = y.mean(0)
    gen_projected = ((x - shift) @ directions).T.contiguous()  # (L, n)
    ref_sorted = ((y - shift) @ directions).T.sort(dim=1).values
    per_direction = wasserstein_1d(gen_projected.sort(dim=1).values, ref_sorted, p)
    value = float(per_direction.mean() ** (1 / p))

    interval = covers = None
    if context.num_resamples > 0 and len(x) > 1:
        indices = resample_indices(len(x), context.num_resamples, context.random_state).to(context.device)
        replicates = torch.stack(
            [
                wasserstein_1d(gen_projected[:, row].sort(dim=1).values, ref_sorted, p).mean() ** (1 / p)
                for row in indices
            ]
        )
        # A resample's repeats roughen its distribution: its SWD sits above the point; shift back.
        interval = recentred_interval(replicates, value, context.confidence, lower=0.0, upper=float("inf"))
        covers = (
            f"the SWD at this N ({len(x):,} generated vs {len(y):,} reference) along these {count} directions "
            "(seed fixed), the generated set resampled and the reference fixed; the empirical SWD is biased "
            "upward at finite N, so compare runs of equal N"
        )
    spread = float(per_direction.std() / count**0.5) if count > 1 else float("nan")
    return {
        "swd": Result(
            name="swd",
            value=value,
            direction="lower",
            num_generated=len(x),
            num_reference=len(y),
            interval=interval,
            interval_covers=covers,
            details={
                "projections": count,
                "p": p,
                "seed": context.random_state,
                "projection_spread": spread,
                "feature_dim": x.shape[1],
                "num_resamples": context.num_resamples,
                "interval_method": None if interval is None else "percentile, shifted by the bootstrap bias",
            },
        )
    }
