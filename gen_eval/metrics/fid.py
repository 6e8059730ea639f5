"""Fréchet Inception Distance (Heusel et al. 2017) between two feature Gaussians.

FID = |mu1 - mu2|^2 + tr(S1) + tr(S2) - 2 tr sqrt(S1 S2).

The trace of the square root is computed in float64 with symmetric eigendecompositions
(never ``scipy.linalg.sqrtm``): tr sqrt(S1 S2) = sum sqrt(eig(R S2 R)) with R = S1^(1/2),
a symmetric positive semi-definite matrix whose eigenvalues are real and, clamped at 0,
free of the small negative or complex values that eig(S1 S2) produces.

When either set has no more samples than feature dimensions (the usual case when
grading: a few thousand samples at 2048-d), the covariances have rank < D and the exact
low-rank identity is used instead: with A, B the centred features scaled by
1/sqrt(n - 1), S1 = A^T A and S2 = B^T B, the non-zero eigenvalues of S1 S2 are the
squared singular values of A B^T, so tr sqrt(S1 S2) = ||A B^T||_* (nuclear norm), an
n1 x n2 problem that does not add up square roots of ~D noise eigenvalues.
"""

from __future__ import annotations

import torch

from gen_eval.metrics.result import Result
from gen_eval.metrics.stats import Moments


def sqrtm_psd(matrix: torch.Tensor) -> torch.Tensor:
    """Square root of a symmetric positive semi-definite matrix (eigenvalues clamped at 0)."""
    eigenvalues, eigenvectors = torch.linalg.eigh(matrix.to(torch.float64))
    roots = eigenvalues.clamp(min=0).sqrt()
    return (eigenvectors * roots) @ eigenvectors.T


def trace_sqrt_product(
    cov1: torch.Tensor, cov2: torch.Tensor, sqrt_cov1: torch.Tensor | None = None
) -> float:
    """tr sqrt(cov1 cov2) via the symmetric form; pass ``sqrt_cov1`` to reuse a cached root."""
    root = sqrtm_psd(cov1) if sqrt_cov1 is None else sqrt_cov1.to(torch.float64)
    middle = root @ cov2.to(torch.float64) @ root
    middle = (middle + middle.T) / 2  # symmetric up to rounding; make it exactly so for eigh
    return float(torch.linalg.eigvalsh(middle).clamp(min=0).sqrt().sum())


def trace_sqrt_product_lowrank(features1: torch.Tensor, features2: torch.Tensor) -> float:
    """tr sqrt(S1 S2) = nuclear norm of A B^T, exact for any ranks; cheap when n1, n2 << D."""
    a = features1.to(torch.float64)
    b = features2.to(torch.float64)
    a = (a - a.mean(dim=0)) / (len(a) - 1) ** 0.5
    b = (b - b.mean(dim=0)) / (len(b) - 1) ** 0.5
    return float(torch.linalg.svdvals(a @ b.T).sum())


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


def fid(
    generated: dict[str, torch.Tensor],
    reference: dict[str, torch.Tensor],
    *,
    device: str | torch.device = "cpu",
) -> Result:
    """FID between the ``"features"`` of two feature dicts.

    Parameters
    ----------
    generated, reference : dict of str to torch.Tensor
        Feature dicts as returned by an extractor; ``"features"`` (N, D) is used.
    device : str or torch.device
        Where the float64 linear algebra runs.

    Returns
    -------
    Result
        ``details["method"]`` says which trace path ran ("lowrank" or "eigh").
    """
    x = generated["features"].to(device)
    y = reference["features"].to(device)
    n1, n2, dim = len(x), len(y), x.shape[1]
    warnings = []
    if min(n1, n2) < 2:
        raise ValueError("FID needs at least 2 samples in each set")
    if min(n1, n2) <= dim:
        warnings.append(
            f"fewer samples ({min(n1, n2)}) than feature dimensions ({dim}): covariances are rank-deficient "
            "and FID is strongly biased upward at this N; compare only runs with the same N"
        )
    moments_x, moments_y = Moments.from_features(x), Moments.from_features(y)
    if min(n1, n2) <= dim:
        method, trace_sqrt = "lowrank", trace_sqrt_product_lowrank(x, y)
    else:
        method, trace_sqrt = "eigh", trace_sqrt_product(moments_y.cov, moments_x.cov)
    value = frechet_distance(moments_x.mean, moments_x.cov, moments_y.mean, moments_y.cov, trace_sqrt)
    return Result(
        name="fid",
        value=value,
        direction="lower",
        num_generated=n1,
        num_reference=n2,
        warnings=warnings,
        details={"method": method, "feature_dim": dim},
    )
