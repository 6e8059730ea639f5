"""The collapse verdict end to end: planted failures are flagged, true held-out data is not."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from gen_eval.cli import app
from gen_eval.datasets.digits import load_digits_split
from gen_eval.evaluation import evaluate
from gen_eval.runs.run import load_run

runner = CliRunner()
QUICK = {"num_resamples": 0, "cache_dir": None}
POINTS = {**QUICK, "metrics": ["fid", "density_coverage"]}  # KID on 10,000 2-D points is the slow part


def _findings(evaluation) -> dict[str, str]:
    return {f.detector: f.severity for f in evaluation.collapse.findings}


def test_collapsed_ring8_is_flagged_with_exactly_the_missing_modes():
    report = evaluate("ref:collapsed_ring8", "ring8:test", num_samples=2000, **POINTS).collapse
    assert report.status == "collapse"
    assert report.detectors["modes"].missing == [5, 6, 7]
    assert report.verdict.startswith("partial collapse: 3 of 8 modes missing (5, 6, 7)")


@pytest.mark.parametrize("source", ["ring8:train", "ref:wgan_gp_ring8"])
def test_true_mixture_and_healthy_gan_cover_all_eight_modes(source):
    # ring8:train is the training data itself, so memorisation is not checked here.
    report = evaluate(source, "ring8:test", num_samples=2000, train=None, **POINTS).collapse
    assert report.detectors["modes"].modes_covered == 8
    assert report.status not in ("collapse", "memorisation"), report.verdict


def test_true_mixture_is_not_flagged_at_all():
    report = evaluate("grid25:test", "grid25:train", **POINTS).collapse  # memorisation vs grid25:train
    assert report.status == "ok", report.verdict
    assert report.verdict == "no collapse detected"


def test_collapsed_digits_flagged_with_seven_missing_classes():
    evaluation = evaluate("ref:collapsed_digits", "digits:test", num_samples=1000, **QUICK)
    report = evaluation.collapse
    assert report.status == "collapse"
    assert len(report.detectors["classes"].missing) == 7
    assert "7 of 10 classes missing" in report.verdict


def test_true_test_split_is_not_flagged():
    report = evaluate("digits:test", "digits:train", **QUICK).collapse
    assert report.status == "ok", report.verdict
    assert set(_findings_of(report)) >= {"classes", "ndb", "birthday", "vendi", "memorisation"}


def _findings_of(report) -> dict[str, str]:
    return {f.detector: f.severity for f in report.findings}


def _noisy_copies(rng: np.random.Generator, count: int) -> np.ndarray:
    train, _ = load_digits_split("train")
    picked = train[rng.integers(0, len(train), count)].astype(np.int16)
    return np.clip(picked + rng.integers(-2, 3, picked.shape), 0, 255).astype(np.uint8)


def test_noisy_training_copies_are_flagged_as_memorising(tmp_path):
    path = tmp_path / "copies.npz"
    np.savez(path, _noisy_copies(np.random.default_rng(0), 400))
    report = evaluate(str(path), "digits:test", **QUICK).collapse
    assert report.status == "memorisation", report.verdict
    assert report.detectors["memorisation"].copy_fraction > 0.5
    assert report.verdict.startswith("likely memorising")


def test_fifty_distinct_images_have_small_support(tmp_path):
    images, _ = load_digits_split("all")
    rng = np.random.default_rng(1)
    distinct = images[rng.choice(len(images), 50, replace=False)]
    path = tmp_path / "fifty.npz"
    np.savez(path, distinct[rng.integers(0, 50, 1000)])
    report = evaluate(str(path), "digits:test", train=None, **QUICK).collapse
    assert report.status == "collapse"
    assert _findings_of(report)["birthday"] == "collapse"
    assert "small support" in report.verdict
    assert "memorisation" in report.skipped


def test_collapse_command_writes_figures_run_and_html(tmp_path):
    out, page = tmp_path / "run", tmp_path / "collapse.html"
    args = ["collapse", "ref:collapsed_digits", "-r", "digits:test", "--num-samples", "500", "-q"]
    result = runner.invoke(app, [*args, "--out", str(out), "--html", str(page), "--json"])
    assert result.exit_code == 0, result.output
    document = json.loads(result.output)
    assert document["collapse"]["status"] == "collapse"
    run = load_run(out)  # checksums of every figure verified
    assert run.collapse["status"] == "collapse"
    assert set(run.metrics) >= {"coverage", "ms_ssim", "ms_ssim_reference"}
    written = {path.name for path in (out / "collapse").iterdir()}
    assert {"classes.json", "ndb.json", "birthday.json"} <= written
    figure = json.loads((out / "collapse" / "classes.json").read_text())
    assert len(figure["data"]) == 2  # generated and reference bars
    text = page.read_text()
    assert "partial collapse" in text and text.count("plotly.js") >= 1
    assert any(name.endswith(".png") for name in written)


def test_evaluate_without_collapse_has_no_report(tmp_path):
    evaluation = evaluate(
        "ring8:train", "ring8:test", num_samples=500, collapse=False, out=tmp_path / "r", **QUICK
    )
    assert evaluation.collapse is None
    assert load_run(tmp_path / "r").collapse is None
    assert not (tmp_path / "r" / "collapse").exists()


def test_classes_too_rare_to_judge_are_not_called_missing():
    """Inception-like: 1,000 classes seen once each in the reference say nothing about 300 samples."""
    import torch

    from gen_eval.collapse.classes import class_coverage

    reference = 10 * torch.eye(1000)
    generated = 10 * torch.eye(1000)[torch.arange(300) % 7]
    coverage = class_coverage(generated, reference)
    assert coverage.judged == [] and coverage.missing == []
    common = 10 * torch.eye(1000)[torch.arange(2000) % 4]  # four common classes, 500 each
    judged = class_coverage(generated[:40], torch.cat([reference, common]))
    assert judged.judged == [0, 1, 2, 3] and judged.missing == []  # 0-3 are drawn (6 stray)
    dropped = class_coverage(
        10 * torch.eye(1000)[torch.zeros(300, dtype=torch.long)], torch.cat([reference, common])
    )
    assert dropped.missing == [1, 2, 3] and dropped.over_represented == [0]


def test_evidence_grids_mix_image_sizes(tmp_path):
    """64x64 samples against the 8x8 digits reference: NDB bins show both kinds in one grid."""
    import numpy as np

    import gen_eval
    from gen_eval.bench.common import write_png_folder
    from gen_eval.collapse.figures import _same_shape
    from gen_eval.datasets import shapes

    rows = _same_shape([np.zeros((6, 1, 8, 8), np.uint8), np.full((6, 3, 64, 64), 7, np.uint8)])
    assert [r.shape for r in rows] == [(6, 3, 64, 64)] * 2 and rows[0].max() == 0
    folder = write_png_folder(shapes.render_shapes(shapes.sample_factor_indices(200, 0)), tmp_path / "pngs")
    run = gen_eval.evaluate(folder, "digits:test", features="digits", num_resamples=0, out=tmp_path / "run")
    assert run.collapse is not None
    assert (tmp_path / "run" / "collapse" / "ndb_bins.png").is_file()
