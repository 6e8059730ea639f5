"""Autoregressive: a gated PixelCNN (van den Oord et al., 2016, "Conditional Image Generation with
PixelCNN Decoders") over the grey levels of the image.

The probability of an image is a product of per-pixel conditionals in raster order,

    P(x) = prod_i P(x_i | x_1, ..., x_{i-1}),

each a softmax over the ``levels`` grey levels (17 on digits). One forward pass gives every
conditional at once, because the network is causal: the logits at pixel i never see pixel i or any
later pixel. So ``log_prob`` is exact and cheap, while ``sample`` needs one pass per pixel (64 on
digits), filling the image in the same raster order.

Causality without a blind spot comes from two stacks of convolutions:

- the VERTICAL stack at (i, j) sees rows <= i (a kernel of r + 1 rows that ends at the current
  row, over columns j - r .. j + r); shifted down by one row, it sees only rows strictly above;
- the HORIZONTAL stack at (i, j) sees the pixels to the left in the same row (columns < j in the
  first layer, "mask A"; columns <= j of its own features afterwards, "mask B") plus the
  down-shifted vertical stack.

Stacking plain masked 3x3 convolutions instead leaves a growing triangle of pixels above-right
that is never seen (the "blind spot"); ``tests/test_reference_likelihood.py`` checks that here
every earlier pixel does reach the logits. Each layer uses the gated unit tanh(a) * sigmoid(b).
A learned per-position bias on the output logits tells the network where it is (digits have fixed
empty borders). Images with one channel only (digits, shapes).
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from reference_models.common import (
    EarlyStopping,
    TrainingData,
    TrainLog,
    from_level_indices,
    minibatches,
    to_level_indices,
)

DEFAULTS = {
    "channels": 64,  # feature maps per stack
    "layers": 5,  # gated layers
    "first_kernel": 7,  # the first layer sees 3 rows up and 3 columns either side ...
    "kernel": 3,  # ... and each further layer one more: 5 layers cover the whole 8x8 past
    "dropout": 0.1,  # on the gated outputs, against overfitting the 1,293 training images
    "epochs": 200,  # an upper limit; early stopping on validation bits/dim ends training
    "batch_size": 64,
    "lr": 2e-3,
    "patience": 10,  # epochs without a better validation score before stopping
}
SHAPES = {"digits": (1, 8, 8), "shapes": (1, 64, 64)}
LEVELS = {"digits": 17, "shapes": 2}


def down_shift(x: torch.Tensor) -> torch.Tensor:
    """Move features one row down (row 0 becomes zeros): position i then holds row i - 1."""
    return F.pad(x, (0, 0, 1, 0))[:, :, :-1, :]


def right_shift(x: torch.Tensor) -> torch.Tensor:
    """Move features one column right: position j then holds column j - 1."""
    return F.pad(x, (1, 0, 0, 0))[:, :, :, :-1]


def gate(x: torch.Tensor) -> torch.Tensor:
    a, b = x.chunk(2, dim=1)
    return torch.tanh(a) * torch.sigmoid(b)


class GatedLayer(nn.Module):
    """One layer of both stacks; ``first`` makes it mask A (a pixel never sees itself)."""

    def __init__(self, in_channels: int, channels: int, kernel: int, first: bool, dropout: float):
        super().__init__()
        self.r, self.first = kernel // 2, first
        # Unpadded convolutions; forward() pads so each output only covers the allowed inputs.
        self.vertical = nn.Conv2d(in_channels, 2 * channels, (self.r + 1, kernel))  # rows i-r..i
        self.horizontal = nn.Conv2d(in_channels, 2 * channels, (1, self.r + 1))  # columns j-r..j
        self.link = nn.Conv2d(2 * channels, 2 * channels, 1)  # vertical -> horizontal
        self.out = nn.Conv2d(channels, channels, 1)
        self.dropout = nn.Dropout(dropout)

    def forward(self, v: torch.Tensor, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        r = self.r
        v_pre = self.vertical(F.pad(v, (r, r, r, 0)))
        h_in = right_shift(h) if self.first else h
        # down_shift: the horizontal stack at row i may only use rows strictly above from the vertical one.
        h_pre = self.horizontal(F.pad(h_in, (r, 0, 0, 0))) + self.link(down_shift(v_pre))
        h_new = self.out(self.dropout(gate(h_pre)))
        return gate(v_pre), (h_new if self.first else h + h_new)  # residual once the widths match


class PixelCNN(nn.Module):
    """Gated PixelCNN over ``levels`` grey levels for images of ``shape`` (1, H, W)."""

    likelihood = "discrete"
    latent_dim = None

    def __init__(
        self,
        shape: tuple[int, int, int],
        levels: int,
        channels: int,
        layers: int,
        first_kernel: int,
        kernel: int,
        dropout: float = 0.0,
    ):
        super().__init__()
        if shape[0] != 1:
            raise ValueError("this PixelCNN models one-channel images only")
        self.shape, self.levels = tuple(shape), levels
        first = GatedLayer(levels, channels, first_kernel, True, dropout)  # input: one-hot grey levels
        rest = [GatedLayer(channels, channels, kernel, False, dropout) for _ in range(layers - 1)]
        self.layers = nn.ModuleList([first, *rest])
        self.head = nn.Sequential(
            nn.ReLU(), nn.Conv2d(channels, channels, 1), nn.ReLU(), nn.Conv2d(channels, levels, 1)
        )
        self.position_bias = nn.Parameter(torch.zeros(levels, *shape[1:]))

    def logits(self, k: torch.Tensor) -> torch.Tensor:
        """Logits (N, levels, H, W) of P(x_i = level | pixels before i) for level indices k (N, 1, H, W).

        k may hold only the top rows of the image (H smaller than the model's): rows never see the
        rows below them, so their logits are the same, and sampling saves half the work that way.
        """
        onehot = F.one_hot(k[:, 0], self.levels).permute(0, 3, 1, 2).to(torch.float32)
        return self.network(onehot) + self.position_bias[:, : k.shape[2]]

    def network(self, onehot: torch.Tensor) -> torch.Tensor:
        """The logits, less the position bias, from one-hot images (N, levels, H, W); the tests
        differentiate it with respect to its input."""
        v = h = onehot
        for layer in self.layers:
            v, h = layer(v, h)
        return self.head(h)

    def log_prob(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Exact log P(x) in nats (float64, one per image) of uint8 images x (N, 1, H, W)."""
        k = to_level_indices(x.cpu(), self.levels)
        with torch.no_grad():
            return self.log_prob_levels(k).to(torch.float64)

    def log_prob_levels(self, k: torch.Tensor) -> torch.Tensor:
        """log P of level-index images k (N, 1, H, W), differentiable (used for training)."""
        log_probs = self.logits(k).log_softmax(1)
        return torch.gather(log_probs, 1, k).to(torch.float64).flatten(1).sum(1)

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """``n`` uint8 images drawn pixel by pixel in raster order (one forward pass per pixel)."""
        _, height, width = self.shape
        k = torch.zeros(n, *self.shape, dtype=torch.int64)
        for i in range(height):
            for j in range(width):
                probs = self.logits(k[:, :, : i + 1])[:, :, i, j].softmax(1)
                k[:, 0, i, j] = torch.multinomial(probs, 1, generator=generator)[:, 0]
        return from_level_indices(k, self.levels)


def build(hparams: dict, dataset: str) -> PixelCNN:
    """The network of ``hparams``; a ``shape`` (1, H, W) and ``levels`` in hparams override the dataset's."""
    shape = tuple(hparams.get("shape", SHAPES[dataset]))
    levels = hparams.get("levels", LEVELS[dataset])
    keys = ("channels", "layers", "first_kernel", "kernel", "dropout")
    return PixelCNN(shape, levels, *(hparams[key] for key in keys))


def bits_per_dim(model: PixelCNN, x: torch.Tensor) -> float:
    model.eval()
    nats = torch.cat([model.log_prob(part) for part in x.split(500)])
    return float(-nats.mean() / (x[0].numel() * math.log(2)))


def fit(
    hparams: dict, data: TrainingData, *, generator: torch.Generator, log: TrainLog
) -> tuple[PixelCNN, dict]:
    model = build(hparams, data.dataset)
    optimiser = torch.optim.Adam(model.parameters(), lr=hparams["lr"])
    stopper = EarlyStopping(model, hparams["patience"])
    dims = data.train[0].numel()
    k_train = to_level_indices(data.train, model.levels)
    log.begin(hparams["epochs"])
    for epoch in range(1, hparams["epochs"] + 1):
        model.train()
        losses = []
        for idx in minibatches(len(k_train), hparams["batch_size"], generator):
            # Dropout draws from the global RNG, which reproducible() seeds.
            loss = -model.log_prob_levels(k_train[idx]).mean() / (dims * math.log(2))  # bits/dim
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
