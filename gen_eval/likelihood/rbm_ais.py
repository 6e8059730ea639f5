"""log Z of a restricted Boltzmann machine by annealed importance sampling (Salakhutdinov & Murray, 2008).

The target is an RBM B with categorical visible units (``reference_models.rbm``): weights W
(pixels, levels, H), visible biases b (pixels, levels), hidden biases c (H). The start is the
"base-rate" RBM A: no weights, visible biases b_A from the data's per-pixel level frequencies, so
Z_A = 2^H prod_i sum_k exp(b_A[i, k]) is known. The intermediate distributions

    f_beta(v) = exp((1 - beta) b_A[v] + beta b[v]) prod_j (1 + exp(beta (c_j + W[v]_j)))

are themselves RBMs, with weights beta W, hidden biases beta c and visible biases (1 - beta) b_A
+ beta b, so one block Gibbs step of that RBM leaves f_beta invariant. Forward AIS starts exact
samples of A, adds log f_beta_t(v) - log f_beta_(t-1)(v) at each step and moves v by a Gibbs step
at beta_t: the mean of exp(log w) estimates Z_B / Z_A without bias, so log Z_A + log-mean-exp is
a stochastic LOWER bound on log Z_B (and log P(x) = -F(x) - log Z comes out too high).

Reverse AIS runs the same chain from B to A, started from exact samples of B: it estimates
Z_A / Z_B, so log Z_A minus its log-mean-exp is a stochastic UPPER bound on log Z_B. Exact
samples of B exist when its hidden states can be enumerated (small H, where log Z is known
anyway: that is how the bracket is tested); for a large RBM the reverse chains start from long
Gibbs runs, an approximation, and the pair is then reported as an estimate, not a bracket.

Why ``rbm_large`` (64 hidden units) has no certified upper side: reverse AIS bounds log Z only
when its chains start from EXACT samples of the target, and none are available: enumerating h
needs 2^64 terms, v has 17^64 states, and Gibbs chains (the only sampler here) are never exactly
at equilibrium, so reverse AIS from them is biased in an unknown direction. RAISE (Burda, Grosse
& Salakhutdinov, 2015) does not fill the gap: its stochastic bound is on the log-likelihood of
the annealing model it defines, not of the RBM. A deterministic upper bound (tree-reweighted
belief propagation) exists but is loose by nats on a densely coupled 64 x 64 graph and is not
built. So its log Z is forward AIS alone, a stochastic LOWER bound on log Z: its log P(x) errs
high and its bits/dim low, the opposite side from a decoder's AIS (:mod:`gen_eval.likelihood.ais`).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any

import torch
from torch.nn import functional as F

from gen_eval.likelihood.annealing import Kind, LikelihoodEstimate, log_mean_exp, sigmoid_schedule
from reference_models.rbm import exact_samples, free_energy, hidden_input, sample_hidden, sample_visible

EXACT_SAMPLE_MAX_HIDDEN = 20  # 2^20 hidden states enumerated for exact samples of the target


@dataclass
class LogPartition:
    """An estimate of log Z (nats) with its standard error and kind.

    Attributes
    ----------
    value : float
        Forward AIS's log Z; for a bracket, the midpoint of ``lower`` and ``upper``.
    stderr : float
        Standard error from the spread of the importance weights (delta method).
    kind : {"estimate", "bracket"}
        "bracket" when reverse AIS started from exact samples of the target: ``lower`` and
        ``upper`` are then stochastic bounds on either side of the truth.
    lower, upper : float or None
        Forward and reverse AIS estimates of log Z (None when reverse AIS did not run).
    details : dict
        steps, runs, per-direction standard errors, seconds, how the reverse chains started.
    """

    value: float
    stderr: float
    kind: Kind
    lower: float | None = None
    upper: float | None = None
    details: dict[str, Any] = field(default_factory=dict)


def base_rate_bias(levels: torch.Tensor, num_levels: int, smoothing: float = 1.0) -> torch.Tensor:
    """log of each pixel's smoothed level frequencies in ``levels`` (N, pixels): b_A of the base RBM."""
    counts = F.one_hot(levels.reshape(len(levels), -1), num_levels).sum(0).to(torch.float64) + smoothing
    return (counts / counts.sum(-1, keepdim=True)).log()


def _run(params: tuple[torch.Tensor, ...], base: torch.Tensor, betas: torch.Tensor, v: torch.Tensor,
         generator: torch.Generator | None) -> torch.Tensor:  # fmt: skip
    """Anneal the chains ``v`` along ``betas``; return each chain's log importance weight.

    The same function runs forward (betas 0 -> 1) and reverse (1 -> 0): at each step it adds
    log f_new(v) - log f_old(v), then takes one Gibbs step of the RBM at the new beta.
    """
    # Transitions run in float32 (three times faster here); the log weights, sums of small
    # differences over thousands of steps, in float64.
    weights, visible_bias, hidden_bias, base32 = (t.to(torch.float32) for t in (*params, base))
    pixels = torch.arange(weights.shape[0])

    def log_f(beta: float, a: torch.Tensor, b: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        # log f_beta(v) = (1 - beta) b_A[v] + beta b[v] + sum_j softplus(beta u_j), u = c + W[v].
        return (1 - beta) * a + beta * b + F.softplus(beta * u).sum(1)

    log_w = torch.zeros(len(v), dtype=torch.float64)
    for old, new in zip(betas[:-1].tolist(), betas[1:].tolist(), strict=True):
        u32 = hidden_input(v, weights, hidden_bias)
        a, b, u = base[pixels, v].sum(1), params[1][pixels, v].sum(1), u32.to(torch.float64)
        log_w += log_f(new, a, b, u) - log_f(old, a, b, u)
        p = torch.sigmoid(new * u32)  # one Gibbs step of the intermediate RBM at beta = new
        h = (torch.rand(p.shape, generator=generator) < p).to(torch.float32)
        v = sample_visible(h, new * weights, (1 - new) * base32 + new * visible_bias, generator)
    return log_w


def rbm_log_partition(
    model: Any,
    *,
    steps: int = 10000,
    runs: int = 100,
    generator: torch.Generator | None = None,
    data: torch.Tensor | None = None,
    reverse: bool = True,
    reverse_burn_in: int = 10000,
) -> LogPartition:
    """log Z of an RBM by forward AIS from the base-rate RBM, bracketed by reverse AIS.

    Parameters
    ----------
    model : RBM-like
        Has ``weights`` (pixels, levels, H), ``visible_bias`` (pixels, levels), ``hidden_bias``
        (H) and ``levels`` (see ``reference_models.rbm.RBM``).
    steps : int
        Intermediate distributions (a sigmoidal beta schedule, denser at both ends).
    runs : int
        Independent AIS chains in each direction.
    generator : torch.Generator, optional
        Seeds every draw.
    data : torch.Tensor, optional
        Training level indices (N, pixels): the base rates come from their frequencies (as in
        Salakhutdinov & Murray) and, for a large RBM, the reverse chains start from them. Without
        it the base RBM is the target with W = 0 and c = 0.
    reverse : bool
        Also run reverse AIS (twice the time).
    reverse_burn_in : int
        Gibbs steps from the data before reverse AIS when exact samples are out of reach.

    Returns
    -------
    LogPartition
    """
    # The chains' tensors are small ((runs, pixels, levels)): a second thread only waits. On a busy
    # 2-core machine two threads made a test's AIS take 536 s instead of about 10.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _log_partition(model, steps, runs, generator, data, reverse, reverse_burn_in)
    finally:
        torch.set_num_threads(threads)


def _log_partition(
    model: Any,
    steps: int,
    runs: int,
    generator: torch.Generator | None,
    data: torch.Tensor | None,
    reverse: bool,
    reverse_burn_in: int,
) -> LogPartition:
    started = time.perf_counter()
    params = tuple(
        p.detach().to(torch.float64) for p in (model.weights, model.visible_bias, model.hidden_bias)
    )
    weights, visible_bias, _ = params
    hidden = weights.shape[-1]
    base = visible_bias.clone() if data is None else base_rate_bias(data, model.levels)
    log_z_base = hidden * math.log(2) + float(torch.logsumexp(base, -1).sum())
    betas = sigmoid_schedule(steps)

    start = torch.multinomial(base.softmax(-1), runs, replacement=True, generator=generator).T
    forward, forward_se = log_mean_exp(_run(params, base, betas, start, generator))
    lower = log_z_base + float(forward)
    details: dict[str, Any] = {"steps": steps, "runs": runs, "forward_stderr": float(forward_se)}
    if not reverse:
        details["seconds"] = round(time.perf_counter() - started, 2)
        return LogPartition(lower, float(forward_se), "estimate", lower, None, details)

    if hidden <= EXACT_SAMPLE_MAX_HIDDEN:
        end, how = exact_samples(runs, *params, generator), "exact samples of the target"
    else:
        if data is None:
            end = torch.multinomial(visible_bias.softmax(-1), runs, replacement=True, generator=generator).T
        else:
            end = data[torch.randint(len(data), (runs,), generator=generator)].reshape(runs, -1)
        w32, b32, c32 = (t.to(torch.float32) for t in params)
        for _ in range(reverse_burn_in):  # plain Gibbs at beta = 1: approximately the target
            end = sample_visible(sample_hidden(end, w32, c32, generator), w32, b32, generator)
        how = f"{reverse_burn_in} Gibbs steps from {'the data' if data is not None else 'the base rates'}"
    backward, backward_se = log_mean_exp(_run(params, base, betas.flip(0), end, generator))
    upper = log_z_base - float(backward)
    details.update(
        reverse_stderr=float(backward_se),
        reverse_start=how,
        seconds=round(time.perf_counter() - started, 2),
    )
    stderr = math.hypot(float(forward_se), float(backward_se))
    if hidden <= EXACT_SAMPLE_MAX_HIDDEN:
        return LogPartition((lower + upper) / 2, stderr, "bracket", lower, upper, details)
    return LogPartition(lower, float(forward_se), "estimate", lower, upper, details)


def rbm_log_likelihood(
    model: Any, levels: torch.Tensor, log_partition: LogPartition | None = None
) -> LikelihoodEstimate:
    """log P(v) = -F(v) - log Z per example, with log Z exact (small RBMs) or from AIS.

    Parameters
    ----------
    model : RBM-like
        As for :func:`rbm_log_partition`, plus ``exact`` and ``log_partition_exact()``.
    levels : torch.Tensor
        Level indices (N, pixels) of the examples.
    log_partition : LogPartition, optional
        An AIS estimate of log Z; required when the model is too large for the exact value.

    Returns
    -------
    LikelihoodEstimate
        Method "exact" (kind exact) or "rbm-ais" (kind estimate or bracket: the bracket of log Z,
        turned round, brackets the mean log P(v)). ``stderr`` combines the spread over examples
        with log Z's standard error.
    """
    params = (p.detach().to(torch.float64) for p in (model.weights, model.visible_bias, model.hidden_bias))
    per_example = -free_energy(levels.reshape(len(levels), -1), *params)
    spread = per_example.std().item() / math.sqrt(len(per_example)) if len(per_example) > 1 else math.nan
    if log_partition is None:
        if not model.exact:
            raise ValueError(
                "this RBM is too large for the exact log Z: pass an AIS estimate (rbm_log_partition)"
            )
        log_z = model.log_partition_exact()
        return LikelihoodEstimate("exact", float(per_example.mean()) - log_z, spread, "exact",
                                  per_example=per_example - log_z)  # fmt: skip
    mean = float(per_example.mean())
    lower = None if log_partition.upper is None else mean - log_partition.upper
    upper = None if log_partition.lower is None else mean - log_partition.lower
    return LikelihoodEstimate(
        "rbm-ais", mean - log_partition.value, math.hypot(spread, log_partition.stderr), log_partition.kind,
        lower=lower, upper=upper, per_example=per_example - log_partition.value,
        details={"log_partition": log_partition.value, **log_partition.details},
    )  # fmt: skip
