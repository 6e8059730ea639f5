"""Bidirectional Monte Carlo (Grosse, Ghahramani & Adams, 2015): AIS bracketed from both sides.

On data SIMULATED from the model, (z, x) with z ~ p(z) and x ~ p(x | z), the z is an exact sample
of the posterior p(z | x). Reverse AIS started from it, annealing β from 1 down to 0, gives
weights whose mean estimates 1 / p(x), so minus its log is a stochastic UPPER bound on log p(x);
forward AIS gives a stochastic LOWER bound. The gap between them bounds how far forward AIS with
this schedule is from the truth on such data, and so certifies the schedule (Wu et al., 2017
use it to choose the number of steps for real data). ``steps="auto"`` doubles the steps until the
gap is under a tolerance or a time budget is spent.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

import torch

from gen_eval.errors import GenEvalError
from gen_eval.likelihood.ais import Annealer, HMCSettings, LogLikelihood, ais
from gen_eval.likelihood.annealing import LikelihoodEstimate, log_mean_exp, mean_and_stderr, sigmoid_schedule
from gen_eval.progress import progress_task

#: (n, generator) -> (z (n, latent_dim), x (n, ...)) drawn from the model: z ~ p(z), x ~ p(x | z).
Simulator = Callable[[int, torch.Generator], tuple[torch.Tensor, torch.Tensor]]


def reverse_ais(
    log_lik: LogLikelihood,
    x: torch.Tensor,
    z: torch.Tensor,
    *,
    steps: int,
    chains: int,
    hmc: HMCSettings | None = None,
    seed: int = 0,
    device: str | torch.device = "cpu",
    progress: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Stochastic upper bounds on log p(x) per example, from exact posterior samples ``z``.

    Parameters
    ----------
    log_lik : callable
        log p(x | z) per row, differentiable in z.
    x, z : torch.Tensor
        Simulated examples (n, ...) and the latents that generated them (n, latent_dim).
    steps, chains : int
        Annealing steps and chains per example (every chain starts from the same exact sample).
    hmc : HMCSettings, optional
        The transitions (the same as the forward run's, for a fair bracket).
    seed : int
        Seeds the CPU generator.
    device : str or torch.device
        Where the chains run.
    progress : bool
        Show a bar.

    Returns
    -------
    (torch.Tensor, torch.Tensor)
        Upper values of log p(x) per example (float64) and their standard errors over chains.
    """
    hmc = hmc or HMCSettings()
    x, z = x.to(device), z.to(device)
    repeated_x = x.repeat(chains, *[1] * (x.dim() - 1))
    annealer = Annealer(
        log_lik, repeated_x, z.repeat(chains, 1), sigmoid_schedule(steps).flip(0), hmc,
        torch.Generator().manual_seed(seed),
    )  # fmt: skip
    with progress_task("reverse AIS", steps, progress) as bar:
        while not annealer.done:
            annealer.step()
            bar.advance(1)
    # The weights estimate 1 / p(x): the log of their mean, negated, is above log p(x) on average.
    inverse, stderr = log_mean_exp(annealer.log_w.reshape(chains, len(x)).cpu(), dim=0)
    return -inverse, stderr


def bdmc(
    log_lik: LogLikelihood,
    simulate: Simulator,
    latent_dim: int,
    *,
    num_examples: int = 32,
    steps: int | str = 1000,
    chains: int = 16,
    hmc: HMCSettings | None = None,
    seed: int = 0,
    device: str | torch.device = "cpu",
    tolerance: float = 1.0,
    time_budget: float = 300.0,
    max_steps: int = 64_000,
    progress: bool = False,
    label: str | None = None,
) -> LikelihoodEstimate:
    """The BDMC bracket [forward AIS, reverse AIS] of log p(x) on data simulated from the model.

    Parameters
    ----------
    log_lik : callable
        log p(x | z) per row, differentiable in z.
    simulate : callable
        ``simulate(n, generator)`` -> (z, x) from the model.
    latent_dim : int
        Dimension of z.
    num_examples : int
        Simulated examples.
    steps : int or "auto"
        Annealing steps; "auto" starts at 100 and doubles until the gap (nats per example) is
        below ``tolerance``, the next doubling would overrun ``time_budget`` seconds, or
        ``max_steps`` is reached.
    chains : int
        Chains per example, each way.
    hmc : HMCSettings, optional
        The transitions.
    seed : int
        Seeds the simulation and both runs.
    device : str or torch.device
        Where the chains run.
    tolerance, time_budget : float
        For ``steps="auto"``: the gap to reach (nats per example) and the seconds allowed.
    max_steps : int
        For ``steps="auto"``: the longest schedule tried.
    progress : bool
        Show bars.
    label : str, optional
        A caveat carried by the result.

    Returns
    -------
    LikelihoodEstimate
        Kind "bracket": ``lower`` (forward) and ``upper`` (reverse) mean log p(x) of the simulated
        examples; ``details["gap"]`` their difference and ``details["schedule"]`` every length tried.
    """
    if steps != "auto" and (not isinstance(steps, int) or steps < 1):
        raise GenEvalError(f"steps must be a positive integer or 'auto', got {steps!r}")
    z, x = simulate(num_examples, torch.Generator().manual_seed(seed))
    tried: list[dict[str, float]] = []
    started = time.perf_counter()
    length = 100 if steps == "auto" else int(steps)
    while True:
        began = time.perf_counter()
        forward = ais(log_lik, x, latent_dim, steps=length, chains=chains, hmc=hmc, seed=seed + 1,
                      device=device, progress=progress)  # fmt: skip
        upper, upper_se = reverse_ais(log_lik, x, z, steps=length, chains=chains, hmc=hmc, seed=seed + 2,
                                      device=device, progress=progress)  # fmt: skip
        took = time.perf_counter() - began
        gap = float(upper.mean()) - forward.value
        tried.append({"steps": length, "gap": gap, "seconds": took})
        spent = time.perf_counter() - started
        # Doubling the steps roughly doubles the time: stop before a run that cannot finish in budget.
        if steps != "auto" or gap < tolerance or spent + 2 * took > time_budget or 2 * length > max_steps:
            break
        length *= 2
    lower_value = forward.value
    upper_value, upper_stderr = mean_and_stderr(upper)
    details = {
        "steps": length,
        "chains": chains,
        "examples": num_examples,
        "gap": gap,
        "forward_stderr": forward.stderr,
        "forward_monte_carlo_stderr": forward.details["monte_carlo_stderr"],
        "reverse_stderr": upper_stderr,
        "reverse_monte_carlo_stderr": float(upper_se.pow(2).sum().sqrt() / len(upper))
        if chains > 1
        else None,
        "acceptance": forward.details["acceptance"],
        "schedule": tried,
        "tolerance": tolerance if steps == "auto" else None,
        "reached_tolerance": gap < tolerance if steps == "auto" else None,
        "data": "simulated from the model",
        "seconds": time.perf_counter() - started,
    }
    return LikelihoodEstimate(
        "bdmc", 0.5 * (lower_value + upper_value), math.hypot(forward.stderr, upper_stderr) / 2, "bracket",
        lower=lower_value, upper=upper_value, per_example=forward.per_example, label=label, details=details,
    )  # fmt: skip
