"""``gen-eval compare``: B against A with intervals for the differences, refusals, ranking, outputs."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

import gen_eval
from gen_eval.cli import app
from gen_eval.errors import GenEvalError
from gen_eval.features.cache import FeatureCache

FEATURE_METRICS = {"fid", "kid", "is", "precision", "recall", "density", "coverage"}
runner = CliRunner()


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Run directories of bundled models on the digits test split (features cached in ``cache``)."""
    root = tmp_path_factory.mktemp("compare")
    cache = root / "cache"
    old_threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny networks: threads only wait on each other on a busy machine

    def run(name: str, source: str, reference: str = "digits:test", **options) -> Path:
        settings = {"num_samples": 500, "num_resamples": 0, "collapse": False, **options}
        gen_eval.evaluate(source, reference, out=root / name, cache_dir=cache, **settings)
        return root / name

    paths = {
        "dcgan": run("dcgan", "ref:dcgan", collapse=True),
        "dcgan_seed1": run("dcgan_seed1", "ref:dcgan", seed=1),
        "collapsed": run("collapsed", "ref:collapsed_digits", collapse=True),
        "identity": run("identity", "ref:dcgan", features="identity", metrics=["fid"]),
        "train_reference": run("train_reference", "ref:dcgan", "digits:train", metrics=["fid"]),
        # Stored intervals and a metric that needs images (MS-SSIM): the normal approximation.
        "small": run("small", "ref:dcgan", num_samples=300, metrics=["fid", "ms_ssim"], num_resamples=50),
        "small_collapsed": run(
            "small_collapsed",
            "ref:collapsed_digits",
            num_samples=300,
            metrics=["fid", "ms_ssim"],
            num_resamples=50,
        ),
    }
    yield {"cache": cache, "root": root, **paths}
    torch.set_num_threads(old_threads)


def _rows(comparison) -> dict:
    return {row.metric: row for row in comparison.rows}


def test_two_seeds_of_one_model_show_no_significant_difference(runs):
    comparison = gen_eval.compare([runs["dcgan"], runs["dcgan_seed1"]], cache_dir=runs["cache"])
    rows = _rows(comparison)
    assert set(rows) == FEATURE_METRICS
    for row in rows.values():
        assert row.method == "bootstrap"
        assert row.verdict == "no significant difference", (row.metric, row.difference, row.interval)
        assert row.interval[0] <= row.difference <= row.interval[1]
        assert row.comparable and not row.warnings
    assert comparison.comparable and comparison.ranking is None


def test_faulty_model_is_significantly_worse_and_swapping_mirrors(runs):
    forward = gen_eval.compare([runs["dcgan"], runs["collapsed"]], num_resamples=100, cache_dir=runs["cache"])
    rows = _rows(forward)
    assert rows["fid"].verdict == "worse" and rows["fid"].interval[0] > 0
    for name in ("recall", "coverage"):
        assert rows[name].verdict == "worse" and rows[name].interval[1] < 0
    # It covers 3 digits well: higher precision is the honest answer, not an error.
    assert rows["precision"].verdict == "better"
    # Resamples move recall and coverage down, by more for the good model: without the bias
    # correction the coverage interval would exclude the observed difference.
    for row in rows.values():
        assert row.interval[0] <= row.difference <= row.interval[1], row.metric
    backward = _rows(
        gen_eval.compare([runs["collapsed"], runs["dcgan"]], num_resamples=100, cache_dir=runs["cache"])
    )
    for name, row in rows.items():
        assert backward[name].difference == pytest.approx(-row.difference)
        assert backward[name].interval == pytest.approx((-row.interval[1], -row.interval[0]))
    assert backward["fid"].verdict == "better" and backward["coverage"].verdict == "better"


def test_a_run_against_itself_draws_two_independent_resample_streams(runs):
    rows = gen_eval.compare([runs["dcgan"], runs["dcgan"]], num_resamples=40, cache_dir=runs["cache"]).rows
    assert {(row.run_a, row.run_b) for row in rows} == {("dcgan (1)", "dcgan (2)")}
    for row in rows:
        assert row.difference == 0 and row.verdict == "no significant difference"
        assert row.interval[0] < 0 < row.interval[1]  # one stream for both would give [0, 0]


@pytest.mark.parametrize(
    ("other", "reason"),
    [("identity", "different features (digits vs identity)"), ("train_reference", "different reference")],
)
def test_incomparable_runs_are_refused_unless_forced(runs, other, reason):
    with pytest.raises(GenEvalError, match="--force") as refused:
        gen_eval.compare([runs["dcgan"], runs[other]], cache_dir=runs["cache"])
    message = str(refused.value)
    assert reason in message and "\n" not in message
    forced = gen_eval.compare(
        [runs["dcgan"], runs[other]], force=True, num_resamples=20, cache_dir=runs["cache"]
    )
    assert not forced.comparable and forced.rows
    assert all(not row.comparable and "not comparable" in row.warnings[0] for row in forced.rows)
    assert any(reason in warning for warning in forced.warnings)


def test_stored_intervals_give_a_normal_approximation_and_sizes_are_flagged(runs):
    comparison = gen_eval.compare(
        [runs["small"], runs["small_collapsed"]], num_resamples=50, cache_dir=runs["cache"]
    )
    rows = _rows(comparison)
    assert rows["fid"].method == "bootstrap" and rows["ms_ssim"].method == "normal"
    a, b = (gen_eval.load_run(runs[name]).metrics["ms_ssim"] for name in ("small", "small_collapsed"))
    half = 1.959964 * math.hypot(*((r.interval[1] - r.interval[0]) / 3.919928 for r in (a, b)))
    assert rows["ms_ssim"].interval == pytest.approx((b.value - a.value - half, b.value - a.value + half))
    assert rows["ms_ssim"].verdict == "worse"  # collapsed samples look alike: higher MS-SSIM
    mixed = _rows(gen_eval.compare([runs["dcgan"], runs["small"]], num_resamples=20, cache_dir=runs["cache"]))
    assert list(mixed) == ["fid"]
    assert any("sample sizes differ (500 vs 300)" in w for w in mixed["fid"].warnings)


def test_three_runs_are_ranked_with_differences_to_the_best(runs):
    paths = [runs["collapsed"], runs["dcgan"], runs["dcgan_seed1"]]
    comparison = gen_eval.compare(paths, num_resamples=50, cache_dir=runs["cache"])
    ranking = comparison.ranking
    assert comparison.ranking_metric == "fid" and [entry.rank for entry in ranking] == [1, 2, 3]
    assert ranking[0].verdict == "best" and ranking[0].run != "collapsed"
    assert ranking[-1].run == "collapsed" and ranking[-1].verdict == "worse"
    assert ranking[-1].difference > 0 and ranking[-1].difference_interval[0] > 0
    assert all(entry.interval is not None for entry in ranking)
    assert len(comparison.rows) == 2 * len(FEATURE_METRICS)  # each run against the first
    by_recall = gen_eval.compare(paths, num_resamples=20, cache_dir=runs["cache"], metric="recall")
    assert by_recall.ranking_metric == "recall" and by_recall.ranking[-1].run == "collapsed"
    with pytest.raises(GenEvalError, match="--metric bpd"):
        gen_eval.compare(paths, num_resamples=0, cache_dir=runs["cache"], metric="bpd")
    json.dumps(comparison.to_dict(), allow_nan=False)


def test_cli_prints_a_table_and_writes_json_and_html(runs, tmp_path):
    base = [
        str(runs["dcgan"]),
        str(runs["collapsed"]),
        "--cache-dir",
        str(runs["cache"]),
        "--num-resamples",
        "30",
    ]
    printed = runner.invoke(app, ["compare", *base, "--json", "-"])
    assert printed.exit_code == 0, printed.output
    document = json.loads(printed.stdout)
    assert {row["metric"]: row["verdict"] for row in document["rows"]}["fid"] == "worse"
    assert document["runs"][0]["class_counts"]["generated"]

    page, data = tmp_path / "page" / "compare.html", tmp_path / "compare.json"
    done = runner.invoke(
        app, ["compare", *base, str(runs["dcgan_seed1"]), "--html", str(page), "--json", str(data)]
    )
    assert done.exit_code == 0, done.output
    for text in (
        "B = collapsed vs A = dcgan",
        "B = dcgan_seed1 vs A = dcgan",
        "Ranking by fid",
        "worse",
        "best",
    ):
        assert text in done.stdout
    html = page.read_text()
    assert "<table>" in html and "Plotly" in html and "data:image/png;base64" in html
    for section in ("Ranking by fid", "Precision and recall", "Predicted classes", "Mode-collapse verdicts"):
        assert section in html
    assert "partial collapse" in html  # the faulty model's collapse verdict
    assert len(json.loads(data.read_text())["ranking"]) == 3


def test_cli_refuses_missing_corrupt_and_incomparable_runs(runs, tmp_path):
    missing = runner.invoke(app, ["compare", str(runs["dcgan"]), str(tmp_path / "nowhere")])
    assert missing.exit_code == 2 and "not a gen-eval run" in missing.output
    corrupt = tmp_path / "corrupt"
    shutil.copytree(runs["dcgan_seed1"], corrupt)
    (corrupt / "samples.png").write_bytes(b"not a png")
    broken = runner.invoke(app, ["compare", str(runs["dcgan"]), str(corrupt)])
    assert broken.exit_code == 2 and "fails its checksum" in broken.output
    incomparable = ["compare", str(runs["dcgan"]), str(runs["identity"]), "--cache-dir", str(runs["cache"])]
    refused = runner.invoke(app, incomparable)
    assert refused.exit_code == 2 and "--force" in refused.output
    forced = runner.invoke(app, [*incomparable, "--force", "--num-resamples", "10", "-q"])
    assert forced.exit_code == 0 and "not comparable" in forced.output


def test_missing_reference_features_are_reextracted_with_a_note(runs, tmp_path):
    paths = [runs["dcgan"], runs["collapsed"]]
    cached = gen_eval.compare(paths, num_resamples=20, cache_dir=runs["cache"])
    assert not cached.notes
    empty = tmp_path / "empty_cache"
    fresh = gen_eval.compare(paths, num_resamples=20, cache_dir=empty)
    assert len(fresh.notes) == 1 and "re-extracted" in fresh.notes[0] and "digits:test" in fresh.notes[0]
    key = gen_eval.load_run(runs["dcgan"]).manifest["reference"]["cache_key"]
    assert FeatureCache(empty).load(key) is not None  # cached for the next comparison
    assert [r.interval for r in fresh.rows] == [r.interval for r in cached.rows]

    moved = tmp_path / "moved_reference"
    shutil.copytree(runs["collapsed"], moved)
    manifest = json.loads((moved / "manifest.json").read_text())
    manifest["reference"]["spec"] = "no_such_dataset:test"
    (moved / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(GenEvalError, match="--cache-dir") as failed:
        gen_eval.compare([moved, runs["dcgan"]], num_resamples=20, cache_dir=tmp_path / "other_cache")
    assert str(moved) in str(failed.value) and "no_such_dataset:test" in str(failed.value)


def test_compare_page_opens_in_a_browser_without_errors(runs, tmp_path, headless_browser, artifacts_dir):
    page = tmp_path / "compare.html"
    args = [str(runs["dcgan"]), str(runs["collapsed"]), "--cache-dir", str(runs["cache"])]
    done = runner.invoke(app, ["compare", *args, "--num-resamples", "20", "--html", str(page), "-q"])
    assert done.exit_code == 0, done.output
    visit = headless_browser.open(
        page,
        wait_for="table",
        wait_until="document.querySelectorAll('.js-plotly-plot .main-svg').length > 0",
        screenshot=artifacts_dir / "compare.png",
        expressions=["document.querySelectorAll('table tbody tr').length", "document.images.length"],
    )
    assert visit.errors == [] and visit.external_requests == []
    rows, images = visit.values
    assert rows >= 6 and images >= 2  # a row per metric; both runs' sample grids
