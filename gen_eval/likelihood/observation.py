"""The observation model p(x | z) that AIS anneals towards, and how to simulate x from it.

A model with its own decoder distribution says so with ``log_likelihood_given_latent(x, z)`` (and
``sample_given_latent(z, generator)`` for BDMC's simulated data); the VAEs have both. A
deterministic decoder x = g(z) (a GAN) has no likelihood: following Wu et al. (2017), AIS then
uses a Gaussian around g(z), discretised over the data's grey levels for image data (each level
gets the Gaussian mass of its bin, the end levels the tails), with the noise sigma chosen on a
VALIDATION split as the one giving the highest AIS log-likelihood there. The result is a
likelihood of that noisy model, not of the GAN: every output carries :data:`GAUSSIAN_LABEL`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from gen_eval.errors import GenEvalError

GAUSSIAN_LABEL = (
    "AIS under Gaussian observation noise sigma = {sigma:g}; not comparable with exact likelihoods"
)
#: Noise levels tried on the validation split (in [0, 1] pixel units, or data units for vectors).
#: Up to 1.0 (a pixel's whole range): a collapsed GAN's best sigma was 0.3, the top of an earlier
#: grid, so the optimum might have lain beyond it. A choice at either end is flagged (:func:`grid_edge`).
SIGMA_GRID = (0.02, 0.035, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.7, 1.0)
EDGE_WARNING = (
    "observation noise sigma = {sigma:g} is the {edge} value of the grid tried on validation data "
    "({low:g} to {high:g}): the best sigma may lie beyond it, and the likelihood with it"
)


@dataclass
class Observation:
    """p(x | z) for AIS: ``log_lik(x, z)`` per row (differentiable in z), ``simulate`` for BDMC.

    ``label`` is None for the model's own likelihood, else the caveat printed with every number.
    """

    log_lik: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    simulate: Callable[[int, torch.Generator], tuple[torch.Tensor, torch.Tensor]] | None
    latent_dim: int
    label: str | None = None
    sigma: float | None = None
    grid_edge: str | None = None  # "lowest" or "highest" when the chosen sigma is at an end of the grid
    sigma_warning: str | None = None  # then printed with every number (:data:`EDGE_WARNING`)


def has_own_likelihood(model: Any) -> bool:
    """Whether the model gives p(x | z) itself (``log_likelihood_given_latent``)."""
    return callable(getattr(model, "log_likelihood_given_latent", None))


def can_anneal(model: Any) -> bool:
    """Whether AIS can run: a latent dimension and either p(x | z) or a deterministic decoder."""
    return isinstance(getattr(model, "latent_dim", None), int) and (
        has_own_likelihood(model) or callable(getattr(model, "decode", None))
    )


def _differentiable_decoder(model: Any) -> Callable[[torch.Tensor], torch.Tensor]:
    """The model's decoder with gradients in z: ``decode_float`` or ``decode``, unwrapped.

    Decoders are usually decorated with ``torch.no_grad``, which would cut the gradient HMC
    needs; the decorator keeps the plain function as ``__wrapped__``, which is called instead.
    """
    method = getattr(model, "decode_float", None) or model.decode
    plain = getattr(getattr(method, "__func__", method), "__wrapped__", None)
    return (lambda z: plain(model, z)) if plain is not None else method


def own_observation(model: Any) -> Observation:
    """The model's own p(x | z), and x ~ p(x | z) when it has ``sample_given_latent``."""
    simulate = None
    if callable(getattr(model, "sample_given_latent", None)):

        def simulate(n: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
            z = torch.randn(n, model.latent_dim, generator=generator)
            return z, model.sample_given_latent(z, generator=generator)

    return Observation(model.log_likelihood_given_latent, simulate, model.latent_dim)


def _as_float(x: torch.Tensor) -> torch.Tensor:
    return x.to(torch.float32) / 255 if x.dtype == torch.uint8 else x.to(torch.float32)


def gaussian_observation(model: Any, sigma: float, levels: int | None) -> Observation:
    """p(x | z) = N(x; g(z), sigma^2 I), over ``levels`` discrete levels when given (image data).

    Parameters
    ----------
    model : object
        A model with ``decode`` (and ``latent_dim``).
    sigma : float
        Noise standard deviation in [0, 1] pixel units (data units for vectors).
    levels : int or None
        Grey levels L of uint8 image data stored as round(k * 255 / (L - 1)); None: a density.

    Returns
    -------
    Observation
    """
    decode = _differentiable_decoder(model)

    def log_lik(x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        mean = decode(z).reshape(len(z), -1).to(torch.float32)
        if levels is None:
            target = _as_float(x).reshape(len(x), -1).to(mean.device)
            per_dim = -0.5 * ((target - mean) / sigma) ** 2 - math.log(sigma) - 0.5 * math.log(2 * math.pi)
            return per_dim.to(torch.float64).sum(1)
        # Level k sits at k / (L - 1) exactly (round(k * 255 / (L - 1)) / 255 is up to 0.002 off,
        # which would leave gaps and overlaps between the bins).
        k = torch.round(x.to(torch.float32) * (levels - 1) / 255).reshape(len(x), -1)
        target = (k / (levels - 1)).to(mean.device)
        half = 0.5 / (levels - 1)  # each level owns the interval of half a level on either side
        upper = (target + half - mean) / sigma
        lower = (target - half - mean) / sigma
        top = target >= 1 - half / 2  # the end levels take the tails beyond them
        bottom = target <= half / 2
        log_upper = torch.special.log_ndtr(upper)
        log_above = torch.special.log_ndtr(-lower)  # log P(X > lower edge)
        # log(Φ(u) - Φ(l)) computed from the side where it does not cancel: mirrored above the mean.
        mirrored = lower > 0
        a = torch.where(mirrored, torch.special.log_ndtr(-lower), log_upper)
        b = torch.where(mirrored, torch.special.log_ndtr(-upper), torch.special.log_ndtr(lower))
        middle = a + torch.log1p(-torch.exp((b - a).clamp(max=-1e-12)))
        per_dim = torch.where(top, log_above, torch.where(bottom, log_upper, middle))
        return per_dim.to(torch.float64).sum(1)

    def simulate(n: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        z = torch.randn(n, model.latent_dim, generator=generator)
        with torch.no_grad():
            mean = decode(z).to(torch.float32).cpu()
        noisy = mean + sigma * torch.randn(mean.shape, generator=generator)
        if levels is None:
            return z, noisy
        k = torch.round(noisy.clamp(0, 1) * (levels - 1))  # the level whose bin the draw falls in
        return z, torch.round(k * 255 / (levels - 1)).to(torch.uint8)

    return Observation(log_lik, simulate, model.latent_dim, GAUSSIAN_LABEL.format(sigma=sigma), sigma)


def choose_sigma(
    model: Any,
    validation: torch.Tensor,
    levels: int | None,
    *,
    grid: tuple[float, ...] = SIGMA_GRID,
    steps: int = 100,
    chains: int = 4,
    seed: int = 0,
    device: str | torch.device = "cpu",
) -> tuple[float, dict[float, float]]:
    """The noise sigma with the highest short-AIS log-likelihood on ``validation`` (not the test data).

    Returns
    -------
    (float, dict)
        The chosen sigma and the validation log p(x) (nats per example) of every sigma tried.
    """
    from gen_eval.likelihood.ais import ais

    if len(validation) == 0:
        raise GenEvalError("choosing the observation noise needs validation examples; none were given")
    scores = {}
    for sigma in grid:
        observation = gaussian_observation(model, sigma, levels)
        estimate = ais(observation.log_lik, validation, model.latent_dim, steps=steps, chains=chains,
                       seed=seed, device=device)  # fmt: skip
        scores[sigma] = estimate.value
    return max(scores, key=scores.__getitem__), scores


def grid_edge(sigma: float, scores: dict[float, float]) -> str | None:
    """Which end of the grid ``scores`` covers ``sigma`` sits at: "lowest", "highest" or None (inside).

    The validation likelihood is unimodal in sigma in practice, so an interior choice brackets the
    optimum between its neighbours; a choice at an end brackets nothing.
    """
    if len(scores) < 2:
        return None
    return "lowest" if sigma == min(scores) else "highest" if sigma == max(scores) else None


def edge_warning(sigma: float, scores: dict[float, float]) -> str | None:
    """The warning printed and stored when ``sigma`` is at an end of the grid, else None."""
    edge = grid_edge(sigma, scores)
    if edge is None:
        return None
    return EDGE_WARNING.format(sigma=sigma, edge=edge, low=min(scores), high=max(scores))


def observation_for(
    model: Any,
    validation: torch.Tensor | None,
    levels: int | None,
    *,
    sigma: float | None = None,
    seed: int = 0,
    device: str | torch.device = "cpu",
) -> Observation:
    """The model's own p(x | z) when it has one, else a Gaussian with sigma chosen on ``validation``.

    Raises
    ------
    GenEvalError
        The model has no latent to anneal over, or sigma must be chosen and there is no validation data.
    """
    if not can_anneal(model):
        raise GenEvalError(
            f"{type(model).__name__} has no latent_dim with decode(z) or log_likelihood_given_latent(x, z): AIS cannot run on it"
        )
    if has_own_likelihood(model):
        return own_observation(model)
    if sigma is None:
        if validation is None:
            raise GenEvalError(
                f"{type(model).__name__} has a deterministic decoder: give a noise sigma or validation data to choose one"
            )
        sigma, scores = choose_sigma(model, validation, levels, seed=seed, device=device)
        observation = gaussian_observation(model, sigma, levels)
        observation.label += f" (chosen on {len(validation)} validation examples)"
        observation.grid_edge, observation.sigma_warning = (
            grid_edge(sigma, scores),
            edge_warning(sigma, scores),
        )
        return observation
    return gaussian_observation(model, sigma, levels)
