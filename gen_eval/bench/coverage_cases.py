"""Known-truth cases for ``gen-eval bench coverage``: samplers whose large-sample values are known.

- :class:`Gaussians`: generated ~ N(shift * 1, diag(scale^2)), reference ~ N(0, I) in ``dim``
  dimensions. Population FID in closed form, dim * (shift^2 + (scale - 1)^2); population KID
  (MMD^2 with the cubic polynomial kernel) in closed form by :func:`poly_kernel_mean`.
- :class:`Logits`: class logits of a synthetic classifier, for IS; its large-sample IS from
  millions of draws (:meth:`Logits.population_is`).
- :class:`Blobs`: small grey images of random Gaussian blobs, for MS-SSIM; the population mean
  MS-SSIM of independent pairs from many pairs (:meth:`Blobs.population_msssim`).
- :class:`Pixels`: test images of independent categorical pixels and a factorised model of
  them, for bits/dim; the population value is the cross-entropy in closed form.
- :func:`expected_density_coverage`: the exact expected density (1) and coverage of the k-NN
  balls when both sets come from one continuous distribution, at any N and M.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

if TYPE_CHECKING:
    from gen_eval.metrics.likelihood import FactorisedCategorical


Draw = Callable[[int], tuple[dict, dict, dict[str, Any]]]  # seed -> generated, reference, context kwargs


@dataclass
class Experiment:
    """One metric on one known-truth case.

    Attributes
    ----------
    metric : str
        Registry name (``"precision_recall"``).
    results : tuple of str
        The result names recorded (``("precision", "recall")``).
    case, description : str
        Short case name and what the two sets are.
    draw : callable
        seed -> (generated features, reference features, MetricContext keyword arguments).
    large_sample : dict
        Result name -> (value, how it was obtained).
    exact_expected : dict
        Result name -> (expected value at this N, why), where known without Monte Carlo.
    closed_form : dict
        Result name -> exact expected value at this N, checked against the Monte Carlo one.
    conditional : callable, optional
        (generated, reference) -> the large-sample value given this reference set (generated
        N -> infinity, the reference as drawn): FD-inf's own target; checked per repeat.
    repeats, mc_draws : int
        Experiments with intervals; draws without intervals for the expected value (0: the sizes').
    """

    metric: str
    results: tuple[str, ...]
    case: str
    description: str
    draw: Draw
    large_sample: dict[str, tuple[float, str]]
    exact_expected: dict[str, tuple[float, str]] = field(default_factory=dict)
    closed_form: dict[str, float] = field(default_factory=dict)
    conditional: Callable[[dict, dict], float] | None = None
    repeats: int = 0  # 0: Sizes.repeats
    mc_draws: int = 0  # 0: Sizes.mc_draws


@dataclass
class Sizes:
    """Sizes of the experiments (defaults: a few minutes on 2 CPU cores).

    Attributes
    ----------
    num_samples : int
        N generated = M reference points per experiment.
    dim : int
        Feature dimension of the Gaussian cases.
    repeats : int
        Repeated experiments with intervals per metric and case (FD-inf: half).
    mc_draws : int
        Draws for the Monte Carlo expected value at N (FD-inf: a third).
    num_resamples : int
        Bootstrap resamples per interval (gen-eval's default, 100).
    msssim_pairs : int
        Image pairs per MS-SSIM value (2 x pairs images, disjoint pairs).
    """

    num_samples: int = 500
    dim: int = 16
    repeats: int = 200
    mc_draws: int = 500
    num_resamples: int = 100
    msssim_pairs: int = 100

    @classmethod
    def quick(cls) -> Sizes:
        """Toy sizes for tests (seconds)."""
        return cls(num_samples=200, dim=8, repeats=30, mc_draws=60, num_resamples=50, msssim_pairs=20)


def poly_kernel_mean(
    mean1: np.ndarray, cov1: np.ndarray, mean2: np.ndarray, cov2: np.ndarray, gamma: float, coef0: float
) -> float:
    """E (gamma a.b + coef0)^3 for independent a ~ N(mean1, cov1), b ~ N(mean2, cov2).

    Given b, a.b ~ N(mean1.b, b^T cov1 b), so with u = coef0 + gamma mean1.b and
    v = gamma^2 b^T cov1 b the conditional mean is u^3 + 3 u v (Gaussian third moment). Over b,
    u ~ N(mu, s2) with mu = coef0 + gamma mean1.mean2 and s2 = gamma^2 mean1^T cov2 mean1, so
    E u^3 = mu^3 + 3 mu s2; and E[u v] = gamma^2 (coef0 T + gamma (mean1.mean2 T +
    2 mean1^T cov2 cov1 mean2)) with T = tr(cov1 cov2) + mean2^T cov1 mean2 = E b^T cov1 b.

    Parameters
    ----------
    mean1, cov1, mean2, cov2 : numpy.ndarray
        Means (D,) and covariances (D, D) of the two independent Gaussians.
    gamma, coef0 : float
        Kernel parameters (KID: 1/D and 1).

    Returns
    -------
    float
    """
    mu = coef0 + gamma * mean1 @ mean2
    s2 = gamma**2 * mean1 @ cov2 @ mean1
    quadratic = np.trace(cov1 @ cov2) + mean2 @ cov1 @ mean2
    cross = coef0 * quadratic + gamma * (mean1 @ mean2 * quadratic + 2 * mean1 @ cov2 @ cov1 @ mean2)
    return float(mu**3 + 3 * mu * s2 + 3 * gamma**2 * cross)


@dataclass(frozen=True)
class Gaussians:
    """Generated ~ N(shift * 1, scale^2 I), reference ~ N(0, I), both in ``dim`` dimensions.

    Attributes
    ----------
    dim : int
    shift : float
        Mean shift of every coordinate of the generated distribution.
    scale : float
        Standard deviation of every coordinate of the generated distribution.
    """

    dim: int
    shift: float = 0.0
    scale: float = 1.0

    def sample(self, n: int, m: int, seed: int) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        """Feature dicts of ``n`` generated and ``m`` reference points (float64), seeded."""
        generator = torch.Generator().manual_seed(seed)
        x = torch.randn(n, self.dim, generator=generator, dtype=torch.float64) * self.scale + self.shift
        y = torch.randn(m, self.dim, generator=generator, dtype=torch.float64)
        return {"features": x}, {"features": y}

    def population_fid(self) -> float:
        """|mu1 - mu2|^2 + tr(S1 + S2 - 2 sqrt(S1 S2)) = dim (shift^2 + (scale - 1)^2)."""
        return self.dim * (self.shift**2 + (self.scale - 1) ** 2)

    def fid_given_reference(self, reference: dict[str, torch.Tensor]) -> float:
        """FID of the generated population against the Gaussian of this reference sample (its mean and
        unbiased covariance): the large-sample FID with the reference as drawn (FD-inf's target)."""
        from gen_eval.metrics.fid import frechet_distance
        from gen_eval.metrics.stats import Moments

        moments = Moments.from_features(reference["features"].to(torch.float64))
        mean = torch.full((self.dim,), self.shift, dtype=torch.float64)
        cov = self.scale**2 * torch.eye(self.dim, dtype=torch.float64)
        return frechet_distance(mean, cov, moments.mean, moments.cov)

    def population_kid(self, gamma: float | None = None, coef0: float = 1.0) -> float:
        """MMD^2 of the two Gaussians under (gamma x.y + coef0)^3, gamma = 1/dim by default."""
        gamma = 1.0 / self.dim if gamma is None else gamma
        eye = np.eye(self.dim)
        m1, s1 = np.full(self.dim, self.shift), self.scale**2 * eye
        m0 = np.zeros(self.dim)
        return (
            poly_kernel_mean(m1, s1, m1, s1, gamma, coef0)
            + poly_kernel_mean(m0, eye, m0, eye, gamma, coef0)
            - 2 * poly_kernel_mean(m1, s1, m0, eye, gamma, coef0)
        )


def expected_density_coverage(n_reference: int, n_generated: int, k: int) -> tuple[float, float]:
    """Exact E[density] and E[coverage] when both sets are i.i.d. from one continuous distribution.

    Ordering the other N - 1 reference points and the M generated ones by their distance to a
    reference point X_i, every order is equally likely. A generated point is inside X_i's ball
    (closer than its k-th nearest reference neighbour) with probability k / N, so E[density] =
    M (k / N) N / (k M) = 1; X_i's ball is empty when its k nearest reference neighbours all come
    before every generated point, with probability prod_{j<k} (N-1-j) / (N-1+M-j).

    Parameters
    ----------
    n_reference, n_generated : int
        N and M.
    k : int
        Neighbour rank of the radii (density/coverage: 5).

    Returns
    -------
    (density, coverage) : tuple of float
    """
    empty = np.prod([(n_reference - 1 - j) / (n_reference - 1 + n_generated - j) for j in range(k)])
    return 1.0, float(1 - empty)


@dataclass(frozen=True)
class Logits:
    """Logits of a synthetic classifier: class c ~ pi, logits = sharpness * onehot(c) + N(0, 1).

    Attributes
    ----------
    classes : int
    sharpness : float
        How confident the classifier is.
    imbalance : float
        pi_c proportional to exp(-imbalance * c); 0 gives balanced classes.
    """

    classes: int = 10
    sharpness: float = 4.0
    imbalance: float = 0.0

    def sample(self, n: int, seed: int) -> torch.Tensor:
        """(n, classes) float64 logits, seeded."""
        generator = torch.Generator().manual_seed(seed)
        weights = torch.exp(-self.imbalance * torch.arange(self.classes, dtype=torch.float64))
        labels = torch.multinomial(weights, n, replacement=True, generator=generator)
        noise = torch.randn(n, self.classes, generator=generator, dtype=torch.float64)
        return noise + self.sharpness * torch.nn.functional.one_hot(labels, self.classes)

    def population_is(self, samples: int = 2_000_000, seed: int = 10**9) -> float:
        """exp(H(E p(y|x)) - E H(p(y|x))) from ``samples`` draws (standard error ~1e-4 relative)."""
        total = torch.zeros(self.classes, dtype=torch.float64)
        neg_entropy = 0.0
        chunk = 200_000
        for start in range(0, samples, chunk):
            log_p = torch.log_softmax(self.sample(min(chunk, samples - start), seed + start), dim=1)
            p = log_p.exp()
            total += p.sum(0)
            neg_entropy += float((p * log_p).sum())
        q = total / samples
        return float(np.exp(neg_entropy / samples - float(torch.xlogy(q, q).sum())))


@dataclass(frozen=True)
class Blobs:
    """size x size grey images, each the sum of ``blobs`` Gaussian bumps at random places.

    Attributes
    ----------
    size : int
        Image side (32: three MS-SSIM scales, see :func:`gen_eval.metrics.ms_ssim.msssim_settings`).
    blobs : int
        Bumps per image.
    spread : float
        Bump centres are uniform within +-spread * size / 2 of the image centre (small: alike images).
    """

    size: int = 32
    blobs: int = 3
    spread: float = 0.8

    def sample(self, n: int, seed: int) -> torch.Tensor:
        """(n, 1, size, size) uint8 images, seeded."""
        rng = np.random.default_rng(seed)
        grid = np.arange(self.size) - (self.size - 1) / 2
        centres = rng.uniform(-1, 1, (n, self.blobs, 2)) * self.spread * self.size / 2
        widths = rng.uniform(2.0, 5.0, (n, self.blobs, 1, 1))
        heights = rng.uniform(0.5, 1.0, (n, self.blobs, 1, 1))
        rows = (grid[None, None, :] - centres[..., 0:1]) ** 2  # (n, blobs, size)
        cols = (grid[None, None, :] - centres[..., 1:2]) ** 2
        bumps = heights * np.exp(-(rows[..., :, None] + cols[..., None, :]) / (2 * widths**2))
        images = bumps.sum(1)
        images = images / images.max(axis=(1, 2), keepdims=True)
        return torch.from_numpy(np.round(images * 255).astype(np.uint8))[:, None]

    def population_msssim(self, pairs: int = 20_000, seed: int = 10**9) -> float:
        """Mean MS-SSIM of ``pairs`` independent pairs (standard error ~1e-3)."""
        from gen_eval.metrics.ms_ssim import pair_msssim

        values = [
            pair_msssim(self.sample(2_000, seed + 2 * start), self.sample(2_000, seed + 2 * start + 1))
            for start in range(0, pairs, 2_000)
        ]
        return float(torch.cat(values)[:pairs].mean())


@dataclass(frozen=True)
class Pixels:
    """side x side test images of independent pixels with ``levels`` levels, and a model of them.

    The data's per-pixel level probabilities q are fixed Dirichlet draws; the model's are
    (1 - mismatch) q + mismatch / levels, a :class:`gen_eval.metrics.likelihood.FactorisedCategorical`.

    Attributes
    ----------
    side, levels : int
    mismatch : float
        0: the model is the data distribution; larger: a worse model.
    """

    side: int = 4
    levels: int = 4
    mismatch: float = 0.0

    def _probs(self) -> tuple[np.ndarray, np.ndarray]:
        q = np.random.default_rng(0).dirichlet(np.ones(self.levels), (1, self.side, self.side))
        return q, (1 - self.mismatch) * q + self.mismatch / self.levels

    def model(self) -> FactorisedCategorical:
        """The factorised model (``likelihood = "discrete"``, ``levels`` levels)."""
        from gen_eval.metrics.likelihood import FactorisedCategorical

        return FactorisedCategorical(self._probs()[1])

    def sample(self, n: int, seed: int) -> torch.Tensor:
        """(n, 1, side, side) uint8 test images (level k stored as round(k * 255 / (levels - 1)))."""
        from gen_eval.metrics.likelihood import FactorisedCategorical

        return FactorisedCategorical(self._probs()[0]).sample(n, torch.Generator().manual_seed(seed))

    def population_bpd(self) -> float:
        """Cross-entropy -sum q log p over pixels, per pixel, in bits: the expected bits/dim."""
        q, p = self._probs()
        return float(-(q * np.log2(p)).sum() / (self.side * self.side))


def large_n_values(metric: str, case: Gaussians, n: int, draws: int = 4) -> dict[str, float]:
    """Mean values of registry metric ``metric`` at N = M = n over ``draws`` draws of ``case``.

    Parameters
    ----------
    metric : str
        Registry name (``"precision_recall"``).
    case : Gaussians
    n : int
        Points per set.
    draws : int

    Returns
    -------
    dict
        Result name -> mean value (no intervals).
    """
    from gen_eval.metrics import MetricContext, get_metric

    function, totals = get_metric(metric), {}
    for seed in range(draws):
        generated, reference = case.sample(n, n, 2 * 10**6 + seed)
        for name, result in function(generated, reference, MetricContext(num_resamples=0)).items():
            totals[name] = totals.get(name, 0.0) + result.value / draws
    return totals


class ImageSet:
    """The little of a :class:`gen_eval.sources.Source` that MS-SSIM reads, over images in memory.

    Parameters
    ----------
    images : torch.Tensor
        uint8 (N, C, H, W).
    spec : str
        Name shown in messages.
    model : object, optional
        A model with ``log_prob`` (bits/dim reads the generated source's ``model``).
    """

    data_kind = "image"

    def __init__(self, images: torch.Tensor, spec: str = "blobs", model: object = None):
        self.images, self.spec, self.model = images, spec, model
        self.sample_shape = tuple(images.shape[1:])

    def __len__(self) -> int:
        return len(self.images)

    def head(self, n: int) -> SimpleNamespace:
        """The first ``n`` images as a batch without labels."""
        return SimpleNamespace(data=self.images[:n], labels=None)

    def batches(self, size: int) -> Iterator[SimpleNamespace]:
        """The images in batches of ``size``."""
        for start in range(0, len(self.images), size):
            yield SimpleNamespace(data=self.images[start : start + size], labels=None)
