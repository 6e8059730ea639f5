"""Small inconsistencies (issue 20): display names and arrows, the birthday verdict, latent help."""

from __future__ import annotations

import math
from statistics import NormalDist
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

import gen_eval.latent
import gen_eval.report.text as report_text
from gen_eval.cli import app
from gen_eval.collapse.verdict import BIRTHDAY_P_VALUE, excess_p_value, summarise
from gen_eval.evaluation import Evaluation
from gen_eval.latent import analyse
from gen_eval.metrics.result import BASELINES, Result, better_label, display_name


def _result(name: str, direction: str = "lower") -> Result:
    return Result(name=name, value=0.5, direction=direction, num_generated=100, num_reference=100)


def test_terminal_table_uses_display_names_and_no_arrow_for_a_baseline(monkeypatch, capsys):
    names = {"fid": "lower", "fd_inf": "lower", "ms_ssim": "lower", "ms_ssim_reference": "lower"}
    names |= {"bits_per_dim": "lower", "precision": "higher"}
    manifest = {"generated": {"spec": "g"}, "reference": {"spec": "r"}, "extractor": {"name": "digits"}}
    evaluation = Evaluation({n: _result(n, d) for n, d in names.items()}, manifest)
    monkeypatch.setenv("COLUMNS", "200")
    report_text.print_evaluation(evaluation)
    lines = capsys.readouterr().out.splitlines()
    text = "\n".join(lines)
    assert "fd inf" not in text and "ms ssim" not in text
    (reference_row,) = [line for line in lines if "MS-SSIM (reference)" in line]
    assert "baseline" in reference_row and "lower" not in reference_row
    assert any("FD∞" in line and "↓ lower" in line for line in lines)
    assert any("precision" in line and "↑ higher" in line for line in lines)


def test_display_helpers_agree_everywhere():
    from dashboards.widgets import metric_name
    from gen_eval.report.figures import label

    for name in ("fd_inf", "ms_ssim_reference", "kid", "bits_per_dim", "coverage"):
        assert label(name) == display_name(name) == metric_name(name, {})
        assert "_" not in display_name(name)
    assert display_name("fd_inf") == "FD∞" and display_name("ms_ssim_reference") == "MS-SSIM (reference)"
    assert better_label("ms_ssim_reference", "lower") == "baseline" and "ms_ssim_reference" in BASELINES
    assert better_label("ms_ssim", "lower") == "↓ lower" and better_label("is", "higher") == "↑ higher"


def _birthday(rate: float, reference_rate: float, small: bool = False) -> SimpleNamespace:
    return SimpleNamespace(
        small_support=small,
        duplicate_rate=rate,
        reference_duplicate_rates=[reference_rate],
        batch_size=32,
        num_batches=200,
        support_estimate=880.0,
    )


def _finding(result: SimpleNamespace):
    (finding,) = summarise({"birthday": result}, {})
    return finding


def test_birthday_verdict_compares_with_the_reference_rate():
    flagged = _finding(_birthday(0.43, 0.02))  # the case, labelled "ok" before
    assert flagged.severity == "warning"
    assert "43% of batches of 32 vs 2% for the reference" in flagged.message
    assert "about 880 distinct samples" in flagged.message
    assert _finding(_birthday(0.005, 0.004)).severity == "ok"  # real held-out digits
    assert _finding(_birthday(0.03, 0.02)).severity == "ok"  # within chance of the reference
    assert _finding(_birthday(1.0, 0.0, small=True)).severity == "collapse"


def test_excess_p_value_is_the_two_proportion_z_test():
    for rate, ref, n in [(0.12, 0.06, 500), (0.05, 0.02, 200), (0.3, 0.25, 1000)]:  # cdf exact here
        pooled = (rate * n + ref * n) / (2 * n)
        z = (rate - ref) / math.sqrt(pooled * (1 - pooled) * (2 / n))
        assert excess_p_value(rate, ref, n) == pytest.approx(NormalDist().cdf(-z), rel=1e-6, abs=1e-300)
    assert excess_p_value(0.0, 0.0, 200) == 1.0
    assert excess_p_value(0.43, 0.02, 200) < BIRTHDAY_P_VALUE < excess_p_value(0.03, 0.02, 200)


def test_a_planted_1700_image_sampler_is_flagged_and_real_data_is_not(one_thread):
    from gen_eval.collapse.birthday import birthday_test
    from gen_eval.datasets.digits import load_digits_split
    from gen_eval.features import create_extractor

    extractor = create_extractor("digits")
    with torch.no_grad():
        train = extractor(torch.as_tensor(load_digits_split("train")[0]))["features"]
        test = extractor(torch.as_tensor(load_digits_split("test")[0]))["features"]
        everything = extractor(torch.as_tensor(load_digits_split("all")[0]))["features"]
    rng = np.random.default_rng(2)
    pool = rng.choice(len(everything), 1700, replace=False)
    planted = everything[pool[rng.integers(1700, size=4000)]]
    assert _finding(birthday_test(planted, train)).severity == "warning"
    assert _finding(birthday_test(test, train)).severity == "ok"


def test_latent_help_lists_every_analysis_from_the_registry():
    assert analyse.ANALYSES is gen_eval.latent.ANALYSES  # one list: the help cannot drift from it
    result = CliRunner().invoke(app, ["latent", "--help"], env={"COLUMNS": "200"})
    text = " ".join(result.output.replace("│", " ").split())
    assert result.exit_code == 0
    for name in gen_eval.latent.ANALYSES:
        assert name in text, name
    assert "disentanglement" in text and "Default: all but disentanglement" in text
