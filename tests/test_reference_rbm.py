"""The restricted Boltzmann machine: its energies, exact log Z, AIS, sampling, training, checkpoints.

Every check compares against an independent computation: brute-force sums over every (v, h)
of a tiny RBM, the exact log Z by enumeration for AIS, the independent-pixels baseline for
training, and the numbers recorded when the shipped checkpoints were made.
"""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from gen_eval.likelihood.rbm_ais import rbm_log_likelihood, rbm_log_partition
from reference_models import rbm as rbm_module
from reference_models.common import from_level_indices, load_training_data, to_level_indices
from reference_models.rbm import RBM

LEVELS = 17


def random_rbm(hidden: int, pixels: int = 64, levels: int = LEVELS, scale: float = 0.3, seed: int = 0) -> RBM:
    generator = torch.Generator().manual_seed(seed)
    model = RBM(hidden, pixels=pixels, levels=levels)
    with torch.no_grad():
        model.weights.normal_(0, scale, generator=generator)
        model.visible_bias.normal_(0, 1, generator=generator)
        model.hidden_bias.normal_(0, 1, generator=generator)
    return model.double()


@pytest.fixture(scope="module")
def tiny() -> tuple[RBM, torch.Tensor, torch.Tensor]:
    """A 6-pixel, 3-level, 4-hidden RBM and every visible (729) and hidden (16) state."""
    model = random_rbm(4, pixels=6, levels=3, scale=1.0)
    v = torch.tensor(list(itertools.product(range(3), repeat=6)))
    h = torch.tensor(list(itertools.product(range(2), repeat=4)), dtype=torch.float64)
    return model, v, h


def brute_force_neg_energy(model: RBM, v: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
    """-E(v, h) for every pair, (len(v), len(h)), straight from the definition with loops over units."""
    w, b, c = (p.detach() for p in model.params())
    out = torch.zeros(len(v), len(h), dtype=torch.float64)
    for n, state in enumerate(v):
        visible = sum(b[i, k] for i, k in enumerate(state.tolist()))
        coupling = sum(w[i, k] for i, k in enumerate(state.tolist()))  # (H,)
        out[n] = visible + h @ c + h @ coupling
    return out


def test_energy_and_free_energy_match_brute_force(tiny):
    model, v, h = tiny
    neg_energy = brute_force_neg_energy(model, v, h)
    pairs_v, pairs_h = v.repeat_interleave(len(h), 0), h.repeat(len(v), 1)
    with torch.no_grad():
        energy = model.energy(pairs_v, pairs_h).reshape(len(v), len(h))
        free = model.free_energy(v)
    torch.testing.assert_close(energy, -neg_energy, rtol=0, atol=1e-10)
    torch.testing.assert_close(free, -torch.logsumexp(neg_energy, 1), rtol=0, atol=1e-10)


def test_exact_log_partition_by_hidden_enumeration_matches_the_full_sum(tiny):
    model, v, h = tiny
    full = float(torch.logsumexp(brute_force_neg_energy(model, v, h).reshape(-1), 0))
    assert model.log_partition_exact(chunk=5) == pytest.approx(full, abs=1e-10)  # chunks that split
    # log_prob is a normalised distribution over all 3^6 images.
    x = from_level_indices(v, 3)
    assert float(torch.logsumexp(model.log_prob(x), 0)) == pytest.approx(0.0, abs=1e-10)


def test_exact_samples_follow_the_model(tiny):
    model, v, _ = tiny
    draws = rbm_module.exact_samples(
        20000, *(p.detach() for p in model.params()), torch.Generator().manual_seed(1)
    )
    # Marginal of pixel 0 from the samples vs from the exact distribution.
    probs = model.log_prob(from_level_indices(v, 3)).exp()
    exact = torch.stack([probs[v[:, 0] == k].sum() for k in range(3)])
    observed = torch.bincount(draws[:, 0], minlength=3).double() / len(draws)
    assert torch.allclose(observed, exact, atol=0.015)


@pytest.fixture(scope="module")
def shipped_small() -> RBM:
    from reference_models import load_model

    return load_model("rbm")


@pytest.mark.parametrize("which", ["random", "trained"])
def test_ais_within_a_tenth_of_a_nat_and_bracketed(which, request):
    model = random_rbm(16) if which == "random" else request.getfixturevalue("shipped_small")
    exact = model.log_partition_exact()
    data = None
    if which == "trained":
        data = to_level_indices(load_training_data("digits").train, LEVELS).reshape(-1, 64)
    estimate = rbm_log_partition(
        model, steps=1000, runs=50, generator=torch.Generator().manual_seed(0), data=data
    )
    assert estimate.kind == "bracket"
    assert abs(estimate.value - exact) < 0.1, (estimate, exact)
    assert abs(estimate.lower - exact) < 0.1 and abs(estimate.upper - exact) < 0.1
    # Forward AIS below, reverse above: stochastic bounds, so allowed 3 standard errors of slack.
    assert estimate.lower - 3 * estimate.details["forward_stderr"] <= exact
    assert exact <= estimate.upper + 3 * estimate.details["reverse_stderr"]


def test_ais_fails_on_a_planted_fault():
    """A schedule of 2 steps is far off on a strongly coupled RBM: the tolerance can fail."""
    model = random_rbm(8, scale=1.0, seed=3)
    estimate = rbm_log_partition(model, steps=2, runs=16, generator=torch.Generator().manual_seed(0))
    assert abs(estimate.lower - model.log_partition_exact()) > 0.1


def test_sampling_is_reproducible_under_a_seed(shipped_small):
    model = shipped_small
    model.burn_in = 50  # the shipped 1,000 are slow for a test; reproducibility does not depend on it
    try:
        first = model.sample(16, torch.Generator().manual_seed(7))
        again = model.sample(16, torch.Generator().manual_seed(7))
        other = model.sample(16, torch.Generator().manual_seed(8))
    finally:
        model.burn_in = 1000
    assert first.dtype == torch.uint8 and first.shape == (16, 1, 8, 8)
    assert torch.equal(first, again) and not torch.equal(first, other)
    levels = to_level_indices(first, LEVELS)
    assert torch.equal(from_level_indices(levels, LEVELS), first)  # on the digits' 17-level grid


def test_training_raises_the_exact_log_likelihood_above_the_baseline():
    from gen_eval.reproducible import reproducible
    from reference_models import baseline
    from reference_models.common import TrainLog

    data = load_training_data("digits")
    hparams = dict(rbm_module.DEFAULTS, hidden=8, epochs=25, check_every=5, patience=5, lr=3e-3)
    quiet = TrainLog(show_progress=False)
    with reproducible(0) as generator:  # one thread, as gen-eval train runs it
        _, summary = rbm_module.fit(hparams, data, generator=generator, log=quiet)
        independent, _ = baseline.fit(
            {"alpha": 1.0}, data, generator=generator, log=TrainLog(show_progress=False)
        )
    baseline_bpd = float(-independent.log_prob(data.val).mean() / (64 * math.log(2)))
    checks = [row["val_bits_per_dim"] for row in quiet.rows if "val_bits_per_dim" in row]
    assert checks[-1] < checks[0] - 0.03, checks  # the exact held-out likelihood rises as it trains
    assert summary["val_bits_per_dim"] < baseline_bpd - 0.05, (summary, baseline_bpd)


@pytest.mark.parametrize("name", ["rbm", "rbm_large"])
def test_shipped_checkpoints_load_and_reproduce_their_recorded_bits_per_dim(name):
    from safetensors.torch import load_file

    from reference_models import get_entry, load_model
    from reference_models.common import read_config

    tensors = load_file(str(get_entry(name).checkpoint))  # safetensors: no pickle, no code
    assert set(tensors) == {"weights", "visible_bias", "hidden_bias", "log_partition"}
    config = read_config(name)
    model = load_model(name)
    summary = config["summary"]
    assert model.likelihood == ("discrete" if name == "rbm" else "ais")
    if name == "rbm":
        assert summary["log_partition_kind"] == "exact"
        assert model.log_partition_exact() == pytest.approx(summary["log_partition"], abs=1e-6)
    else:
        assert summary["log_partition_kind"] == "estimate"
        assert float(model.log_partition) == pytest.approx(summary["log_partition"], abs=1e-9)
        lower, upper = summary["log_partition_bracket"]
        assert lower - 0.5 <= summary["log_partition"] <= upper + 0.5
    val = load_training_data("digits").val
    assert rbm_module.bits_per_dim(model, val) == pytest.approx(summary["val_bits_per_dim"], abs=1e-4)


def test_log_likelihood_api_agrees_with_log_prob(shipped_small):
    x = load_training_data("digits").val[:50]
    levels = to_level_indices(x, LEVELS).reshape(len(x), -1)
    exact = rbm_log_likelihood(shipped_small, levels)
    assert exact.kind == "exact"
    torch.testing.assert_close(exact.per_example, shipped_small.log_prob(x))
    with pytest.raises(ValueError, match="AIS"):
        rbm_log_likelihood(random_rbm(32), levels)


def test_leaderboards_mark_an_ais_bits_per_dim_as_an_estimate(capsys):
    from gen_eval.demo.leaderboard import ModelScore, print_leaderboard
    from gen_eval.demo.scorecard import format_headline

    fid = {"value": 170.0, "kind": "estimate", "interval": None, "direction": "lower"}
    rows = {"rbm": ("exact", 2.179), "rbm_large": ("estimate", 2.258), "vae": ("bound", 2.082)}
    scores = [
        ModelScore(name, "boltzmann", "digits", None, {"fid": fid, "bits_per_dim": {"value": v, "kind": k}},
                   None, {"covered": 10, "total": 10}, {})
        for name, (k, v) in rows.items()
    ]  # fmt: skip
    print_leaderboard(scores)
    out = capsys.readouterr().out
    assert "≈2.258" in out and "≤2.082" in out and " 2.179" in out
    assert format_headline({"value": 2.258, "kind": "estimate"}, ".3f") == "2.258"  # FID-like: no mark
    from gen_eval.demo.leaderboard import BPD_MARKS

    assert format_headline({"value": 2.258, "kind": "estimate"}, ".3f", BPD_MARKS) == "≈ 2.258"


def test_scorecard_rows_put_the_rbm_ais_bracket_beside_the_exact_value(shipped_small):
    from gen_eval.demo.likelihood_table import likelihood_rows

    x = load_training_data("digits").val[:16]
    rows = {row["method"]: row for row in likelihood_rows(shipped_small, x, ais_steps=(300,), chains=2)}
    assert rows["exact"]["kind"] == "exact" and rows["rbm-ais"]["kind"] == "bracket"
    low, high = rows["rbm-ais"]["interval"]
    # log Z within 0.1 nats moves bits/dim by at most 0.1 / (64 ln 2) = 0.0023.
    assert low - 0.003 <= rows["exact"]["bits_per_dim"] <= high + 0.003


def test_without_exact_samples_reverse_ais_is_no_bound_and_the_pair_an_estimate(monkeypatch):
    """rbm_large (64 hidden) has no exact samples: its reverse chains start from Gibbs runs, which
    certifies nothing, so its log Z must be labelled an estimate, never a bracket. Forced here on a
    small RBM, whose exact log Z still shows which way forward AIS errs."""
    from gen_eval.likelihood import rbm_ais

    model = random_rbm(8, scale=0.5, seed=1)
    exact = model.log_partition_exact()
    settings = {"steps": 10, "runs": 100, "reverse_burn_in": 50}
    bracket = rbm_log_partition(model, generator=torch.Generator().manual_seed(0), **settings)
    assert bracket.kind == "bracket" and bracket.details["reverse_start"] == "exact samples of the target"
    monkeypatch.setattr(rbm_ais, "EXACT_SAMPLE_MAX_HIDDEN", 0)  # as for 64 hidden units
    approximate = rbm_log_partition(model, generator=torch.Generator().manual_seed(0), **settings)
    assert approximate.kind == "estimate" and "Gibbs" in approximate.details["reverse_start"]
    assert approximate.value == approximate.lower  # forward AIS alone is the estimate
    # Forward AIS is a stochastic LOWER bound on log Z, so log P(x) = -F(x) - log Z comes out high and
    # bits/dim low: 10 steps on this RBM are short enough that the bias shows beyond the noise.
    assert approximate.lower + 3 * approximate.details["forward_stderr"] < exact
    x = torch.randint(0, LEVELS, (5, 64), generator=torch.Generator().manual_seed(2))
    result = rbm_log_likelihood(model, x, approximate)
    assert result.kind == "estimate"
    assert result.value > float((-model.free_energy(x)).mean()) - exact


def test_scorecard_rows_call_a_large_rbm_ais_an_estimate_not_a_bracket():
    from gen_eval.demo.likelihood_table import _rbm_rows

    model = random_rbm(24, scale=0.05, seed=4)  # too many hidden units for exact samples (2^24 > 2^20)
    model.dataset = "digits"
    x = load_training_data("digits").val[:4]
    (row,) = _rbm_rows(model, x, (20,), seed=0, reverse_burn_in=20)
    assert row["kind"] == "estimate" and row["interval"] is not None
    assert "not an upper bound" in row["setting"]
