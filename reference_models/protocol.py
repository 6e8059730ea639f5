"""The generator protocol: what a model exposes to get every analysis gen-eval offers.

The bundled reference models implement it, and so can a student's model: any object with these
attributes works with ``gen-eval evaluate model.py:factory --trust-code`` and the Python API.

Required
--------
``sample(n, generator=None)``
    ``n`` samples as a tensor: images (N, C, H, W) as floats in [0, 1] or uint8, or float
    vectors (N, D) for 2-D/vector data. ``generator`` is a CPU ``torch.Generator``; drawing all
    randomness from it makes samples reproducible.
``family``, ``dataset``
    Strings: the model family ("gan", "vae", "flow", ...) and the data it was trained on.

Optional
--------
``log_prob(x, generator=None)``
    ``x`` is a uint8 batch of real images, (N, C, H, W). Returns one value per example in nats.
    What the value means is declared by ``likelihood`` (see ``gen_eval.metrics.likelihood``):
    ``"discrete"`` — log P(x) of the grey levels themselves (exact);
    ``"dequantized"`` — log p(y) of a density on [0, 1)^D at y = (k + u) / L with level index k
    and u ~ U[0, 1)^D drawn from ``generator``; then log P(x) >= E_u log p(y) - D log L;
    ``"elbo"`` / ``"iwae"`` — a lower bound on the discrete log P(x);
    ``"ais"`` — the discrete log P(x) with its normalising constant estimated by annealed
    importance sampling (a large RBM): an estimate, neither exact nor a bound.
``levels``
    Number of grey levels the model's likelihood is over (17 for ``digits``; 256 for 8-bit data).
``encode(x)`` / ``decode(z)`` and ``latent_dim``
    ``encode`` maps a uint8 batch to latents (N, latent_dim) (a VAE returns the posterior mean);
    ``decode`` maps latents to samples in the same format as ``sample``. The prior over z is a
    standard normal unless the model says otherwise.
``decode_float(z)``
    For models whose ``decode`` returns discrete values: the continuous output before that step,
    as floats in [0, 1] (a VAE's E[x | z]; a flow's dequantised y). Smoothness and perceptual
    path length use it when present: a step of 1e-4 in z rarely moves a pixel to another level.
``log_likelihood_given_latent(x, z)``
    For latent-variable models with a decoder distribution: log p(x | z) in nats, one value per
    row of the uint8 batch ``x`` (N, C, H, W) and latents ``z`` (N, latent_dim), DIFFERENTIABLE in
    z. Annealed importance sampling (``gen-eval likelihood --method ais``) anneals over z towards
    p(z) p(x | z); without it, a deterministic ``decode`` is given Gaussian observation noise and
    the result is labelled as not comparable with exact likelihoods.
``sample_given_latent(z, generator=None)``
    One draw x ~ p(x | z) per latent, uint8: the simulated data of BDMC's bracket.

Text models (``reference_models/text_common.py``) return a list of strings from ``sample(n,
generator=None, labels=None)`` and give ``log_prob(strings, labels=None)`` in nats per string,
the end-of-string token included (marginal over labels when none are given).

Paired and translation models (issue 23) have no ``sample``: a str ``task`` and
``translate(inputs, generator=None)`` map uint8 (N, C, h, w) inputs to uint8 (N, C, H, W) outputs
(``reference_models/unet.py`` for the ``task:sr4``/``inpaint``/``edges`` tasks); an unpaired
translator (``task = "digits2mnist"``, ``reference_models/cyclegan.py``) also has
``translate_back(outputs, generator=None)``, the way back, for cycle consistency.

A 15-line example (a per-pixel Bernoulli model) is in the README.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import torch


@runtime_checkable
class GenerativeModel(Protocol):
    """The required part of the protocol (see the module docstring for the optional methods)."""

    family: str
    dataset: str

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor: ...


@runtime_checkable
class HasLogProb(Protocol):
    likelihood: str
    levels: int

    def log_prob(self, x: torch.Tensor) -> torch.Tensor: ...


@runtime_checkable
class HasLatent(Protocol):
    latent_dim: int

    def decode(self, z: torch.Tensor) -> torch.Tensor: ...


def capabilities(model: object) -> list[str]:
    """Which optional parts of the protocol ``model`` provides, e.g. ``["log_prob", "decode"]``."""
    names = ("log_prob", "encode", "decode", "log_likelihood_given_latent", "translate", "translate_back")
    return [name for name in names if callable(getattr(model, name, None))]
