"""Annealed importance sampling over the latent z of a decoder model (Wu et al., 2017).

For one image x, the intermediate distributions run from the prior to the posterior,

    p_t(z | x) ∝ p(z) p(x | z)^β_t,     0 = β_0 < β_1 < ... < β_T = 1   (sigmoidal schedule),

each chain starts from z ~ p(z) = N(0, I), adds (β_t - β_(t-1)) log p(x | z) to its log weight
and then takes one Hamiltonian Monte Carlo transition that leaves p_t invariant (``leapfrog``
leapfrog steps; each chain's step size grows by 2% while its recent acceptance rate is above the
target 0.65 and shrinks by 2% while below). The log of the mean weight over chains estimates
log p(x): unbiased in p(x), so a stochastic LOWER bound on log p(x) that tightens as T grows.

Examples are processed in blocks of ``block_size``, each block as one batch of
block x chains latents. Random numbers come from one CPU generator seeded by ``seed`` (the same
draws on any device). With ``checkpoint`` the state is saved every ``checkpoint_every`` steps
and at each block's end, and a rerun with the same settings and data resumes from it.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from gen_eval.errors import GenEvalError
from gen_eval.likelihood.annealing import LikelihoodEstimate, log_mean_exp, mean_and_stderr, sigmoid_schedule
from gen_eval.progress import progress_task

#: log p(x | z) per row for a batch x (B, ...) and latents z (B, latent_dim); differentiable in z.
LogLikelihood = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]

LOG_2PI = math.log(2 * math.pi)


@dataclass(frozen=True)
class HMCSettings:
    """How each annealing step moves the chains.

    Attributes
    ----------
    leapfrog : int
        Leapfrog steps per HMC proposal (Wu et al. use 10).
    step_size : float
        Initial leapfrog step size, adapted per chain afterwards. It starts at the scale of the
        prior: starting small (0.05) left the chains behind the narrowing posterior early on, and
        AIS on probabilistic PCA about 0.07 nats low at 1,000 steps (0.02 from 0.2).
    target_acceptance : float
        Acceptance rate the step size is steered towards (0.65 is optimal for HMC in high dimension).
    adapt : float
        Relative change of a chain's step size per step (up while accepting more than the target).
    """

    leapfrog: int = 10
    step_size: float = 0.2
    target_acceptance: float = 0.65
    adapt: float = 0.02


def _log_prior(z: torch.Tensor) -> torch.Tensor:
    return -0.5 * (z.pow(2) + LOG_2PI).sum(-1).to(torch.float64)


def _likelihood_and_grad(log_lik: LogLikelihood, x: torch.Tensor, z: torch.Tensor):
    """log p(x | z) per row (float64, detached) and its gradient in z.

    A model's ``log_likelihood_given_latent`` may come with a ``log_likelihood_and_grad_given_latent``
    on the same model (the shipped VAE writes its decoder's gradient out by hand, cheaper than
    autograd on a tiny MLP); otherwise autograd differentiates ``log_lik``.
    """
    owner = getattr(log_lik, "__self__", None)
    if getattr(log_lik, "__name__", None) == "log_likelihood_given_latent":
        both = getattr(owner, "log_likelihood_and_grad_given_latent", None)
        if callable(both):
            value, grad = both(x, z)
            return value.detach().to(torch.float64), grad.detach().to(z.dtype)
    with torch.enable_grad():
        z = z.detach().requires_grad_(True)
        value = log_lik(x, z)
        (grad,) = torch.autograd.grad(value.sum(), z)
    return value.detach().to(torch.float64), grad.detach()


class Annealer:
    """The state of one batch of chains being annealed along ``betas`` (either direction).

    ``log_w`` accumulates sum_t (β_t - β_(t-1)) log p(x | z_(t-1)): forward (β rising) it is the
    log importance weight of p(x); reverse (β falling, started from exact posterior samples) it
    is the log weight of 1 / p(x), whose negated log-mean-exp is a stochastic UPPER bound.
    """

    def __init__(
        self,
        log_lik: LogLikelihood,
        x: torch.Tensor,
        z: torch.Tensor,
        betas: torch.Tensor,
        hmc: HMCSettings,
        generator: torch.Generator,
    ) -> None:
        self.log_lik, self.x, self.betas, self.hmc, self.generator = log_lik, x, betas, hmc, generator
        self.z = z.detach().clone()
        self.t = 0
        self.log_w = torch.zeros(len(z), dtype=torch.float64, device=z.device)
        self.step_size = torch.full((len(z), 1), hmc.step_size, dtype=z.dtype, device=z.device)
        self.acceptance = torch.full((len(z),), hmc.target_acceptance, dtype=torch.float64, device=z.device)
        self.accepted_total = 0.0
        self._lik, self._grad = _likelihood_and_grad(log_lik, x, self.z)

    def state(self) -> dict[str, Any]:
        """What a checkpoint needs to continue exactly where this stopped."""
        keys = ("z", "t", "log_w", "step_size", "acceptance", "accepted_total")
        return {**{k: getattr(self, k) for k in keys}, "rng": self.generator.get_state()}

    def restore(self, state: dict[str, Any]) -> None:
        for key in ("z", "t", "log_w", "step_size", "acceptance", "accepted_total"):
            setattr(self, key, state[key])
        self.generator.set_state(state["rng"])
        self._lik, self._grad = _likelihood_and_grad(self.log_lik, self.x, self.z)

    @property
    def done(self) -> bool:
        return self.t >= len(self.betas) - 1

    def _normal(self, shape: torch.Size) -> torch.Tensor:
        return torch.randn(shape, generator=self.generator).to(self.z.device, self.z.dtype)

    def step(self) -> None:
        """One annealing step: the weight update at β_t, then one HMC transition targeting p_(t+1)."""
        before, beta = float(self.betas[self.t]), float(self.betas[self.t + 1])
        self.log_w += (beta - before) * self._lik
        self.t += 1
        if beta == 0:  # the prior itself (the last reverse step): nothing is left to move
            return
        eps = self.step_size
        z, lik, grad = self.z, self._lik, self._grad

        def energy(z_: torch.Tensor, lik_: torch.Tensor) -> torch.Tensor:  # -log p_t up to a constant
            return -_log_prior(z_) - beta * lik_

        momentum = self._normal(z.shape)
        start = energy(z, lik) + 0.5 * momentum.pow(2).sum(-1).to(torch.float64)
        # Leapfrog on U(z) = -log p(z) - β log p(x|z): dU/dz = z - β ∇ log p(x|z).
        p = momentum - 0.5 * eps * (z - beta * grad)
        new_z = z
        for i in range(self.hmc.leapfrog):
            new_z = new_z + eps * p
            new_lik, new_grad = _likelihood_and_grad(self.log_lik, self.x, new_z)
            force = new_z - beta * new_grad
            p = p - (eps if i < self.hmc.leapfrog - 1 else 0.5 * eps) * force
        end = energy(new_z, new_lik) + 0.5 * p.pow(2).sum(-1).to(torch.float64)
        log_accept = (start - end).clamp(max=0)
        uniform = torch.rand(len(z), generator=self.generator, dtype=torch.float64).to(z.device)
        accept = (uniform.log() < log_accept) & torch.isfinite(end)
        keep = accept.unsqueeze(1)
        self.z = torch.where(keep, new_z, z)
        self._lik = torch.where(accept, new_lik, lik)
        self._grad = torch.where(keep, new_grad, grad)
        # Each chain steers its own step size: a recent acceptance above target means steps can grow.
        self.acceptance = 0.9 * self.acceptance + 0.1 * accept.to(torch.float64)
        grow = (self.acceptance > self.hmc.target_acceptance).unsqueeze(1)
        self.step_size = (eps * torch.where(grow, 1 + self.hmc.adapt, 1 - self.hmc.adapt)).clamp(1e-4, 1.0)
        self.accepted_total += float(accept.to(torch.float64).mean())

    @property
    def mean_acceptance(self) -> float:
        steps = sum(1 for b in self.betas[1 : self.t + 1] if float(b) != 0)
        return self.accepted_total / steps if steps else math.nan


def _settings_key(x: torch.Tensor, settings: dict[str, Any]) -> str:
    """A fingerprint of the data and the settings: a checkpoint is only resumed for the same run."""
    digest = hashlib.sha256(repr(sorted(settings.items())).encode())
    digest.update(x.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def _save(path: Path, state: dict[str, Any]) -> None:
    partial = path.with_name(path.name + ".partial")
    torch.save(state, partial)
    partial.replace(path)  # atomic: a run stopped while saving leaves the previous checkpoint whole


def ais(
    log_lik: LogLikelihood,
    x: torch.Tensor,
    latent_dim: int,
    *,
    steps: int = 1000,
    chains: int = 16,
    hmc: HMCSettings | None = None,
    seed: int = 0,
    block_size: int = 64,
    device: str | torch.device = "cpu",
    checkpoint: Path | None = None,
    checkpoint_every: int = 100,
    progress: bool = False,
    label: str | None = None,
) -> LikelihoodEstimate:
    """Forward AIS estimate of log p(x) for each example of ``x``, and their mean.

    Parameters
    ----------
    log_lik : callable
        ``log_lik(x_rows, z)``: log p(x | z) per row in nats, differentiable in z.
    x : torch.Tensor
        The examples (N, ...), in whatever form ``log_lik`` takes.
    latent_dim : int
        Dimension of z; the prior is N(0, I).
    steps, chains : int
        Annealing steps T and independent chains per example.
    hmc : HMCSettings, optional
        Leapfrog steps, initial step size, target acceptance (default: :class:`HMCSettings`).
    seed : int
        Seeds the one CPU generator all draws come from.
    block_size : int
        Examples annealed together (block_size x chains latents per batch).
    device : str or torch.device
        Where z and x live ("cuda" when the decoder is there).
    checkpoint : Path, optional
        File to save the state to and resume from (same settings and data only).
    checkpoint_every : int
        Steps between saves.
    progress : bool
        Show a bar of steps done.
    label : str, optional
        A caveat carried by the result (an assumed observation model).

    Returns
    -------
    LikelihoodEstimate
        Kind "estimate"; ``per_example`` and ``per_example_stderr`` (over chains) per example,
        ``stderr`` over the examples, ``details`` with steps, chains, acceptance and seconds.
    """
    if steps < 1 or chains < 1:
        raise GenEvalError(f"AIS needs at least 1 step and 1 chain, got steps={steps}, chains={chains}")
    hmc = hmc or HMCSettings()
    betas = sigmoid_schedule(steps)
    settings = {
        "steps": steps,
        "chains": chains,
        "hmc": hmc,
        "seed": seed,
        "block": block_size,
        "d": latent_dim,
    }
    key = _settings_key(x, settings)
    saved: dict[str, Any] = {"key": key, "blocks": [], "current": None, "seconds": 0.0}
    if checkpoint is not None and checkpoint.is_file():
        try:
            previous = torch.load(checkpoint, weights_only=False)
        except Exception as exc:
            raise GenEvalError(
                f"{checkpoint} is not an AIS checkpoint ({exc}); delete it to start over"
            ) from exc
        if previous.get("key") == key:
            saved = previous  # another run's checkpoint is overwritten instead
    generator = torch.Generator().manual_seed(seed)
    if saved.get("rng") is not None:  # resuming after a finished block: its draws continue
        generator.set_state(saved["rng"])
    blocks = list(torch.arange(len(x)).split(block_size))
    started = time.perf_counter() - saved["seconds"]
    with progress_task("AIS", steps * len(blocks), progress) as bar:
        bar.advance(steps * len(saved["blocks"]))
        for number in range(len(saved["blocks"]), len(blocks)):
            saved["blocks"].append(
                _run_block(log_lik, x, blocks[number], latent_dim, betas, chains, hmc, generator, device,
                           saved, checkpoint, checkpoint_every, started, bar)
            )  # fmt: skip
            saved["current"], saved["seconds"] = None, time.perf_counter() - started
            saved["rng"] = generator.get_state()
            if checkpoint is not None:
                _save(checkpoint, saved)
    log_w = torch.cat([b["log_w"] for b in saved["blocks"]], dim=1)  # (chains, N)
    per_example, per_example_se = log_mean_exp(log_w, dim=0)
    value, stderr = mean_and_stderr(per_example)
    acceptance = sum(b["acceptance"] * b["log_w"].shape[1] for b in saved["blocks"]) / len(x)
    details = {
        "steps": steps,
        "chains": chains,
        "leapfrog": hmc.leapfrog,
        "target_acceptance": hmc.target_acceptance,
        "acceptance": acceptance,
        "examples": len(x),
        "monte_carlo_stderr": float(per_example_se.pow(2).sum().sqrt() / len(x)) if chains > 1 else None,
        "seconds": time.perf_counter() - started,
        "seed": seed,
    }
    return LikelihoodEstimate(
        "ais", value, stderr, "estimate", per_example=per_example.cpu(),
        per_example_stderr=per_example_se.cpu(), label=label, details=details,
    )  # fmt: skip


def _run_block(
    log_lik,
    x,
    index,
    latent_dim,
    betas,
    chains,
    hmc,
    generator,
    device,
    saved,
    checkpoint,
    every,
    started,
    bar,
) -> dict[str, Any]:
    """Anneal one block of examples (chains x examples latents); returns its log weights (chains, n)."""
    rows = x[index].to(device)
    repeated = rows.repeat(chains, *[1] * (rows.dim() - 1))  # chain-major: row c * n + i
    z0 = torch.randn(len(repeated), latent_dim, generator=generator).to(device)
    annealer = Annealer(log_lik, repeated, z0, betas, hmc, generator)
    if saved["current"] is not None:
        annealer.restore(saved["current"])
        bar.advance(annealer.t)
    while not annealer.done:
        annealer.step()
        bar.advance(1)
        if checkpoint is not None and annealer.t % every == 0 and not annealer.done:
            saved["current"], saved["seconds"] = annealer.state(), time.perf_counter() - started
            _save(checkpoint, saved)
    return {"log_w": annealer.log_w.reshape(chains, len(rows)).cpu(), "acceptance": annealer.mean_acceptance}
