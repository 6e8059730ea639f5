"""Mergeable first and second moments of feature sets, in float64.

``Moments`` keeps (count, mean, M2) with M2 the centred sum of outer products, and merges
two sets with Chan et al.'s update (M2 = M2a + M2b + d d^T na nb / n, d = mean_b - mean_a).
Merging per-batch or per-process moments gives the covariance of the union exactly (in
exact arithmetic), and unlike raw sums of x x^T it does not lose digits to cancellation
when the mean is large relative to the spread.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from gen_eval.metrics import linalg


@dataclass
class Moments:
    """Count, mean (D,) and centred scatter matrix M2 (D, D) of a set of feature vectors."""

    count: int
    mean: torch.Tensor
    m2: torch.Tensor

    @classmethod
    def empty(cls, dim: int, device: str | torch.device = "cpu") -> Moments:
        zeros = torch.zeros(dim, dtype=torch.float64, device=device)
        return cls(0, zeros, torch.zeros(dim, dim, dtype=torch.float64, device=device))

    @classmethod
    def from_features(cls, features: torch.Tensor) -> Moments:
        """Moments of an (N, D) batch."""
        x = features.to(torch.float64)
        mean = x.mean(dim=0)
        centred = x - mean
        return cls(len(x), mean, linalg.matmul(centred.T, centred))

    def merge(self, other: Moments) -> Moments:
        """Moments of the union of the two sets."""
        if other.count == 0:
            return self
        if self.count == 0:
            return other
        total = self.count + other.count
        delta = other.mean.to(self.mean.device) - self.mean
        mean = self.mean + delta * (other.count / total)
        m2 = (
            self.m2
            + other.m2.to(self.m2.device)
            + torch.outer(delta, delta) * (self.count * other.count / total)
        )
        return Moments(total, mean, m2)

    def update(self, features: torch.Tensor) -> Moments:
        """Moments with a new (N, D) batch added (returns a new object; this one is unchanged)."""
        return self.merge(Moments.from_features(features.to(self.mean.device)))

    @property
    def dim(self) -> int:
        return self.mean.shape[0]

    @property
    def cov(self) -> torch.Tensor:
        """Unbiased covariance (divides by N - 1, like numpy.cov and torch-fidelity)."""
        if self.count < 2:
            raise ValueError("covariance needs at least 2 samples")
        return self.m2 / (self.count - 1)
