"""CycleGAN-style unpaired translation between the two embedded digit domains: digits <-> mnist.

``digits`` (scikit-learn's 8x8 digits, 17 grey levels scaled to uint8) and ``mnist`` (28x28, 256
levels) share ten classes but no pairs. As in CycleGAN (Zhu et al., 2017) two generators,
``G: digits -> mnist`` and ``F: mnist -> digits``, are trained against one discriminator per
domain with the least-squares GAN loss, plus the cycle loss
``lambda * (|F(G(a)) - a|_1 + |G(F(b)) - b|_1)`` with CycleGAN's ``lambda = 10``. CycleGAN's
identity loss needs both domains at one size, so there is none.

Geometry is built in rather than learnt: MNIST digits were size-normalised into a 20x20 box
centred in the 28x28 frame (LeCun et al., 1998), while the 8x8 digits fill their frame. So ``G``
works at 8x8, resizes its feature maps to 20x20 (bilinear) and pads them by 4 to 28x28 before
its last convs; ``F`` crops the centre 20x20, area-resizes it to 8x8 and works there. Without
this prior a few CPU minutes are not enough to learn the framing. Nothing ties a class to a
class: label preservation is what the translation metrics measure.

Discriminators are PatchGANs: on 28x28, a 7x7 grid of verdicts (18x18 windows); on 8x8, a 4x4
grid. Both generators are deterministic. ``translate`` (8x8 -> 28x28, uint8 with 256 levels) and
``translate_back`` (28x28 -> 8x8, rounded to the 17 grey levels of the digits data) are the
unpaired translation protocol of issue 23; the model has ``task = "digits2mnist"`` and no
``sample``. ``cyclegan_mnist2digits`` is the same weights with ``direction = "mnist2digits"``:
``translate`` is then F and ``translate_back`` G. The last iterate is kept (there is no paired
validation loss to choose by); the log records both cycle errors on held-out data.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from reference_models.common import (
    TrainingData,
    TrainLog,
    from_level_indices,
    load_training_data,
    minibatches,
    to_unit,
)

DIGITS_SIZE, MNIST_SIZE, BOX, DIGITS_LEVELS = 8, 28, 20, 17
DIRECTIONS = ("digits2mnist", "mnist2digits")
DEFAULTS = {
    "direction": "digits2mnist",  # which way translate goes (training is the same either way)
    "channels": 8,  # width at 28x28 (16 at 8x8): 8 k weights per generator
    "disc_channels": 16,
    "cycle_weight": 10.0,  # CycleGAN's lambda
    "steps": 2000,
    "batch_size": 32,
    "lr": 2e-4,  # CycleGAN's Adam settings
    "betas": [0.5, 0.999],
    "eval_every": 250,
    "threads": 1,
}


# ------------------------------------------------------------------------------------------- networks
def _conv(inputs: int, outputs: int) -> list[nn.Module]:
    return [nn.Conv2d(inputs, outputs, 3, padding=1, bias=False), nn.BatchNorm2d(outputs), nn.ReLU()]


class DigitsToMnist(nn.Module):
    """G: 8x8 -> convs -> bilinear to 20x20 -> zero-pad to 28x28 -> convs -> [0, 1]."""

    def __init__(self, channels: int):
        super().__init__()
        c = channels
        self.low = nn.Sequential(*_conv(1, 2 * c), *_conv(2 * c, 2 * c))
        self.high = nn.Sequential(*_conv(2 * c, c), *_conv(c, c), nn.Conv2d(c, 1, 3, padding=1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.interpolate(self.low(x), size=(BOX, BOX), mode="bilinear", align_corners=False)
        margin = (MNIST_SIZE - BOX) // 2
        return torch.sigmoid(self.high(F.pad(h, (margin,) * 4)))


class MnistToDigits(nn.Module):
    """F: 28x28 -> convs -> centre 20x20 -> area-resize to 8x8 -> convs -> [0, 1]."""

    def __init__(self, channels: int):
        super().__init__()
        c = channels
        self.high = nn.Sequential(*_conv(1, c), *_conv(c, 2 * c))
        self.low = nn.Sequential(*_conv(2 * c, 2 * c), nn.Conv2d(2 * c, 1, 3, padding=1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        margin = (MNIST_SIZE - BOX) // 2
        h = self.high(x)[:, :, margin : margin + BOX, margin : margin + BOX]
        return torch.sigmoid(self.low(F.adaptive_avg_pool2d(h, DIGITS_SIZE)))


def discriminator(size: int, channels: int) -> nn.Sequential:
    """PatchGAN: 28x28 -> 7x7 logits (two 4x4/2 convs, one 3x3), 8x8 -> 4x4 logits (one 4x4/2 conv)."""
    c = channels
    layers: list[nn.Module] = [nn.Conv2d(1, c, 4, stride=2, padding=1), nn.LeakyReLU(0.2)]
    if size == MNIST_SIZE:
        layers += [nn.Conv2d(c, 2 * c, 4, stride=2, padding=1), nn.LeakyReLU(0.2)]
        c *= 2
    layers.append(nn.Conv2d(c, 1, 3, padding=1))
    return nn.Sequential(*layers)


class CycleGAN(nn.Module):
    """Both trained generators with the translation protocol: ``task``, ``translate``, ``translate_back``.

    ``direction`` picks which way ``translate`` goes: ``"digits2mnist"`` (G, the default) or
    ``"mnist2digits"`` (F); ``translate_back`` is the other generator. The weights are the same.
    """

    def __init__(self, channels: int, direction: str = "digits2mnist"):
        super().__init__()
        if direction not in DIRECTIONS:
            raise ValueError(f"unknown direction {direction!r}; expected one of {DIRECTIONS}")
        self.task = direction
        self.forward_net = DigitsToMnist(channels)
        self.backward_net = MnistToDigits(channels)

    @staticmethod
    def _run(net: nn.Module, images: torch.Tensor, size: int, batch_size: int = 512) -> torch.Tensor:
        if images.dtype != torch.uint8 or images.dim() != 4 or tuple(images.shape[1:]) != (1, size, size):
            raise ValueError(
                f"expected uint8 images (N, 1, {size}, {size}), got {images.dtype} {tuple(images.shape)}"
            )
        was_training = net.training
        net.eval()
        try:
            with torch.no_grad():
                parts = [net(to_unit(images[i : i + batch_size])) for i in range(0, len(images), batch_size)]
        finally:
            net.train(was_training)
        return torch.cat(parts) if parts else torch.zeros((0, 1, 1, 1))

    def to_mnist(self, digits: torch.Tensor) -> torch.Tensor:
        """G: 8x8 digits, uint8 (N, 1, 8, 8) -> 28x28 mnist-style digits, uint8 (N, 1, 28, 28)."""
        if len(digits) == 0:
            return torch.zeros((0, 1, MNIST_SIZE, MNIST_SIZE), dtype=torch.uint8)
        return torch.round(self._run(self.forward_net, digits, DIGITS_SIZE) * 255.0).to(torch.uint8)

    def to_digits(self, mnist: torch.Tensor) -> torch.Tensor:
        """F: 28x28 digits, uint8 (N, 1, 28, 28) -> 8x8 digits on the 17 grey levels, uint8 (N, 1, 8, 8)."""
        if len(mnist) == 0:
            return torch.zeros((0, 1, DIGITS_SIZE, DIGITS_SIZE), dtype=torch.uint8)
        out = self._run(self.backward_net, mnist, MNIST_SIZE)
        return from_level_indices(torch.round(out * (DIGITS_LEVELS - 1)), DIGITS_LEVELS)

    def translate(self, inputs: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """``to_mnist`` (digits2mnist) or ``to_digits`` (mnist2digits); ``generator`` is unused (deterministic)."""
        del generator
        return self.to_mnist(inputs) if self.task == "digits2mnist" else self.to_digits(inputs)

    def translate_back(self, outputs: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """The other generator: the way back, for cycle consistency."""
        del generator
        return self.to_digits(outputs) if self.task == "digits2mnist" else self.to_mnist(outputs)


# ------------------------------------------------------------------------------------------- training
def build(hparams: dict, dataset: str) -> CycleGAN:
    """An untrained model (``dataset`` is the source domain, ``digits``)."""
    del dataset
    return CycleGAN(int(hparams["channels"]), str(hparams.get("direction", "digits2mnist")))


def fit(
    hparams: dict, data: TrainingData, *, generator: torch.Generator, log: TrainLog
) -> tuple[CycleGAN, dict]:
    """Train on the digits train split (``data``) and the mnist train split, unpaired."""
    mnist = load_training_data("mnist")
    a_train, b_train = to_unit(data.train), to_unit(mnist.train)
    a_val, b_val = data.val, mnist.val
    model = build(hparams, data.dataset)
    g, f = model.forward_net, model.backward_net
    d_a = discriminator(DIGITS_SIZE, int(hparams["disc_channels"]))
    d_b = discriminator(MNIST_SIZE, int(hparams["disc_channels"]))
    betas = tuple(hparams["betas"])
    opt_g = torch.optim.Adam([*g.parameters(), *f.parameters()], lr=hparams["lr"], betas=betas)
    opt_d = torch.optim.Adam([*d_a.parameters(), *d_b.parameters()], lr=hparams["lr"], betas=betas)
    lam, batch_size, steps = float(hparams["cycle_weight"]), int(hparams["batch_size"]), int(hparams["steps"])

    def lsgan(logits: torch.Tensor, real: bool) -> torch.Tensor:
        return ((logits - (1.0 if real else 0.0)) ** 2).mean()

    log.begin(steps)
    step = 0
    while step < steps:
        # The two domains differ in size: each step pairs a shuffled batch of one with a random one of the other.
        for idx_a in minibatches(len(a_train), batch_size, generator):
            idx_b = torch.randint(len(b_train), (batch_size,), generator=generator)
            a, b = a_train[idx_a], b_train[idx_b]
            g.train(), f.train()
            fake_b, fake_a = g(a), f(b)
            cycle = (f(fake_b) - a).abs().mean() + (g(fake_a) - b).abs().mean()
            adv = lsgan(d_b(fake_b), True) + lsgan(d_a(fake_a), True)
            opt_g.zero_grad()
            (adv + lam * cycle).backward()
            opt_g.step()
            loss_d = 0.5 * (
                lsgan(d_b(b), True) + lsgan(d_b(fake_b.detach()), False)
                + lsgan(d_a(a), True) + lsgan(d_a(fake_a.detach()), False)
            )  # fmt: skip
            opt_d.zero_grad()
            loss_d.backward()
            opt_d.step()
            step += 1
            log.step(step)
            if step % int(hparams["eval_every"]) == 0 or step == steps:
                log.record(step, adv=float(adv.detach()), cycle=float(cycle.detach()), d=float(loss_d.detach()),
                           **_held_out_cycle(model, a_val, b_val))  # fmt: skip
            if step >= steps:
                break
    model.eval()
    summary = {"steps": step, "kept": "last iterate", **_held_out_cycle(model, a_val, b_val)}
    if not all(math.isfinite(v) for v in summary.values() if isinstance(v, float)):
        raise RuntimeError("training diverged: non-finite cycle error")
    return model, summary


def _held_out_cycle(model: CycleGAN, a_val: torch.Tensor, b_val: torch.Tensor) -> dict[str, float]:
    """Mean |F(G(a)) - a| and |G(F(b)) - b| on held-out uint8 images, in grey levels (0-255)."""
    aba = model.to_digits(model.to_mnist(a_val)).to(torch.float32)
    bab = model.to_mnist(model.to_digits(b_val)).to(torch.float32)
    return {
        "val_cycle_digits": float((aba - a_val.to(torch.float32)).abs().mean()),
        "val_cycle_mnist": float((bab - b_val.to(torch.float32)).abs().mean()),
    }
