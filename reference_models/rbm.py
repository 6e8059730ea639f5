"""Restricted Boltzmann machine (Smolensky, 1986; Hinton, 2002) over the 17 grey levels of digits.

An RBM is an energy-based model: a joint distribution over visible units v (the pixels) and
binary hidden units h in {0, 1}^H,

    P(v, h) = exp(-E(v, h)) / Z,    E(v, h) = -sum_i b[i, v_i] - c . h - sum_i W[i, v_i] . h,

with no connections inside a layer ("restricted"). That makes both conditionals factorise:
given v the hidden units are independent Bernoullis, P(h_j = 1 | v) = sigmoid(c_j + sum_i
W[i, v_i, j]); given h each pixel is an independent categorical over its levels, P(v_i = k | h)
= softmax_k(b[i, k] + W[i, k] . h). Summing h out gives the FREE ENERGY of a visible vector,

    F(v) = -sum_i b[i, v_i] - sum_j softplus(c_j + sum_i W[i, v_i, j]),    P(v) = exp(-F(v)) / Z.

Visible units. Each pixel is one categorical ("softmax") unit over the data's 17 grey levels, so
P(v) is the probability of the digits' levels themselves: the RBM sits on the digits leaderboard
with a discrete bits/dim like the baseline and the PixelCNN. We tried two cheaper choices with
the same training (16 hidden units, exact validation bits/dim): a binomial unit (the level as 16
Bernoulli trials with one shared probability) scored 4.6 bits/dim, worse than a uniform guess
(4.09), because a binomial is unimodal and a digit's pixel is mostly 0 or 16; an "ordinal" unit
(per-level biases, weights linear in the level) scored 2.39. The categorical unit scored 2.25.
With W = 0 it IS the independent-pixels baseline, which is also where AIS starts.

The partition function Z = sum_v sum_h exp(-E) has 17^64 visible states, but summing the
visible units out given h is easy (each pixel: a logsumexp over 17 levels), so

    log Z = logsumexp over h in {0,1}^H of [c . h + sum_i logsumexp_k (b[i, k] + W[i, k] . h)],

which is exact for up to about 20 hidden units (2^20 terms). Larger RBMs get log Z from annealed
importance sampling (:mod:`gen_eval.likelihood.rbm_ais`, Salakhutdinov & Murray, 2008), run once
after training and stored in the checkpoint. Training is persistent contrastive divergence
(Tieleman, 2008): the gradient of the log-likelihood is E_data[-dF/dtheta] - E_model[-dF/dtheta];
the model's expectation comes from ``chains`` Gibbs chains that persist across updates.

There is no continuous latent: the hidden units are binary and there is no decoder from a z, so
the latent-space analyses (interpolation, traversals, path length) do not apply.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import torch
from torch import nn
from torch.nn import functional as F

from reference_models.common import (
    EarlyStopping,
    TrainingData,
    TrainLog,
    from_level_indices,
    minibatches,
    to_level_indices,
)

DEFAULTS = {
    "hidden": 16,  # <= EXACT_MAX_HIDDEN: log Z by enumeration; more: by AIS
    "epochs": 300,  # an upper limit for a small RBM, where early stopping on exact bits/dim ends it
    "batch_size": 100,
    "lr": 1e-3,
    "init_std": 0.1,  # 0.01 spent 40 epochs near W = 0 before the hidden units took different roles
    "cd_k": 10,  # Gibbs steps of the persistent chains per update (1: rbm_large 2.246 bits/dim, FID 361; 10: 2.166, FID 134)
    "chains": 100,  # persistent chains (the model's half of the gradient)
    "burn_in": 1000,  # Gibbs steps before ``sample`` returns (from the base-rate model)
    "check_every": 5,  # epochs between exact validation checks (small RBMs)
    "patience": 6,  # checks without a better validation bits/dim before stopping
    "ais_steps": 10000,  # AIS for log Z of a large RBM after training
    "ais_runs": 100,
}
LEVELS = 17
EXACT_MAX_HIDDEN = 20


# ------------------------------------------------------------------------------ the model's maths
# Functions of the parameters, not of the module: AIS (gen_eval.likelihood.rbm_ais) calls them on
# the intermediate RBMs it anneals through. v is an int64 (N, pixels) tensor of level indices.
def hidden_input(v: torch.Tensor, weights: torch.Tensor, hidden_bias: torch.Tensor) -> torch.Tensor:
    """c + sum_i W[i, v_i]: the total input of each hidden unit, (N, H)."""
    pixels, levels, hidden = weights.shape
    offsets = torch.arange(pixels, device=v.device) * levels  # row of W[i, k] in the flat (i, k) table
    return weights.reshape(-1, hidden)[v + offsets].sum(1) + hidden_bias


def free_energy(
    v: torch.Tensor, weights: torch.Tensor, visible_bias: torch.Tensor, hidden_bias: torch.Tensor
) -> torch.Tensor:
    """F(v) = -sum_i b[i, v_i] - sum_j softplus(c_j + sum_i W[i, v_i, j]), one value per row."""
    pixels = torch.arange(weights.shape[0], device=v.device)
    return -visible_bias[pixels, v].sum(1) - F.softplus(hidden_input(v, weights, hidden_bias)).sum(1)


def visible_logits(h: torch.Tensor, weights: torch.Tensor, visible_bias: torch.Tensor) -> torch.Tensor:
    """b[i, k] + W[i, k] . h: the logits of P(v_i = k | h), (N, pixels, levels)."""
    return visible_bias + torch.einsum("ikh,nh->nik", weights, h.to(weights.dtype))


def sample_hidden(
    v: torch.Tensor, weights: torch.Tensor, hidden_bias: torch.Tensor, generator: torch.Generator | None
) -> torch.Tensor:
    """h ~ P(h | v): independent Bernoullis, as floats 0/1 (N, H)."""
    p = torch.sigmoid(hidden_input(v, weights, hidden_bias))
    return (torch.rand(p.shape, generator=generator, dtype=p.dtype) < p).to(p.dtype)


def sample_visible(
    h: torch.Tensor, weights: torch.Tensor, visible_bias: torch.Tensor, generator: torch.Generator | None
) -> torch.Tensor:
    """v ~ P(v | h): one level per pixel, by inverse CDF (the first level whose cumulative
    probability passes a uniform draw: one random number per pixel, half the time of Gumbel-max)."""
    cumulative = visible_logits(h, weights, visible_bias).softmax(-1).cumsum(-1)
    u = torch.rand(cumulative.shape[:-1], generator=generator, dtype=cumulative.dtype)
    # clamp: rounding can leave the last cumulative value a hair below a draw near 1
    return (cumulative < u.unsqueeze(-1)).sum(-1).clamp_max(cumulative.shape[-1] - 1)


def hidden_states(count: int, chunk: int = 4096) -> Iterator[torch.Tensor]:
    """All 2^count binary vectors in counting order, ``chunk`` rows (float64) at a time."""
    for start in range(0, 2**count, chunk):
        index = torch.arange(start, min(start + chunk, 2**count))
        yield ((index[:, None] >> torch.arange(count)) & 1).to(torch.float64)


def log_hidden_marginal(h: torch.Tensor, weights: torch.Tensor, visible_bias: torch.Tensor,
                        hidden_bias: torch.Tensor) -> torch.Tensor:  # fmt: skip
    """log of sum_v exp(-E(v, h)) for each row of h: c . h + sum_i logsumexp_k (b[i, k] + W[i, k] . h)."""
    h = h.to(torch.float64)
    logits = visible_logits(h, weights.to(torch.float64), visible_bias.to(torch.float64))
    return h @ hidden_bias.to(torch.float64) + torch.logsumexp(logits, -1).sum(1)


@torch.no_grad()
def exact_samples(
    n: int, weights: torch.Tensor, visible_bias: torch.Tensor, hidden_bias: torch.Tensor,
    generator: torch.Generator | None,
) -> torch.Tensor:  # fmt: skip
    """``n`` independent draws of v from P(v) itself, no Markov chain: h from its exact marginal
    (enumerated, so only for small H), then v ~ P(v | h). Level indices (n, pixels)."""
    log_marginal = torch.cat([log_hidden_marginal(h, weights, visible_bias, hidden_bias)
                              for h in hidden_states(weights.shape[-1])])  # fmt: skip
    picked = torch.multinomial(
        (log_marginal - log_marginal.max()).exp(), n, replacement=True, generator=generator
    )
    h = ((picked[:, None] >> torch.arange(weights.shape[-1])) & 1).to(weights.dtype)
    return sample_visible(h, weights, visible_bias, generator)


class RBM(nn.Module):
    """An RBM with a categorical unit per pixel and ``hidden`` binary hidden units.

    ``log_prob`` is exact when ``hidden <= EXACT_MAX_HIDDEN`` (log Z by enumerating h); a larger
    RBM uses the AIS estimate of log Z stored in its ``log_partition`` buffer, and says so:
    ``likelihood`` is then ``"ais"`` (an estimate, not a bound).
    """

    latent_dim = None  # binary hidden units, no decoder from a continuous z: no latent analyses

    def __init__(self, hidden: int, pixels: int = 64, levels: int = LEVELS, burn_in: int = 1000):
        super().__init__()
        self.shape, self.hidden, self.levels, self.burn_in = (1, 8, 8), hidden, levels, burn_in
        self.weights = nn.Parameter(torch.zeros(pixels, levels, hidden))
        self.visible_bias = nn.Parameter(torch.zeros(pixels, levels))
        self.hidden_bias = nn.Parameter(torch.zeros(hidden))
        # log Z as AIS estimated it (NaN until it has; unused when the exact value is tractable).
        self.register_buffer("log_partition", torch.tensor(math.nan, dtype=torch.float64))
        self._exact_cache: tuple[tuple, float] | None = None

    @property
    def exact(self) -> bool:
        return self.hidden <= EXACT_MAX_HIDDEN

    @property
    def likelihood(self) -> str:
        return "discrete" if self.exact else "ais"

    def params(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return self.weights, self.visible_bias, self.hidden_bias

    # -------------------------------------------------------------------------------- energies
    def energy(self, v: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        """E(v, h) of level indices v (N, pixels) and hidden states h (N, H)."""
        pixels = torch.arange(v.shape[1])
        picked_w = self.weights[pixels, v]  # (N, pixels, H)
        return (
            -self.visible_bias[pixels, v].sum(1)
            - h.to(self.weights.dtype) @ self.hidden_bias
            - torch.einsum("nih,nh->n", picked_w, h.to(self.weights.dtype))
        )

    def free_energy(self, v: torch.Tensor) -> torch.Tensor:
        """F(v) = -log sum_h exp(-E(v, h)) of level indices v (N, pixels)."""
        return free_energy(v, *self.params())

    # ------------------------------------------------------------------------------- partition
    @torch.no_grad()
    def log_partition_exact(self, chunk: int = 4096) -> float:
        """log Z by enumerating all 2^H hidden states (visible units summed out analytically)."""
        if not self.exact:
            raise ValueError(f"{self.hidden} hidden units: 2^{self.hidden} terms; use AIS (rbm_ais)")
        # Recompute after any in-place update (optimiser step, load_state_dict) or new storage (.double()).
        version = tuple((p.data_ptr(), p._version) for p in self.parameters())
        if self._exact_cache is None or self._exact_cache[0] != version:
            terms = [log_hidden_marginal(h, *self.params()) for h in hidden_states(self.hidden, chunk)]
            self._exact_cache = (version, float(torch.logsumexp(torch.cat(terms), 0)))
        return self._exact_cache[1]

    def log_z(self) -> float:
        """log Z: exact when tractable, else the stored AIS estimate (an error if there is none)."""
        if self.exact:
            return self.log_partition_exact()
        if not torch.isfinite(self.log_partition):
            raise ValueError("log Z of this RBM has not been estimated: run gen_eval.likelihood.rbm_ais")
        return float(self.log_partition)

    @torch.no_grad()
    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """log P(x) = -F(x) - log Z in nats of uint8 images (float64): exact, or with AIS's log Z."""
        v = to_level_indices(x.cpu(), self.levels).reshape(len(x), -1)
        return -free_energy(v, *(p.to(torch.float64) for p in self.params())) - self.log_z()

    # -------------------------------------------------------------------------------- sampling
    def base_rates(self) -> torch.Tensor:
        """The model with W = 0: each pixel's categorical softmax(b[i]) (the AIS start too)."""
        return self.visible_bias.detach().softmax(-1)

    @torch.no_grad()
    def gibbs(self, v: torch.Tensor, steps: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """``steps`` rounds of block Gibbs sampling v -> h -> v from level indices v."""
        weights, visible_bias, hidden_bias = (p.detach() for p in self.params())
        for _ in range(steps):
            h = sample_hidden(v, weights, hidden_bias, generator)
            v = sample_visible(h, weights, visible_bias, generator)
        return v

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """``n`` images: chains started from the base rates, after ``burn_in`` Gibbs steps (uint8).

        These are draws of v itself, noisy pixel by pixel. Each pixel's most likely level given
        the last h (what the VAE returns, the decoder's mode) scored worse in a trial on an earlier
        16-hidden checkpoint: FID 233 against 177 for the draws (1,000 samples), from about 54
        distinct images.
        """
        start = torch.multinomial(self.base_rates(), n, replacement=True, generator=generator).T
        v = self.gibbs(start, self.burn_in, generator)
        return from_level_indices(v.reshape(n, *self.shape), self.levels)


def build(hparams: dict, dataset: str) -> RBM:
    if dataset != "digits":
        raise ValueError(f"the RBM is for the digits data, not {dataset!r}")
    return RBM(hparams["hidden"], burn_in=hparams["burn_in"])


def bits_per_dim(model: RBM, x: torch.Tensor) -> float:
    return float(-model.log_prob(x).mean() / (x[0].numel() * math.log(2)))


def fit(hparams: dict, data: TrainingData, *, generator: torch.Generator, log: TrainLog) -> tuple[RBM, dict]:
    model = build(hparams, data.dataset)
    v_train = to_level_indices(data.train, LEVELS).reshape(len(data.train), -1)
    v_val = to_level_indices(data.val, LEVELS).reshape(len(data.val), -1)
    with torch.no_grad():  # start at the baseline: the data's marginals, smoothed, and small weights
        counts = F.one_hot(v_train, LEVELS).sum(0).to(torch.float32) + 1.0
        model.visible_bias.copy_((counts / counts.sum(-1, keepdim=True)).log())
        model.weights.normal_(0.0, hparams["init_std"], generator=generator)
    optimiser = torch.optim.Adam(model.parameters(), lr=hparams["lr"])
    chains = v_train[torch.randperm(len(v_train), generator=generator)[: hparams["chains"]]].clone()
    stopper = EarlyStopping(model, hparams["patience"]) if model.exact else None
    epochs = hparams["epochs"]
    log.begin(epochs)
    for epoch in range(1, epochs + 1):
        gaps = []
        for idx in minibatches(len(v_train), hparams["batch_size"], generator):
            chains = model.gibbs(chains, hparams["cd_k"], generator)
            # -d/dtheta of this loss is the PCD estimate of the log-likelihood gradient.
            gap = model.free_energy(v_train[idx]).mean() - model.free_energy(chains).mean()
            optimiser.zero_grad()
            gap.backward()
            optimiser.step()
            gaps.append(gap.item())
        row = {"free_energy_gap": sum(gaps) / len(gaps)}
        # Overfitting shows as held-out images getting higher free energy than training images.
        with torch.no_grad():
            row["val_minus_train_free_energy"] = float(
                model.free_energy(v_val).mean() - model.free_energy(v_train).mean()
            )
        stop = False
        if stopper is not None and (epoch % hparams["check_every"] == 0 or epoch == epochs):
            row["val_bits_per_dim"] = bits_per_dim(model, data.val)
            stop = stopper.check(row["val_bits_per_dim"], epoch)
        log.record(epoch, **row)
        log.step(epoch)
        if stop:
            break
    summary: dict = {"epochs_run": epoch}
    if stopper is not None:
        stopper.restore()
        summary["best_epoch"] = stopper.best_step
        summary["log_partition"] = model.log_partition_exact()
        summary["log_partition_kind"] = "exact"
    else:
        from gen_eval.likelihood.rbm_ais import rbm_log_partition

        # Base rates from the training data's level frequencies (Salakhutdinov & Murray); the
        # reverse chains start from training images run through Gibbs sampling.
        estimate = rbm_log_partition(
            model, steps=hparams["ais_steps"], runs=hparams["ais_runs"], generator=generator, data=v_train
        )
        model.log_partition.fill_(estimate.value)
        summary.update(
            log_partition=estimate.value,
            log_partition_stderr=estimate.stderr,
            log_partition_kind=estimate.kind,
            log_partition_bracket=[estimate.lower, estimate.upper],
        )
    model.eval()
    summary["val_bits_per_dim"] = round(bits_per_dim(model, data.val), 4)
    return model, summary
