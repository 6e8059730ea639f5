"""GANs: a generator G(z) trained against a discriminator, with two losses.

* ``"nonsaturating"`` (Goodfellow et al., 2014): D is a classifier of real vs generated;
  G maximises log D(G(z)) rather than minimising log(1 - D(G(z))), which saturates early on.
* ``"wgan_gp"`` (Gulrajani et al., 2017): D is a critic whose score difference between real and
  generated estimates the Wasserstein-1 distance; a gradient penalty keeps it 1-Lipschitz. The
  critic takes ``n_critic`` steps per generator step and has no BatchNorm (the penalty is per
  example, batch statistics would couple the examples).

Digits (8x8) use small DCGAN-style conv nets (Radford et al., 2016), BatchNorm in G; the 2-D
mixtures use MLPs on coordinates divided by the data's standard deviation. The saved model holds
only what sampling needs: an exponential moving average (EMA) of the generator's weights, which
is smoother than the last iterate, with BatchNorm statistics recomputed for those weights. The
discriminator is discarded. The prior is N(0, I); ``decode(z)`` is G(z) and ``sample`` draws z.

There is no validation loss to stop on. For digits, every ``eval_every`` steps the EMA generator's
samples are scored by FID against the validation split (features of the digits classifier) and
the best snapshot is kept; the 2-D models train a fixed number of steps.
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn

from reference_models.common import EarlyStopping, TrainingData, TrainLog, minibatches, to_unit

DEFAULTS = {
    "loss": "nonsaturating",  # or "wgan_gp"
    "latent_dim": 32,
    "channels": 32,  # width of the image networks
    "hidden": 128,  # width of the 2-D MLPs (3 hidden layers)
    "n_critic": 5,  # critic steps per generator step (WGAN-GP only; the GAN alternates 1:1)
    "ema_decay": 0.999,
    "eval_every": 500,  # digits: steps between validation FIDs
    "eval_samples": 1000,
    "patience": 100,  # validation checks without improvement before stopping (100: never, in practice)
    "threads": 1,
    # None: taken from PRESETS below (the saved config records the value used).
    "steps": None,  # generator updates
    "batch_size": None,
    "lr": None,
    "betas": None,
    "penalty": None,  # gradient penalty weight: WGAN-GP's lambda, or R1's gamma for the GAN
}
# What differs between the 8x8 images and the 2-D points, and between the two losses.
# Images: Adam as in Radford et al. (2016) and (with a larger step) Gulrajani et al. (2017).
# Points: the mixtures' narrow modes need many, large steps; lambda = 0.1 as in Gulrajani et al.'s
# own toy-data code ("smaller lambda seems to help for toy tasks"); the GAN gets an R1 penalty
# (Mescheder et al., 2018), without which it drops modes of the ring within our step budget.
PRESETS = {
    ("image", "nonsaturating"): {"steps": 6000, "batch_size": 64, "lr": 2e-4, "betas": [0.5, 0.999], "penalty": 0.0},
    ("image", "wgan_gp"): {"steps": 2500, "batch_size": 64, "lr": 5e-4, "betas": [0.5, 0.9], "penalty": 10.0},
    ("points", "nonsaturating"): {"steps": 6000, "batch_size": 256, "lr": 1e-3, "betas": [0.5, 0.999], "penalty": 1.0},
    ("points", "wgan_gp"): {"steps": 2000, "batch_size": 256, "lr": 1e-3, "betas": [0.5, 0.9], "penalty": 0.1},
}  # fmt: skip


# ------------------------------------------------------------------------------------------- networks
def image_generator(latent_dim: int, channels: int) -> nn.Sequential:
    """z -> 4x4 feature map -> 8x8 (transposed conv) -> one channel in [0, 1]."""
    c = channels
    return nn.Sequential(
        nn.Linear(latent_dim, 2 * c * 4 * 4, bias=False),
        nn.Unflatten(1, (2 * c, 4, 4)),
        nn.BatchNorm2d(2 * c),
        nn.ReLU(),
        nn.ConvTranspose2d(2 * c, c, 4, stride=2, padding=1, bias=False),  # 4x4 -> 8x8
        nn.BatchNorm2d(c),
        nn.ReLU(),
        nn.Conv2d(c, 1, 3, padding=1),
        nn.Sigmoid(),
    )


def image_discriminator(channels: int, batchnorm: bool) -> nn.Sequential:
    """8x8 -> 4x4 -> 2x2 (strided convs, LeakyReLU) -> one score (a logit, or a critic value)."""
    c = channels
    norm = nn.BatchNorm2d(2 * c) if batchnorm else nn.Identity()
    return nn.Sequential(
        nn.Conv2d(1, c, 4, stride=2, padding=1),
        nn.LeakyReLU(0.2),
        nn.Conv2d(c, 2 * c, 4, stride=2, padding=1),
        norm,
        nn.LeakyReLU(0.2),
        nn.Flatten(),
        nn.Linear(2 * c * 2 * 2, 1),
    )


def mlp(inputs: int, hidden: int, outputs: int) -> nn.Sequential:
    """Three hidden ReLU layers: the generator and discriminator of the 2-D mixtures."""
    return nn.Sequential(
        nn.Linear(inputs, hidden),
        nn.ReLU(),
        nn.Linear(hidden, hidden),
        nn.ReLU(),
        nn.Linear(hidden, hidden),
        nn.ReLU(),
        nn.Linear(hidden, outputs),
    )


class GAN(nn.Module):
    """A trained generator with the sampling protocol: ``sample``, ``decode``, ``latent_dim``."""

    def __init__(self, generator: nn.Module, latent_dim: int):
        super().__init__()
        self.generator, self.latent_dim = generator, latent_dim
        # The networks work on data divided by ``scale`` (1 for images; the data's standard
        # deviation for the 2-D mixtures, so that both nets see inputs of order one).
        self.register_buffer("scale", torch.tensor(1.0))

    @torch.no_grad()
    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Latents (N, latent_dim) -> images (N, 1, 8, 8) in [0, 1], or points (N, 2)."""
        return self.generator(z.to(torch.float32)) * self.scale

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """``n`` samples G(z), z ~ N(0, I) drawn from ``generator``."""
        return self.decode(torch.randn(n, self.latent_dim, generator=generator))


def build(hparams: dict, dataset: str) -> GAN:
    """The generator alone (what the checkpoint holds)."""
    if dataset == "digits":
        return GAN(image_generator(hparams["latent_dim"], hparams["channels"]), hparams["latent_dim"])
    if dataset in ("ring8", "grid25"):
        return GAN(mlp(hparams["latent_dim"], hparams["hidden"], 2), hparams["latent_dim"])
    raise ValueError(f"no GAN architecture for dataset {dataset!r}")


def build_discriminator(hparams: dict, dataset: str) -> nn.Module:
    if dataset == "digits":
        return image_discriminator(hparams["channels"], batchnorm=hparams["loss"] == "nonsaturating")
    return mlp(2, hparams["hidden"], 1)


# --------------------------------------------------------------------------------------------- losses
def discriminator_loss(
    loss: str,
    d: nn.Module,
    real: torch.Tensor,
    fake: torch.Tensor,
    penalty: float,
    generator: torch.Generator,
) -> torch.Tensor:
    """The discriminator's (or critic's) loss on one batch, gradient penalty included."""
    if loss == "nonsaturating":
        # -log sigmoid(D(real)) - log(1 - sigmoid(D(fake))), written with softplus for stability.
        # R1 penalises |grad D|^2 on real data: D stays smooth where the data are.
        real = real.requires_grad_(penalty > 0)
        score = d(real)
        total = F.softplus(-score).mean() + F.softplus(d(fake)).mean()
        if penalty > 0:
            (grad,) = torch.autograd.grad(score.sum(), real, create_graph=True)
            total = total + penalty / 2 * grad.pow(2).flatten(1).sum(1).mean()
        return total
    # WGAN-GP: the critic maximises D(real) - D(fake); the penalty pushes |grad D| to 1 on
    # random points between real and generated samples.
    eps = torch.rand(len(real), *[1] * (real.dim() - 1), generator=generator)
    between = (eps * real + (1 - eps) * fake).requires_grad_(True)
    (grad,) = torch.autograd.grad(d(between).sum(), between, create_graph=True)
    gp = (grad.flatten(1).norm(dim=1) - 1).pow(2).mean()
    return d(fake).mean() - d(real).mean() + penalty * gp


def generator_loss(loss: str, d: nn.Module, fake: torch.Tensor) -> torch.Tensor:
    if loss == "nonsaturating":
        return F.softplus(-d(fake)).mean()  # -log sigmoid(D(G(z)))
    return -d(fake).mean()


# ------------------------------------------------------------------------------------------- training
def _real_batches(data: torch.Tensor, batch_size: int, generator: torch.Generator):
    """Endless shuffled minibatches, epoch after epoch."""
    while True:
        for idx in minibatches(len(data), batch_size, generator):
            yield data[idx]


@torch.no_grad()
def _update_ema(ema: nn.Module, model: nn.Module, decay: float, step: int) -> None:
    # Warm-up (as TensorFlow's ExponentialMovingAverage): early on the average would still be
    # mostly the random initialisation, so the effective decay grows from 0.1 towards ``decay``.
    decay = min(decay, (1 + step) / (10 + step))
    for e, p in zip(ema.parameters(), model.parameters(), strict=True):
        e.lerp_(p, 1 - decay)


@torch.no_grad()
def _recalibrate_batchnorm(
    model: GAN, generator: torch.Generator, batches: int = 20, size: int = 256
) -> None:
    """Recompute BatchNorm running statistics for the EMA weights (the running averages gathered
    during training belong to the raw weights), as a plain average over fresh batches."""
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not norms:
        return
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # cumulative average
    model.train()
    for _ in range(batches):
        model.decode(torch.randn(size, model.latent_dim, generator=generator))
    model.eval()
    for m in norms:
        m.momentum = 0.1


class ValidationFID:
    """FID between generated digits and the validation split, in the digits classifier's features."""

    def __init__(self, val: torch.Tensor):
        from gen_eval.features.digits import load_digits_net

        self.net = load_digits_net()
        self.mean, self.cov = self._moments(to_unit(val))

    @torch.no_grad()
    def _moments(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features = self.net(images)[0].to(torch.float64)
        return features.mean(0), torch.cov(features.T)

    def __call__(self, images: torch.Tensor) -> float:
        from gen_eval.metrics.fid import frechet_distance

        return frechet_distance(*self._moments(images), self.mean, self.cov)


def fit(hparams: dict, data: TrainingData, *, generator: torch.Generator, log: TrainLog) -> tuple[GAN, dict]:
    # Fill in the presets in place, so that the saved config shows the values used.
    loss = hparams["loss"]
    for key, value in PRESETS["image" if data.is_image else "points", loss].items():
        if hparams[key] is None:
            hparams[key] = value
    model = build(hparams, data.dataset)
    if not data.is_image:
        model.scale.fill_(float(data.train.std()))
    g = model.generator
    d = build_discriminator(hparams, data.dataset)
    ema = copy.deepcopy(model)  # what gets saved
    ema.eval()
    opt_g = torch.optim.Adam(g.parameters(), lr=hparams["lr"], betas=tuple(hparams["betas"]))
    opt_d = torch.optim.Adam(d.parameters(), lr=hparams["lr"], betas=tuple(hparams["betas"]))
    # Learning rates fall linearly to 0 (as in Gulrajani et al.'s CIFAR code): late, small steps
    # sharpen the samples, which matters for the narrow modes of the 2-D mixtures.
    decay = [torch.optim.lr_scheduler.LambdaLR(o, lambda i: 1 - i / hparams["steps"]) for o in (opt_g, opt_d)]
    train = to_unit(data.train) if data.is_image else data.train / model.scale
    real_batches = _real_batches(train, hparams["batch_size"], generator)
    d_steps = hparams["n_critic"] if loss == "wgan_gp" else 1
    validate = ValidationFID(data.val) if data.dataset == "digits" else None
    best = EarlyStopping(ema, patience=hparams["patience"])
    steps, batch, dim = hparams["steps"], hparams["batch_size"], hparams["latent_dim"]

    def noise() -> torch.Tensor:
        return torch.randn(batch, dim, generator=generator)

    log.begin(steps)
    for step in range(1, steps + 1):
        for _ in range(d_steps):
            with torch.no_grad():
                fake = g(noise())
            loss_d = discriminator_loss(loss, d, next(real_batches), fake, hparams["penalty"], generator)
            opt_d.zero_grad(set_to_none=True)
            loss_d.backward()
            opt_d.step()
        loss_g = generator_loss(loss, d, g(noise()))
        opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        opt_g.step()
        for scheduler in decay:
            scheduler.step()
        _update_ema(ema, model, hparams["ema_decay"], step)
        log.step(step)
        if step % 100 == 0 or step == steps:
            row, stop = {"loss_d": loss_d.item(), "loss_g": loss_g.item()}, False
            if validate is not None and (step % hparams["eval_every"] == 0 or step == steps):
                _recalibrate_batchnorm(ema, generator)
                row["val_fid"] = validate(ema.sample(hparams["eval_samples"], generator))
                stop = best.check(row["val_fid"], step)
            log.record(step, **row)
            if stop:
                break
    if validate is None:
        _recalibrate_batchnorm(ema, generator)
        return ema, {"steps": step}
    best.restore()
    return ema, {"best_step": best.best_step, "val_fid": round(best.best, 3), "steps": step}
