"""Issue 21's last gaps: a noise sigma chosen at an end of its grid is flagged, and a model whose
``log_prob`` is its ELBO (ddpm) gets its bound row from ``auto`` and in the scorecard's table.

The edge checks plant the answer: a decoder whose output lies far off the data needs more noise
than any sigma of a grid that stops short, and one whose optimum lies inside the grid is not flagged.
"""

from __future__ import annotations

import math

import pytest
import torch

pytestmark = pytest.mark.usefixtures("one_thread")  # conftest: tiny networks, one thread


class ConstantDecoder:
    """x = g(z) = ``level`` everywhere whatever z. For data that is a density (float vectors) the best
    noise sigma is then the data's RMS distance from ``level``; for 17-level images far off ``level``
    (a mean of 3, beyond the pixel range) it is larger than any sigma of the grid."""

    latent_dim = 1

    def __init__(self, level: float):
        self.level = level

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.level + 0 * z[:, :1].reshape(-1, 1, 1, 1).expand(-1, 1, 8, 8)


def noise_around_zero(n: int, scale: float = 0.3) -> torch.Tensor:
    """Float "images" with RMS ``scale`` about 0: the constant decoder at 0 is best with sigma ~ scale."""
    return scale * torch.randn(n, 1, 8, 8, generator=torch.Generator().manual_seed(0))


def digits(split: str, n: int) -> torch.Tensor:
    """The first ``n`` digits of "test" or of "val" (the models' validation images, where sigma is chosen)."""
    if split == "val":
        from reference_models.common import load_training_data

        return load_training_data("digits").val[:n]
    from gen_eval.datasets import get_dataset

    return torch.from_numpy(get_dataset("digits").read(split, 0, n)[0].copy())


def test_grid_edge_names_either_end_and_nothing_inside():
    from gen_eval.likelihood.observation import edge_warning, grid_edge

    scores = {0.1: -3.0, 0.2: -1.0, 0.3: -2.0}
    assert grid_edge(0.2, scores) is None and edge_warning(0.2, scores) is None
    assert grid_edge(0.3, scores) == "highest" and grid_edge(0.1, scores) == "lowest"
    assert edge_warning(0.3, scores).startswith(
        "observation noise sigma = 0.3 is the highest value of the grid"
    )


def test_the_grid_keeps_its_old_values_and_reaches_a_pixels_whole_range():
    from gen_eval.likelihood.observation import SIGMA_GRID

    # dcgan's and wgan_gp's stored choices (0.2) were made on the old grid: it must still hold them.
    assert set((0.02, 0.035, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3)) < set(SIGMA_GRID)
    assert list(SIGMA_GRID) == sorted(SIGMA_GRID) and max(SIGMA_GRID) == 1.0


def test_choose_sigma_at_an_end_of_a_grid_is_flagged_and_inside_one_is_not():
    from gen_eval.likelihood.observation import choose_sigma, grid_edge

    val, model = noise_around_zero(4), ConstantDecoder(0.0)
    short = choose_sigma(model, val, None, grid=(0.02, 0.05), steps=2, chains=2)
    above = choose_sigma(model, val, None, grid=(0.3, 1.0, 5.0), steps=2, chains=2)
    wide = choose_sigma(model, val, None, grid=(0.02, 0.3, 5.0), steps=2, chains=2)
    assert short[0] == 0.05 and grid_edge(*short) == "highest"
    assert above[0] == 0.3 and grid_edge(*above) == "lowest"
    assert wide[0] == 0.3 and grid_edge(*wide) is None


def test_a_sigma_at_the_top_of_the_default_grid_warns_in_the_cli_table_and_json(capsys):
    from gen_eval.cli.likelihood import _print, likelihood_document
    from gen_eval.likelihood.methods import Settings, run

    x, val = digits("test", 3), digits("val", 4)
    far = run("ais", ConstantDecoder(3.0), x, Settings(steps=2, chains=2), levels=17, validation=val)
    assert far.details["sigma"] == 1.0 and far.details["sigma_grid_edge"] == "highest"
    document = likelihood_document("far", "digits:test", x, 17, [far])
    assert document["methods"][0]["details"]["sigma_grid_edge"] == "highest"  # the --json field
    _print(document)
    out = capsys.readouterr().out
    assert "warning: observation noise sigma = 1 is the highest value of the grid" in out
    vectors = noise_around_zero(7)  # validation 4 of them, score 3: sigma ~ 0.3, inside the grid
    near = run("ais", ConstantDecoder(0.0), vectors[:3], Settings(steps=2, chains=2), levels=17,
               validation=vectors[3:])  # fmt: skip
    assert 0.02 < near.details["sigma"] < 1.0 and "sigma_grid_edge" not in near.details
    _print(likelihood_document("near", "noise", vectors[:3], 17, [near]))
    assert "warning:" not in capsys.readouterr().out


def test_a_stored_record_says_when_sigma_is_at_an_end_of_the_grid():
    from gen_eval.likelihood.annealing import LikelihoodEstimate
    from gen_eval.likelihood.stored import make_record, stored_metric

    per_example = torch.tensor([-100.0, -110.0], dtype=torch.float64)
    result = LikelihoodEstimate("ais", -105.0, 5.0, "estimate", per_example=per_example, label="AIS under noise",
                                details={"sigma": 0.5, "steps": 2, "chains": 2, "examples": 2})  # fmt: skip
    common = dict(data="digits:test", dimensions=64, levels=17, validation_examples=64)
    top = make_record("dcgan", result, sigma_scores={0.3: -120.0, 0.5: -110.0}, **common)
    inside = make_record("dcgan", result, sigma_scores={0.3: -120.0, 0.5: -110.0, 0.7: -115.0}, **common)
    assert top["observation"]["grid_edge"] == "highest" and "0.3 to 0.5" in top["observation"]["warning"]
    assert inside["observation"]["grid_edge"] is None and inside["observation"]["warning"] is None
    assert top["observation"]["warning"] in stored_metric(top)["warnings"]  # the leaderboard's note
    assert stored_metric(inside)["warnings"] == ["AIS under noise"]


# ---------------------------------------------------------------------------------------- ddpm's bound
@pytest.fixture(scope="module")
def ddpm():
    from reference_models import load_model

    return load_model("ddpm")


def test_auto_gives_ddpm_its_variational_bound(ddpm):
    from gen_eval.likelihood.methods import Settings, allowed, run_all
    from gen_eval.metrics.likelihood import _model_log_prob

    assert allowed(ddpm) == ["elbo"]
    x = digits("test", 3)
    (result,) = run_all("auto", ddpm, x, Settings(seed=0), levels=17)
    assert (result.method, result.kind, result.details["timesteps"]) == ("elbo", "bound", ddpm.num_steps)
    # The same draws as the evaluate path's log_prob: the row is that bound, not another number.
    again = _model_log_prob(ddpm, x, torch.Generator().manual_seed(0))
    assert result.value == pytest.approx(float(again.mean()))
    # A bound on log P(x) of 17-level images: below 0 and above a uniform guess's 64 log(1/17) by far.
    assert 64 * math.log(1 / 17) < result.value < 0


def test_the_cli_and_the_scorecard_table_show_ddpms_bound_row(ddpm):
    from typer.testing import CliRunner

    from gen_eval.cli import app
    from gen_eval.demo.likelihood_table import likelihood_rows

    out = CliRunner().invoke(
        app, ["likelihood", "ref:ddpm", "--data", "digits:test", "--num-examples", "3", "-q"]
    )
    assert out.exit_code == 0, out.output
    assert "│ elbo " in out.output and "100 timesteps, 1 x_t draw each" in out.output
    (row,) = likelihood_rows(ddpm, digits("test", 3))
    assert (row["method"], row["kind"]) == ("elbo", "bound")
    assert row["setting"] == "100 timesteps, 1 x_t draw each" and row["interval"] is not None
    low, high = row["interval"]
    assert low < row["bits_per_dim"] < high


# ------------------------------------------------------------------- rbm_large: an estimate, said so
def test_every_output_of_rbm_larges_bits_per_dim_says_estimate_not_bound(capsys):
    import json

    from typer.testing import CliRunner

    from gen_eval.cli import app
    from gen_eval.demo.leaderboard import ModelScore, print_leaderboard
    from gen_eval.evaluation import evaluate
    from gen_eval.metrics.likelihood import AIS_LOG_Z_CAVEAT

    assert AIS_LOG_Z_CAVEAT.startswith("estimate, not a bound")
    cli = ["likelihood", "ref:rbm_large", "--data", "digits:test", "--num-examples", "3"]
    (entry,) = json.loads(CliRunner().invoke(app, [*cli, "--json"]).stdout)["methods"]
    assert entry["kind"] == "estimate" and entry["label"] == AIS_LOG_Z_CAVEAT
    for method in ("bdmc", "ais"):  # no bracket and no latent: one line saying why, not a traceback
        out = CliRunner().invoke(app, [*cli, "--method", method])
        assert out.exit_code == 2 and len(out.output.strip().splitlines()) == 1, out.output
        assert "reverse AIS needs exact samples from the model" in out.output
    bpd = evaluate("ref:rbm_large", "digits:test", metrics=["bpd"], num_samples=20, num_reference=6,
                   collapse=False, show_progress=False).metrics["bits_per_dim"]  # fmt: skip
    assert bpd.kind == "estimate" and AIS_LOG_Z_CAVEAT in bpd.warnings
    fid = {"value": 133.8, "kind": "estimate", "interval": None, "direction": "lower"}
    score = ModelScore("rbm_large", "boltzmann", "digits", None, {"fid": fid, "bits_per_dim": bpd.to_dict()},
                       None, {"covered": 7, "total": 10}, {})  # fmt: skip
    print_leaderboard([score])
    assert "rbm_large bits/dim: estimate, not a bound" in " ".join(capsys.readouterr().out.split())
