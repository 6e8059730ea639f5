"""What each interval covers: the coverage bench at toy size, its closed forms, and where the
``Result.interval_covers`` sentence is shown (terminal, JSON, HTML report; old runs still load)."""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path

import pytest
import torch

import gen_eval
from gen_eval.bench.coverage import Sizes, run_coverage_benchmark
from gen_eval.bench.coverage_cases import Gaussians, expected_density_coverage


def test_coverage_bench_fid_covers_the_expected_value_at_n_not_the_population(tmp_path: Path) -> None:
    out = tmp_path / "coverage.md"
    text, rows = run_coverage_benchmark(out, Sizes.quick(), metrics=("fid",), progress=False)
    assert out.read_text() == text
    assert text.startswith("# What each 95% interval covers") and "gen-eval bench coverage" in text
    assert [(row["metric"], row["case"]) for row in rows] == [("fid", "equal"), ("fid", "different")]
    equal, different = rows
    assert equal["repeats"] == 30 and equal["large_sample"] == 0.0
    assert different["large_sample"] == pytest.approx(8 * (0.25**2 + 0.2**2))  # closed form, 8-d
    # FID is biased upward at N = 200: the expected value sits well above the population's 0 ...
    assert equal["expected_at_n"] > 10 * equal["expected_se"] > 0
    # ... so the interval holds FID at this N most of the time and the population value ~never.
    assert equal["coverage_expected"] >= 0.75
    assert equal["coverage_large_sample"] <= 0.1
    assert equal["coverage_expected_se"] == pytest.approx(
        math.sqrt(equal["coverage_expected"] * (1 - equal["coverage_expected"]) / 30)
    )
    assert "FID at this sample size (200 generated vs 200 reference)" in equal["interval_covers"]
    assert "| `fid` | equal | 30 |" in text and "### `fid`" in text


def test_kid_closed_form_matches_a_large_sample() -> None:
    # Unbiased MMD^2 of 3,000 + 3,000 points, five times: the closed form within 4 standard errors.
    from gen_eval.metrics.kid import _poly_kernel

    case = Gaussians(4, 0.5, 0.7)
    estimates = []
    for seed in range(5):
        generated, reference = case.sample(3000, 3000, seed)
        x, y = generated["features"], reference["features"]
        kxx, kyy, kxy = (_poly_kernel(a, b, 0.25, 1.0, 3) for a, b in ((x, x), (y, y), (x, y)))
        n = len(x)
        within = (kxx.sum() - kxx.trace() + kyy.sum() - kyy.trace()) / (n * (n - 1))
        estimates.append(float(within - 2 * kxy.mean()))
    estimates = torch.tensor(estimates, dtype=torch.float64)
    standard_error = float(estimates.std() / math.sqrt(len(estimates)))
    assert case.population_kid() == pytest.approx(1.0704156, abs=1e-6)
    assert abs(float(estimates.mean()) - case.population_kid()) < 4 * standard_error + 1e-3
    assert Gaussians(8).population_kid() == pytest.approx(0.0, abs=1e-12)


def test_expected_density_and_coverage_match_monte_carlo() -> None:
    from gen_eval.metrics import MetricContext, get_metric

    density_coverage = get_metric("density_coverage")
    values = torch.tensor(
        [
            [
                r.value
                for r in density_coverage(
                    *Gaussians(3).sample(60, 60, seed), MetricContext(num_resamples=0)
                ).values()
            ]
            for seed in range(150)
        ],
        dtype=torch.float64,
    )
    expected = torch.tensor(expected_density_coverage(60, 60, 5), dtype=torch.float64)
    standard_errors = values.std(0) / math.sqrt(len(values))
    assert expected[1] == pytest.approx(1 - math.prod((59 - j) / (119 - j) for j in range(5)))
    assert ((values.mean(0) - expected).abs() < 4 * standard_errors).all(), (values.mean(0), expected)


@pytest.fixture(scope="module")
def small_run(tmp_path_factory: pytest.TempPathFactory):
    out = tmp_path_factory.mktemp("coverage_run") / "ring8"
    evaluation = gen_eval.evaluate(
        "ring8:test",
        "ring8",
        num_samples=300,
        num_reference=300,
        num_resamples=20,
        collapse=False,
        cache_dir=False,
        out=out,
    )
    return evaluation, out


def test_terminal_json_and_report_say_what_each_interval_covers(small_run, capsys, tmp_path: Path) -> None:
    from gen_eval.report.run_report import write_report
    from gen_eval.report.text import print_evaluation

    evaluation, out = small_run
    print_evaluation(evaluation)
    printed = " ".join(capsys.readouterr().out.split())  # rich wraps long lines
    assert (
        "FID at N=300" in printed
        and "[1] FID at this sample size (300 generated vs 300 reference)" in printed
    )
    assert "see fd_inf for the large-sample value" in printed and "[2] the large-sample KID" in printed
    stored = json.loads((out / "metrics.json").read_text())["metrics"]
    assert stored["fid"]["interval_covers"].startswith("FID at this sample size (300 generated")
    assert json.loads(json.dumps(evaluation.to_dict()))["metrics"]["kid"]["interval_covers"]
    page = write_report(out, tmp_path / "report.html").read_text()
    assert "What each interval covers" in page and "FID at N=300" in page
    assert "compare runs of equal N, M and k" in page


def test_an_old_run_without_interval_covers_loads_and_renders(small_run, tmp_path: Path) -> None:
    import shutil

    from dashboards.widgets import interval_notes
    from gen_eval.report.run_report import run_report_html
    from gen_eval.runs.run import load_run

    _, out = small_run
    old = tmp_path / "old"
    shutil.copytree(out, old)
    document = json.loads((old / "metrics.json").read_text())
    for result in document["metrics"].values():
        del result["interval_covers"]
    (old / "metrics.json").write_text(json.dumps(document))
    manifest = json.loads((old / "manifest.json").read_text())
    manifest["files"]["metrics.json"] = hashlib.sha256((old / "metrics.json").read_bytes()).hexdigest()
    (old / "manifest.json").write_text(json.dumps(manifest))
    run = load_run(old)
    assert run.metrics["fid"].interval is not None and run.metrics["fid"].interval_covers is None
    page = run_report_html(run)
    assert "What each interval covers" not in page and "FID at N=300" in page
    assert interval_notes({name: r.to_dict() for name, r in run.metrics.items()}) == []


def test_compare_page_lists_what_each_run_s_interval_covers(small_run, tmp_path: Path) -> None:
    import shutil

    from gen_eval.comparison.compare import compare
    from gen_eval.comparison.html import comparison_html

    _, out = small_run
    shutil.copytree(out, tmp_path / "again")
    comparison = compare([out, tmp_path / "again"], num_resamples=20, cache_dir=tmp_path / "cache")
    assert comparison.runs[0].metrics["fid"]["interval_covers"].startswith("FID at this sample size (300")
    page = comparison_html(comparison)
    assert "What each run&#x27;s interval covers" in page or "What each run's interval covers" in page
    assert "FID at this sample size (300 generated vs 300 reference)" in page
