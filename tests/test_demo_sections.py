"""The demo's issue-23 sections (gen_eval/demo/sections.py declarations): paired tasks, the plane."""

from __future__ import annotations

import pytest

from gen_eval.demo import conditional, paired, translation
from gen_eval.demo.sections import score_section, section_rows, split_for_section
from reference_models import MODELS


def test_sections_claim_their_models_and_the_digits_leaderboard_does_not():
    names = ["dcgan", "bicubic_sr4", "mean_inpaint", "cvae", "cyclegan_digits2mnist", "trigram_names"]
    rest, sr4 = split_for_section(names, paired.SECTIONS["sr4"])
    assert sr4 == ["bicubic_sr4"] and "bicubic_sr4" not in rest
    assert split_for_section(names, paired.SECTIONS["inpaint"])[1] == ["mean_inpaint"]
    assert split_for_section(names, conditional.SECTION)[1] == ["cvae"]
    assert split_for_section(names, translation.SECTION)[1] == ["cyclegan_digits2mnist"]
    assert split_for_section(["cyclegan_mnist2digits"], translation.SECTIONS["mnist2digits"])[1] == [
        "cyclegan_mnist2digits"
    ]
    # Every registered paired or translation model belongs to exactly one section.
    sections = [conditional.SECTION, *paired.SECTIONS.values(), *translation.SECTIONS.values()]
    for name, entry in MODELS.items():
        if "task" in entry.config or entry.family in ("paired", "translation"):
            assert sum(s.belongs(entry) for s in sections) == 1, name


@pytest.mark.parametrize("task", ["sr4"])
def test_paired_section_scores_the_baseline_and_the_unet_and_draws_the_plane(task, tmp_path):
    from gen_eval.report.plane import plane_png

    section = paired.SECTIONS[task]
    names = [n for n in ("bicubic_sr4", "unet_sr4") if MODELS[n].checkpoint.is_file()]
    scores = score_section(
        section, names, out_dir=tmp_path, num_samples=200, num_resamples=0, show_progress=False
    )
    by_name = {s.name: s for s in scores}
    # The bicubic baseline is back-projected onto the task's own degradation: consistency is exact.
    assert by_name["bicubic_sr4"].value("consistency") == pytest.approx(0.0, abs=1e-9)
    if "unet_sr4" in by_name:  # the L1 U-Net beats bicubic on distortion
        assert by_name["unet_sr4"].value("psnr") > by_name["bicubic_sr4"].value("psnr") + 2
    columns, rows = section_rows(section, scores)
    assert columns[:4] == ["model", "family", "PSNR dB", "SSIM"] and len(rows) == len(names)
    points = paired.plane_points(scores)
    assert {p["name"] for p in points} == set(names) and all(p["task"] == task for p in points)
    picture = plane_png(points, tmp_path / "plane.png")
    assert picture.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and not list(tmp_path.glob(".*partial"))


def test_paired_run_report_and_dashboard_show_the_pairs_and_the_plane(tmp_path, monkeypatch):
    import json
    import sys

    from streamlit.testing.v1 import AppTest

    from dashboards import RUNS_ENV
    from gen_eval.report.conditional_paired import plane_points
    from gen_eval.report.run_report import write_report
    from gen_eval.runs.run import load_run

    runs = tmp_path / "runs"
    names = ["bicubic_sr4", "nearest_sr4"]
    score_section(
        paired.SECTIONS["sr4"],
        names,
        out_dir=runs,
        num_samples=120,
        num_resamples=20,
        show_progress=False,
    )
    run = load_run(runs / "bicubic_sr4")
    points = plane_points(run)
    assert points[-1]["submission"] and points[-1]["task"] == "sr4"
    assert points[-1]["psnr"] == run.metrics["psnr"].value and points[-1]["fid"] == run.metrics["fid"].value
    html = write_report(runs / "bicubic_sr4").read_text()
    assert "id='pairs'" in html and "Distortion vs realism (sr4)" in html
    from gen_eval.comparison.compare import compare
    from gen_eval.comparison.html import comparison_figures

    compared = compare([runs / name for name in names], num_resamples=10)
    plane = comparison_figures(compared)["plane"]
    stars = [p for trace in plane.data if "this run" in trace.name for p in trace.text]
    assert sorted(stars) == sorted(names)
    rows = {r.metric: r for r in compared.rows}
    assert rows["psnr"].verdict == "worse"  # nearest loses to bicubic on PSNR, with an interval
    monkeypatch.setenv(RUNS_ENV, str(runs))
    monkeypatch.setattr(sys, "argv", ["app"])
    monkeypatch.setitem(sys.modules, "__main__", sys.modules["__main__"])
    from pathlib import Path

    import dashboards

    page = Path(dashboards.__file__).parent / "views" / "run.py"
    app = AppTest.from_file(str(page), default_timeout=120).run()
    assert not app.exception, [e.message for e in app.exception]
    assert any("Pairs" in h.value for h in app.subheader)
    titles = " ".join(json.dumps(str(chart.proto.spec)) for chart in app.get("plotly_chart"))
    assert "Distortion vs realism" in titles


def test_labelled_run_report_shows_classes_with_a_row_per_class(tmp_path):
    import numpy as np

    from gen_eval.datasets.mnist import load_mnist_split
    from gen_eval.evaluation import evaluate
    from gen_eval.report.conditional_paired import per_class_table
    from gen_eval.report.run_report import write_report
    from gen_eval.runs.run import load_run

    images, labels = load_mnist_split("test")
    np.savez(tmp_path / "labelled.npz", arr_0=images[:300], labels=labels[:300])
    evaluate(
        tmp_path / "labelled.npz",
        "mnist:train",
        metrics=["fid", "conditional_accuracy", "fid_per_class"],
        num_resamples=0,
        collapse=False,
        out=tmp_path / "run",
        show_progress=False,
    )
    run = load_run(tmp_path / "run")
    columns, rows = per_class_table(run)
    assert columns == ["class", "class read", "FID"] and [r[0] for r in rows] == [str(c) for c in range(10)]
    # Real digits with their true labels: the classifier reads nearly every requested class.
    assert min(float(r[1].rstrip("%")) for r in rows) > 80
    html = write_report(tmp_path / "run").read_text()
    assert "id='classes'" in html and (tmp_path / "run" / "classes.png").is_file()


def test_score_grades_paired_submissions_and_names_a_short_one(tmp_path):
    import numpy as np
    import torch

    from gen_eval.datasets.tasks import get_task
    from gen_eval.grading.score import score

    inputs, _, _ = get_task("sr4").read("test", 0, 1000)
    outputs = MODELS_LOADED("bicubic_sr4").translate(torch.as_tensor(inputs)).numpy()
    subs = tmp_path / "subs"
    subs.mkdir()
    np.savez(subs / "alice.npz", outputs=outputs, task=np.array("sr4"))
    np.savez(subs / "bob.npz", outputs=outputs[:10], task=np.array("sr4"))
    result = score(subs, "task:sr4", out=tmp_path / "out", num_resamples=0, show_progress=False)
    rows = {row.name: row for row in result.rows}
    assert rows["alice"].status == "scored" and rows["alice"].value("consistency") == pytest.approx(
        0, abs=1e-9
    )
    assert rows["alice"].value("psnr") > 10 and "ssim" in result.metric_names
    assert rows["bob"].status == "error" and "bob.npz: 10 outputs for task sr4" in rows["bob"].error


def MODELS_LOADED(name):
    from reference_models import load_model

    return load_model(name)


def test_scorecard_block_is_replaced_in_place_and_the_trade_off_is_read_from_the_rows():
    from gen_eval.demo.leaderboard import ModelScore
    from gen_eval.demo.scorecard_sections import END, START, _trade_off, replace_block, sections_of

    text = "# Scorecard\n\nintro\n\n## Samples\n\npictures\n"
    once = replace_block(text, [START, "first", END])
    assert once.index("first") < once.index("## Samples") and once.count(START) == 1
    twice = replace_block(once, [START, "second", END])
    assert "first" not in twice and "second" in twice and twice.endswith("pictures\n")

    def score(name, psnr, fid):
        metrics = {"psnr": {"value": psnr}, "fid": {"value": fid}}
        return ModelScore(name, "paired", "mnist", None, metrics, None)

    rows = [("sr4", score("unet_sr4", 20.0, 8.0)), ("sr4", score("pix2pix_sr4", 19.0, 5.0))]
    assert "PSNR -1.00 dB and FID -3" in _trade_off(rows)[0] and "trade-off" in _trade_off(rows)[0]
    rows[1] = ("sr4", score("pix2pix_sr4", 21.0, 5.0))
    assert "better on both" in _trade_off(rows)[0]
    with pytest.raises(Exception, match="choose from conditional, paired, translation"):
        sections_of(("pared",))


def test_conditional_section_reads_the_classes_and_flags_the_label_blind_gan(tmp_path):
    names = ["cgan", "cgan_ignores_label"]
    scores = score_section(
        conditional.SECTION, names, out_dir=tmp_path, num_samples=300, num_resamples=0, show_progress=False
    )
    by_name = {s.name: s for s in scores}
    assert list(by_name) == ["train split", *names]
    assert by_name["train split"].value("conditional_accuracy") is None  # data has no requested classes
    assert by_name["train split"].collapse["status"] == "ok"  # no memorisation check of the train split
    assert by_name["cgan"].value("conditional_accuracy") > 0.8
    assert by_name["cgan_ignores_label"].value("conditional_accuracy") < 0.2
    assert "labels ignored" in by_name["cgan_ignores_label"].collapse["verdict"]
    columns, rows = section_rows(conditional.SECTION, scores)
    assert "class read" in columns and rows[0][columns.index("class read")] == "-"


def test_the_sampling_bar_passes_a_conditional_models_labels_through():
    import torch

    from gen_eval.progress import sampling_progress
    from gen_eval.sources.python import GeneratorSource

    class Toy:
        num_classes = 3

        def sample(self, n, generator=None, labels=None):
            return (labels.view(-1, 1) * torch.ones(n, 2)).float()  # each row says its class

    source = GeneratorSource(spec="toy", model=Toy(), count=6, seed=0)
    with sampling_progress(source, True):
        batch = next(source.batches(6))
    assert batch.labels.tolist() == [0, 1, 2, 0, 1, 2]
    assert batch.data[:, 0].tolist() == [0, 1, 2, 0, 1, 2]
