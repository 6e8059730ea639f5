"""Per-sample realism (Kynkäänniemi et al. 2019) and rarity (Han et al. 2022) of generated samples.

Both read the k-NN balls of the reference (real) set: r_j = NND_k(y_j), the distance from y_j to
its k-th nearest other reference sample (k = 3 in both papers), as precision/recall computes it.

Realism (Kynkäänniemi et al. 2019, Eq. 3): for a generated sample g,

    R(g) = max_j  r_j / |g - y_j|     over the reference samples whose radius is at most the median

The half of the balls with the largest radii are dropped first ("we discard half of the
hyperspheres with the largest radii", the reference code's ``clamp_to_percentile=50``), because
outliers' large balls would call anything near them realistic. R(g) >= 1 exactly when g lies in one
of the kept balls. The paper's code works with squared distances, so its score is R(g)^2: the same
ranking and the same threshold 1. A distance of 0 (a copy of a reference sample) is taken as 1e-12
of the median radius, so R stays finite (and huge).

Rarity (Han et al. 2022, Eq. 2): for a generated sample g inside at least one reference ball (all
balls, none dropped),

    rarity(g) = min { r_j : |g - y_j| <= r_j }

the radius of the smallest ball holding g: large in sparse regions of the real data (rare
features), small in dense ones. Samples outside every ball are not scored (``None`` per sample;
the paper leaves them out as unrealistic).

Set summaries, with bootstrap intervals (generated set resampled, reference and radii fixed):
``realism`` is the median of R(g) (the mean is ruled by the near-copies' huge ratios), ``rarity``
the mean rarity of the scored samples. ``details`` keep every per-sample value (stored in the run's
``metrics.json``) and the indices of the most and least realistic and the rarest samples, which the
run report and the dashboard show as image grids.
"""

from __future__ import annotations

import numpy as np
import torch

from gen_eval.metrics.base import MetricContext
from gen_eval.metrics.bootstrap import percentile_interval, resample_indices
from gen_eval.metrics.knn import centred_float32, knn_radii
from gen_eval.metrics.precision_recall import check_knn_inputs, knn_options
from gen_eval.metrics.result import Result

SHOWN = 16  # samples listed at each end of the realism ranking (the report's grids)
_BLOCK_ELEMENTS = 1 << 22  # distances per block (16 MB in float32)


def realism_scores(
    generated: torch.Tensor,
    reference: torch.Tensor,
    radii: torch.Tensor,
    rarity_radii: torch.Tensor | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Per-sample realism R(g) and rarity (NaN outside every ball) of ``generated``.

    Parameters
    ----------
    generated, reference : torch.Tensor
        (n, D) and (m, D) features.
    radii : torch.Tensor
        (m,) k-NN radii of the reference for realism (pruned here at their median).
    rarity_radii : torch.Tensor, optional
        (m,) radii for rarity (default ``radii``); none are pruned.

    Returns
    -------
    realism, rarity : np.ndarray
        (n,) float64 each.
    """
    rarity_radii = radii if rarity_radii is None else rarity_radii
    gen, ref = centred_float32(generated, reference, device=radii.device)
    radii = radii.to(torch.float32)
    rarity_radii = rarity_radii.to(ref.device, torch.float32)
    median = torch.quantile(radii.double(), 0.5).to(torch.float32)  # linear, as np.percentile(50)
    kept = radii <= median
    kept_radii, kept_ref = radii[kept], ref[kept]
    tiny = 1e-12 * max(float(median), float(torch.finfo(torch.float32).tiny))
    rows = max(1, _BLOCK_ELEMENTS // max(1, len(ref)))
    realism = torch.empty(len(gen), dtype=torch.float64)
    rarity = torch.empty(len(gen), dtype=torch.float64)
    for start in range(0, len(gen), rows):
        block = gen[start : start + rows]
        near = torch.cdist(block, kept_ref).clamp_(min=tiny)
        realism[start : start + len(block)] = (kept_radii[None, :] / near).amax(1).double().cpu()
        distances = torch.cdist(block, ref)
        holding = torch.where(distances <= rarity_radii[None, :], rarity_radii[None, :], torch.inf)
        smallest = holding.amin(1).double().cpu()
        rarity[start : start + len(block)] = torch.where(torch.isinf(smallest), torch.nan, smallest)
    return realism.numpy(), rarity.numpy()


def _listed(values: np.ndarray) -> list[float | None]:
    return [None if not np.isfinite(v) else float(v) for v in values]


def realism_rarity(
    generated: dict[str, torch.Tensor],
    reference: dict[str, torch.Tensor],
    context: MetricContext | None = None,
) -> dict[str, Result]:
    """Realism and rarity of the generated ``"features"`` against the reference ones.

    Parameters
    ----------
    generated, reference : dict of str to torch.Tensor
        Feature dicts; ``"features"`` (n, D) generated and (m, D) reference are used.
    context : MetricContext, optional
        Device, seed, bootstrap resamples (0: no interval) and options ``realism_k`` (3) and
        ``rarity_k`` (3), the k of each score's reference radii.

    Returns
    -------
    dict
        ``{"realism": Result, "rarity": Result}``. Realism: the median R(g), higher is more
        realistic. Rarity: the mean rarity of the samples inside a reference ball, ``direction``
        "higher" (rarer; Han et al. read it as creativity among realistic samples, not as quality).
    """
    context = context or MetricContext(num_resamples=0)
    x, y = generated["features"], reference["features"]
    k = int(context.option("realism_k", 3))
    k_rarity = int(context.option("rarity_k", 3))
    check_knn_inputs(x, y, max(k, k_rarity), "realism/rarity")
    options = knn_options(context, "realism")
    radii = knn_radii(y, k, **options)
    rarity_radii = radii if k_rarity == k else knn_radii(y, k_rarity, **options)
    realism, rarity = realism_scores(x, y, radii, rarity_radii)
    scored = np.isfinite(rarity)
    order = np.argsort(-realism, kind="stable")
    rarest = np.argsort(-np.where(scored, rarity, -np.inf), kind="stable")[: min(SHOWN, int(scored.sum()))]

    realism_interval = rarity_interval = None
    if context.num_resamples > 0:
        indices = resample_indices(len(x), context.num_resamples, context.random_state).numpy()
        realism_interval = percentile_interval(
            torch.from_numpy(np.median(realism[indices], axis=1)), context.confidence
        )
        counts = scored[indices].sum(1)
        sums = np.where(scored, rarity, 0.0)[indices].sum(1)
        with np.errstate(invalid="ignore", divide="ignore"):
            means = torch.from_numpy(np.where(counts > 0, sums / np.maximum(counts, 1), np.nan))
        if scored.any():
            rarity_interval = percentile_interval(means[torch.isfinite(means)], context.confidence)
    sizes = f"{len(x):,} generated vs {len(y):,} reference"
    common = {"direction": "higher", "num_generated": len(x), "num_reference": len(y)}
    realism_result = Result(
        name="realism",
        value=float(np.median(realism)),
        interval=realism_interval,
        interval_covers=None
        if realism_interval is None
        else f"the median realism score at this M and k ({sizes}, k={k}), the generated set resampled and the reference balls fixed",
        details={
            "statistic": "median of the per-sample realism scores R(g)",
            "k": k,
            "pruning": "reference balls with radius above the median dropped (Kynkäänniemi et al.)",
            "share_realistic": float(np.mean(realism >= 1)),
            "most_realistic": [int(i) for i in order[:SHOWN]],
            "least_realistic": [int(i) for i in order[::-1][:SHOWN]],
            "per_sample": _listed(realism),
            "num_resamples": context.num_resamples,
            "interval_method": None if realism_interval is None else "percentile of resample medians",
        },
        **common,
    )
    warnings = []
    if not scored.any():
        warnings.append("rarity: no generated sample lies inside a reference ball; nothing to score")
    rarity_result = Result(
        name="rarity",
        value=float(rarity[scored].mean()) if scored.any() else float("nan"),
        interval=rarity_interval,
        interval_covers=None
        if rarity_interval is None
        else f"the mean rarity of the scored samples at this M and k ({sizes}, k={k_rarity}), the generated set resampled and the reference balls fixed",
        warnings=warnings,
        details={
            "statistic": "mean rarity of the samples inside at least one reference ball",
            "k": k_rarity,
            "num_scored": int(scored.sum()),
            "share_scored": float(scored.mean()),
            "rarest": [int(i) for i in rarest],
            "per_sample": _listed(rarity),
            "num_resamples": context.num_resamples,
            "interval_method": None if rarity_interval is None else "percentile of resample means",
        },
        **common,
    )
    return {"realism": realism_result, "rarity": rarity_result}
