"""FD-infinity (Chong & Forsyth 2020): FID extrapolated to an infinite number of samples.

FID is biased upward by roughly c/N. Computing FID on random subsets of the generated set
at ``fd_inf_points`` sizes N from ``fd_inf_min`` to all of them, then fitting
FID_N = FD_inf + slope / N by ordinary least squares, gives the intercept FD_inf: an
estimate that models with different sample sizes can be compared on. Defaults follow
the paper's code: 15 points, smallest subset a tenth of the set (5,000 of 50,000 there).

The interval is the OLS 95% confidence interval of the intercept (a t interval from the
regression's residuals), not a bootstrap: the subsets already resample the set.
"""

from __future__ import annotations

import numpy as np
import torch

from gen_eval.errors import GenEvalError
from gen_eval.metrics.base import MetricContext
from gen_eval.metrics.fid import fid
from gen_eval.metrics.result import Result


def fd_infinity(
    generated: dict[str, torch.Tensor],
    reference: dict[str, torch.Tensor],
    context: MetricContext | None = None,
) -> dict[str, Result]:
    """FID extrapolated to N -> infinity from FIDs of generated subsets.

    Parameters
    ----------
    generated, reference : dict of str to torch.Tensor
        Feature dicts; ``"features"`` is used.
    context : MetricContext, optional
        ``fd_inf_points`` (default 15) and ``fd_inf_min`` (default N // 10, at least 2) options;
        ``random_state`` seeds the subsets.

    Returns
    -------
    dict
        ``{"fd_inf": Result}`` with the fitted slope and the (N, FID) points in ``details``.
    """
    from scipy import stats

    context = context or MetricContext(num_resamples=0)
    features = generated["features"]
    n = len(features)
    points = int(context.option("fd_inf_points", 15))
    smallest = int(context.option("fd_inf_min", max(2, n // 10)))
    if points < 3 or smallest < 2 or smallest >= n:
        raise GenEvalError(
            f"FD-infinity needs at least 3 subset sizes between 2 and N={n}; got {points} from {smallest}"
        )
    sizes = np.unique(np.linspace(smallest, n, points).astype(int))
    generator = torch.Generator().manual_seed(context.random_state)
    plain = MetricContext(device=context.device, num_resamples=0)
    values = []
    for size in sizes:
        subset = features[torch.randperm(n, generator=generator)[:size]]
        values.append(fid({"features": subset}, reference, plain)["fid"].value)
    fit = stats.linregress(1.0 / sizes, np.asarray(values))
    dof = len(sizes) - 2
    half_width = float(stats.t.ppf(0.5 + context.confidence / 2, dof) * fit.intercept_stderr)
    warnings = []
    if smallest <= features.shape[1]:
        warnings.append(
            f"smallest subset ({smallest}) has no more samples than feature dimensions ({features.shape[1]}); "
            "the 1/N fit is least reliable there"
        )
    result = Result(
        name="fd_inf",
        value=float(fit.intercept),
        direction="lower",
        num_generated=n,
        num_reference=len(reference["features"]),
        interval=(float(fit.intercept) - half_width, float(fit.intercept) + half_width),
        warnings=warnings,
        details={
            "slope": float(fit.slope),
            "sizes": sizes.tolist(),
            "fids": [float(v) for v in values],
            "r_squared": float(fit.rvalue**2),
            "interval_method": "OLS t-interval of the intercept",
        },
    )
    return {"fd_inf": result}
