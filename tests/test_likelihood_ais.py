"""Annealed importance sampling, BDMC and the likelihood methods, checked against exact answers.

Every check compares with an independent reference: closed-form log p(x) of probabilistic PCA,
numerical integration over a 2-D latent grid, or plain arithmetic for the annealing helpers.
"""

from __future__ import annotations

import math

import pytest
import torch

from gen_eval.likelihood.ais import HMCSettings
from gen_eval.likelihood.annealing import LikelihoodEstimate, log_mean_exp, sigmoid_schedule

# A 2-D Gaussian posterior needs short HMC trajectories: 3 leapfrog steps keep these tests fast
# (the schedule, 1,000 steps, and the 16 chains are the defaults; models default to 10 leapfrog steps).
SHORT = HMCSettings(leapfrog=3)


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny networks: on a busy machine threads only wait on each other."""
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


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


# ------------------------------------------------------------------------- probabilistic PCA (exact)
class PPCA:
    """x = W z + mu + noise, z ~ N(0, I_d), noise ~ N(0, s^2 I_D): log p(x) = log N(x; mu, W W^T + s^2 I)."""

    def __init__(self, dims: int = 6, latent: int = 2, noise: float = 0.5, seed: int = 0):
        g = torch.Generator().manual_seed(seed)
        self.w = torch.randn(dims, latent, generator=g)
        self.mu = torch.randn(dims, generator=g)
        self.noise, self.latent_dim = noise, latent

    def log_lik(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        mean = z @ self.w.T + self.mu
        per_dim = -0.5 * ((x - mean) / self.noise) ** 2 - math.log(self.noise) - 0.5 * math.log(2 * math.pi)
        return per_dim.sum(-1)

    def simulate(self, n: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        z = torch.randn(n, self.latent_dim, generator=generator)
        x = z @ self.w.T + self.mu + self.noise * torch.randn(n, len(self.mu), generator=generator)
        return z, x

    def exact(self, x: torch.Tensor) -> torch.Tensor:
        cov = (self.w @ self.w.T + self.noise**2 * torch.eye(len(self.mu))).double()
        return torch.distributions.MultivariateNormal(self.mu.double(), cov).log_prob(x.double())


@pytest.fixture(scope="module")
def ppca_runs():
    """AIS on the same 50 PPCA examples at 10, 100 and the default 1,000 steps."""
    from gen_eval.likelihood.ais import ais

    model = PPCA()
    _, x = model.simulate(50, torch.Generator().manual_seed(1))
    truth = float(model.exact(x).mean())
    runs = {
        steps: ais(model.log_lik, x, model.latent_dim, steps=steps, seed=2, hmc=SHORT)
        for steps in (10, 100, 1000)
    }
    return model, truth, runs


def test_ais_matches_closed_form_ppca_at_the_default_schedule(ppca_runs):
    _, truth, runs = ppca_runs
    default = runs[1000]
    assert default.details["steps"] == 1000 and default.details["chains"] == 16  # the defaults
    assert abs(default.value - truth) < 0.05
    assert 0.4 < default.details["acceptance"] < 0.95  # the step size was steered towards 0.65


def test_ais_error_shrinks_as_steps_grow(ppca_runs):
    _, truth, runs = ppca_runs
    errors = [abs(runs[s].value - truth) for s in (10, 100, 1000)]
    assert errors[0] > errors[1] > errors[2]
    assert runs[10].value < truth  # a short schedule errs low: AIS is a stochastic lower bound


def test_bdmc_bracket_contains_the_ppca_truth():
    from gen_eval.likelihood.bdmc import bdmc

    model = PPCA(noise=0.3)  # a sharper posterior: at 100 steps the bracket is visibly open
    bracket = bdmc(
        model.log_lik, model.simulate, model.latent_dim, num_examples=20, steps=100, seed=3, hmc=SHORT
    )
    _, x = model.simulate(20, torch.Generator().manual_seed(3))  # the data bdmc simulated
    truth = float(model.exact(x).mean())
    details = bracket.details
    assert bracket.kind == "bracket"
    # Both ends are stochastic bounds: each may cross the truth by Monte Carlo noise only.
    assert bracket.lower <= truth + 2 * details["forward_monte_carlo_stderr"]
    assert truth <= bracket.upper + 2 * details["reverse_monte_carlo_stderr"]
    assert details["gap"] == pytest.approx(bracket.upper - bracket.lower)
    assert 0.05 < details["gap"] < 1.0
    assert bracket.upper - truth < details["gap"] + 0.1 and truth - bracket.lower < details["gap"] + 0.1


def test_bdmc_auto_doubles_steps_until_the_gap_is_under_tolerance():
    from gen_eval.likelihood.bdmc import bdmc

    model = PPCA()

    def auto(tolerance: float) -> list[dict]:
        bracket = bdmc(model.log_lik, model.simulate, model.latent_dim, num_examples=5, steps="auto", chains=4,
                       tolerance=tolerance, max_steps=400, seed=4, hmc=SHORT)  # fmt: skip
        assert bracket.details["steps"] == bracket.details["schedule"][-1]["steps"]
        return bracket.details["schedule"]

    unreachable = auto(0.0)  # never reached: doubles up to max_steps
    assert [t["steps"] for t in unreachable] == [100, 200, 400]
    first = unreachable[0]["gap"]
    assert [t["steps"] for t in auto(first + 1e-6)] == [100]  # reached at once: no doubling


def test_ais_resumes_from_its_checkpoint_with_the_same_answer(tmp_path):
    from gen_eval.likelihood import ais as ais_module

    model = PPCA()
    _, x = model.simulate(6, torch.Generator().manual_seed(5))
    whole = ais_module.ais(model.log_lik, x, 2, steps=60, chains=4, block_size=4, seed=6)
    path = tmp_path / "ais.pt"

    class Stop(Exception):
        pass

    calls = [0]
    original = ais_module._save

    def save_then_stop(where, state):  # a run killed after its second save
        original(where, state)
        calls[0] += 1
        if calls[0] == 2:
            raise Stop

    ais_module._save = save_then_stop
    try:
        with pytest.raises(Stop):
            ais_module.ais(model.log_lik, x, 2, steps=60, chains=4, block_size=4, seed=6, checkpoint=path,
                           checkpoint_every=25)  # fmt: skip
    finally:
        ais_module._save = original
    resumed = ais_module.ais(model.log_lik, x, 2, steps=60, chains=4, block_size=4, seed=6, checkpoint=path,
                             checkpoint_every=25)  # fmt: skip
    assert torch.allclose(resumed.per_example, whole.per_example)


# ------------------------------------------------------------------ a VAE with a 2-D latent: grid truth
def _digits(split: str, n: int) -> torch.Tensor:
    from gen_eval.datasets import get_dataset

    return torch.from_numpy(get_dataset("digits").read(split, 0, n)[0].copy())


@pytest.fixture(scope="module")
def vae2d():
    """A small digits VAE with a 2-D latent, trained here (a few seconds), and 12 test images."""
    from reference_models.vae import VAE

    torch.manual_seed(0)
    model = VAE("digits", latent_dim=2, hidden=64, channels=16)
    train = _digits("train", 1437)
    optimiser = torch.optim.Adam(model.parameters(), lr=3e-3)
    g = torch.Generator().manual_seed(0)
    for _ in range(12):
        for idx in torch.randperm(len(train), generator=g).split(64):
            reconstruction, kl = model.elbo_terms(train[idx], g)
            loss = (kl - reconstruction).mean()
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
    model.eval()
    return model, _digits("test", 12)


def grid_log_px(model, x: torch.Tensor, half_width: float = 5.0, points: int = 401) -> torch.Tensor:
    """log p(x) = log ∫ p(x|z) p(z) dz by a Riemann sum on a fine square grid over the 2-D latent."""
    from reference_models.common import to_level_indices

    axis = torch.linspace(-half_width, half_width, points, dtype=torch.float64)
    z = torch.cartesian_prod(axis, axis)
    log_cell = 2 * math.log(float(axis[1] - axis[0]))
    log_prior = -0.5 * z.pow(2).sum(1) - math.log(2 * math.pi)
    k = to_level_indices(x, 17).reshape(len(x), -1)  # (examples, pixels)
    pixel = torch.arange(k.shape[1])
    parts = []
    with torch.no_grad():  # one decoder pass per grid chunk, shared by every example
        for chunk in z.split(20_000):
            log_p = model.decoder(chunk.float()).reshape(len(chunk), -1, 17).log_softmax(-1)
            parts.append(log_p[:, pixel, k].to(torch.float64).sum(-1))  # (chunk, examples)
    log_lik = torch.cat(parts)
    return torch.logsumexp(log_lik + log_prior[:, None], 0) + log_cell


def test_grid_integration_is_converged(vae2d):
    model, x = vae2d
    fine, coarse = grid_log_px(model, x[:3]), grid_log_px(model, x[:3], points=201)
    assert torch.allclose(fine, coarse, atol=0.01)  # halving the spacing changes nothing: it is the truth


def test_ais_agrees_with_grid_truth_on_a_2d_vae(vae2d):
    from gen_eval.likelihood.ais import ais

    model, x = vae2d
    truth = grid_log_px(model, x)
    estimate = ais(model.log_likelihood_given_latent, x, 2, steps=1000, seed=7, hmc=SHORT)
    error = float(estimate.per_example.mean() - truth.mean())
    mc_se = estimate.details["monte_carlo_stderr"]
    assert abs(error) < 3 * mc_se + 0.02, (error, mc_se)
    # Per example, too: each estimate within 4 of its own standard errors (plus float noise).
    assert ((estimate.per_example - truth).abs() < 4 * estimate.per_example_stderr + 0.05).all()


def test_hand_written_vae_gradient_matches_autograd(vae2d):
    """AIS's leapfrog uses the VAE's own gradient of log p(x|z); autograd on log_likelihood is the reference."""
    from gen_eval.likelihood.ais import _likelihood_and_grad
    from reference_models import load_model

    for model, x in (vae2d, (load_model("vae"), _digits("test", 8))):
        z = torch.randn(len(x), model.latent_dim, generator=torch.Generator().manual_seed(9)) * 1.5
        reference = z.clone().requires_grad_(True)
        value = model.log_likelihood(x, reference)
        (grad,) = torch.autograd.grad(value.sum(), reference)
        mine_value, mine_grad = model.log_likelihood_and_grad_given_latent(x, z)
        assert torch.allclose(mine_value, value.detach(), atol=1e-4)
        assert torch.allclose(mine_grad, grad, rtol=1e-4, atol=1e-4 * float(grad.abs().max()))
        assert grad.abs().max() > 1  # a gradient worth checking, not zeros everywhere
        # AIS picks the hand-written path for the model's method and autograd for any other callable.
        via_ais = _likelihood_and_grad(model.log_likelihood_given_latent, x, z)
        via_autograd = _likelihood_and_grad(
            lambda x_, z_, m=model: m.log_likelihood_given_latent(x_, z_), x, z
        )
        assert torch.allclose(via_ais[1], via_autograd[1], rtol=1e-4, atol=1e-4 * float(grad.abs().max()))


def test_iwae_stays_below_the_truth_and_rises_with_k(vae2d):
    model, x = vae2d
    truth = float(grid_log_px(model, x).mean())
    repeated = x.repeat(20, 1, 1, 1)  # 20 independent bounds per image: the means differ by more than noise
    bounds = [float(model.iwae(repeated, k, torch.Generator().manual_seed(8)).mean()) for k in (1, 2, 4, 16)]
    assert bounds == sorted(bounds), bounds
    assert bounds[-1] < truth
    assert truth - bounds[0] > 0.1  # the ELBO is visibly loose: a check that could fail


# ----------------------------------------------------------------------------------- the shipped VAE
def test_shipped_vae_ais_above_iwae_above_elbo():
    from gen_eval.likelihood.methods import Settings, run_all
    from reference_models import load_model

    model = load_model("vae")
    x = _digits("test", 24)
    settings = Settings(steps=200, chains=8, seed=0)
    elbo, iwae, ais = run_all(["elbo", "iwae", "ais"], model, x, settings, levels=17)
    assert (elbo.kind, iwae.kind, ais.kind) == ("bound", "bound", "estimate")
    assert iwae.method == "iwae-100"

    def paired_se(a, b):  # the same examples: the standard error of the mean difference
        return float((a.per_example - b.per_example).std() / math.sqrt(len(x)))

    assert ais.value >= iwae.value - 2 * paired_se(ais, iwae)
    assert iwae.value >= elbo.value - 2 * paired_se(iwae, elbo)
    assert ais.value > elbo.value  # not merely within noise: the ELBO is looser by nats


# ---------------------------------------------------------------------------- gen-eval likelihood
def _cli(args: list[str]):
    from typer.testing import CliRunner

    from gen_eval.cli import app

    return CliRunner().invoke(app, ["likelihood", *args])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["ref:vae", "--data", "digits:test", "--method", "guess"], "--method 'guess': use auto or any of"),
        (["ref:vae", "--data", "digits:test", "--steps", "0"], "--steps '0': give a positive number"),
        (
            ["ref:pixelcnn", "--data", "digits:test", "--method", "ais"],
            "PixelCNN does not allow --method ais",
        ),
        (["ref:vae", "--data", "digits:test", "--frobnicate"], "No such option"),
        (["ref:dcgan", "--data", "digits:test", "--method", "elbo", "--save"], "--save stores an AIS result"),
        (["ref:dcgan", "--data", "digits:test", "--save"], "--save stores an AIS result"),
        (
            ["ref:dcgan", "--data", "digits:test", "--num-examples", "3", "--method", "ais", "--save"],
            "--save scores the whole test split: use --data digits:test without --num-examples",
        ),
        (
            ["ref:dcgan", "--data", "digits:train", "--method", "ais", "--save"],
            "--save scores the whole test split",
        ),
        (["model.py:make", "--data", "digits:test", "--method", "ais", "--save"], "bundled models only"),
    ],
)
def test_cli_input_errors_are_one_line(args, message):
    result = _cli(args)
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], result.output


def test_cli_labels_a_gan_likelihood_as_gaussian_noise_and_numbers_are_numbers():
    import json

    result = _cli(["ref:dcgan", "--data", "digits:test", "--num-examples", "3", "--method", "ais", "--steps", "5",
                   "--chains", "2", "--sigma", "0.1", "--json"])  # fmt: skip
    assert result.exit_code == 0, result.output
    (entry,) = json.loads(result.stdout)["methods"]
    assert entry["label"].startswith("AIS under Gaussian observation noise sigma = 0.1; not comparable")
    assert isinstance(entry["bits_per_dim"], float) and entry["details"]["sigma"] == 0.1
    table = _cli(["ref:dcgan", "--data", "digits:test", "--num-examples", "3", "--method", "ais", "--steps", "5",
                  "--chains", "2", "--sigma", "0.1", "-q"])  # fmt: skip
    assert "not comparable with exact likelihoods" in table.output


def test_discretised_gaussian_sums_to_one_over_the_levels():
    from gen_eval.likelihood.observation import gaussian_observation

    class Decoder:
        latent_dim = 1

        def decode(self, z):
            return z.reshape(-1, 1, 1, 1)  # the mean pixel is z itself

    observation = gaussian_observation(Decoder(), 0.07, levels=17)
    levels = torch.round(torch.arange(17) * 255 / 16).to(torch.uint8).reshape(17, 1, 1, 1)
    for mean in (0.0, 0.31, 0.5, 0.97):
        log_p = observation.log_lik(levels, torch.full((17, 1), mean))
        assert float(log_p.exp().sum()) == pytest.approx(1.0, abs=1e-6)


# ------------------------------------------------------------------------------- evaluate's bits/dim
def test_evaluate_gives_a_gan_a_bits_per_dim_only_when_ais_is_asked(tmp_path):
    from gen_eval.evaluation import evaluate

    common = dict(metrics=["bpd"], num_samples=50, num_reference=6, collapse=False, show_progress=False)
    from gen_eval.errors import GenEvalError

    with pytest.raises(GenEvalError, match=r"log_prob.*or -o bpd_method=ais"):  # AIS is slow: never unasked
        evaluate("ref:dcgan", "digits:test", **common)
    options = {"bpd_method": "ais", "bpd_steps": 5, "bpd_chains": 2, "bpd_sigma": 0.1}
    asked = evaluate("ref:dcgan", "digits:test", metric_options=options, **common)
    result = asked.metrics["bits_per_dim"]
    assert result.kind == "estimate" and result.details["method"] == "ais"
    assert (result.details["steps"], result.details["chains"], result.details["levels"]) == (5, 2, 17)
    assert any("not comparable with exact likelihoods" in w for w in result.warnings)
    vae = evaluate("ref:vae", "digits:test", **common).metrics["bits_per_dim"]
    assert vae.kind == "bound" and vae.details["method"] == "log_prob (iwae)"


def test_bench_fit_recovers_a_planted_linear_cost():
    from gen_eval.bench.likelihood import _fit

    rows = [{"work": w, "seconds": 0.5 + 2e-6 * w} for w in (1_000, 10_000, 50_000, 200_000)]
    intercept, slope = _fit(rows)
    assert intercept == pytest.approx(0.5) and slope == pytest.approx(2e-6)


def test_cli_steps_auto_takes_the_schedule_bdmc_certified():
    import json

    result = _cli(["ref:vae", "--data", "digits:test", "--num-examples", "2", "--method", "ais", "--steps", "auto",
                   "--chains", "2", "--bdmc-examples", "2", "--tolerance", "1000", "--json"])  # fmt: skip
    assert result.exit_code == 0, result.output
    (entry,) = json.loads(result.stdout)["methods"]
    assert entry["details"]["steps"] == 100  # the first schedule already met the (loose) tolerance
    assert isinstance(entry["details"]["bdmc_gap"], float)


def test_scorecard_likelihood_section_puts_every_method_side_by_side():
    from gen_eval.demo.likelihood_table import likelihood_section

    lines = likelihood_section(("vae", "baseline"), num_examples=4, ais_steps=(5, 20), chains=2, iwae_k=(10,),
                               bdmc_examples=2)  # fmt: skip
    text = "\n".join(lines)
    assert "## Likelihood by method (digits)" in text
    vae = text[text.index("**vae**") : text.index("**baseline**")]
    for row in ("| elbo | bound |", "| iwae-10 | bound |", "| ais | estimate |", "| bdmc | bracket |"):
        assert row in vae
    assert "5 steps x 2 chains" in vae and "20 steps x 2 chains" in vae
    assert "| exact | exact |" in text[text.index("**baseline**") :]


def test_cli_save_stores_the_ais_result_beside_the_checkpoint_and_refuses_it_once_stale(
    tmp_path, monkeypatch
):
    import json

    from gen_eval.errors import GenEvalError
    from gen_eval.likelihood import stored

    target = tmp_path / "dcgan.ais.json"
    monkeypatch.setattr(stored, "stored_path", lambda name: target)  # not the shipped file
    result = _cli(["ref:dcgan", "--data", "digits:test", "--method", "ais,bdmc", "--steps", "2", "--chains", "2",
                   "--bdmc-examples", "4", "--sigma", "0.2", "--json", "--save"])  # fmt: skip
    assert result.exit_code == 0, result.output
    (ais_entry, _) = json.loads(result.stdout)["methods"]
    record = stored.load_stored("dcgan")
    assert record["bits_per_dim"] == pytest.approx(ais_entry["bits_per_dim"])
    assert (
        record["examples"] == 360 and record["steps"] == 2 and record["chains"] == 2 and record["seed"] == 0
    )
    assert record["observation"] == {"model": "discretised Gaussian", "sigma": 0.2, "chosen_on": "given (--sigma)",
                                     "validation_log_p_nats": None, "selection": None, "grid_edge": None,
                                     "warning": None}  # fmt: skip
    assert record["bdmc"]["examples"] == 4 and record["bdmc"]["gap"] is not None
    assert record["label"].startswith("AIS under Gaussian observation noise sigma = 0.2; not comparable")
    assert "--steps 2 --chains 2 --save" in record["command"]
    # After a retrain (another checkpoint hash) the file is refused, naming the fix.
    target.write_text(json.dumps(dict(record, checkpoint_sha256="0" * 64)))
    with pytest.raises(
        GenEvalError, match=r"stale: computed for checkpoint 000000000000.*gen-eval likelihood ref:dcgan"
    ):
        stored.load_stored("dcgan")
