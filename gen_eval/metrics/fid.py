"""Fréchet Inception Distance (Heusel et al. 2017) between two feature Gaussians.

FID = |mu1 - mu2|^2 + tr(S1) + tr(S2) - 2 tr sqrt(S1 S2).

The trace of the square root is computed in float64 with a symmetric eigenproblem (never
``scipy.linalg.sqrtm``): with F F^T = S1 (the Cholesky factor, or the symmetric root when S1
is singular), tr sqrt(S1 S2) = sum sqrt(eigvalsh(F^T S2 F)). F^T S2 F is symmetric positive
semi-definite and similar to S2 S1, so its eigenvalues are those of S1 S2 but real and,
clamped at 0, free of the small negative or complex values that eig(S1 S2) produces. The
reference's factor is computed once and cached beside the reference's features.

When either set has no more samples than feature dimensions (the usual case when
grading: a few thousand samples at 2048-d), the covariances have rank < D and the exact
low-rank identity is used instead: with A, B the centred features scaled by
1/sqrt(n - 1), S1 = A^T A and S2 = B^T B, the non-zero eigenvalues of S1 S2 are the
squared singular values of A B^T, so tr sqrt(S1 S2) = ||A B^T||_* (nuclear norm), an
n1 x n2 problem that does not add up square roots of ~D noise eigenvalues.
"""

from __future__ import annotations

import math

import torch

from gen_eval.errors import GenEvalError
from gen_eval.metrics import linalg
from gen_eval.metrics.base import MetricContext
from gen_eval.metrics.bootstrap import recentred_interval, resample_counts
from gen_eval.metrics.degenerate import IDENTICAL_FID, ZERO_VARIANCE, identical_sets, zero_variance
from gen_eval.metrics.result import Result
from gen_eval.metrics.stats import Moments


def sqrtm_psd(matrix: torch.Tensor) -> torch.Tensor:
    """Square root of a symmetric positive semi-definite matrix (eigenvalues clamped at 0)."""
    eigenvalues, eigenvectors = torch.linalg.eigh(matrix.to(torch.float64))
    roots = eigenvalues.clamp(min=0).sqrt()
    return (eigenvectors * roots) @ eigenvectors.T


def covariance_factor(cov: torch.Tensor) -> torch.Tensor:
    """F with F F^T = cov: the Cholesky factor when cov is positive definite, else the symmetric root.

    Cholesky costs about a tenth of a symmetric eigendecomposition with vectors; a singular
    covariance (dead feature dimensions) falls back to :func:`sqrtm_psd`.
    """
    factor, info = torch.linalg.cholesky_ex(cov.to(torch.float64))
    return factor if int(info) == 0 else sqrtm_psd(cov)


def trace_sqrt_product(cov1: torch.Tensor, cov2: torch.Tensor, factor1: torch.Tensor | None = None) -> float:
    """tr sqrt(cov1 cov2) as the sum of sqrt(eigvalsh(F^T cov2 F)) with F F^T = cov1.

    F^T cov2 F is symmetric positive semi-definite and similar to cov2 cov1, so its real,
    non-negative eigenvalues are those of cov1 cov2. Pass ``factor1`` to reuse a cached factor.
    """
    factor = covariance_factor(cov1) if factor1 is None else factor1.to(torch.float64)
    return float(_trace_sqrt_symmetric(linalg.matmul(linalg.matmul(factor.T, cov2), factor)))


def _trace_sqrt_symmetric(middle: torch.Tensor) -> torch.Tensor:
    """tr sqrt(M) of a PSD matrix M that is symmetric up to rounding (negative rounding clamped)."""
    middle = (middle + middle.T) / 2  # make it exactly symmetric for eigvalsh
    return linalg.eigvalsh(middle).clamp(min=0).sqrt().sum()


def trace_sqrt_product_lowrank(features1: torch.Tensor, features2: torch.Tensor) -> float:
    """tr sqrt(S1 S2) = nuclear norm of A B^T, exact for any ranks; cheap when n1, n2 << D."""
    a = features1.to(torch.float64)
    b = features2.to(torch.float64)
    a = (a - a.mean(dim=0)) / (len(a) - 1) ** 0.5
    b = (b - b.mean(dim=0)) / (len(b) - 1) ** 0.5
    return float(linalg.svdvals(linalg.matmul(a, b.T)).sum())


def frechet_distance(
    mean1: torch.Tensor,
    cov1: torch.Tensor,
    mean2: torch.Tensor,
    cov2: torch.Tensor,
    trace_sqrt: float | None = None,
) -> float:
    """Fréchet distance between N(mean1, cov1) and N(mean2, cov2).

    Parameters
    ----------
    mean1, cov1, mean2, cov2 : torch.Tensor
        Means (D,) and covariances (D, D).
    trace_sqrt : float, optional
        tr sqrt(cov1 cov2) if already known (the low-rank path); computed otherwise.

    Returns
    -------
    float
    """
    mean1, mean2 = mean1.to(torch.float64), mean2.to(torch.float64)
    cov1, cov2 = cov1.to(torch.float64), cov2.to(torch.float64)
    if trace_sqrt is None:
        trace_sqrt = trace_sqrt_product(cov1, cov2)
    diff = mean1 - mean2
    return float(diff @ diff + torch.trace(cov1) + torch.trace(cov2) - 2 * trace_sqrt)


def fid_from_moments(generated: Moments, reference: Moments) -> float:
    """FID from two sets of moments (symmetric eigen path)."""
    return frechet_distance(generated.mean, generated.cov, reference.mean, reference.cov)


def reference_moments(
    reference: dict[str, torch.Tensor], device: str
) -> tuple[torch.Tensor | None, Moments, int | None]:
    """The reference's features (None for statistics), its moments, and its sample count (None: unknown).

    A statistics reference (``--reference stats.npz``) has ``"mean"`` and ``"cov"`` and no
    ``"features"``; its count is ``"count"`` when the file records it.
    """
    if "features" in reference:
        y = reference["features"].to(device, torch.float64)
        return y, Moments.from_features(y), len(y)
    mean = reference["mean"].to(device, torch.float64)
    cov = reference["cov"].to(device, torch.float64)
    count = int(reference["count"]) if "count" in reference and int(reference["count"]) > 1 else None
    # Moments with count 2 and M2 = cov: its .cov (M2 / (2 - 1)) is the covariance exactly as given.
    return None, Moments(2, mean, cov), count


def _bootstrap_fid(
    x: torch.Tensor,
    y: torch.Tensor,
    lowrank: bool,
    context: MetricContext,
    factor_y: torch.Tensor | None = None,
    moments_y: Moments | None = None,
) -> torch.Tensor:
    """FID of ``num_resamples`` resamples of the generated set (the reference fixed).

    A resample with replacement weights sample i by its count w_i (summing to n). The full-rank
    path never forms a resample's covariance: with C the generated features centred on their
    mean, Y = C F (F the reference factor, computed once) and delta = w C / n the resample's
    mean shift, F^T S_w F = (Y^T diag(w) Y - n (F^T delta)(F^T delta)^T) / (n - 1) and
    tr S_w = (sum_i w_i |C_i|^2 - n |delta|^2) / (n - 1). Per resample that is one weighted Gram
    over the ~63% of rows drawn at least once and one symmetric eigenvalue problem, instead of a
    covariance and two D x D x D products; the means of all resamples come from one product.
    """
    counts = resample_counts(len(x), context.num_resamples, context.random_state, x.device)
    moments_y = moments_y or Moments.from_features(y)
    mean_y, cov_y = moments_y.mean, moments_y.cov
    n = len(x)
    mean_x = x.mean(dim=0)
    centred = x - mean_x
    shifts = counts @ centred / n  # (R, D): each resample's mean minus the full set's
    means = mean_x + shifts
    mean_terms = (means - mean_y).square().sum(dim=1)
    traces_x = (counts @ centred.square().sum(dim=1) - n * shifts.square().sum(dim=1)) / (n - 1)
    if lowrank:
        b = (y - mean_y) / (len(y) - 1) ** 0.5
        traces_sqrt = []
        for w, shift in zip(counts, shifts, strict=True):
            # Repeated rows: scaling each centred row by sqrt(count) gives the same scatter matrix.
            a = (centred - shift) * (w.sqrt() / (n - 1) ** 0.5)[:, None]
            traces_sqrt.append(linalg.svdvals(linalg.matmul(a, b.T)).sum())
        trace_sqrt = torch.stack(traces_sqrt)
    else:
        factor_y = covariance_factor(cov_y) if factor_y is None else factor_y.to(x.device, torch.float64)
        rotated = linalg.matmul(centred, factor_y)
        rotated_shifts = shifts @ factor_y
        traces_sqrt = []
        for w, shift in zip(counts, rotated_shifts, strict=True):
            drawn = w > 0
            z = rotated[drawn] * w[drawn].sqrt()[:, None]
            middle = (linalg.matmul(z.T, z) - n * torch.outer(shift, shift)) / (n - 1)
            traces_sqrt.append(_trace_sqrt_symmetric(middle))
        trace_sqrt = torch.stack(traces_sqrt)
    return (mean_terms + traces_x + torch.trace(cov_y) - 2 * trace_sqrt).cpu()


def fid(
    generated: dict[str, torch.Tensor],
    reference: dict[str, torch.Tensor],
    context: MetricContext | None = None,
) -> dict[str, Result]:
    """FID between the ``"features"`` of two feature dicts, with a bootstrap interval.

    Parameters
    ----------
    generated, reference : dict of str to torch.Tensor
        Feature dicts as returned by an extractor; ``"features"`` (N, D) is used.
    context : MetricContext, optional
        Device, seed and number of bootstrap resamples (0: no interval).

    Returns
    -------
    dict
        ``{"fid": Result}``; ``details["method"]`` says which trace path ran ("lowrank" or "eigh").
    """
    context = context or MetricContext(num_resamples=0)
    x = generated["features"].to(context.device, torch.float64)
    y, moments_y, n2 = reference_moments(reference, context.device)
    n1, dim = len(x), x.shape[1]
    if moments_y.dim != dim:
        where = getattr(context.reference_source, "spec", None)  # name the file when evaluate gave it
        raise GenEvalError(
            f"{where + ': ' if where else ''}the reference statistics have {moments_y.dim} dimensions but the "
            f"features have {dim}; use statistics made with the run's extractor"
        )
    if min(n1, n2 or 2) < 2:
        raise GenEvalError(f"FID needs at least 2 samples in each set; got {n1} generated and {n2} reference")
    warnings = []
    smallest = n1 if y is None else min(n1, len(y))
    # Statistics give no reference samples for the low-rank identity: the eigen path serves any rank.
    lowrank = y is not None and smallest <= dim
    if smallest <= dim:
        warnings.append(
            f"fewer samples ({smallest}) than feature dimensions ({dim}): covariances are rank-deficient "
            "and FID is strongly biased upward at this N; compare only runs with the same N"
        )
    moments_x = Moments.from_features(x)
    if lowrank:
        trace_sqrt = trace_sqrt_product_lowrank(x, y)
    else:
        # Factor of the reference covariance: computed once per reference, cached beside its features.
        factor_y = context.cached_reference_tensor("fid_cov_factor", lambda: covariance_factor(moments_y.cov))
        trace_sqrt = trace_sqrt_product(moments_y.cov, moments_x.cov, factor1=factor_y)
    value = frechet_distance(moments_x.mean, moments_x.cov, moments_y.mean, moments_y.cov, trace_sqrt)
    # FID >= 0; a negative value is rounding (identical sets gave -0.0000), never a measurement.
    value = value if value > 0 else 0.0
    interval, identical, flat = None, y is not None and identical_sets(x, y), zero_variance(x)
    if identical:
        value = 0.0
        warnings.append(IDENTICAL_FID)
    elif flat and context.num_resamples > 0:
        warnings.append(ZERO_VARIANCE)
    if context.num_resamples > 0 and not identical and not flat:
        replicates = _bootstrap_fid(x, y, lowrank, context, None if lowrank else factor_y, moments_y)
        interval = recentred_interval(replicates, value, context.confidence, lower=0.0, upper=math.inf)
    result = Result(
        name="fid",
        value=value,
        direction="lower",
        num_generated=n1,
        num_reference=n2 or 0,  # 0: statistics that do not record their count
        interval=interval,
        interval_covers=None
        if interval is None
        else f"FID at this sample size ({n1:,} generated vs {_reference_text(y, n2)}), the generated set resampled and the reference fixed; FID is biased upward by O(1/N), so it does not cover the large-sample FID: compare runs of equal N, and see fd_inf for the large-sample value",
        warnings=warnings,
        details={
            "method": "lowrank" if lowrank else "eigh",
            "feature_dim": dim,
            "num_resamples": context.num_resamples,
            "interval_method": "percentile, shifted by the bootstrap bias; generated resampled, reference fixed",
            "reference": "samples" if y is not None else "statistics",
        },
    )
    return {"fid": result}


def _reference_text(y: torch.Tensor | None, count: int | None) -> str:
    """``"5,000 reference"``, or for statistics their fixed mean and covariance."""
    if y is not None:
        return f"{len(y):,} reference"
    size = f" of {count:,} samples" if count else ""
    return f"the reference statistics{size}, a fixed mean and covariance"
