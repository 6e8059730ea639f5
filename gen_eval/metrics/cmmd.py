"""CMMD (Jayasumana et al. 2024, "Rethinking FID"): an RBF-kernel MMD^2 on CLIP embeddings.

With k(x, y) = exp(-|x - y|^2 / (2 sigma^2)), sigma = 10, embeddings x_1..x_n (generated) and
y_1..y_m (reference), each L2-normalised (CLIP's image embedding as the paper's scenic model
returns it), and scale 1000:

    biased (default):  CMMD = 1000 * ( sum_{a,b} k(x_a, x_b) / n^2 + sum_{a,b} k(y_a, y_b) / m^2
                                       - 2 sum_{a,b} k(x_a, y_b) / (n m) )
    unbiased:          the same with the within-set sums over a != b, divided by n (n-1) and m (m-1)

The estimator. The paper's reference code (google-research ``cmmd/distance.py``, read for this
module) averages the full kernel matrices, diagonal included: the *biased* (V-statistic,
minimum-variance) estimator of Gretton et al. 2012, Eq. 5, which its docstring calls "almost
identical" to the unbiased one. It is the default here so that values reproduce the published
ones; ``cmmd_estimator=unbiased`` gives the U-statistic (zero in expectation for equal
distributions, and it may be negative). The biased value exceeds the unbiased one by
1000 * [(1 - mean off-diagonal k_xx) / n + (1 - mean off-diagonal k_yy) / m] (k(x, x) = 1),
so it is biased upward by O(1/N): compare biased CMMDs only at equal N.

Features. CMMD is defined on CLIP ViT-L/14@336 embeddings (extractor ``clip-vit-l14-336``). It
runs on any features; the result names the extractor, and a warning says when they are not the
paper's CLIP (other features put the distances on another scale, where sigma = 10 means
something else). ``cmmd_normalise`` (default on) L2-normalises every embedding first, as the
paper's model does; on already normalised features that changes nothing.

Arithmetic in float64, the kernel matrices in row blocks (never all three whole): 3 (n^2 + m^2 +
n m) D multiply-adds, plus n^2 R for R bootstrap resamples.
"""

from __future__ import annotations

import torch

from gen_eval.errors import GenEvalError
from gen_eval.metrics.base import MetricContext
from gen_eval.metrics.bootstrap import percentile_interval, recentred_interval, resample_counts
from gen_eval.metrics.result import Result

ESTIMATORS = ("biased", "unbiased")
PAPER_EXTRACTOR = "clip-vit-l14-336"
_BLOCK_ELEMENTS = 1 << 22  # kernel entries per block (32 MB in float64)


def rbf_kernel(a: torch.Tensor, b: torch.Tensor, sigma: float) -> torch.Tensor:
    """exp(-|a_i - b_j|^2 / (2 sigma^2)) for (n, D) and (m, D) float64 rows: an (n, m) matrix."""
    squared = (a.square().sum(1)[:, None] + b.square().sum(1)[None, :] - 2 * a @ b.T).clamp_(min=0)
    return squared.mul_(-1 / (2 * sigma**2)).exp_()


def _weighted_sums(
    a: torch.Tensor, b: torch.Tensor, sigma: float, weights_a: torch.Tensor | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Sum of k(a_i, b_j) and, with ``weights_a`` (R, n) and b = a, the R quadratic forms w K w.

    Returns (total, forms): ``total`` the plain sum of the matrix, ``forms`` (R,) or empty.
    """
    rows = max(1, _BLOCK_ELEMENTS // max(1, len(b)))
    total = torch.zeros((), dtype=torch.float64, device=a.device)
    forms = torch.zeros(0 if weights_a is None else len(weights_a), dtype=torch.float64, device=a.device)
    for start in range(0, len(a), rows):
        block = rbf_kernel(a[start : start + rows], b, sigma)
        total += block.sum()
        if weights_a is not None:  # w_block^T K_block w, for every resample at once
            forms += ((weights_a @ block.T) * weights_a[:, start : start + rows]).sum(1)
    return total, forms


def _row_sums(a: torch.Tensor, b: torch.Tensor, sigma: float) -> torch.Tensor:
    """(n,) sums over j of k(a_i, b_j)."""
    rows = max(1, _BLOCK_ELEMENTS // max(1, len(b)))
    return torch.cat([rbf_kernel(a[s : s + rows], b, sigma).sum(1) for s in range(0, len(a), rows)])


def extractor_warning(extractor: str | None) -> list[str]:
    """A warning unless the features are the paper's CLIP ViT-L/14@336 embeddings."""
    if extractor == PAPER_EXTRACTOR:
        return []
    what = "unknown features" if extractor is None else f"{extractor} features"
    return [
        f"CMMD computed on {what}, not CLIP ViT-L/14@336 embeddings ({PAPER_EXTRACTOR}) as in the paper: "
        "not comparable with published CMMD values (use --features clip-vit-l14-336)"
    ]


def cmmd(
    generated: dict[str, torch.Tensor],
    reference: dict[str, torch.Tensor],
    context: MetricContext | None = None,
) -> dict[str, Result]:
    """CMMD between the ``"features"`` of two feature dicts, with a bootstrap interval.

    Parameters
    ----------
    generated, reference : dict of str to torch.Tensor
        Feature dicts; ``"features"`` (n, D) and (m, D) are used.
    context : MetricContext, optional
        Device, seed, bootstrap resamples (0: no interval), ``extractor`` (recorded), and options
        ``cmmd_sigma`` (10), ``cmmd_scale`` (1000), ``cmmd_estimator`` ("biased", the reference
        code's; or "unbiased") and ``cmmd_normalise`` (True: L2-normalise every embedding).

    Returns
    -------
    dict
        ``{"cmmd": Result}``, ``direction="lower"``. The interval resamples the generated set
        (reference fixed). For the unbiased estimator, pairs of copies of one sample are left
        out of the within-set sum (as KID does), so replicates stay unbiased and the percentile
        interval is used; the biased estimator's replicates count copies (k = 1) and sit above the
        point, so their percentile interval is shifted by that bias.
    """
    context = context or MetricContext(num_resamples=0)
    x = generated["features"].to(context.device, torch.float64)
    y = reference["features"].to(context.device, torch.float64)
    if x.ndim != 2 or y.ndim != 2 or x.shape[1] != y.shape[1]:
        raise GenEvalError(
            f"CMMD needs (N, D) features of equal D; got {tuple(x.shape)} and {tuple(y.shape)}"
        )
    n, m = len(x), len(y)
    if min(n, m) < 2:
        raise GenEvalError(f"CMMD needs at least 2 samples in each set; got {n} generated and {m} reference")
    sigma = float(context.option("cmmd_sigma", 10.0))
    scale = float(context.option("cmmd_scale", 1000.0))
    estimator = context.option("cmmd_estimator", "biased")
    normalise = bool(context.option("cmmd_normalise", True))
    if estimator not in ESTIMATORS:
        raise GenEvalError(f"option cmmd_estimator={estimator!r}: choose 'biased' or 'unbiased'")
    if not sigma > 0:
        raise GenEvalError(f"option cmmd_sigma={sigma}: the kernel bandwidth must be positive")
    if normalise:
        norms_x, norms_y = x.norm(dim=1, keepdim=True), y.norm(dim=1, keepdim=True)
        if bool((norms_x == 0).any() or (norms_y == 0).any()):
            raise GenEvalError(
                "CMMD with cmmd_normalise: a feature vector is all zeros; pass -o cmmd_normalise=false"
            )
        x, y = x / norms_x, y / norms_y
    # Centred on the reference mean: distances unchanged, less cancellation in |a|^2 + |b|^2 - 2 a.b.
    shift = y.mean(0)
    x, y = x - shift, y - shift

    counts = None
    if context.num_resamples > 0:
        counts = resample_counts(n, context.num_resamples, context.random_state, context.device)
    kxx, forms = _weighted_sums(x, x, sigma, counts)
    kyy, _ = _weighted_sums(y, y, sigma, None)
    cross_rows = _row_sums(x, y, sigma)
    kxy = cross_rows.sum()
    if estimator == "biased":
        value = scale * float(kxx / n**2 + kyy / m**2 - 2 * kxy / (n * m))
    else:  # k(a, a) = 1 on the diagonal
        value = scale * float((kxx - n) / (n * (n - 1)) + (kyy - m) / (m * (m - 1)) - 2 * kxy / (n * m))

    interval, covers = None, None
    if counts is not None:
        cross = counts @ cross_rows / (n * m)
        if estimator == "biased":
            within = forms / n**2
            replicates = scale * (within + kyy / m**2 - 2 * cross)
            interval = recentred_interval(
                replicates, value, context.confidence, lower=0.0, upper=float("inf")
            )
        else:
            squares = counts.square().sum(1)  # pairs of copies (diagonal included): sum_i c_i^2 k_ii
            within = (forms - squares) / (n * n - squares)
            replicates = scale * (within + (kyy - m) / (m * (m - 1)) - 2 * cross)
            interval = percentile_interval(replicates, context.confidence)
        covers = (
            f"CMMD ({estimator} estimator) at this N ({n:,} generated vs {m:,} reference), the generated set "
            "resampled and the reference fixed"
            + (
                "; the biased estimator drifts with N, so compare runs of equal N"
                if estimator == "biased"
                else ""
            )
        )
    extractor = context.extractor
    result = Result(
        name="cmmd",
        value=value,
        direction="lower",
        num_generated=n,
        num_reference=m,
        interval=interval,
        interval_covers=covers,
        warnings=extractor_warning(extractor),
        details={
            "estimator": estimator,
            "sigma": sigma,
            "scale": scale,
            "normalised": normalise,
            "extractor": extractor,
            "feature_dim": x.shape[1],
            "num_resamples": context.num_resamples,
            "interval_method": None
            if interval is None
            else ("percentile, shifted by the bootstrap bias" if estimator == "biased" else "percentile"),
        },
    )
    return {"cmmd": result}
