"""The DDPM reference model: shipped checkpoint, noise schedule, discretised decoder, ELBO, training."""

from __future__ import annotations

import math

import pytest
import torch

from reference_models import load_model
from reference_models.ddpm import DDPM, DEFAULTS, discretized_log_probs, make_betas
from reference_models.train import train_model

TINY = {"channels": [8, 8, 8], "num_steps": 10, "eval_every": 1, "batch_size": 16}


pytestmark = pytest.mark.usefixtures("one_thread")  # see conftest.py


@pytest.fixture(scope="module")
def shipped() -> DDPM:
    return load_model("ddpm")


def test_shipped_checkpoint_samples_on_the_grid(shipped: DDPM) -> None:
    x = shipped.sample(6, torch.Generator().manual_seed(0))
    assert x.shape == (6, 1, 8, 8) and x.dtype == torch.uint8
    grid = {round(k * 255 / 16) for k in range(17)}
    assert set(x.unique().tolist()) <= grid  # every pixel on one of the 17 levels
    assert x.float().std() > 20  # not a constant image
    again = shipped.sample(6, torch.Generator().manual_seed(0))
    assert torch.equal(x, again)  # all randomness from the generator
    assert (
        shipped.num_steps == DEFAULTS["num_steps"] and shipped.likelihood == "elbo" and shipped.levels == 17
    )


@pytest.mark.parametrize("kind", ["linear", "cosine"])
def test_forward_chain_matches_closed_form(kind: str) -> None:
    betas = make_betas(kind, 50)
    assert ((betas > 0) & (betas < 1)).all()
    model = DDPM(50, kind, "posterior", [8, 8, 8], 0.0)
    assert (model.abar[1:] < model.abar[:-1]).all() and 0 < model.abar[-1] < 1e-3 and model.abar[0] < 1
    # Run q(x_t | x_{t-1}) step by step from four starting values, 20,000 chains each; compare
    # the empirical mean and std of x_t with the closed form q(x_t | x_0).
    g = torch.Generator().manual_seed(0)
    x0 = torch.tensor([-1.0, -0.25, 0.5, 1.0], dtype=torch.float64)[:, None]
    x = x0.expand(4, 20_000)
    for t, beta in enumerate(model.betas, 1):
        x = (1 - beta).sqrt() * x + beta.sqrt() * torch.randn(x.shape, generator=g, dtype=torch.float64)
        if t in (1, 10, 30):
            abar = model.abar[t - 1]
            torch.testing.assert_close(x.mean(1), abar.sqrt() * x0[:, 0], atol=0.025, rtol=0)
            torch.testing.assert_close(x.std(1), (1 - abar).sqrt().expand(4), atol=0.0, rtol=0.03)


def test_posterior_is_bayes_rule() -> None:
    """q(x_{t-1} | x_t, x_0) from q(x_{t-1} | x_0) (prior) and q(x_t | x_{t-1}) (likelihood)."""
    model = DDPM(100, "cosine", "posterior", [8, 8, 8], 0.0)
    x0 = torch.full((3, 1, 8, 8), 0.5, dtype=torch.float64)
    xt = torch.full((3, 1, 8, 8), -0.2, dtype=torch.float64)
    t = torch.tensor([2, 40, 100])
    beta, abar_prev = model.betas[t - 1], model.abar[t - 2]
    precision = 1 / (1 - abar_prev) + (1 - beta) / beta
    mean = (abar_prev.sqrt() * 0.5 / (1 - abar_prev) + (1 - beta).sqrt() * -0.2 / beta) / precision
    torch.testing.assert_close(model.posterior_var[t - 1], 1 / precision)
    torch.testing.assert_close(model.posterior_mean(x0, xt, t)[:, 0, 0, 0], mean)


def test_discretised_decoder_sums_to_one() -> None:
    g = torch.Generator().manual_seed(0)
    mean = torch.cat([torch.rand(200, generator=g, dtype=torch.float64) * 6 - 3, torch.tensor([-50.0, 50.0])])
    std = torch.exp(torch.rand(202, generator=g, dtype=torch.float64) * 12 - 8)  # 3e-4 .. 55
    log_p = discretized_log_probs(mean, std, 17)
    assert log_p.shape == (202, 17) and torch.isfinite(log_p).all()
    torch.testing.assert_close(log_p.exp().sum(-1), torch.ones(202, dtype=torch.float64))
    # A moderate case against Phi(upper) - Phi(lower) directly: mean 0.1, std 0.2, level 9 (centre 0.125).
    normal = torch.distributions.Normal(0.1, 0.2)
    direct = normal.cdf(torch.tensor(0.1875)) - normal.cdf(torch.tensor(0.0625))
    one = torch.ones(1, dtype=torch.float64)
    assert math.isclose(
        float(discretized_log_probs(0.1 * one, 0.2 * one, 17)[0, 9].exp()), float(direct), rel_tol=1e-5
    )


def test_elbo_terms(shipped: DDPM) -> None:
    from gen_eval.datasets.digits import load_digits_split

    x = torch.from_numpy(load_digits_split("test")[0][:8])
    x0 = 2 * torch.round(x.double() * 16 / 255) / 16 - 1
    prior = shipped.prior_kl(x0)
    assert (prior >= 0).all() and (prior < 1e-3).all()  # L_T ~ 0: x_T is pure noise
    log_p = shipped.log_prob(x, torch.Generator().manual_seed(0))
    assert log_p.dtype == torch.float64 and log_p.shape == (8,)
    bits_per_dim = -log_p / (64 * math.log(2))
    assert (bits_per_dim > 0).all() and (bits_per_dim < math.log2(17)).all()  # beats the uniform model
    torch.testing.assert_close(log_p, shipped.log_prob(x, torch.Generator().manual_seed(0)))


def test_one_step_training_round_trip(tmp_path) -> None:
    model, config = train_model("ddpm", steps=1, directory=tmp_path, show_progress=False, overrides=TINY)
    assert config["summary"]["steps_run"] == 1
    loaded = load_model("ddpm", directory=tmp_path)
    assert loaded.num_steps == 10
    for a, b in zip(model.state_dict().values(), loaded.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    x = loaded.sample(3, torch.Generator().manual_seed(0))
    assert x.shape == (3, 1, 8, 8) and x.dtype == torch.uint8
    assert torch.isfinite(loaded.log_prob(x, torch.Generator().manual_seed(0))).all()
