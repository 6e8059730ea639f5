"""Classic: a Gaussian mixture over pixels (scikit-learn's EM), in logit space.

The data are discrete (17 grey levels), a Gaussian is a density, so we model dequantised
pixels y = (k + u) / 17 with u ~ U[0, 1). A Gaussian fits the bounded y badly (nearly constant
border pixels are uniform on a narrow interval), so, as in RealNVP, each pixel is first mapped
to the real line with z = logit(a + (1 - 2a) y); the density of y is the mixture's density of z
times the Jacobian of that map. The number of components and the covariance regularisation are
chosen on the validation split.

log P(x) >= E_u[log p(y)] - D log 17 (see ``gen_eval.metrics.likelihood``).
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from reference_models.common import TrainingData, TrainLog, from_level_indices, to_level_indices

DEFAULTS = {
    "components": [5, 10, 15],  # candidates, chosen on validation bits/dim
    "reg_covar": [0.03, 0.1, 0.3],
    "alpha": 0.01,  # keeps logit finite at the edges of [0, 1]
    "dequantisation_copies": 4,  # noisy copies of each training image given to EM
    "max_iter": 200,
}


class GaussianMixtureModel(nn.Module):
    likelihood = "dequantized"
    latent_dim = None

    def __init__(self, components: int, shape: tuple[int, ...], levels: int, alpha: float):
        super().__init__()
        dims = math.prod(shape)
        self.shape, self.levels, self.alpha = shape, levels, alpha
        self.register_buffer("log_weights", torch.zeros(components, dtype=torch.float64))
        self.register_buffer("means", torch.zeros(components, dims, dtype=torch.float64))
        # Cholesky factors of each covariance (to sample) and of each precision (to score).
        self.register_buffer("cov_chol", torch.eye(dims, dtype=torch.float64).repeat(components, 1, 1))
        self.register_buffer("prec_chol", torch.eye(dims, dtype=torch.float64).repeat(components, 1, 1))

    def to_logit(self, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """z = logit(a + (1 - 2a) y) per pixel, and log |dz/dy| summed over pixels."""
        s = self.alpha + (1 - 2 * self.alpha) * y
        z = torch.log(s) - torch.log1p(-s)
        log_jacobian = (math.log(1 - 2 * self.alpha) - torch.log(s) - torch.log1p(-s)).sum(1)
        return z, log_jacobian

    def dequantise(self, x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        k = to_level_indices(x.cpu(), self.levels).reshape(len(x), -1).to(torch.float64)
        return (k + torch.rand(k.shape, generator=generator, dtype=torch.float64)) / self.levels

    def log_density_z(self, z: torch.Tensor) -> torch.Tensor:
        # log N(z; mu_k, Sigma_k) = -D/2 log 2pi + log det(P_k) - |P_k^T (z - mu_k)|^2 / 2
        diff = z[:, None, :] - self.means[None]  # (N, K, D)
        projected = torch.einsum("nkd,kde->nke", diff, self.prec_chol)
        log_det = torch.diagonal(self.prec_chol, dim1=1, dim2=2).log().sum(1)
        per_component = -0.5 * z.shape[1] * math.log(2 * math.pi) + log_det - 0.5 * projected.pow(2).sum(2)
        return torch.logsumexp(per_component + self.log_weights, dim=1)

    def log_prob(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """log p(y) in nats of the dequantised images y = (k + u) / levels (u drawn from ``generator``)."""
        z, log_jacobian = self.to_logit(self.dequantise(x, generator))
        return self.log_density_z(z) + log_jacobian

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        component = torch.multinomial(self.log_weights.exp(), n, replacement=True, generator=generator)
        noise = torch.randn(n, self.means.shape[1], generator=generator, dtype=torch.float64)
        z = self.means[component] + torch.einsum("nde,ne->nd", self.cov_chol[component], noise)
        y = (torch.sigmoid(z) - self.alpha) / (1 - 2 * self.alpha)
        k = torch.clamp(torch.floor(y * self.levels), 0, self.levels - 1)
        return from_level_indices(k.reshape(n, *self.shape), self.levels)


def build(hparams: dict, dataset: str) -> GaussianMixtureModel:
    components = hparams.get("chosen_components", max(hparams["components"]))
    return GaussianMixtureModel(components, (1, 8, 8), 17, hparams["alpha"])


def _from_sklearn(mixture, shape: tuple[int, ...], levels: int, alpha: float) -> GaussianMixtureModel:
    model = GaussianMixtureModel(mixture.n_components, shape, levels, alpha)
    model.log_weights.copy_(torch.from_numpy(np.log(mixture.weights_)))
    model.means.copy_(torch.from_numpy(mixture.means_))
    model.cov_chol.copy_(torch.linalg.cholesky(torch.from_numpy(mixture.covariances_)))
    model.prec_chol.copy_(torch.from_numpy(mixture.precisions_cholesky_))
    return model


def bits_per_dim(model: GaussianMixtureModel, x: torch.Tensor, generator: torch.Generator) -> float:
    dims = x[0].numel()
    bound = model.log_prob(x, generator) - dims * math.log(model.levels)
    return float(-bound.mean() / (dims * math.log(2)))


def fit(
    hparams: dict, data: TrainingData, *, generator: torch.Generator, log: TrainLog
) -> tuple[GaussianMixtureModel, dict]:
    from sklearn.mixture import GaussianMixture

    shape, levels, alpha = data.sample_shape, data.levels or 256, hparams["alpha"]
    probe = GaussianMixtureModel(1, shape, levels, alpha)
    copies = data.train.repeat(hparams["dequantisation_copies"], 1, 1, 1)
    z_train = probe.to_logit(probe.dequantise(copies, generator))[0].numpy()
    grid = [(k, r) for k in hparams["components"] for r in hparams["reg_covar"]]
    log.begin(len(grid))
    best = None
    for step, (components, reg) in enumerate(grid, 1):
        mixture = GaussianMixture(
            components, covariance_type="full", reg_covar=reg, max_iter=hparams["max_iter"], random_state=0
        ).fit(z_train)
        model = _from_sklearn(mixture, shape, levels, alpha)
        val = bits_per_dim(model, data.val, torch.Generator().manual_seed(0))
        log.record(step, components=components, reg_covar=reg, val_bits_per_dim=val)
        log.step(step)
        if best is None or val < best[0]:
            best = (val, components, reg, model)
    val, components, reg, model = best
    hparams["chosen_components"], hparams["chosen_reg_covar"] = components, reg
    return model, {"val_bits_per_dim": round(val, 4), "components": components, "reg_covar": reg}
