"""Text runs everywhere after evaluate: compare, score, the HTML report and the dashboard.

References: compare's recomputed points against the stored values of the metrics themselves, a
planted collapse that compare must call worse, and held-out data against held-out data that it must
not; the report's nearest training strings against a brute-force Levenshtein distance.
"""

from __future__ import annotations

import json

import pytest

import gen_eval
from gen_eval.datasets import hmm_language

TEXT_METRICS = ["text_ngrams", "text_novelty", "text_truth"]


def _write(path, strings):
    path.write_text("".join(json.dumps({"text": s}) + "\n" for s in strings), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("text-runs")
    train = list(hmm_language.load_split("train"))
    sources = {
        "held_out": "hmm_language:validation",
        "collapsed": _write(root / "collapsed.jsonl", train[:20] * 50),
        "copier": _write(root / "copier.jsonl", train[:1000]),
    }
    made = {}
    for name, source in sources.items():
        made[name] = gen_eval.evaluate(
            source,
            "hmm_language:test",
            metrics=TEXT_METRICS,
            num_samples=1000,
            num_resamples=50,
            out=root / name,
            cache_dir=root / "cache",
            collapse=False,
        ).run_dir
    return made


def test_text_run_keeps_its_strings(runs):
    from gen_eval.runs.run import load_run
    from gen_eval.runs.text_files import read_run_strings

    run = load_run(runs["collapsed"])  # checksums cover the kept strings
    strings = read_run_strings(run.path, "generated")
    assert strings == list(hmm_language.load_split("train")[:20]) * 50
    assert len(read_run_strings(run.path, "reference")) == run.manifest["reference"]["count"]


def test_compare_bootstraps_text_metrics_and_finds_a_planted_collapse(runs):
    from gen_eval.comparison.compare import compare

    result = compare([runs["held_out"], runs["collapsed"], runs["copier"]], num_resamples=100)
    rows = {(r.run_b, r.metric): r for r in result.rows}
    for name in (
        "ngram_jsd_2",
        "ngram_jsd_4",
        "length_distance",
        "train_copies",
        "mass_coverage",
        "tv_to_truth",
    ):
        assert rows[("collapsed", name)].method == "bootstrap"
        # The recomputed point equals the metric's stored value (else compare warns).
        assert not any("recomputed" in w for w in rows[("collapsed", name)].warnings), name
    assert rows[("collapsed", "ngram_jsd_4")].verdict == "worse"
    assert rows[("collapsed", "mass_coverage")].verdict == "worse"
    assert rows[("copier", "train_copies")].verdict == "worse"
    # The copier draws from the training split, the same distribution as held-out data: no
    # significant difference on the 1-gram JSD.
    assert rows[("copier", "ngram_jsd_1")].verdict == "no significant difference"
    assert not [w for w in result.warnings if "not recomputed" in w]
    from gen_eval.comparison.html import comparison_html

    html = comparison_html(result)
    assert (
        "Strings" in html and html.count("<th class='l'>nearest training string</th>") == 3
    )  # a table per run
    assert "String length per run" in html and "Characters per run" in html
    # The compare charts put every run on the reference's axes: shares counted independently here.
    from collections import Counter

    from gen_eval.report.text_compare import text_comparison_figures
    from gen_eval.report.text_run import load_text_view
    from gen_eval.runs.run import load_run

    views = {name: load_text_view(load_run(runs[name])) for name in ("held_out", "collapsed")}
    lengths, characters = text_comparison_figures(views)
    traces = {trace.name: trace for trace in lengths.data}
    assert set(traces) == {"reference", "held_out", "collapsed"}
    strings = views["collapsed"].generated
    counted = Counter(len(s) for s in strings)
    for x, y in zip(traces["collapsed"].x, traces["collapsed"].y, strict=True):
        assert y == pytest.approx(counted[x] / len(strings))
    assert sum(traces["reference"].y) == pytest.approx(1.0)
    bars = {trace.name: trace for trace in characters.data}
    letters = Counter("".join(views["held_out"].reference))
    assert bars["reference"].x[0] == letters.most_common(1)[0][0]


def test_score_grades_text_submissions_and_one_broken_file_is_one_row(tmp_path):
    import zipfile

    from gen_eval.grading.score import score

    train = list(hmm_language.load_split("validation"))
    # A small reference file keeps the auto metrics quick (a dataset adds its truth and training set).
    reference = _write(tmp_path / "reference.jsonl", list(hmm_language.load_split("test")[:300]))
    cohort = tmp_path / "cohort"
    (cohort / "alice").mkdir(parents=True)
    (cohort / "alice" / "samples.txt").write_text("\n".join(train[:100]) + "\n", encoding="utf-8")
    (cohort / "alice" / "README.txt").write_text("not samples\n", encoding="utf-8")
    _write(cohort / "bob.jsonl", train[100:200])
    (cohort / "carol").mkdir()
    (cohort / "carol" / "samples.txt").write_bytes(b"ab\nc\xff\xfed\n")  # invalid UTF-8 on line 2
    (cohort / "notes.txt").write_text("a note beside the submissions, not one\n")
    with zipfile.ZipFile(cohort / "dave.zip", "w") as archive:
        archive.writestr(
            "dave/samples.jsonl", "".join(json.dumps({"text": s}) + "\n" for s in train[200:300])
        )
    result = score(cohort, reference, out=tmp_path / "out", num_resamples=10, rank_by="ngram_jsd_2")
    rows = {row.name: row for row in result.rows}
    assert {rows[n].status for n in ("alice", "bob", "dave")} == {"scored"}
    assert rows["alice"].num_samples == 100 and "ngram_jsd_2" in rows["bob"].metrics
    assert rows["carol"].status == "error"
    assert rows["carol"].error == "carol/samples.txt: line 2 is not valid UTF-8; save the file as UTF-8"
    assert "notes" not in rows and any(i.startswith("notes.txt") for i in result.ignored)


def _levenshtein(a: str, b: str) -> int:
    row = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        previous, row[0] = row[0], i
        for j, cb in enumerate(b, 1):
            previous, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, previous + (ca != cb))
    return row[-1]


def test_report_shows_text_samples_with_marks_nearest_strings_and_histograms(runs):
    from gen_eval.report.run_report import write_report
    from gen_eval.report.text_run import load_text_view
    from gen_eval.runs.run import load_run

    view = load_text_view(load_run(runs["copier"]))
    assert view.train_spec == "hmm_language:train"
    assert view.marks()["train copy"] == 1000  # every string of the copier is a training string
    assert all(r["mark"] == "train copy" and r["edits"] == 0 for r in view.rows(20))
    held_out = load_text_view(load_run(runs["held_out"]))
    rows = held_out.rows(100)
    assert {r["mark"] for r in rows} >= {"new", "train copy"}
    train = sorted(held_out.train)
    for r in [r for r in rows if r["mark"] == "new"][:2]:  # brute force over the whole training set
        assert r["edits"] == min(_levenshtein(r["sample"], t) for t in train) > 0
    html = write_report(runs["held_out"]).read_text(encoding="utf-8")
    for expected in (
        "nearest training string",
        "Character 2-grams",
        "Length in characters",
        rows[0]["sample"],
    ):
        assert expected in html


def _page(name, runs, monkeypatch):
    import sys
    from pathlib import Path

    from streamlit.testing.v1 import AppTest

    import dashboards
    from dashboards import RUNS_ENV

    monkeypatch.setenv(RUNS_ENV, str(Path(runs["held_out"]).parent))
    monkeypatch.setattr(sys, "argv", ["app"])
    monkeypatch.setitem(sys.modules, "__main__", sys.modules["__main__"])  # as tests/test_dashboard.py
    page = Path(dashboards.__file__).parent / "views" / f"{name}.py"
    app = AppTest.from_file(str(page), default_timeout=120).run()
    assert not app.exception, [e.message for e in app.exception]
    return app


def test_dashboard_shows_text_runs(runs, monkeypatch):
    board = _page("leaderboard", runs, monkeypatch).dataframe[0].value
    assert sorted(board["run"]) == ["collapsed", "copier", "held_out"]
    assert {"2-gram JSD", "train copies", "mass coverage"} <= set(board.columns)
    assert board.set_index("run").loc["copier", "train copies"] == 1.0
    app = _page("run", runs, monkeypatch)
    app.selectbox[0].set_value("copier").run()
    table = next(d.value for d in app.dataframe if "mark" in d.value.columns)
    assert set(table["mark"]) == {"train copy"} and set(table["edits"]) == {0}
    titles = " ".join(str(chart.proto.spec) for chart in app.get("plotly_chart"))
    assert "Character 2-grams" in titles and "Length in characters" in titles
    compare = _page("compare", runs, monkeypatch)
    compare.multiselect[0].set_value(["held_out", "collapsed"]).run()
    assert not compare.exception
    tables = [d.value for d in compare.dataframe if "mark" in d.value.columns]
    assert len(tables) == 2
    titles = " ".join(str(chart.proto.spec) for chart in compare.get("plotly_chart"))
    assert "String length per run" in titles and "Characters per run" in titles


def test_demo_text_section_scores_the_ladder_and_flags_the_faulty_models(tmp_path):
    from gen_eval.demo.text import score_text_models, split_names, text_rows

    others, text = split_names(["trigram_names", "copier_names", "dcgan"])
    assert others == ["dcgan"] and text == ["trigram_names", "copier_names"]
    scores = score_text_models(text, out_dir=tmp_path, num_samples=300, num_resamples=0, show_progress=False)
    by_name = {s.name: s for s in scores}
    assert list(by_name) == ["validation split", "trigram_names", "copier_names"]
    assert (
        by_name["copier_names"].value("train_copies") > 0.9 > by_name["trigram_names"].value("train_copies")
    )
    assert by_name["trigram_names"].value("bits_per_char") > 0
    columns, rows = text_rows(scores)
    assert columns[:3] == ["model", "family", "bits/char"] and rows[0][2] == "-"  # data has no bits/char
    assert (tmp_path / "trigram_names" / "text" / "generated.json").is_file()
