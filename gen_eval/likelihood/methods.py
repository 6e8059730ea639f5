"""Which likelihood methods a model allows, and running them: exact, ELBO, IWAE, AIS, BDMC.

``auto`` runs every method the model allows, cheapest first. The exact value comes from the
model's ``log_prob`` through :mod:`gen_eval.metrics.likelihood` (with its conventions: a
"dequantized" density becomes a bound on the discrete probability, "elbo"/"iwae" values are
bounds); ELBO and IWAE-k come from the model's own ``elbo``/``iwae``; AIS and BDMC anneal over z
with :mod:`gen_eval.likelihood.observation`'s p(x | z).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from gen_eval.errors import GenEvalError
from gen_eval.likelihood.ais import HMCSettings, ais
from gen_eval.likelihood.annealing import LikelihoodEstimate, mean_and_stderr
from gen_eval.likelihood.bdmc import bdmc
from gen_eval.likelihood.observation import Observation, can_anneal, observation_for
from gen_eval.metrics.likelihood import AIS_LOG_Z_CAVEAT, CONVENTIONS, _model_log_prob
from gen_eval.metrics.likelihood import KINDS as LOG_PROB_KINDS

#: Cheapest first: the order ``auto`` runs them in.
METHODS = ("exact", "elbo", "iwae", "ais", "bdmc")


@dataclass
class Settings:
    """How the sampling methods run (see ``gen-eval likelihood --help``)."""

    steps: int | str = 1000
    chains: int = 16
    iwae_k: int = 100
    leapfrog: int = 10
    seed: int = 0
    device: str = "cpu"
    sigma: float | None = None
    bdmc_examples: int = 32
    tolerance: float = 1.0
    time_budget: float = 300.0
    progress: bool = False
    checkpoint: Path | None = None


def data_levels(x: torch.Tensor, model: Any, given: int | None = None) -> int:
    """Grey levels L of uint8 data: ``given``, else the model's ``levels``, else the fewest of 2, 17
    (the digits) and 256 whose grid round(k * 255 / (L - 1)) holds every value of ``x``.

    A deterministic decoder has no levels of its own, and its discretised Gaussian needs the data's.
    """
    if given or getattr(model, "levels", None):
        return int(given or model.levels)
    if x.dtype != torch.uint8:
        return 256
    for levels in (2, 17):
        k = torch.round(x.to(torch.float64) * (levels - 1) / 255)
        if torch.equal(torch.round(k * 255 / (levels - 1)).to(torch.uint8), x):
            return levels
    return 256


def allowed(model: Any) -> list[str]:
    """The methods ``model`` allows, cheapest first."""
    out = []
    convention = getattr(model, "likelihood", "discrete")
    if callable(getattr(model, "log_prob", None)) and convention in ("discrete", "dequantized", "ais"):
        # a "dequantized" density gives a bound, "ais" (a large RBM's stored log Z) an estimate: the kind says so
        out.append("exact")
    if callable(getattr(model, "elbo", None)) or (
        convention == "elbo" and callable(getattr(model, "log_prob", None))
    ):
        out.append("elbo")  # a model whose log_prob is its ELBO (ddpm's variational bound) gives it so
    if callable(getattr(model, "iwae", None)) or (
        convention == "iwae" and callable(getattr(model, "log_prob", None))
    ):
        out.append("iwae")
    if can_anneal(model):
        out += ["ais", "bdmc"]
    return out


def _per_example(method: str, values: torch.Tensor, kind: str, **details: Any) -> LikelihoodEstimate:
    value, stderr = mean_and_stderr(values)
    return LikelihoodEstimate(method, value, stderr, kind, per_example=values, details=dict(details))  # type: ignore[arg-type]


def _exact(model: Any, x: torch.Tensor, settings: Settings, levels: int) -> LikelihoodEstimate:
    convention = getattr(model, "likelihood", "discrete")
    if convention not in CONVENTIONS:
        raise GenEvalError(
            f"{type(model).__name__}.likelihood is {convention!r}; use one of {', '.join(CONVENTIONS)}"
        )
    log_p = _model_log_prob(model, x.to(settings.device), torch.Generator().manual_seed(settings.seed))
    if convention == "dequantized":  # density on [0, 1)^D -> a lower bound on the discrete log P(x)
        log_p = log_p - math.prod(x.shape[1:]) * math.log(levels)
    kind = LOG_PROB_KINDS.get(convention, "bound")
    result = _per_example(
        "exact" if kind == "exact" else f"log_prob ({convention})", log_p, kind, convention=convention
    )
    result.label = AIS_LOG_Z_CAVEAT if convention == "ais" else None
    return result


def _elbo(model: Any, x: torch.Tensor, settings: Settings) -> LikelihoodEstimate:
    generator = torch.Generator().manual_seed(settings.seed)
    if callable(getattr(model, "elbo", None)):
        return _per_example("elbo", model.elbo(x, generator=generator).to(torch.float64).cpu(), "bound")
    # likelihood = "elbo": log_prob is the bound itself (a diffusion model's, one x_t draw per timestep)
    details: dict[str, Any] = {"convention": "elbo", "draws": 1}
    if isinstance(getattr(model, "num_steps", None), int):
        details["timesteps"] = model.num_steps
    return _per_example("elbo", _model_log_prob(model, x.to(settings.device), generator), "bound", **details)


def _iwae(model: Any, x: torch.Tensor, settings: Settings) -> LikelihoodEstimate:
    generator = torch.Generator().manual_seed(settings.seed)
    if callable(getattr(model, "iwae", None)):
        values = model.iwae(x, settings.iwae_k, generator=generator)
        return _per_example(
            f"iwae-{settings.iwae_k}", values.to(torch.float64).cpu(), "bound", k=settings.iwae_k
        )
    return _per_example("iwae", _model_log_prob(model, x, generator), "bound")


def run(
    method: str,
    model: Any,
    x: torch.Tensor,
    settings: Settings,
    *,
    levels: int,
    validation: torch.Tensor | None = None,
    observation: Observation | None = None,
) -> LikelihoodEstimate:
    """One method's estimate of log p(x) for the examples ``x``.

    Parameters
    ----------
    method : {"exact", "elbo", "iwae", "ais", "bdmc"}
    model : object
        A generator following :mod:`reference_models.protocol`.
    x : torch.Tensor
        The examples (uint8 images or float vectors).
    settings : Settings
        Steps, chains, seed...
    levels : int
        Grey levels of image data (for a "dequantized" density and the discretised Gaussian).
    validation : torch.Tensor, optional
        Where to choose a deterministic decoder's observation noise.
    observation : Observation, optional
        p(x | z) already built (so that AIS and BDMC share one sigma).

    Returns
    -------
    LikelihoodEstimate
    """
    if method not in allowed(model):
        have = ", ".join(allowed(model)) or "none"
        if method in ("ais", "bdmc") and getattr(model, "likelihood", None) == "ais":
            raise GenEvalError(
                f"{type(model).__name__} has no latent decoder to anneal over, and no BDMC bracket exists for "
                "it: its log Z is already an AIS estimate, and reverse AIS needs exact samples from the model, "
                "which only an RBM small enough to enumerate gives; use --method exact (the estimate)"
            )
        raise GenEvalError(f"{type(model).__name__} does not allow --method {method}; it allows: {have}")
    started = time.perf_counter()
    if method == "exact":
        result = _exact(model, x, settings, levels)
    elif method == "elbo":
        result = _elbo(model, x, settings)
    elif method == "iwae":
        result = _iwae(model, x, settings)
    else:
        is_image = x.dtype == torch.uint8
        observation = observation or observation_for(
            model, validation, levels if is_image else None, sigma=settings.sigma, seed=settings.seed,
            device=settings.device,
        )  # fmt: skip
        hmc = HMCSettings(leapfrog=settings.leapfrog)
        if method == "ais":
            result = _ais_with_steps(observation, x, settings, hmc)
        else:
            if observation.simulate is None:
                raise GenEvalError(
                    f"{type(model).__name__} has log_likelihood_given_latent but no sample_given_latent: BDMC needs to simulate data"
                )
            result = bdmc(
                observation.log_lik, observation.simulate, observation.latent_dim,
                num_examples=settings.bdmc_examples, steps=settings.steps, chains=settings.chains, hmc=hmc,
                seed=settings.seed, device=settings.device, tolerance=settings.tolerance,
                time_budget=settings.time_budget, progress=settings.progress, label=observation.label,
            )  # fmt: skip
        if observation.sigma is not None:
            result.details["sigma"] = observation.sigma
        if observation.grid_edge is not None:
            result.details.update(
                sigma_grid_edge=observation.grid_edge, sigma_warning=observation.sigma_warning
            )
    result.details.setdefault("seconds", time.perf_counter() - started)
    return result


def _ais_with_steps(observation: Observation, x: torch.Tensor, settings: Settings, hmc: HMCSettings):
    """Forward AIS; with ``steps="auto"`` the schedule is the one BDMC certified on simulated data."""
    steps, gap = settings.steps, None
    if steps == "auto":
        if observation.simulate is None:
            raise GenEvalError("--steps auto needs BDMC, and this model cannot simulate data: give --steps N")
        bracket = bdmc(
            observation.log_lik, observation.simulate, observation.latent_dim,
            num_examples=settings.bdmc_examples, steps="auto", chains=settings.chains, hmc=hmc, seed=settings.seed,
            device=settings.device, tolerance=settings.tolerance, time_budget=settings.time_budget,
        )  # fmt: skip
        steps, gap = bracket.details["steps"], bracket.details["gap"]
    result = ais(
        observation.log_lik, x, observation.latent_dim, steps=int(steps), chains=settings.chains, hmc=hmc,
        seed=settings.seed, device=settings.device, progress=settings.progress, label=observation.label,
        checkpoint=settings.checkpoint,
    )  # fmt: skip
    if gap is not None:
        result.details["bdmc_gap"] = gap
    return result


def run_all(
    methods: list[str] | str,
    model: Any,
    x: torch.Tensor,
    settings: Settings,
    *,
    levels: int,
    validation: torch.Tensor | None = None,
) -> list[LikelihoodEstimate]:
    """Every method asked for (``"auto"``: every one allowed), cheapest first; AIS and BDMC share p(x | z)."""
    names = allowed(model) if methods == "auto" else list(methods)
    if not names:
        raise GenEvalError(
            f"{type(model).__name__} allows no likelihood method: it has no log_prob, elbo, iwae or latent decoder"
        )
    names = sorted(names, key=METHODS.index)
    observation = None
    results = []
    for name in names:
        if name in ("ais", "bdmc") and observation is None and name in allowed(model):
            is_image = x.dtype == torch.uint8
            observation = observation_for(
                model, validation, levels if is_image else None, sigma=settings.sigma, seed=settings.seed,
                device=settings.device,
            )  # fmt: skip
        results.append(
            run(name, model, x, settings, levels=levels, validation=validation, observation=observation)
        )
    # AIS on the data reports the gap BDMC measured for the same schedule on simulated data.
    gaps = {r.details["steps"]: r.details["gap"] for r in results if r.method == "bdmc"}
    for r in results:
        if r.method == "ais" and r.details.get("steps") in gaps:
            r.details.setdefault("bdmc_gap", gaps[r.details["steps"]])
    return results
