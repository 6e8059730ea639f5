"""A flow over the points of a shape, in the spirit of PointFlow (Yang et al., 2019), for the CPU.

PointFlow sees a cloud as a sample of points from a distribution that depends on the shape:
a shape code s, then each point x ~ p(x | s) independently, where p(x | s) is a normalising flow
over 3-D points conditioned on s. Its flows are continuous (CNFs: an ODE solved per point, on a
GPU, for days) and its shape codes come from a second CNF over the VAE's latents.

What we chose, and why: the same two levels with pieces that train on one CPU thread in a few
minutes.

* **Points given the shape**: a discrete-time flow of ``couplings`` affine coupling layers
  (RealNVP, Dinh et al., 2017) over R^3. Each layer keeps one coordinate and moves the other two
  by a scale and shift computed from the kept coordinate and the shape code: exact log-density
  by the change of variables, one pass each way, no ODE solver. (A CNF would need an ODE
  solve per training step for thousands of points: hours on the CPU.)
* **The shape code**: a PointNet encoder (the autoencoder's, :mod:`reference_models.pointcloud_ae`)
  trained jointly with the flow by maximum likelihood of the cloud's points, log p(X | s(X)) =
  sum_i log p(x_i | s(X)). PointFlow's VAE adds a KL term on s; without it the codes are free,
  so, as for the autoencoder, they are whitened after training and a Gaussian mixture over the
  whitened codes stands in for PointFlow's latent CNF.

``sample`` draws a code from the mixture and ``points`` base points u ~ N(0, I_3) per cloud, and
pushes u through the inverse flow. ``decode`` uses one fixed set of base points (drawn once with
seed 0 and stored), so that a latent gives one cloud and latent paths move smoothly.
``point_log_likelihood`` gives log p(x_i | s) per point, in nats.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from reference_models.common import EarlyStopping, TrainingData, TrainLog
from reference_models.pointcloud_ae import LatentGMM, PointNetEncoder, shuffled_batches, subsample

DEFAULTS = {
    "latent_dim": 32,
    "hidden": 64,  # width of each coupling's MLP
    "couplings": 6,  # kept coordinate cycles x, y, z, x, y, z
    "points": 2048,  # points in a sampled cloud
    "train_points": 128,  # points per cloud in a training step
    "steps": 1500,
    "batch_size": 32,
    "lr": 1e-3,
    "val_every": 250,
    "patience": 4,
    "gmm_components": 12,
}
LOG_2PI = math.log(2 * math.pi)


class Coupling(nn.Module):
    """Keep coordinate ``kept``; scale and shift the other two by an MLP of it and the shape code."""

    def __init__(self, kept: int, latent_dim: int, hidden: int) -> None:
        super().__init__()
        self.kept, self.moved = kept, [d for d in range(3) if d != kept]
        self.from_point = nn.Linear(1, hidden)
        self.from_code = nn.Linear(latent_dim, hidden)  # once per cloud, added to every point's
        self.net = nn.Sequential(nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, 4))
        nn.init.zeros_(self.net[-1].weight)  # start as the identity map
        nn.init.zeros_(self.net[-1].bias)

    def scale_shift(self, x: torch.Tensor, code: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.from_point(x[..., self.kept : self.kept + 1]) + self.from_code(code)[:, None, :]
        log_scale, shift = self.net(h).chunk(2, dim=-1)
        return torch.tanh(log_scale), shift  # tanh: a scale in [1/e, e] per layer keeps training stable

    def forward(self, x: torch.Tensor, code: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Data -> base direction: y = (x - shift) * exp(-log_scale); returns y and log |dy/dx| per point."""
        log_scale, shift = self.scale_shift(x, code)
        y = x.clone()
        y[..., self.moved] = (x[..., self.moved] - shift) * torch.exp(-log_scale)
        return y, -log_scale.sum(-1)

    def inverse(self, y: torch.Tensor, code: torch.Tensor) -> torch.Tensor:
        log_scale, shift = self.scale_shift(y, code)  # the kept coordinate is the same in x and y
        x = y.clone()
        x[..., self.moved] = y[..., self.moved] * torch.exp(log_scale) + shift
        return x


class PointFlow(nn.Module):
    """Shape code by PointNet, points by a conditional coupling flow, codes sampled from a mixture."""

    def __init__(self, latent_dim: int, hidden: int, couplings: int, points: int, components: int) -> None:
        super().__init__()
        self.latent_dim = latent_dim
        self.encoder = PointNetEncoder(latent_dim)
        self.couplings = nn.ModuleList(Coupling(i % 3, latent_dim, hidden) for i in range(couplings))
        self.register_buffer(
            "base_points", torch.randn(points, 3, generator=torch.Generator().manual_seed(0))
        )
        self.register_buffer("code_mean", torch.zeros(latent_dim))  # code = code_mean + code_chol @ z
        self.register_buffer("code_chol", torch.eye(latent_dim))
        self.gmm = LatentGMM(components, latent_dim)

    def log_likelihood(self, clouds: torch.Tensor, code: torch.Tensor) -> torch.Tensor:
        """log p(x | code) in nats per point, (N, P): the base density plus the log-Jacobians."""
        y, log_det = clouds, torch.zeros(clouds.shape[:2])
        for layer in self.couplings:
            y, step = layer(y, code)
            log_det = log_det + step
        return -0.5 * (y.pow(2).sum(-1) + 3 * LOG_2PI) + log_det

    def generate(self, code: torch.Tensor, base: torch.Tensor) -> torch.Tensor:
        """Push base points ``base`` (N, P, 3) through the inverse flow given codes (N, latent_dim)."""
        x = base
        for layer in reversed(self.couplings):
            x = layer.inverse(x, code)
        return x

    @torch.no_grad()
    def point_log_likelihood(self, clouds: torch.Tensor) -> torch.Tensor:
        """log p(x_i | s(X)) per point, nats (N, P), with s the cloud's own encoded shape code."""
        clouds = torch.as_tensor(clouds, dtype=torch.float32)
        return self.log_likelihood(clouds, self.encoder(clouds))

    @torch.no_grad()
    def encode(self, clouds: torch.Tensor) -> torch.Tensor:
        """Whitened shape latents (N, latent_dim) of float clouds (N, P, 3)."""
        clouds = torch.as_tensor(clouds, dtype=torch.float32)
        code = torch.cat([self.encoder(part) for part in clouds.split(128)])  # bounded memory
        return torch.linalg.solve_triangular(self.code_chol, (code - self.code_mean).T, upper=False).T

    @torch.no_grad()
    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Clouds (N, points, 3) from latents, through the fixed stored base points."""
        code = self.code_mean + z.float() @ self.code_chol.T
        return torch.cat([self.generate(c, self.base_points.expand(len(c), -1, -1)) for c in code.split(64)])

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """``n`` clouds (n, points, 3): a code from the mixture, fresh base points, the inverse flow."""
        code = self.code_mean + self.gmm.sample(n, generator) @ self.code_chol.T
        base = torch.randn(n, len(self.base_points), 3, generator=generator)
        return torch.cat([self.generate(c, u) for c, u in zip(code.split(64), base.split(64), strict=True)])


def build(hparams: dict, dataset: str) -> PointFlow:
    return PointFlow(
        hparams["latent_dim"],
        hparams["hidden"],
        hparams["couplings"],
        hparams["points"],
        hparams["gmm_components"],
    )


@torch.no_grad()
def validation_nll(model: PointFlow, clouds: torch.Tensor, points: int) -> float:
    """Mean -log p(x | s) per point (nats) on fixed point subsets of the validation clouds."""
    model.eval()
    target = subsample(clouds, points, torch.Generator().manual_seed(0))
    return float(-torch.cat([model.point_log_likelihood(t) for t in target.split(128)]).mean())


def fit(
    hparams: dict, data: TrainingData, *, generator: torch.Generator, log: TrainLog
) -> tuple[PointFlow, dict]:
    model = build(hparams, data.dataset)
    p, steps = hparams["train_points"], hparams["steps"]
    optimiser = torch.optim.Adam(model.parameters(), lr=hparams["lr"])
    stopper = EarlyStopping(model, hparams["patience"])
    log.begin(steps)
    losses = []
    for step, idx in enumerate(shuffled_batches(len(data.train), hparams["batch_size"], generator), start=1):
        model.train()
        clouds = subsample(data.train[idx], p, generator)
        loss = -model.log_likelihood(clouds, model.encoder(clouds)).mean()  # nats per point
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        losses.append(loss.item())
        log.step(step)
        if step % hparams["val_every"] == 0 or step == steps:
            val = validation_nll(model, data.val, p)
            log.record(step, loss=sum(losses) / len(losses), val_nll_per_point=val)
            losses = []
            if stopper.check(val, step) or step == steps:
                break
    stopper.restore()
    model.eval()
    summary = fit_latent(model, data, generator)
    summary.update(
        {
            "best_step": stopper.best_step,
            "steps_run": step,
            "val_nll_nats_per_point": round(validation_nll(model, data.val, p), 4),
            "val_points_per_cloud": p,
        }
    )
    return model, summary


@torch.no_grad()
def fit_latent(model: PointFlow, data: TrainingData, generator: torch.Generator) -> dict:
    """Whiten the training shape codes, then fit the mixture the samples' codes come from."""
    code = torch.cat([model.encoder(part) for part in data.train.split(256)]).double()
    centred = code - code.mean(0)
    cov = centred.T @ centred / (len(code) - 1) + 1e-6 * torch.eye(code.shape[1], dtype=torch.float64)
    model.code_mean.copy_(code.mean(0).float())
    model.code_chol.copy_(torch.linalg.cholesky(cov).float())
    z = model.encode(data.train).numpy().astype(np.float64)
    seed = int(torch.randint(0, 2**31 - 1, (1,), generator=generator))
    return {"gmm_codes": len(z), "gmm_train_loglik_per_code": round(model.gmm.fit(z, random_state=seed), 4)}
