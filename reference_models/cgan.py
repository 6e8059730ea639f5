"""Conditional DCGAN on mnist: the label goes into the generator and into a projection discriminator.

The generator G(z, y) takes the noise z ~ N(0, I) concatenated with the one-hot label y (Mirza &
Osindero, 2014) and upsamples 7x7 -> 14x14 -> 28x28 with transposed convolutions (Radford et
al., 2016). The discriminator is a PROJECTION discriminator (Miyato & Koyama, 2018):

    D(x, y) = psi(phi(x)) + <embed(y), phi(x)>

phi is a small conv net, psi a linear score, embed a learnt vector per class. The inner product
lets D judge "is this a real image OF CLASS y", so a generator that draws a good 3 when a 7 was
asked for is caught; concatenating y to D's input does the same job less well in the authors'
experiments. Each discriminator step scores a real batch with its labels and a generated batch
asked for those same labels, so G is trained on the data's class frequencies (balanced here).

Losses and the generator's exponential moving average (EMA) are ``gan.py``'s; the BatchNorm
statistics of the EMA weights are recomputed as there, over balanced classes. As there, only the EMA generator is saved; training runs a fixed
number of steps and keeps the last EMA (no validation FID: the point is a working conditional
model in a few CPU minutes, scored afterwards by gen-eval itself).

``ignore_label: True`` makes the deliberately FAULTY model: G gets a zero vector instead of the
one-hot and D has no projection term, so it is an unconditional GAN that still claims
``num_classes = 10`` and accepts ``labels``: conditional accuracy must find it at chance.
"""

from __future__ import annotations

import copy
import functools

import torch
from torch import nn
from torch.nn import functional as F

from reference_models.common import TrainingData, TrainLog, minibatches, to_unit
from reference_models.gan import _update_ema, discriminator_loss, generator_loss

DEFAULTS = {
    "loss": "nonsaturating",  # gan.py's losses: "nonsaturating" or "wgan_gp"
    "latent_dim": 32,
    "channels": 16,  # width of both networks (32 trains 2.5x slower)
    "steps": 4000,  # generator updates
    "batch_size": 64,
    "lr": 2e-4,
    "betas": [0.5, 0.999],  # Radford et al. (2016)
    "penalty": 0.0,  # R1 gamma (gan.py); 0 = off
    "ema_decay": 0.995,  # gan.py uses 0.999 over 6,000 steps; a shorter run needs a shorter average
    "ignore_label": False,  # True: the faulty, label-blind model
    "threads": 1,
}
NUM_CLASSES = 10


class ConditionalGenerator(nn.Module):
    """(z, y) -> 7x7 -> 14x14 -> 28x28 image in [0, 1]."""

    def __init__(self, latent_dim: int, channels: int, ignore_label: bool):
        super().__init__()
        c, self.ignore_label = channels, ignore_label
        self.net = nn.Sequential(
            nn.Linear(latent_dim + NUM_CLASSES, 2 * c * 7 * 7, bias=False),
            nn.Unflatten(1, (2 * c, 7, 7)),
            nn.BatchNorm2d(2 * c),
            nn.ReLU(),
            nn.ConvTranspose2d(2 * c, c, 4, stride=2, padding=1, bias=False),  # 7x7 -> 14x14
            nn.BatchNorm2d(c),
            nn.ReLU(),
            nn.ConvTranspose2d(c, 1, 4, stride=2, padding=1),  # 14x14 -> 28x28
            nn.Sigmoid(),
        )

    def forward(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        one_hot = F.one_hot(labels, NUM_CLASSES).to(z.dtype)
        if self.ignore_label:  # the fault: the label never reaches the network
            one_hot = torch.zeros_like(one_hot)
        return self.net(torch.cat([z, one_hot], 1))


class ProjectionDiscriminator(nn.Module):
    """28x28 -> 14x14 -> 7x7 (strided convs, LeakyReLU) -> features phi; score psi(phi) + <embed(y), phi>."""

    def __init__(self, channels: int, ignore_label: bool, width: int = 128):
        super().__init__()
        c = channels
        self.phi = nn.Sequential(
            nn.Conv2d(1, c, 4, stride=2, padding=1),
            nn.LeakyReLU(0.2),
            nn.Conv2d(c, 2 * c, 4, stride=2, padding=1),
            nn.LeakyReLU(0.2),
            nn.Flatten(),
            nn.Linear(2 * c * 7 * 7, width),
            nn.LeakyReLU(0.2),
        )
        self.psi = nn.Linear(width, 1)
        self.embed = None if ignore_label else nn.Embedding(NUM_CLASSES, width)

    def forward(self, x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        h = self.phi(x)
        score = self.psi(h)
        if self.embed is not None:
            score = score + (self.embed(labels) * h).sum(1, keepdim=True)
        return score


class ConditionalGAN(nn.Module):
    """The saved EMA generator with the sampling protocol: ``sample(n, generator, labels)``.

    ``decode_given_label(z, labels)`` is G itself; there is no label-free ``decode``, so the
    unconditional latent tools do not interpolate through a class they would have to invent.
    """

    num_classes = NUM_CLASSES

    def __init__(self, latent_dim: int, channels: int, ignore_label: bool):
        super().__init__()
        self.latent_dim = latent_dim
        self.generator = ConditionalGenerator(latent_dim, channels, ignore_label)

    @torch.no_grad()
    def decode_given_label(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Latents (N, latent_dim) and classes (N,) -> uint8 images (N, 1, 28, 28)."""
        labels = torch.as_tensor(labels, dtype=torch.int64)
        if labels.shape != (len(z),) or bool(((labels < 0) | (labels >= NUM_CLASSES)).any()):
            raise ValueError(f"labels must be {len(z)} class indices in 0..{NUM_CLASSES - 1}")
        images = self.generator(z.to(torch.float32), labels)
        return torch.round(images * 255).to(torch.uint8)

    def sample(
        self, n: int, generator: torch.Generator | None = None, labels: torch.Tensor | None = None
    ) -> torch.Tensor:
        """``n`` images G(z, y), z ~ N(0, I); ``labels`` (int64 (n,)) or classes drawn uniformly first."""
        if labels is None:
            labels = torch.randint(NUM_CLASSES, (n,), generator=generator)
        return self.decode_given_label(torch.randn(n, self.latent_dim, generator=generator), labels)


@torch.no_grad()
def recalibrate_batchnorm(model: ConditionalGAN, generator: torch.Generator, batches: int = 20) -> None:
    """BatchNorm statistics for the EMA weights, as ``gan.py``'s, over balanced classes (i % 10)."""
    norms = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # a plain cumulative average
    model.train()
    for _ in range(batches):
        model.generator(
            torch.randn(256, model.latent_dim, generator=generator), torch.arange(256) % NUM_CLASSES
        )
    model.eval()
    for m in norms:
        m.momentum = 0.1


def build(hparams: dict, dataset: str) -> ConditionalGAN:
    """The generator alone (what the checkpoint holds)."""
    if dataset != "mnist":
        raise ValueError(f"the conditional GAN is built for mnist, not {dataset!r}")
    return ConditionalGAN(hparams["latent_dim"], hparams["channels"], bool(hparams["ignore_label"]))


def fit(
    hparams: dict, data: TrainingData, *, generator: torch.Generator, log: TrainLog
) -> tuple[ConditionalGAN, dict]:
    model = build(hparams, data.dataset)
    g = model.generator
    d = ProjectionDiscriminator(hparams["channels"], bool(hparams["ignore_label"]))
    ema = copy.deepcopy(model)  # what gets saved
    ema.eval()
    betas = tuple(hparams["betas"])
    opt_g = torch.optim.Adam(g.parameters(), lr=hparams["lr"], betas=betas)
    opt_d = torch.optim.Adam(d.parameters(), lr=hparams["lr"], betas=betas)
    train, train_labels = to_unit(data.train), data.train_labels.to(torch.int64)
    steps, batch, dim, loss = hparams["steps"], hparams["batch_size"], hparams["latent_dim"], hparams["loss"]

    def real_batches():  # endless shuffled (images, labels) minibatches
        while True:
            for idx in minibatches(len(train), batch, generator):
                yield train[idx], train_labels[idx]

    batches = real_batches()
    log.begin(steps)
    for step in range(1, steps + 1):
        real, labels = next(batches)
        d_given_labels = functools.partial(d, labels=labels)  # gan.py's losses call d(x)
        with torch.no_grad():
            fake = g(torch.randn(batch, dim, generator=generator), labels)
        loss_d = discriminator_loss(loss, d_given_labels, real, fake, hparams["penalty"], generator)
        opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        opt_d.step()
        loss_g = generator_loss(loss, d_given_labels, g(torch.randn(batch, dim, generator=generator), labels))
        opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        opt_g.step()
        _update_ema(ema, model, hparams["ema_decay"], step)
        log.step(step)
        if step % 100 == 0 or step == steps:
            log.record(step, loss_d=loss_d.item(), loss_g=loss_g.item())
    recalibrate_batchnorm(ema, generator)
    return ema, {"steps": steps}
