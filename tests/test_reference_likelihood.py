"""The exact-likelihood reference models: the gated PixelCNN and RealNVP.

Besides loading and training, these check the properties the likelihood numbers rest on: the
PixelCNN is causal with no blind spot, normalised, and samples from the distribution it scores;
RealNVP inverts exactly and its log-det is the true log |det J|.
"""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from gen_eval.datasets import get_dataset
from reference_models import MODELS, load_model, pixelcnn, realnvp
from reference_models.common import from_level_indices, to_level_indices
from reference_models.train import train_model

GRID = {round(k * 255 / 16) for k in range(17)}
TINY = {
    "pixelcnn": {"channels": 4, "layers": 2, "first_kernel": 3, "kernel": 3},
    "realnvp": {"masks": ["checker0", "checker1"], "hidden": 4},
}
QUALITY_BAR = {"pixelcnn": 2.0, "realnvp": 2.4}  # bits/dim on digits:test (exact / upper bound)


pytestmark = pytest.mark.usefixtures("one_thread")  # see conftest.py


def digits_test(n: int = 360) -> torch.Tensor:
    return torch.from_numpy(get_dataset("digits").read("test", 0, n)[0])


def perturb(model: torch.nn.Module, scale: float, seed: int = 0) -> torch.nn.Module:
    """Random weights everywhere, zero-initialised layers included, so nothing is trivially uniform."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(scale * torch.randn(p.shape, generator=generator, dtype=p.dtype))
    return model.eval()


def toy_pixelcnn(levels: int = 3) -> pixelcnn.PixelCNN:
    """A 2x2 PixelCNN with random weights large enough that its pixels depend strongly on each other."""
    torch.manual_seed(0)
    hparams = dict(pixelcnn.DEFAULTS, channels=8, layers=2, first_kernel=3, shape=(1, 2, 2), levels=levels)
    return perturb(pixelcnn.build(hparams, "digits"), scale=0.5)


def all_images(shape: tuple[int, ...], levels: int) -> torch.Tensor:
    k = torch.tensor(list(itertools.product(range(levels), repeat=math.prod(shape))))
    return from_level_indices(k.reshape(-1, *shape), levels)


# ----------------------------------------------------------------------------------- shipped checkpoints
@pytest.mark.parametrize("name", ["pixelcnn", "realnvp"])
def test_shipped_checkpoint_samples_and_meets_the_quality_bar(name):
    model = load_model(name)
    assert MODELS[name].checkpoint.stat().st_size < 5e6
    samples = model.sample(8, generator=torch.Generator().manual_seed(0))
    assert samples.shape == (8, 1, 8, 8) and samples.dtype == torch.uint8
    assert set(samples.unique().tolist()) <= GRID and samples.float().std() > 0
    again = model.sample(8, generator=torch.Generator().manual_seed(0))
    assert torch.equal(samples, again)
    x = digits_test()
    nats = model.log_prob(x, generator=torch.Generator().manual_seed(0))
    assert nats.dtype == torch.float64 and nats.shape == (360,)
    offset = 64 * math.log(17) if model.likelihood == "dequantized" else 0.0
    bits_per_dim = float(-(nats.mean() - offset) / (64 * math.log(2)))
    assert bits_per_dim < QUALITY_BAR[name]


@pytest.mark.parametrize("name", ["pixelcnn", "realnvp"])
def test_one_epoch_of_training_saves_a_loadable_checkpoint(name, tmp_path):
    model, config = train_model(name, epochs=1, directory=tmp_path, show_progress=False, overrides=TINY[name])
    assert config["summary"]["epochs_run"] == 1 and math.isfinite(config["summary"]["val_bits_per_dim"])
    loaded = load_model(name, directory=tmp_path)
    x = digits_test(8)
    same = torch.Generator().manual_seed(1), torch.Generator().manual_seed(1)
    assert torch.equal(model.log_prob(x, generator=same[0]), loaded.log_prob(x, generator=same[1]))


# ------------------------------------------------------------------------------------------- PixelCNN
def test_pixelcnn_is_causal_without_a_blind_spot():
    """The logits of pixel p depend on every earlier pixel (raster order) and on no other."""
    torch.manual_seed(0)
    model = perturb(pixelcnn.build(dict(pixelcnn.DEFAULTS, channels=4), "digits"), scale=0.1)
    k = torch.randint(0, 17, (1, 1, 8, 8))
    onehot = torch.nn.functional.one_hot(k[:, 0], 17).permute(0, 3, 1, 2).float().requires_grad_(True)
    logits = model.network(onehot)
    # Rows never see the rows below them, so the top rows alone give the same logits (sampling uses that).
    assert torch.allclose(model.logits(k[:, :, :3]), model.logits(k)[:, :, :3], atol=1e-6)
    for p in range(64):
        (grad,) = torch.autograd.grad(logits[0, :, p // 8, p % 8].sum(), onehot, retain_graph=True)
        seen = grad.abs().sum(1).flatten() > 0
        assert torch.equal(seen, torch.arange(64) < p), f"pixel {p} sees {seen.nonzero().flatten().tolist()}"


@pytest.mark.parametrize("levels", [2, 3])
def test_pixelcnn_probabilities_sum_to_one_over_all_images(levels):
    model = toy_pixelcnn(levels)
    images = all_images((1, 2, 2), levels)
    assert len(images) == levels**4
    total = model.log_prob(images).exp().sum()
    assert total == pytest.approx(1.0, abs=1e-6)


def test_pixelcnn_samples_follow_its_own_log_prob():
    """Pixel-by-pixel sampling draws from the same joint that log_prob scores (a chi-square test).

    With these weights, sampling in the wrong order (column-major) gives a statistic near 300 and
    sampling every pixel from one forward pass tens of thousands; the correct sampler ~80 (81 cells).
    """
    model = toy_pixelcnn(3)
    images = all_images((1, 2, 2), 3)
    probs = model.log_prob(images).exp()
    n = 20_000
    samples = model.sample(n, generator=torch.Generator().manual_seed(0))
    index = (to_level_indices(samples, 3).flatten(1) * torch.tensor([27, 9, 3, 1])).sum(1)
    observed = torch.bincount(index, minlength=len(images)).double()
    chi_square = float(((observed - n * probs) ** 2 / (n * probs)).sum())
    assert chi_square < 140  # the 1e-6 upper tail of chi-square with 80 degrees of freedom


# -------------------------------------------------------------------------------------------- RealNVP
def toy_flow(shape=(1, 8, 8), masks=None) -> realnvp.RealNVP:
    """A small random float64 flow, with the default masks unless told otherwise."""
    torch.manual_seed(0)
    hparams = dict(realnvp.DEFAULTS, hidden=8, shape=shape)
    if masks is not None:
        hparams["masks"] = masks
    return perturb(realnvp.build(hparams, "digits"), scale=0.3).double()


def test_realnvp_log_det_matches_the_jacobian():
    model = toy_flow()
    y = torch.rand(2, 1, 8, 8, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    _, log_det = model.to_latent(y)
    for yi, expected in zip(y, log_det, strict=True):
        jacobian = torch.autograd.functional.jacobian(
            lambda v: model.to_latent(v.reshape(1, 1, 8, 8))[0][0], yi.flatten()
        )
        assert jacobian.shape == (64, 64)
        # The Jacobian is badly conditioned (~1e9: the logit map's slope runs from 4 to ~1000), so LU
        # recovers log |det| to ~1e-8 only; a wrong or missing log-det term would be off by far more.
        assert torch.linalg.slogdet(jacobian).logabsdet.item() == pytest.approx(expected.item(), abs=1e-6)


def test_realnvp_inverts_exactly():
    model = toy_flow()
    y = torch.rand(5, 1, 8, 8, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    with torch.no_grad():
        assert torch.allclose(model.from_latent(model.to_latent(y)[0]), y, atol=1e-10)
    shipped = load_model("realnvp")
    x = digits_test(100)
    z = shipped.encode(x)
    assert z.shape == (100, shipped.latent_dim) == (100, 64)
    assert torch.equal(shipped.decode(z), x)


def test_realnvp_density_integrates_to_one_in_two_dimensions():
    """A 1x2 flow: integrate p(y) over all y the model reaches, in logit coordinates.

    y = (sigmoid(x) - a) / (1 - 2a) maps R^2 onto the support, so the integral of p(y) dy is the
    integral of p(y(x)) |dy/dx| dx, whose integrand decays fast: a trapezoid grid over a wide box
    is accurate to ~3e-4 (ReLU kinks limit it), while a missing log-det term would be off by ~10%.
    """
    model = toy_flow(shape=(1, 1, 2), masks=["checker0", "checker1", "checker0"])
    a = model.alpha
    x = torch.linspace(-15, 15, 181, dtype=torch.float64)
    grid = torch.cartesian_prod(x, x)
    s = torch.sigmoid(grid)
    y = ((s - a) / (1 - 2 * a)).reshape(-1, 1, 1, 2)
    log_dy_dx = (torch.log(s) + torch.log1p(-s) - math.log(1 - 2 * a)).sum(1)
    with torch.no_grad():
        integrand = (model.log_density(y) + log_dy_dx).exp().reshape(len(x), len(x))
    mass = torch.trapezoid(torch.trapezoid(integrand, x), x)
    assert mass.item() == pytest.approx(1.0, abs=1e-3)


# ------------------------------------------------------------------ the GANs' stored AIS bits/dim
DIGITS_GANS = [name for name, entry in MODELS.items() if entry.family == "gan" and entry.dataset == "digits"]


@pytest.mark.parametrize("name", DIGITS_GANS)
def test_every_digits_gan_ships_a_current_stored_ais_result(name):
    from gen_eval.likelihood.observation import GAUSSIAN_LABEL, SIGMA_GRID, grid_edge
    from gen_eval.likelihood.stored import load_stored

    record = load_stored(name)  # refuses a stale file: regenerate with the command it names
    assert record is not None, (
        f"no {name}.ais.json: gen-eval likelihood ref:{name} --data digits:test --method ais,bdmc --save"
    )
    sigma = record["observation"]["sigma"]
    assert record["kind"] == "estimate" and record["examples"] == 360 and record["dimensions"] == 64
    assert record["label"] == GAUSSIAN_LABEL.format(sigma=sigma)
    # sigma was chosen on validation images as the best of the grid (Wu et al.), not on the test split
    scores = record["observation"]["validation_log_p_nats"]
    assert max(scores, key=scores.__getitem__) == f"{sigma:g}"
    # ... and inside the grid: a choice at an end brackets no optimum (collapsed_digits' 0.3 once was)
    assert grid_edge(sigma, {float(s): v for s, v in scores.items()}) is None, scores
    assert record["observation"].get("grid_edge") is None
    if "grid_edge" in record["observation"]:  # stored since the grid grew: every sigma of it was tried
        assert sorted(float(s) for s in scores) == list(SIGMA_GRID)
    assert record["bdmc"]["gap"] >= -1.0  # reverse above forward, up to noise
    low, high = record["bits_per_dim_interval"]
    assert low < record["bits_per_dim"] < high
    # Worse than a uniform guess over the 17 levels would be a broken run.
    assert 1.5 < record["bits_per_dim"] < 4.09
    from gen_eval.demo.likelihood_table import _stored_row

    row = _stored_row(record)  # the scorecard's likelihood-by-method row
    assert row["kind"] == "estimate" and "on all 360 test images (stored), BDMC gap" in row["setting"]


def test_a_stored_gan_value_is_reproduced_and_a_planted_error_is_caught():
    """AIS on 16 test digits, rerun with the stored settings and another seed, must agree with the stored
    per-example values within their noise (a paired test); the same values shifted by 4 nats must not.

    Two chains at 200 steps leave about 1.8 nats of noise in each per-image difference, so 16 images
    resolve about 0.5 nats: a planted error of 4 nats per image (0.09 bits/dim) is caught with room."""
    from gen_eval.likelihood.ais import HMCSettings, ais
    from gen_eval.likelihood.observation import gaussian_observation
    from gen_eval.likelihood.stored import load_stored

    record = load_stored("dcgan")
    model, x = load_model("dcgan"), digits_test(16)
    observation = gaussian_observation(model, record["observation"]["sigma"], record["levels"])
    rerun = ais(observation.log_lik, x, model.latent_dim, steps=record["steps"], chains=record["chains"],
                hmc=HMCSettings(leapfrog=record["leapfrog"]), seed=record["seed"] + 1)  # fmt: skip
    stored = torch.tensor(record["per_example_log_p_nats"][:16], dtype=torch.float64)

    def paired_z(values: torch.Tensor) -> float:
        diff = rerun.per_example - values
        return float(diff.mean().abs() / (diff.std() / math.sqrt(len(diff))))

    assert paired_z(stored) < 4, (rerun.per_example, stored)
    assert paired_z(stored + 4.0) > 4 and paired_z(stored - 4.0) > 4, (rerun.per_example, stored)


def test_a_stale_stored_result_leaves_the_leaderboard_cell_empty_with_a_note(tmp_path, monkeypatch, capsys):
    import json

    from gen_eval.demo.leaderboard import ModelScore, add_stored_likelihoods, print_leaderboard
    from gen_eval.likelihood import stored

    record = json.loads(stored.stored_path("dcgan").read_text())
    monkeypatch.setattr(stored, "stored_path", lambda name: tmp_path / f"{name}{stored.SUFFIX}")
    (tmp_path / "dcgan.ais.json").write_text(json.dumps(record))
    (tmp_path / "wgan_gp.ais.json").write_text(json.dumps(dict(record, model="wgan_gp")))  # dcgan's hash
    fid = {"value": 21.7, "kind": "estimate", "interval": None, "num_generated": 1000}
    scores = [ModelScore(name, "gan", "digits", None, {"fid": fid}, None, {"covered": 10, "total": 10}, {})
              for name in ("dcgan", "wgan_gp")]  # fmt: skip
    add_stored_likelihoods(scores)
    dcgan, wgan = scores
    assert dcgan.metrics["bits_per_dim"]["value"] == record["bits_per_dim"]
    assert dcgan.metrics["bits_per_dim"]["kind"] == "estimate" and not dcgan.notes
    assert "bits_per_dim" not in wgan.metrics and "is stale" in wgan.notes[0]
    print_leaderboard(scores)
    out = capsys.readouterr().out
    assert f"≈{record['bits_per_dim']:.3f}†" in out
    assert f"sigma = {record['observation']['sigma']:g}; not comparable with exact likelihoods" in out
