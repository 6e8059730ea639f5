"""The trivial baseline: every pixel an independent categorical over the grey levels.

It knows each pixel's marginal and nothing about how pixels go together, so its samples are
noise shaped like the average image. Every real model must beat it on FID, and every
likelihood model on bits/dim.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from reference_models.common import TrainingData, TrainLog, from_level_indices, to_level_indices

DEFAULTS = {"alpha": 1.0}  # Laplace smoothing: an unseen level keeps a little probability


class IndependentPixels(nn.Module):
    likelihood = "discrete"

    def __init__(self, shape: tuple[int, ...], levels: int):
        super().__init__()
        self.levels, self.latent_dim = levels, None
        self.register_buffer(
            "log_probs", torch.full((*shape, levels), -math.log(levels), dtype=torch.float64)
        )

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        probs = self.log_probs.exp().reshape(-1, self.levels)
        k = torch.multinomial(probs, n, replacement=True, generator=generator).T
        return from_level_indices(k.reshape(n, *self.log_probs.shape[:-1]), self.levels)

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """log P(x) in nats of uint8 images, summed over pixels (exact, discrete)."""
        k = to_level_indices(x.cpu(), self.levels).unsqueeze(-1)
        table = self.log_probs.to(torch.float64).expand(len(k), *self.log_probs.shape)
        return torch.gather(table, -1, k).reshape(len(k), -1).sum(1)


def build(hparams: dict, dataset: str) -> IndependentPixels:
    return IndependentPixels((1, 8, 8), 17) if dataset == "digits" else IndependentPixels((1, 64, 64), 2)


def fit(
    hparams: dict, data: TrainingData, *, generator: torch.Generator, log: TrainLog
) -> tuple[IndependentPixels, dict]:
    model = build(hparams, data.dataset)
    log.begin(1)
    k = to_level_indices(data.train, model.levels)
    counts = nn.functional.one_hot(k, model.levels).sum(0).to(torch.float64)
    probs = (counts + hparams["alpha"]) / (len(k) + model.levels * hparams["alpha"])
    model.log_probs.copy_(probs.log())
    val_bpd = float(-model.log_prob(data.val).mean() / (data.val[0].numel() * torch.log(torch.tensor(2.0))))
    log.record(1, val_bits_per_dim=val_bpd)
    log.step(1)
    return model, {"val_bits_per_dim": round(val_bpd, 4)}
