"""Point-cloud autoencoder with a Gaussian-mixture latent sampler (Achlioptas et al., 2018).

Achlioptas et al. ("Learning Representations and Generative Models for 3D Point Clouds") train an
autoencoder on clouds with the Chamfer distance and then fit a simple generative model to its
codes; their best "latent GAN" rival was a Gaussian mixture on the codes ("l-GMM"). This is that
model, small enough to train on one CPU thread in a couple of minutes:

* **Encoder**: PointNet (Qi et al., 2017): the same MLP on every point (3 -> 64 -> 128 -> 256),
  a max over the points (any number of points, in any order), then a linear map to the code.
* **Decoder**: a folding decoder (Yang et al., 2018, FoldingNet; a sphere as in AtlasNet):
  one MLP maps (code, a point u on the unit sphere) to a point of the shape, so the code folds
  the sphere into the object. ``decode`` folds a fixed, even Fibonacci lattice of ``points``
  points; training folds random sphere points, so the fold is learnt everywhere on the sphere.
  An MLP emitting 2,048 x 3 numbers (Achlioptas's decoder, hidden layers of 256) would need
  1.6 M weights (6.6 MB, over the 5 MB a shipped checkpoint may take); the fold has 38 k and
  draws any number of points.
* **Loss**: the Chamfer distance between the decoded and the real cloud (``chamfer``):
  the mean squared distance from each point to the nearest point of the other cloud, both ways.
* **Latent space**: after training, the codes of the training clouds are whitened (their mean
  and the Cholesky factor of their covariance are stored), so the model's latent z is roughly
  N(0, I): what the latent analysers assume for interpolation end points and traversals. A
  Gaussian mixture (scikit-learn's EM) is fitted to the whitened codes; ``sample`` draws z from
  it and decodes.

The deliberately faulty ``collapsed_shapes3d`` is the shipped ``pointcloud_ae`` itself
(``autoencoder_from``: its weights are loaded, not retrained) whose mixture is refitted without
the codes of two classes (``gmm_skip_labels``): its samples never show those classes.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np
import torch
from torch import nn

from reference_models.common import EarlyStopping, TrainingData, TrainLog

DEFAULTS = {
    "latent_dim": 32,
    "hidden": 128,  # width of the folding MLP
    "points": 2048,  # points in a decoded cloud (the size of the shapes3d clouds)
    "train_points": 128,  # points per cloud in a training step: target subset and sphere seeds
    "steps": 2000,
    "batch_size": 32,
    "lr": 1e-3,
    "val_every": 250,  # steps between validation Chamfer checks (early stopping)
    "patience": 4,
    "gmm_components": 12,
    "gmm_skip_labels": [],  # classes whose codes the mixture never sees (the faulty model)
    "autoencoder_from": None,  # a bundled model whose shipped weights to reuse (only the GMM is fitted)
}


# ------------------------------------------------------------------------------------------ pieces
def chamfer(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Chamfer distance per pair of clouds: mean squared nearest-point distance, a -> b plus b -> a.

    Parameters
    ----------
    a, b : torch.Tensor
        (N, P, 3) and (N, Q, 3) clouds.

    Returns
    -------
    torch.Tensor
        (N,) distances (squared units, as in PointFlow's CD).
    """
    d = (a.pow(2).sum(-1)[:, :, None] + b.pow(2).sum(-1)[:, None, :] - 2 * a @ b.transpose(1, 2)).clamp_min(0)
    return d.amin(2).mean(1) + d.amin(1).mean(1)


def sphere_lattice(points: int) -> torch.Tensor:
    """``points`` nearly evenly spread points on the unit sphere (the Fibonacci lattice), (points, 3)."""
    i = torch.arange(points, dtype=torch.float64) + 0.5
    height = 1 - 2 * i / points
    radius = (1 - height**2).sqrt()
    angle = math.pi * (1 + 5**0.5) * i
    return torch.stack([radius * angle.cos(), radius * angle.sin(), height], 1).float()


def random_sphere(n: int, points: int, generator: torch.Generator) -> torch.Tensor:
    """(n, points, 3) points drawn uniformly on the unit sphere (normalised Gaussians)."""
    u = torch.randn(n, points, 3, generator=generator)
    return u / u.norm(dim=-1, keepdim=True).clamp_min(1e-12)


def subsample(clouds: torch.Tensor, points: int, generator: torch.Generator) -> torch.Tensor:
    """``points`` points of each cloud, drawn without replacement, independently per cloud."""
    index = torch.rand(clouds.shape[:2], generator=generator).argsort(dim=1)[:, :points]
    return torch.gather(clouds, 1, index[..., None].expand(-1, -1, 3))


class PointNetEncoder(nn.Module):
    """PointNet without transform nets: shared point MLP, max over points, linear to ``out`` numbers."""

    def __init__(self, out: int) -> None:
        super().__init__()
        self.point_mlp = nn.Sequential(
            nn.Linear(3, 64), nn.ReLU(), nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 256)
        )  # fmt: skip
        self.head = nn.Linear(256, out)

    def forward(self, clouds: torch.Tensor) -> torch.Tensor:
        return self.head(self.point_mlp(clouds).amax(dim=1))


class LatentGMM(nn.Module):
    """A Gaussian mixture over latents, kept as buffers so it saves with the weights (safetensors)."""

    def __init__(self, components: int, dim: int) -> None:
        super().__init__()
        self.register_buffer("log_weights", torch.full((components,), -math.log(components)))
        self.register_buffer("means", torch.zeros(components, dim))
        self.register_buffer("chol", torch.eye(dim).repeat(components, 1, 1))  # Cholesky of each cov

    def fit(self, z: np.ndarray, random_state: int) -> float:
        """Fit by EM (scikit-learn, full covariances); returns the mean log-likelihood per code."""
        from sklearn.mixture import GaussianMixture

        gmm = GaussianMixture(
            len(self.means), covariance_type="full", reg_covar=1e-4, random_state=random_state
        )
        gmm.fit(z)
        self.log_weights.copy_(torch.from_numpy(np.log(gmm.weights_)).float())
        self.means.copy_(torch.from_numpy(gmm.means_).float())
        self.chol.copy_(torch.from_numpy(np.linalg.cholesky(gmm.covariances_)).float())
        return float(gmm.score(z))

    def sample(self, n: int, generator: torch.Generator | None) -> torch.Tensor:
        component = torch.multinomial(self.log_weights.exp(), n, replacement=True, generator=generator)
        noise = torch.randn(n, self.means.shape[1], generator=generator)
        return self.means[component] + torch.einsum("nde,ne->nd", self.chol[component], noise)


# ------------------------------------------------------------------------------------------- model
class PointCloudAE(nn.Module):
    """PointNet encoder, folding decoder, whitened latent space and a mixture to sample from."""

    def __init__(self, latent_dim: int, hidden: int, points: int, components: int) -> None:
        super().__init__()
        self.latent_dim = latent_dim
        self.encoder = PointNetEncoder(latent_dim)
        self.fold = nn.Sequential(
            nn.Linear(latent_dim + 3, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(),
            nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, 3),
        )  # fmt: skip
        self.register_buffer("lattice", sphere_lattice(points))
        # Whitening of the training codes: code = code_mean + code_chol @ z.
        self.register_buffer("code_mean", torch.zeros(latent_dim))
        self.register_buffer("code_chol", torch.eye(latent_dim))
        self.gmm = LatentGMM(components, latent_dim)

    # The networks work on raw codes; encode/decode speak the whitened latent z.
    def fold_points(self, code: torch.Tensor, seeds: torch.Tensor) -> torch.Tensor:
        """Fold sphere points ``seeds`` ((P, 3) shared, or (N, P, 3)) by the codes (N, latent_dim)."""
        if seeds.dim() == 2:
            seeds = seeds.expand(len(code), -1, -1)
        inputs = torch.cat([code[:, None, :].expand(-1, seeds.shape[1], -1), seeds], dim=2)
        return self.fold(inputs)

    @torch.no_grad()
    def encode(self, clouds: torch.Tensor) -> torch.Tensor:
        """Whitened latents (N, latent_dim) of float clouds (N, P, 3), any P."""
        clouds = torch.as_tensor(clouds, dtype=torch.float32)
        code = torch.cat([self.encoder(part) for part in clouds.split(128)])  # bounded memory
        return torch.linalg.solve_triangular(self.code_chol, (code - self.code_mean).T, upper=False).T

    @torch.no_grad()
    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Clouds (N, points, 3), float32: the fixed sphere lattice folded by each latent."""
        code = self.code_mean + z.float() @ self.code_chol.T
        return torch.cat([self.fold_points(part, self.lattice) for part in code.split(64)])

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """``n`` clouds (n, points, 3): latents drawn from the mixture, then decoded."""
        return self.decode(self.gmm.sample(n, generator))


def build(hparams: dict, dataset: str) -> PointCloudAE:
    return PointCloudAE(
        hparams["latent_dim"],
        hparams["hidden"],
        hparams["points"],
        hparams["gmm_components"],
    )


# ---------------------------------------------------------------------------------------- training
@torch.no_grad()
def validation_chamfer(model: PointCloudAE, clouds: torch.Tensor, points: int) -> float:
    """Mean Chamfer distance of reconstructions, on fixed point subsets and a fixed lattice."""
    model.eval()
    target = subsample(clouds, points, torch.Generator().manual_seed(0))
    seeds = sphere_lattice(points)
    return float(
        torch.cat([chamfer(model.fold_points(model.encoder(t), seeds), t) for t in target.split(128)]).mean()
    )


def shuffled_batches(n: int, size: int, generator: torch.Generator) -> Iterator[torch.Tensor]:
    """Index batches of shuffled epochs, one epoch after another, without end."""
    while True:
        yield from torch.randperm(n, generator=generator).split(size)


def fit(
    hparams: dict, data: TrainingData, *, generator: torch.Generator, log: TrainLog
) -> tuple[PointCloudAE, dict]:
    model = build(hparams, data.dataset)
    if hparams["autoencoder_from"]:  # the faulty model: the shipped autoencoder, another mixture
        from reference_models import load_model

        model.load_state_dict(load_model(hparams["autoencoder_from"]).state_dict())
        model.eval()
        summary = fit_latent(model, data, hparams, generator)
        summary["val_chamfer"] = round(validation_chamfer(model, data.val, hparams["train_points"]), 6)
        return model, summary
    p, steps = hparams["train_points"], hparams["steps"]
    optimiser = torch.optim.Adam(model.parameters(), lr=hparams["lr"])
    stopper = EarlyStopping(model, hparams["patience"])
    log.begin(steps)
    losses = []
    batches = shuffled_batches(len(data.train), hparams["batch_size"], generator)
    for step, idx in enumerate(batches, start=1):
        model.train()
        target = subsample(data.train[idx], p, generator)
        decoded = model.fold_points(model.encoder(target), random_sphere(len(idx), p, generator))
        loss = chamfer(decoded, target).mean()
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        losses.append(loss.item())
        log.step(step)
        if step % hparams["val_every"] == 0 or step == steps:
            val = validation_chamfer(model, data.val, p)
            log.record(step, loss=sum(losses) / len(losses), val_chamfer=val)
            losses = []
            if stopper.check(val, step) or step == steps:
                break
    stopper.restore()
    model.eval()
    summary = fit_latent(model, data, hparams, generator)
    summary.update(
        {
            "best_step": stopper.best_step,
            "steps_run": step,
            "val_chamfer": round(validation_chamfer(model, data.val, p), 6),
            "val_chamfer_points": p,
        }
    )
    return model, summary


@torch.no_grad()
def fit_latent(model: PointCloudAE, data: TrainingData, hparams: dict, generator: torch.Generator) -> dict:
    """Whiten the training codes, then fit the mixture (without ``gmm_skip_labels``' codes)."""
    code = torch.cat([model.encoder(part) for part in data.train.split(256)]).double()
    mean = code.mean(0)
    centred = code - mean
    cov = centred.T @ centred / (len(code) - 1) + 1e-6 * torch.eye(code.shape[1], dtype=torch.float64)
    model.code_mean.copy_(mean.float())
    model.code_chol.copy_(torch.linalg.cholesky(cov).float())
    z = model.encode(data.train).numpy().astype(np.float64)
    keep = ~np.isin(data.train_labels.numpy(), hparams["gmm_skip_labels"])
    seed = int(torch.randint(0, 2**31 - 1, (1,), generator=generator))
    train_ll = model.gmm.fit(z[keep], random_state=seed)
    val_z = model.encode(data.val).numpy().astype(np.float64)
    return {
        "gmm_codes": int(keep.sum()),
        "gmm_skipped_labels": list(hparams["gmm_skip_labels"]),
        "gmm_train_loglik_per_code": round(train_ll, 4),
        "val_code_norm_mean": round(float(np.linalg.norm(val_z, axis=1).mean()), 4),
    }
