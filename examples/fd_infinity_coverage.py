"""Coverage experiment for FD-infinity's interval on Gaussian features with a closed-form FID.

    python examples/fd_infinity_coverage.py --dims 16 64 --sizes 500 2000 5000 --seeds 60

Generated features ~ N(mu_g, diag(s_g)), reference ~ N(0, diag(s_r)) with s_r = 1/sqrt(i): the
population FID is |mu_g|^2 + sum (sqrt(s_g) - sqrt(s_r))^2. Each seed draws a fresh generated set
and a fresh reference, runs ``get_metric("fd_inf")`` with each interval method, and records
whether the interval holds the population FID ("pop") and the FID of the generating distribution
against that seed's reference moments ("cond", what the interval claims to cover). "spread" is
half the 2.5-97.5% range of the point estimate over seeds: the half-width an interval should have.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from gen_eval.metrics import MetricContext, get_metric
from gen_eval.metrics.fid import frechet_distance


def population(dim: int, scale: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """(mu_g, s_g, s_r, population FID) for a fixed, seeded choice of generating distribution."""
    rng = np.random.default_rng(12345 + dim)
    s_r = 1.0 / np.arange(1, dim + 1) ** 0.5
    s_g = s_r * (1 + scale * 0.3 * rng.uniform(-1, 1, dim))
    mu_g = scale * 0.1 * s_r**0.5 * rng.standard_normal(dim)
    return mu_g, s_g, s_r, float(mu_g @ mu_g + ((np.sqrt(s_g) - np.sqrt(s_r)) ** 2).sum())


def run(
    dim: int,
    n: int,
    m: int,
    seeds: int,
    resamples: int,
    methods: list[str],
    scale: float,
    smallest: int | None,
) -> None:
    """Print one block of the table: coverage and mean half-width per interval method."""
    mu_g, s_g, s_r, pop = population(dim, scale)
    metric = get_metric("fd_inf")
    points, conds, widths, seconds = [], [], {k: [] for k in methods}, {k: [] for k in methods}
    for seed in range(seeds):
        rng = np.random.default_rng(seed)
        y = torch.from_numpy(rng.standard_normal((m, dim)) * np.sqrt(s_r))
        x = torch.from_numpy(mu_g + rng.standard_normal((n, dim)) * np.sqrt(s_g))
        cond = frechet_distance(
            torch.from_numpy(mu_g), torch.from_numpy(np.diag(s_g)), y.mean(0), torch.cov(y.T)
        )
        for method in methods:
            context = MetricContext(
                random_state=seed, num_resamples=resamples, options={"fd_inf_interval": method}
            )
            if smallest is not None:
                context.options["fd_inf_min"] = smallest
            started = time.perf_counter()
            result = metric({"features": x}, {"features": y}, context)["fd_inf"]
            seconds[method].append(time.perf_counter() - started)
            widths[method].append((result.interval[1] - result.interval[0]) / 2)
        points.append(result.value)
        conds.append(cond)
    points_a, conds_a = np.array(points), np.array(conds)
    low, high = np.quantile(points_a, [0.025, 0.975])
    print(
        f"d={dim} N={n} M={m} seeds={seeds} sizes from {smallest or min(5000, n // 10)}: population FID {pop:.4f}, "
        f"cond {conds_a.mean():.4f}, FD-inf mean {points_a.mean():.4f} sd {points_a.std(ddof=1):.4f} "
        f"spread {(high - low) / 2:.4f}"
    )
    for method in methods:
        h = np.array(widths[method])
        print(
            f"  {method:14s} half-width {h.mean():.4f}  covers pop {np.mean(np.abs(points_a - pop) <= h):.2f}  "
            f"cond {np.mean(np.abs(points_a - conds_a) <= h):.2f}  {np.mean(seconds[method]):.2f} s/call"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dims", type=int, nargs="+", default=[16, 64])
    parser.add_argument("--sizes", type=int, nargs="+", default=[500, 2000, 5000])
    parser.add_argument("--reference", type=int, default=20000)
    parser.add_argument("--seeds", type=int, default=60)
    parser.add_argument("--resamples", type=int, default=100)
    parser.add_argument("--methods", nargs="+", default=["ols", "bootstrap+ols"])
    parser.add_argument("--scale", type=float, default=1.0, help="distance from the reference (0: same)")
    parser.add_argument("--min", type=int, default=None, help="fd_inf_min (default: the convention's)")
    args = parser.parse_args()
    for dim in args.dims:
        for n in args.sizes:
            run(dim, n, args.reference, args.seeds, args.resamples, args.methods, args.scale, args.min)


if __name__ == "__main__":
    main()
