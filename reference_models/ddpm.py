"""Diffusion: a DDPM (Ho et al. 2020) with a small U-Net, on the 17-level digits.

Forward process. Pixels are scaled to [-1, 1] (level k -> 2k/16 - 1) and noised in T steps,
q(x_t | x_{t-1}) = N(sqrt(1 - beta_t) x_{t-1}, beta_t I), so that in closed form
q(x_t | x_0) = N(sqrt(abar_t) x_0, (1 - abar_t) I) with abar_t = prod_{s<=t} (1 - beta_s).
T is small (100) and the schedule is the cosine one of Nichol & Dhariwal: its first step
already has noise std 0.025, a fraction of the half-width 1/16 of a grey-level bin.

Reverse process. p(x_{t-1} | x_t) = N(mu(x_t, t), sigma_t^2 I) with fixed variances sigma_t^2 =
beta_t (Ho et al.'s other choice, the posterior's beta-tilde_t, gives the same samples here but
a looser ELBO). The network predicts the noise eps in x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps;
that gives a guess of x_0 (clipped to [-1, 1]), and mu is the mean of the true posterior
q(x_{t-1} | x_t, x_0) at that guess. Training is the "simple" loss: MSE between eps and its
prediction, t uniform. The weights shipped are an exponential moving average of the trained ones.
The last step p(x_0 | x_1) is a Gaussian discretised over the 17 levels (outer bins reach
to +-inf), so samples land on the data's grid and the likelihood is of the levels themselves.

Likelihood. The ELBO on log P(x) (``likelihood = "elbo"``):
    log P(x_0) >= -[ KL(q(x_T|x_0) || N(0, I))                                (L_T, ~0)
                    + sum_{t=2..T} KL(q(x_{t-1}|x_t, x_0) || p(x_{t-1}|x_t))   (L_{t-1})
                    - log p(x_0 | x_1) ]                                        (L_0)
with every term computed (x_t drawn once per t from the generator). The bound is loose, as usual
for DDPM (2.39 bits/dim on test, barely below independent pixels' 2.43): half of it comes from
t <= 5, where the noise is far smaller than a grey-level bin and the network, trained for
samples with t uniform, guesses x_0 less precisely than the bound would reward.
"""

from __future__ import annotations

import copy
import math

import torch
import torch.nn.functional as F
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
    "num_steps": 100,  # T, the diffusion steps
    "schedule": "cosine",  # or "linear" (Ho et al.'s 1e-4..0.02 at T = 1000, rescaled to T)
    # sigma_t^2 = beta_t, or "posterior" (beta-tilde_t): the same samples, but a looser ELBO (2.51 vs 2.39 bits/dim)
    "variance": "beta",
    "channels": [16, 32, 64],  # U-Net widths at 8x8, 4x4, 2x2 (multiples of 8, for GroupNorm)
    "dropout": 0.1,
    "steps": 6000,
    "batch_size": 64,
    "lr": 1e-3,
    "warmup": 200,
    "ema_decay": 0.999,
    "eval_every": 500,  # validation loss of the EMA weights, for early stopping
    "patience": 8,
    "threads": 1,
}


# ------------------------------------------------------------------------------------ noise schedule
def make_betas(kind: str, num_steps: int) -> torch.Tensor:
    """beta_1..beta_T (float64) of a ``"linear"`` or ``"cosine"`` schedule."""
    if kind == "linear":
        scale = 1000 / num_steps  # keeps abar_T ~ 0 for a small T
        return torch.linspace(scale * 1e-4, scale * 0.02, num_steps, dtype=torch.float64)
    if kind == "cosine":
        s = 0.008
        t = torch.arange(num_steps + 1, dtype=torch.float64) / num_steps
        abar = torch.cos((t + s) / (1 + s) * math.pi / 2) ** 2
        return (1 - abar[1:] / abar[:-1]).clamp(max=0.999)
    raise ValueError(f"unknown schedule {kind!r}; use 'linear' or 'cosine'")


def gaussian_kl(
    mean1: torch.Tensor, var1: torch.Tensor, mean2: torch.Tensor, var2: torch.Tensor
) -> torch.Tensor:
    """KL(N(mean1, var1) || N(mean2, var2)) per element, in nats."""
    return 0.5 * (torch.log(var2 / var1) + (var1 + (mean1 - mean2) ** 2) / var2 - 1)


def discretized_log_probs(mean: torch.Tensor, std: torch.Tensor, levels: int) -> torch.Tensor:
    """log P(level k), k = 0..levels-1, of N(mean, std^2) binned on the grid 2k/(levels-1) - 1.

    Bins have width 2/(levels-1); the outer two reach to -inf and +inf, so the probabilities sum
    to 1. Returns shape (*mean.shape, levels). Computed in log space (``log_ndtr``) and, for bins
    above the mean, by symmetry, so a bin many stds away keeps a finite log-probability.
    """
    half = 1.0 / (levels - 1)
    centres = torch.linspace(-1, 1, levels, dtype=mean.dtype, device=mean.device)
    lower = torch.cat([centres.new_tensor([-math.inf]), centres[1:] - half])
    upper = torch.cat([centres[:-1] + half, centres.new_tensor([math.inf])])
    a, b = (lower - mean[..., None]) / std[..., None], (upper - mean[..., None]) / std[..., None]
    # log(Phi(b) - Phi(a)), or the same mass as log(Phi(-a) - Phi(-b)) when the bin is above the mean.
    flip = a > 0
    hi, lo = torch.where(flip, -a, b), torch.where(flip, -b, a)
    log_hi, log_lo = torch.special.log_ndtr(hi), torch.special.log_ndtr(lo)
    return log_hi + torch.log1p(-torch.exp(log_lo - log_hi))


# --------------------------------------------------------------------------------------------- U-Net
def time_embedding(t: torch.Tensor, dim: int) -> torch.Tensor:
    """Sinusoidal embedding of the step t (as in the Transformer), shape (N, dim)."""
    freqs = torch.exp(-math.log(10_000) * torch.arange(dim // 2, device=t.device) / (dim // 2))
    angles = t.float()[:, None] * freqs[None]
    return torch.cat([angles.sin(), angles.cos()], dim=1)


class ResBlock(nn.Module):
    """GroupNorm -> SiLU -> conv, plus the time embedding, twice, with a skip connection."""

    def __init__(self, c_in: int, c_out: int, t_dim: int, dropout: float):
        super().__init__()
        self.norm1, self.conv1 = nn.GroupNorm(8, c_in), nn.Conv2d(c_in, c_out, 3, padding=1)
        self.time = nn.Linear(t_dim, c_out)
        self.norm2, self.conv2 = nn.GroupNorm(8, c_out), nn.Conv2d(c_out, c_out, 3, padding=1)
        self.dropout = nn.Dropout(dropout)
        self.skip = nn.Conv2d(c_in, c_out, 1) if c_in != c_out else nn.Identity()

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x))) + self.time(emb)[:, :, None, None]
        h = self.conv2(self.dropout(F.silu(self.norm2(h))))
        return h + self.skip(x)


class UNet(nn.Module):
    """eps(x_t, t) for 1x8x8 images: 8x8 -> 4x4 -> 2x2 and back, with skip connections.

    ``channels`` = (widths at 8x8, 4x4, 2x2): on a CPU the 8x8 level costs most, so it is the narrowest.
    """

    def __init__(self, channels: tuple[int, int, int], dropout: float, t_dim: int = 64):
        super().__init__()
        c8, c4, c2 = channels
        self.t_dim = t_dim
        self.time_mlp = nn.Sequential(nn.Linear(t_dim, t_dim), nn.SiLU(), nn.Linear(t_dim, t_dim))
        self.stem = nn.Conv2d(1, c8, 3, padding=1)
        self.down8 = ResBlock(c8, c8, t_dim, dropout)
        self.down4 = ResBlock(c8, c4, t_dim, dropout)
        self.mid = nn.ModuleList([ResBlock(c4, c2, t_dim, dropout), ResBlock(c2, c2, t_dim, dropout)])
        self.up4 = ResBlock(c2 + c4, c4, t_dim, dropout)
        self.up8 = ResBlock(c4 + c8, c8, t_dim, dropout)
        self.head = nn.Sequential(nn.GroupNorm(8, c8), nn.SiLU(), nn.Conv2d(c8, 1, 3, padding=1))
        nn.init.zeros_(self.head[-1].weight)  # start by predicting eps = 0
        nn.init.zeros_(self.head[-1].bias)

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        emb = self.time_mlp(time_embedding(t, self.t_dim))
        skip8 = self.down8(self.stem(x), emb)
        skip4 = self.down4(F.avg_pool2d(skip8, 2), emb)
        h = F.avg_pool2d(skip4, 2)
        for block in self.mid:
            h = block(h, emb)
        h = self.up4(torch.cat([F.interpolate(h, scale_factor=2.0), skip4], 1), emb)
        h = self.up8(torch.cat([F.interpolate(h, scale_factor=2.0), skip8], 1), emb)
        return self.head(h)


# --------------------------------------------------------------------------------------------- model
class DDPM(nn.Module):
    likelihood = "elbo"
    latent_dim = None

    def __init__(
        self, num_steps: int, schedule: str, variance: str, channels: tuple[int, int, int], dropout: float
    ):
        super().__init__()
        self.num_steps, self.levels = num_steps, 17
        self.net = UNet(tuple(channels), dropout)
        betas = make_betas(schedule, num_steps)
        abar = torch.cumprod(1 - betas, 0)
        abar_prev = torch.cat([abar.new_ones(1), abar[:-1]])
        # Index i holds step t = i + 1. posterior_var[0] = 0: q(x_0 | x_1, x_0) is a point mass.
        posterior_var = betas * (1 - abar_prev) / (1 - abar)
        # sigma_1^2 = beta_1 is the decoder's variance either way (beta-tilde_1 = 0).
        model_var = torch.cat([betas[:1], posterior_var[1:]]) if variance == "posterior" else betas.clone()
        for name, value in (("betas", betas), ("abar", abar), ("abar_prev", abar_prev),
                            ("posterior_var", posterior_var), ("model_var", model_var)):  # fmt: skip
            self.register_buffer(name, value)

    def q_sample(self, x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """x_t ~ q(x_t | x_0) = N(sqrt(abar_t) x_0, (1 - abar_t) I), for steps t (1-based, per example)."""
        abar = self.abar[t - 1].float()[:, None, None, None]
        return abar.sqrt() * x0 + (1 - abar).sqrt() * noise

    def posterior_mean(self, x0: torch.Tensor, xt: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """Mean of q(x_{t-1} | x_t, x_0) (its variance is ``posterior_var[t - 1]``)."""
        i = t - 1
        beta, abar, abar_prev = (
            v[i].to(xt.dtype)[:, None, None, None] for v in (self.betas, self.abar, self.abar_prev)
        )
        return (abar_prev.sqrt() * beta * x0 + (1 - beta).sqrt() * (1 - abar_prev) * xt) / (1 - abar)

    def predict_x0(self, xt: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """The network's guess of x_0 from x_t, clipped to the data range [-1, 1]."""
        abar = self.abar[t - 1].float()[:, None, None, None]
        eps = self.net(xt, t)
        return ((xt - (1 - abar).sqrt() * eps) / abar.sqrt()).clamp(-1, 1)

    def loss(self, x0: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """The simple loss: E_{t, eps} |eps - eps_theta(x_t, t)|^2."""
        t = torch.randint(1, self.num_steps + 1, (len(x0),), generator=generator)
        noise = torch.randn(x0.shape, generator=generator)
        return F.mse_loss(self.net(self.q_sample(x0, t, noise), t), noise)

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """Ancestral sampling x_T -> ... -> x_1, then the discretised decoder: uint8 (n, 1, 8, 8)."""
        x = torch.randn(n, 1, 8, 8, generator=generator)
        for step in range(self.num_steps, 0, -1):
            t = torch.full((n,), step, dtype=torch.long)
            mean = self.posterior_mean(self.predict_x0(x, t), x, t)
            x = mean + self.model_var[step - 1].float().sqrt() * torch.randn(x.shape, generator=generator)
        # Adding the decoder's noise and rounding to the nearest level samples the discretised Gaussian.
        k = torch.round((x + 1) * (self.levels - 1) / 2).clamp(0, self.levels - 1)
        return from_level_indices(k, self.levels)

    def prior_kl(self, x0: torch.Tensor) -> torch.Tensor:
        """L_T = KL(q(x_T | x_0) || N(0, I)) per example, in nats."""
        abar = self.abar[-1]
        kl = gaussian_kl(
            abar.sqrt() * x0, (1 - abar).expand_as(x0), torch.zeros_like(x0), torch.ones_like(x0)
        )
        return kl.flatten(1).sum(1)

    @torch.no_grad()
    def log_prob(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """The ELBO on log P(x) in nats per example (float64) of uint8 images; all T terms computed."""
        k = to_level_indices(x.cpu(), self.levels)
        x0 = (2 * k / (self.levels - 1) - 1).to(torch.float64)
        bound = -self.prior_kl(x0)
        for step in range(1, self.num_steps + 1):
            t = torch.full((len(x0),), step, dtype=torch.long)
            xt = self.q_sample(x0, t, torch.randn(x0.shape, generator=generator, dtype=torch.float64))
            x0_guess = self.predict_x0(xt.float(), t).double()
            if step == 1:  # L_0: the discretised decoder, mean = x0_guess (posterior mean at t = 1)
                std = self.model_var[0].sqrt().expand_as(x0)
                term = discretized_log_probs(x0_guess, std, self.levels).gather(-1, k[..., None]).squeeze(-1)
            else:  # L_{t-1}: KL between the true and the model's Gaussian for x_{t-1}
                q_mean, p_mean = self.posterior_mean(x0, xt, t), self.posterior_mean(x0_guess, xt, t)
                q_var, p_var = self.posterior_var[step - 1], self.model_var[step - 1]
                term = -gaussian_kl(q_mean, q_var.expand_as(q_mean), p_mean, p_var.expand_as(p_mean))
            bound = bound + term.flatten(1).sum(1)
        return bound


def build(hparams: dict, dataset: str) -> DDPM:
    return DDPM(*(hparams[key] for key in ("num_steps", "schedule", "variance", "channels", "dropout")))


# ------------------------------------------------------------------------------------------ training
def to_signed(x: torch.Tensor, levels: int = 17) -> torch.Tensor:
    """uint8 images -> float32 in [-1, 1], level k at 2k/(levels-1) - 1."""
    return 2 * to_level_indices(x, levels).float() / (levels - 1) - 1


@torch.no_grad()
def validation_loss(model: DDPM, x0: torch.Tensor, copies: int = 8) -> float:
    """The simple loss on the validation images, with fixed draws (t, eps) so checks compare."""
    fixed = torch.Generator().manual_seed(1)
    return float(torch.stack([model.loss(x0, fixed) for _ in range(copies)]).mean())


def fit(hparams: dict, data: TrainingData, *, generator: torch.Generator, log: TrainLog) -> tuple[DDPM, dict]:
    model = build(hparams, data.dataset)
    ema = copy.deepcopy(model).eval()  # the shipped weights: an exponential moving average
    optimiser = torch.optim.Adam(model.net.parameters(), lr=hparams["lr"])
    # Linear warm-up, then a constant rate (a cosine decay did worse, with the EMA doing the averaging).
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimiser, lambda i: min(1.0, (i + 1) / hparams["warmup"]))
    train, val = to_signed(data.train), to_signed(data.val)
    stopper = EarlyStopping(ema, patience=hparams["patience"])
    log.begin(hparams["steps"])
    step, running, stop = 0, [], False
    while not stop:
        for idx in minibatches(len(train), hparams["batch_size"], generator):
            model.train()
            loss = model.loss(train[idx], generator)
            optimiser.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimiser.step()
            scheduler.step()
            step += 1
            decay = min(hparams["ema_decay"], (1 + step) / (10 + step))  # short memory early on
            with torch.no_grad():
                for p_ema, p in zip(ema.net.parameters(), model.net.parameters(), strict=True):
                    p_ema.lerp_(p, 1 - decay)
            running.append(loss.item())
            log.step(step)
            if step % hparams["eval_every"] == 0 or step == hparams["steps"]:
                val_loss = validation_loss(ema, val)
                log.record(step, loss=sum(running) / len(running), val_loss=val_loss)
                running = []
                stop = stopper.check(val_loss, step) or step == hparams["steps"]
            if stop:
                break
    stopper.restore()
    return ema, {"val_loss": round(stopper.best, 5), "best_step": stopper.best_step, "steps_run": step}
