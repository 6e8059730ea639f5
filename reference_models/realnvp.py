"""Flow: RealNVP (Dinh, Sohl-Dickstein & Bengio, 2017, "Density estimation using Real NVP").

A normalising flow is an invertible map f from images to latents z = f(y) with a standard normal
prior, and the change of variables gives an exact density

    log p(y) = log N(f(y); 0, I) + log |det df/dy|.

RealNVP builds f from AFFINE COUPLING layers: a binary mask b splits the pixels into a half that
passes through unchanged and conditions, and a half that is scaled and shifted,

    x' = b * x + (1 - b) * (x * exp(s(b * x)) + t(b * x)),

where s and t are any network (here a small CNN). The Jacobian is triangular, so its log-det is
just sum((1 - b) * s), and the inverse is as cheap: x = (x' - t) * exp(-s) on the changed half,
with s and t recomputed from the unchanged half. Layers alternate masks so every pixel is changed.

The masks follow the paper: checkerboards ((i + j) even / odd), and the channel masks it uses after
a "squeeze" (2x2 blocks -> 4 channels). Splitting a 2x2 block's four pixels into two channels each
is, drawn back on the 8x8 grid, a row-parity or column-parity mask, so every mask here is written
at 8x8 and one CNN design serves them all.

The data are discrete (17 grey levels), so, as in the paper, the density is over dequantised images
y = (k + u) / 17 with u ~ U[0, 1), first mapped to the real line with x = logit(a + (1 - 2a) y)
(that map's log-det is part of log p(y)), then standardised per pixel by an affine layer
initialised from the data (ActNorm, Kingma & Dhariwal 2018; the paper's batch norm at test time).
log P(x) >= E_u[log p(y)] - D log 17 (see ``gen_eval.metrics.likelihood``).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from reference_models.common import (
    EarlyStopping,
    TrainingData,
    TrainLog,
    from_level_indices,
    minibatches,
    to_level_indices,
)

DEFAULTS = {
    # conditioning half of each coupling: checkerboard, then the post-squeeze channel masks, then checkerboard
    "masks": ["checker0", "checker1", "checker0", "rows0", "rows1", "cols0", "cols1", "checker1", "checker0"],
    "hidden": 48,  # channels of each coupling's CNN
    # Keeps logit finite at the edges of [0, 1]. The paper's 0.05 squeezes the cells of levels 0 and 16
    # (58% of all pixels) into short logit intervals; validation bits/dim: 2.08 at 0.05, 1.99 at 0.01, 1.97 here.
    "alpha": 0.001,
    "epochs": 300,  # an upper limit; early stopping on validation bits/dim ends training
    "batch_size": 64,
    "lr": 1e-3,
    "weight_decay": 5e-5,  # L2, as in the paper
    "patience": 10,  # epochs without a better validation score before stopping
}
SHAPE, LEVELS = (1, 8, 8), 17
LOG_2PI = math.log(2 * math.pi)


def make_mask(name: str, height: int, width: int) -> torch.Tensor:
    """A (1, 1, H, W) float mask, 1 on the pixels that pass through and condition."""
    i, j = torch.meshgrid(torch.arange(height), torch.arange(width), indexing="ij")
    parity = {"checker": i + j, "rows": i, "cols": j}[name[:-1]] % 2
    return (parity == int(name[-1])).to(torch.float32)[None, None]


class Coupling(nn.Module):
    """One affine coupling layer; ``mask`` (1, 1, H, W) marks the unchanged half."""

    def __init__(self, mask: torch.Tensor, hidden: int):
        super().__init__()
        self.register_buffer("mask", mask, persistent=False)  # rebuilt by build(), not saved
        self.net = nn.Sequential(
            nn.Conv2d(2, hidden, 3, padding=1), nn.ReLU(),
            nn.Conv2d(hidden, hidden, 3, padding=1), nn.ReLU(),
            nn.Conv2d(hidden, 2, 3, padding=1),
        )  # fmt: skip
        # Start as the identity (s = t = 0); a learned scale on tanh keeps s bounded, as in the paper.
        nn.init.zeros_(self.net[-1].weight)
        nn.init.zeros_(self.net[-1].bias)
        self.scale = nn.Parameter(torch.ones(1))

    def scale_shift(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        b = self.mask
        # The mask is an input too: the CNN cannot otherwise tell which pixels it may use.
        s_raw, t = self.net(torch.cat([x * b, b.expand_as(x)], 1)).chunk(2, 1)
        return self.scale * torch.tanh(s_raw) * (1 - b), t * (1 - b)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x -> x' and log |det dx'/dx| per example."""
        s, t = self.scale_shift(x)
        return x * torch.exp(s) + t, s.flatten(1).sum(1)

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        s, t = self.scale_shift(y)  # the unchanged half is the same in x and x'
        return (y - t) * torch.exp(-s)


class RealNVP(nn.Module):
    """RealNVP over dequantised images of ``shape`` (1, H, W) with ``levels`` grey levels."""

    likelihood = "dequantized"

    def __init__(self, masks: list[str], hidden: int, alpha: float, shape=SHAPE, levels: int = LEVELS):
        super().__init__()
        self.shape, self.levels, self.alpha = tuple(shape), levels, alpha
        self.latent_dim = math.prod(shape)
        # ActNorm: x -> (x - shift) * exp(-log_scale), per pixel; fit() initialises it from the data.
        self.shift = nn.Parameter(torch.zeros(1, *shape))
        self.log_scale = nn.Parameter(torch.zeros(1, *shape))
        self.couplings = nn.ModuleList(Coupling(make_mask(name, *shape[1:]), hidden) for name in masks)

    def to_latent(self, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The flow: y in [0, 1] (N, 1, H, W) -> z (N, D), and log |det dz/dy| per example."""
        s = self.alpha + (1 - 2 * self.alpha) * y
        x = torch.log(s) - torch.log1p(-s)
        log_det = (math.log(1 - 2 * self.alpha) - torch.log(s) - torch.log1p(-s)).flatten(1).sum(1)
        x = (x - self.shift) * torch.exp(-self.log_scale)
        log_det = log_det - self.log_scale.sum()
        for coupling in self.couplings:
            x, coupling_log_det = coupling(x)
            log_det = log_det + coupling_log_det
        return x.flatten(1), log_det

    def from_latent(self, z: torch.Tensor) -> torch.Tensor:
        """The inverse flow: z (N, D) -> y (N, 1, H, W), continuous, in (-a / (1 - 2a), 1 + a / (1 - 2a))."""
        x = z.reshape(len(z), *self.shape)
        for coupling in reversed(self.couplings):
            x = coupling.inverse(x)
        x = x * torch.exp(self.log_scale) + self.shift
        return (torch.sigmoid(x) - self.alpha) / (1 - 2 * self.alpha)

    def log_density(self, y: torch.Tensor) -> torch.Tensor:
        """log p(y) in nats per example (differentiable; used for training)."""
        z, log_det = self.to_latent(y)
        return -0.5 * (z.pow(2) + LOG_2PI).sum(1) + log_det

    def dequantise(self, x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        k = to_level_indices(x.cpu(), self.levels).to(torch.float32)
        return (k + torch.rand(k.shape, generator=generator)) / self.levels

    def log_prob(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """log p(y) in nats (float64) of y = (k + u) / levels for uint8 images x, u drawn from ``generator``."""
        with torch.no_grad():
            return self.log_density(self.dequantise(x, generator)).to(torch.float64)

    @torch.no_grad()
    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Latents (N, D) of uint8 images, dequantised at the centre of each level's cell (u = 1/2)."""
        k = to_level_indices(x.cpu(), self.levels).to(torch.float32)
        return self.to_latent((k + 0.5) / self.levels)[0]

    @torch.no_grad()
    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """uint8 images (N, 1, H, W) of latents z: the inverse flow, then the level whose cell holds y."""
        y = self.from_latent(z.to(torch.float32))
        k = torch.clamp(torch.floor(y * self.levels), 0, self.levels - 1)
        return from_level_indices(k, self.levels)

    @torch.no_grad()
    def decode_float(self, z: torch.Tensor) -> torch.Tensor:
        """The continuous y in [0, 1] (N, 1, H, W) before :meth:`decode` picks a level: smooth in z."""
        return self.from_latent(z.to(torch.float32)).clamp(0, 1)

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """``n`` uint8 images decoded from z ~ N(0, I)."""
        return self.decode(torch.randn(n, self.latent_dim, generator=generator))


def build(hparams: dict, dataset: str) -> RealNVP:
    """The flow of ``hparams``; ``shape`` (1, H, W) and ``levels`` in hparams override the digits ones."""
    shape, levels = hparams.get("shape", SHAPE), hparams.get("levels", LEVELS)
    return RealNVP(hparams["masks"], hparams["hidden"], hparams["alpha"], shape, levels)


def bits_per_dim(model: RealNVP, x: torch.Tensor) -> float:
    """The bound -(E_u log p(y) - D log L) / (D ln 2), with the same u at every check."""
    model.eval()
    nats = model.log_prob(x, torch.Generator().manual_seed(0))
    dims = x[0].numel()
    return float(-(nats.mean() - dims * math.log(model.levels)) / (dims * math.log(2)))


def fit(
    hparams: dict, data: TrainingData, *, generator: torch.Generator, log: TrainLog
) -> tuple[RealNVP, dict]:
    model = build(hparams, data.dataset)
    dims = data.train[0].numel()
    with torch.no_grad():  # data-dependent ActNorm initialisation: standardised logits per pixel
        y = model.dequantise(data.train, generator)
        s = model.alpha + (1 - 2 * model.alpha) * y
        x = torch.log(s) - torch.log1p(-s)
        model.shift.copy_(x.mean(0, keepdim=True))
        model.log_scale.copy_(x.std(0, keepdim=True).log())
    optimiser = torch.optim.Adam(model.parameters(), lr=hparams["lr"], weight_decay=hparams["weight_decay"])
    stopper = EarlyStopping(model, hparams["patience"])
    log.begin(hparams["epochs"])
    for epoch in range(1, hparams["epochs"] + 1):
        model.train()
        losses = []
        for idx in minibatches(len(data.train), hparams["batch_size"], generator):
            log_p = model.log_density(model.dequantise(data.train[idx], generator))
            loss = -(log_p.mean() - dims * math.log(model.levels)) / (dims * math.log(2))  # bits/dim
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            losses.append(loss.item())
        val = bits_per_dim(model, data.val)
        log.record(epoch, loss_bits_per_dim=sum(losses) / len(losses), val_bits_per_dim=val)
        log.step(epoch)
        if stopper.check(val, epoch):
            break
    stopper.restore()
    val = bits_per_dim(model, data.val)
    return model, {"val_bits_per_dim": round(val, 4), "best_epoch": stopper.best_step, "epochs_run": epoch}
