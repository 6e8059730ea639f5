"""Known-mode coverage for mixtures with labelled modes, following the PacGAN / VEEGAN protocol.

Each sample is assigned to its nearest mode by Mahalanobis distance (the modes are isotropic
Gaussians, so that is Euclidean distance / std). A sample is high quality (HQ) when that distance
is below ``threshold`` (3); a mode is covered when it has at least one HQ sample. For a perfect
sampler of a 2-D isotropic Gaussian, P(HQ) = P(chi2_2 < 9) = 1 - exp(-4.5) = 98.9%.

For a reference with labels but no known centres (any labelled vector data),
:func:`labelled_mode_coverage` fits one Gaussian (mean, covariance) per label and measures the
Mahalanobis distance under each; in D dimensions the HQ radius is the one that keeps the same
98.9% of a Gaussian's mass (sqrt of the chi2_D quantile), which is exactly 3 when D = 2.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np


@dataclass
class ModeCoverage:
    """Known-mode coverage of one sample set.

    Attributes
    ----------
    num_modes, modes_covered : int
    covered : list of int
        Indices of the covered modes.
    hq_share : float
        Fraction of samples within ``threshold`` std of their nearest mode.
    reverse_kl : float
        KL(HQ mode histogram || uniform) in nats: 0 when HQ samples spread evenly, log(K) when
        all fall in one mode (natural log; "reverse" as in Unrolled GAN / PacGAN tables).
    counts : list of int
        HQ samples per mode.
    """

    num_modes: int
    modes_covered: int
    covered: list[int]
    hq_share: float
    reverse_kl: float
    counts: list[int] = field(default_factory=list)
    mode_ids: list[int] | None = None  # label of each mode when modes come from labels (else 0..K-1)
    # Fitted modes only: their means and an HQ radius in data units (threshold x RMS std), for plots.
    centres: list[list[float]] | None = None
    radii: list[float] | None = None

    @property
    def missing(self) -> list[int]:
        ids = self.mode_ids if self.mode_ids is not None else list(range(self.num_modes))
        return [k for k in ids if k not in self.covered]

    def to_dict(self) -> dict:
        return {**asdict(self), "missing": self.missing}


def mode_coverage(
    points: np.ndarray, centres: np.ndarray, std: float, threshold: float = 3.0
) -> ModeCoverage:
    """Score ``points`` (N, 2) against isotropic Gaussian modes at ``centres`` (K, 2) with ``std``.

    Parameters
    ----------
    points : (N, D) array of samples.
    centres : (K, D) array of mode centres.
    std : the modes' standard deviation.
    threshold : HQ radius in standard deviations (3 in PacGAN).

    Returns
    -------
    ModeCoverage
    """
    points = np.asarray(points, dtype=np.float64)
    centres = np.asarray(centres, dtype=np.float64)
    if points.ndim != 2 or points.shape[1] != centres.shape[1] or len(points) == 0:
        raise ValueError(f"expected (N, {centres.shape[1]}) points with N >= 1, got {points.shape}")
    distances = np.sqrt(((points[:, None, :] - centres[None]) ** 2).sum(-1)) / std
    return _coverage_from_distances(distances, threshold)


def _coverage_from_distances(
    distances: np.ndarray, threshold: float, mode_ids: list[int] | None = None
) -> ModeCoverage:
    """Coverage from (N, K) Mahalanobis distances of every sample to every mode."""
    num_modes = distances.shape[1]
    nearest = distances.argmin(1)
    hq = distances[np.arange(len(distances)), nearest] < threshold
    counts = np.bincount(nearest[hq], minlength=num_modes)
    ids = mode_ids if mode_ids is not None else list(range(num_modes))
    covered = [int(ids[k]) for k in np.flatnonzero(counts)]
    if hq.any():
        share = counts / counts.sum()
        nonzero = share > 0
        reverse_kl = float((share[nonzero] * np.log(share[nonzero] * num_modes)).sum())
    else:
        reverse_kl = math.log(num_modes)
    return ModeCoverage(
        num_modes=num_modes,
        modes_covered=len(covered),
        covered=covered,
        hq_share=float(hq.mean()),
        reverse_kl=reverse_kl,
        counts=[int(c) for c in counts],
        mode_ids=mode_ids,
    )


def hq_radius(dim: int) -> float:
    """The Mahalanobis radius holding 1 - exp(-4.5) (98.9%) of a ``dim``-D Gaussian: 3 for 2-D."""
    from scipy.stats import chi2

    return float(math.sqrt(chi2.ppf(-math.expm1(-4.5), dim)))


def labelled_mode_coverage(
    points: np.ndarray,
    reference_points: np.ndarray,
    reference_labels: np.ndarray,
    threshold: float | None = None,
    min_per_mode: int = 5,
) -> ModeCoverage:
    """Known-mode coverage with modes fitted on a labelled reference (one Gaussian per label).

    Parameters
    ----------
    points : (N, D) samples to score.
    reference_points, reference_labels : (M, D) reference samples and their (M,) integer labels.
    threshold : HQ radius in Mahalanobis units (default :func:`hq_radius` of D: 3 in 2-D).
    min_per_mode : labels with fewer reference samples are left out (no covariance to fit).

    Returns
    -------
    ModeCoverage
        ``covered``/``missing`` hold label values; ``mode_ids`` lists every mode's label.
    """
    points = np.asarray(points, dtype=np.float64)
    reference_points = np.asarray(reference_points, dtype=np.float64)
    reference_labels = np.asarray(reference_labels).astype(np.int64)
    dim = reference_points.shape[1]
    if points.ndim != 2 or points.shape[1] != dim or len(points) == 0:
        raise ValueError(f"expected (N, {dim}) points with N >= 1, got {points.shape}")
    ids, distances_per_mode, means, scales = [], [], [], []
    for label in np.unique(reference_labels):
        members = reference_points[reference_labels == label]
        if len(members) < max(min_per_mode, 2):
            continue
        mean = members.mean(0)
        cov = np.atleast_2d(np.cov(members, rowvar=False))
        # A ridge keeps the Cholesky factor finite when a mode is flat in some direction.
        cov += 1e-9 * max(np.trace(cov) / dim, 1e-12) * np.eye(dim)
        lower = np.linalg.cholesky(cov)
        whitened = np.linalg.solve(lower, (points - mean).T)
        distances_per_mode.append(np.sqrt((whitened**2).sum(0)))
        ids.append(int(label))
        means.append(mean.tolist())
        scales.append(float(np.sqrt(np.trace(cov) / dim)))
    if not ids:
        raise ValueError(f"no label has {min_per_mode} or more reference samples to fit a mode on")
    radius = hq_radius(dim) if threshold is None else threshold
    coverage = _coverage_from_distances(np.stack(distances_per_mode, axis=1), radius, ids)
    coverage.centres, coverage.radii = means, [radius * scale for scale in scales]
    return coverage
