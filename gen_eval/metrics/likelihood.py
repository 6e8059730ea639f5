"""Log-likelihood of held-out data in bits per dimension.

Convention. The data are the REFERENCE (held-out test) images x, uint8 NCHW with D = C*H*W
dimensions, each taking one of L levels (L = 256 for 8-bit data; fewer with the option
``bpd_levels``: scikit-learn's digits have L = 17, level k stored as round(k * 255 / 16)).
The generated source's model receives x as that uint8 batch and returns one value in nats
per example from ``log_prob(x)``, or ``log_prob(x, generator=...)`` when it takes a CPU
``torch.Generator`` (seeded with the run's random_state, so random draws repeat). Its
attribute ``likelihood`` says what the value is:

- ``"discrete"`` (default): log P(x), the probability of the levels themselves;
- ``"dequantized"``: log p(y) of a continuous density on [0, 1)^D at y = (k + u) / L, with k
  the level indices and u ~ U[0, 1)^D drawn by the model (for L = 256, y = (x + u) / 256).
  Integrating p over the cell of width 1/L per dimension gives P(x) = L^-D E_u[p(y)], hence
  by Jensen log P(x) >= E_u[log p(y)] - D log L;
- ``"elbo"`` / ``"iwae"``: a lower bound on the discrete log P(x) (any dequantisation already
  accounted for by the model);
- ``"ais"``: the discrete log P(x) with a normalising constant estimated by annealed importance
  sampling (a large RBM's log Z): neither exact nor a bound, kind "estimate". Forward AIS tends to
  underestimate log Z, so the bits/dim tends to come out a little LOW (see the model's bracket).

bits/dim = -log P(x) / (D ln 2), averaged over the test examples. A lower bound on log P(x)
gives an UPPER bound on bits/dim, so "dequantized", "elbo" and "iwae" results have kind
"bound": the true value is at most the reported one. "discrete" results are "exact". The
uniform model, which ignores the data, scores log2(L) bits/dim: 8 for 8-bit data, log2 17 =
4.09 for digits with ``bpd_levels=17``.
"""

from __future__ import annotations

import inspect
import math
from typing import Any

import numpy as np
import torch

from gen_eval.errors import GenEvalError
from gen_eval.metrics.base import MetricContext
from gen_eval.metrics.bootstrap import mean_interval
from gen_eval.metrics.result import Result

CONVENTIONS = ("discrete", "dequantized", "elbo", "iwae", "ais")
KINDS = {"discrete": "exact", "ais": "estimate"}  # the others give bounds
#: Printed with every bits/dim of a model whose log Z is an AIS estimate (a large RBM's).
AIS_LOG_Z_CAVEAT = (
    "estimate, not a bound: log Z is forward AIS's, which errs low (its exp is unbiased, so log Z-hat "
    "falls short on average), so this bits/dim errs low too; reverse AIS would bound it from the other "
    "side only from exact samples of the model, which a large RBM does not give"
)


def to_levels(x: torch.Tensor, levels: int) -> torch.Tensor:
    """Level indices 0..levels-1 of uint8 data stored as round(k * 255 / (levels - 1))."""
    return torch.round(x.to(torch.float64) * (levels - 1) / 255).to(torch.int64)


def _model_log_prob(model: Any, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Call ``model.log_prob`` (passing ``generator`` when it accepts one) and check its output."""
    name = type(model).__name__
    try:
        takes_generator = "generator" in inspect.signature(model.log_prob).parameters
        with torch.no_grad():
            out = model.log_prob(x, generator=generator) if takes_generator else model.log_prob(x)
    except GenEvalError:
        raise
    except Exception as exc:
        raise GenEvalError(f"{name}.log_prob raised {type(exc).__name__}: {exc}") from exc
    out = out.detach().cpu() if isinstance(out, torch.Tensor) else torch.as_tensor(np.asarray(out))
    out = out.to(torch.float64).reshape(-1)
    if len(out) != len(x):
        raise GenEvalError(
            f"{name}.log_prob returned {len(out)} values for {len(x)} examples; return one per example"
        )
    if not torch.isfinite(out).all():
        raise GenEvalError(
            f"{name}.log_prob returned NaN or inf (zero probability?): bits/dim would be infinite"
        )
    return out


def bits_per_dim(
    generated: dict[str, torch.Tensor], reference: dict[str, torch.Tensor], context: MetricContext
) -> dict[str, Result]:
    """Bits/dim of the reference (test) images under the generated source's model.

    Parameters
    ----------
    generated, reference : dict of str to torch.Tensor
        Unused: the model is ``context.generated_source.model``, the data ``context.reference_source``.
    context : MetricContext
        Options ``bpd_levels`` (default: the model's ``levels`` attribute, else 256) and ``bpd_batch_size`` (256); seed, device, bootstrap settings.

    Returns
    -------
    dict
        ``{"bits_per_dim": Result}``, kind "exact" (discrete), "estimate" (ais) or "bound" (an upper bound).
    """
    source, data = context.generated_source, context.reference_source
    model = getattr(source, "model", None)
    if model is None or not callable(getattr(model, "log_prob", None)):
        spec = getattr(source, "spec", "the generated source")
        raise GenEvalError(f"bits/dim needs a model with log_prob(x); {spec} does not provide one")
    convention = getattr(model, "likelihood", "discrete")
    if convention not in CONVENTIONS:
        raise GenEvalError(
            f"{type(model).__name__}.likelihood is {convention!r}; use one of {', '.join(CONVENTIONS)}"
        )
    if data is None or data.data_kind != "image":
        raise GenEvalError("bits/dim needs a reference source of uint8 images (the held-out test data)")
    # The option wins; else the number of levels the model says it models (17 for digits models).
    levels = int(context.option("bpd_levels", getattr(model, "levels", None) or 256))
    if not 2 <= levels <= 256:
        raise GenEvalError(f"bpd_levels must be between 2 and 256, got {levels}")
    dims = math.prod(data.sample_shape)
    generator = torch.Generator().manual_seed(context.random_state)  # seeds dequantisation / IWAE draws
    nats, seen = [], set()
    for batch in data.batches(int(context.option("bpd_batch_size", 256))):
        x = batch.data
        # Data off the L-level grid means bpd_levels is wrong, and the dequantisation bins with it.
        if not torch.equal(torch.round(to_levels(x, levels) * 255 / (levels - 1)).to(torch.uint8), x):
            raise GenEvalError(
                f"{data.spec} has values off the {levels}-level grid; set bpd_levels to its number of levels"
            )
        seen.update(torch.unique(x).tolist())
        log_p = _model_log_prob(model, x.to(context.device), generator)
        if convention == "dequantized":
            log_p = log_p - dims * math.log(levels)  # density on [0,1)^D -> bound on the discrete log P(x)
        nats.append(log_p)
    log_px = torch.cat(nats)
    per_example = -log_px / (dims * math.log(2))
    warnings = []
    if convention != "dequantized" and (log_px > 1e-9).any():
        # A probability is at most 1: a positive value means a density was declared as discrete.
        message = f"{type(model).__name__}.log_prob gave log P(x) > 0; a density of dequantised data needs likelihood = 'dequantized'"
        if convention == "discrete":
            raise GenEvalError(message)
        warnings.append(message)  # one stochastic IWAE/ELBO estimate may, rarely, exceed 0
    if convention == "ais":
        warnings.append(AIS_LOG_Z_CAVEAT)
    if levels == 256 and len(seen) <= 64:
        warnings.append(
            f"the test data use only {len(seen)} distinct values; set bpd_levels if the model uses fewer levels"
        )
    interval = None
    if context.num_resamples > 0:
        interval = mean_interval(per_example, context.num_resamples, context.random_state, context.confidence)
    details = {
        "convention": convention,
        "dimensions": dims,
        "levels": levels,
        "nll_nats_per_example": float(-log_px.mean()),  # -log P(x), mean over examples
        "uniform_bits_per_dim": math.log2(levels),
        "model": type(model).__name__,
    }
    result = Result(
        name="bits_per_dim",
        value=float(per_example.mean()),
        direction="lower",
        num_generated=len(source),
        num_reference=len(per_example),
        kind=KINDS.get(convention, "bound"),
        interval=interval,
        interval_covers=None
        if interval is None
        else "this model's expected bits/dim (or its bound) on data like the test set: a mean over the test examples, resampled, unbiased at any N",
        warnings=warnings,
        details=details,
    )
    return {"bits_per_dim": result}


def parzen_bits_per_dim(
    samples: torch.Tensor, test: torch.Tensor, sigma: float, levels: int = 256, chunk: int = 256
) -> float:
    """Gaussian Parzen-window estimate of bits/dim. UNRELIABLE: never on by default.

    Theis, van den Oord & Bethge (2016, "A note on the evaluation of generative models") show
    that Parzen estimates are far from the true log-likelihood even with many samples in low
    dimensions, and can rank models in the wrong order; use only to reproduce old tables.
    The density is fitted to ``samples`` scaled to [0, 1], evaluated at ``test`` scaled the
    same way, and converted like a dequantised density: -(log p(y) - D log L) / (D ln 2).

    Parameters
    ----------
    samples, test : torch.Tensor
        uint8 images (scaled by 1/255) or float (N, ...) arrays already in [0, 1].
    sigma : float
        Kernel bandwidth in [0, 1] units (choose it on a validation set, not on ``test``).
    levels : int
        Levels L per dimension of the data.
    chunk : int
        Test points per distance computation.

    Returns
    -------
    float
    """

    def flat(t: torch.Tensor) -> torch.Tensor:
        t = torch.as_tensor(t)
        t = t.to(torch.float64) / 255 if t.dtype == torch.uint8 else t.to(torch.float64)
        return t.reshape(len(t), -1)

    s, t = flat(samples), flat(test)
    dims = s.shape[1]
    log_norm = math.log(len(s)) + dims / 2 * math.log(2 * math.pi * sigma**2)
    log_p = torch.cat(
        [
            torch.logsumexp(-(torch.cdist(part, s) ** 2) / (2 * sigma**2), dim=1) - log_norm
            for part in t.split(chunk)
        ]
    )
    return float(-(log_p.mean() - dims * math.log(levels)) / (dims * math.log(2)))


class UniformModel:
    """Every level equally likely in every dimension: log2(levels) bits/dim on any data.

    With ``likelihood="dequantized"`` it is the uniform density on [0, 1)^D (log p = 0), whose
    bound log p(y) - D log L equals log P(x) exactly.
    """

    def __init__(self, levels: int = 256, shape: tuple[int, ...] = (1, 8, 8), likelihood: str = "discrete"):
        self.levels, self.shape, self.likelihood = levels, tuple(shape), likelihood

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        k = torch.randint(0, self.levels, (n, *self.shape), generator=generator)
        return torch.round(k * 255 / (self.levels - 1)).to(torch.uint8)

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        dims = math.prod(x.shape[1:])
        per_example = 0.0 if self.likelihood == "dequantized" else -dims * math.log(self.levels)
        return torch.full((len(x),), per_example, dtype=torch.float64)


class FactorisedCategorical:
    """Independent categorical per dimension: ``probs`` (*shape, levels), each last axis summing to 1."""

    likelihood = "discrete"

    def __init__(self, probs: np.ndarray | torch.Tensor):
        self.log_probs = torch.as_tensor(probs, dtype=torch.float64).log()
        self.levels = self.log_probs.shape[-1]

    @classmethod
    def fit(
        cls, images: np.ndarray | torch.Tensor, levels: int = 256, alpha: float = 1.0
    ) -> FactorisedCategorical:
        """Smoothed frequencies (count + alpha) / (N + levels * alpha) of uint8 NCHW training images."""
        k = to_levels(torch.as_tensor(images), levels)
        flat = k.reshape(len(k), -1) + torch.arange(k[0].numel()) * levels  # (dimension, level) cell ids
        counts = torch.bincount(flat.reshape(-1), minlength=flat.shape[1] * levels).to(torch.float64)
        return cls((counts.reshape(*k.shape[1:], levels) + alpha) / (len(k) + levels * alpha))

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        flat = self.log_probs.exp().reshape(-1, self.levels)
        k = torch.multinomial(flat, n, replacement=True, generator=generator).T
        return torch.round(k * 255 / (self.levels - 1)).to(torch.uint8).reshape(n, *self.log_probs.shape[:-1])

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        k = to_levels(x.cpu(), self.levels)
        picked = torch.gather(self.log_probs.expand(len(k), *self.log_probs.shape), -1, k.unsqueeze(-1))
        return picked.reshape(len(k), -1).sum(dim=1)
