"""Annealing utilities shared by every annealed importance sampler (decoder AIS, RBM AIS).

Annealed importance sampling (Neal, 2001) moves samples from a tractable start p_0 to the target
p_T through intermediate distributions f_t ∝ p_0^(1-β_t) p_T^β_t with 0 = β_0 < ... < β_T = 1,
adding log f_t(x) - log f_(t-1)(x) to each chain's log weight at every step. The mean of the
weights is an unbiased estimate of Z_T / Z_0, so log of it is a stochastic LOWER bound on log Z
(Jensen); the estimate and its standard error come from :func:`log_mean_exp`.

:class:`LikelihoodEstimate` is what every likelihood method returns, labelled by kind:
``"exact"`` (computed in closed form or by enumeration), ``"bound"`` (a lower bound on log p(x)
in expectation: ELBO, IWAE), ``"estimate"`` (AIS: stochastically a lower bound, consistent as
steps grow) or ``"bracket"`` (BDMC: a forward lower and a reverse upper value around the truth).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import torch

Kind = Literal["exact", "bound", "estimate", "bracket"]
KINDS: tuple[str, ...] = ("exact", "bound", "estimate", "bracket")


def sigmoid_schedule(steps: int, rad: float = 4.0) -> torch.Tensor:
    """β_0 = 0 < β_1 < ... < β_steps = 1 spaced by a sigmoid (float64, ``steps + 1`` values).

    Wu et al. (2017) use this schedule: sigmoid(rad * (2t/T - 1)) rescaled to [0, 1]. It puts
    more steps near β = 0 and β = 1, where log p(x|z)^β changes the distribution fastest (for
    images, log p(x|z) is hundreds of nats, so the first small β already narrows the prior).

    Parameters
    ----------
    steps : int
        Number of transitions T (at least 1).
    rad : float
        Steepness; larger moves more of the steps to the two ends.

    Returns
    -------
    torch.Tensor
        ``steps + 1`` values from exactly 0 to exactly 1, increasing.
    """
    if steps < 1:
        raise ValueError(f"the schedule needs at least 1 step, got {steps}")
    if steps == 1:
        return torch.tensor([0.0, 1.0], dtype=torch.float64)
    s = torch.sigmoid(torch.linspace(-rad, rad, steps + 1, dtype=torch.float64))
    return (s - s[0]) / (s[-1] - s[0])


def log_mean_exp(log_w: torch.Tensor, dim: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """log of the mean of exp(log_w) along ``dim``, and its standard error (delta method).

    The mean weight w̄ has standard error sd(w) / sqrt(n); log w̄ then has standard error
    sd(w) / (sqrt(n) w̄) to first order. Both are computed with the weights divided by their
    maximum, so no exp() overflows. With one chain the standard error is unknown: NaN.

    Parameters
    ----------
    log_w : torch.Tensor
        Log weights, e.g. (chains, examples).
    dim : int
        The axis of the chains.

    Returns
    -------
    (torch.Tensor, torch.Tensor)
        log-mean-exp and its standard error, with ``dim`` removed (float64).
    """
    log_w = log_w.to(torch.float64)
    n = log_w.shape[dim]
    top = log_w.max(dim, keepdim=True).values
    top = torch.where(torch.isfinite(top), top, torch.zeros_like(top))
    w = (log_w - top).exp()
    mean = w.mean(dim)
    value = mean.log() + top.squeeze(dim)
    if n < 2:
        return value, torch.full_like(value, math.nan)
    stderr = w.std(dim, unbiased=True) / (math.sqrt(n) * mean)
    return value, stderr


def mean_and_stderr(values: torch.Tensor) -> tuple[float, float]:
    """Mean of per-example values and the standard error of that mean (NaN for one example)."""
    values = values.to(torch.float64).reshape(-1)
    if len(values) < 2:
        return float(values.mean()), math.nan
    return float(values.mean()), float(values.std(unbiased=True) / math.sqrt(len(values)))


def nats_to_bits_per_dim(log_p: float | torch.Tensor, dims: int) -> float | torch.Tensor:
    """Bits/dim -log p / (D ln 2) of log-likelihoods in nats per example over ``dims`` dimensions."""
    return -log_p / (dims * math.log(2))


@dataclass
class LikelihoodEstimate:
    """One log-likelihood (in nats per example, averaged over the examples) with its uncertainty.

    Attributes
    ----------
    method : str
        What produced it: "exact", "elbo", "iwae-100", "ais", "bdmc", "rbm-ais", ...
    value : float
        Mean log p(x) in nats per example (for a bracket: the midpoint of ``lower`` and ``upper``).
    stderr : float
        Standard error of ``value`` over examples and Monte Carlo noise (0 when exact; NaN unknown).
    kind : {"exact", "bound", "estimate", "bracket"}
        See the module docstring.
    lower, upper : float or None
        A bracket's ends (BDMC: forward AIS below, reverse AIS above), in nats per example.
    per_example : torch.Tensor or None
        log p(x) of each example (float64), when the method gives one.
    per_example_stderr : torch.Tensor or None
        Monte Carlo standard error of each per-example value (over chains).
    label : str or None
        A caveat that must be printed with the number (an assumed observation model).
    details : dict
        Settings and diagnostics: steps, chains, acceptance rate, seconds, gap...
    """

    method: str
    value: float
    stderr: float
    kind: Kind
    lower: float | None = None
    upper: float | None = None
    per_example: torch.Tensor | None = None
    per_example_stderr: torch.Tensor | None = None
    label: str | None = None
    details: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {', '.join(KINDS)}, got {self.kind!r}")

    def bits_per_dim(self, dims: int, z: float = 1.96) -> tuple[float, tuple[float, float] | None]:
        """Bits/dim of ``value`` and an interval: ±z standard errors, or the bracket's ends.

        Parameters
        ----------
        dims : int
            Dimensions D per example.
        z : float
            Normal quantile of the interval (1.96: 95%).

        Returns
        -------
        (float, (float, float) or None)
            Bits/dim and (low, high) in bits/dim; None when there is no uncertainty to show.
        """
        bpd = nats_to_bits_per_dim(self.value, dims)
        if self.lower is not None and self.upper is not None:
            # A higher log p is a lower bits/dim: the upper log p end is the low end.
            return bpd, (nats_to_bits_per_dim(self.upper, dims), nats_to_bits_per_dim(self.lower, dims))
        if not math.isfinite(self.stderr) or self.stderr == 0:
            return bpd, None
        half = z * self.stderr / (dims * math.log(2))
        return bpd, (bpd - half, bpd + half)

    def to_dict(self, dims: int | None = None) -> dict[str, Any]:
        """JSON-ready: numbers as numbers (NaN as null), tensors left out, bits/dim when ``dims`` is given."""
        out = {k: v for k, v in asdict(self).items() if k not in ("per_example", "per_example_stderr")}
        out = {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in out.items()}
        if dims is not None:
            bpd, interval = self.bits_per_dim(dims)
            out["bits_per_dim"] = bpd
            out["bits_per_dim_interval"] = list(interval) if interval is not None else None
        return out
