"""gen-eval score: a batch of students' submissions, good and hostile, resumable."""

from __future__ import annotations

import csv
import json
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

import gen_eval
import gen_eval.evaluation
from gen_eval import GenEvalError
from gen_eval.bench.hostile import CANARY, build_submissions, digits, npy_bytes, write_pngs, write_tar
from gen_eval.cli import app
from gen_eval.grading import archives
from gen_eval.grading.submissions import Entry, Limits, prepare

OPTIONS = {"reference": "digits:test", "features": "digits", "num_resamples": 5}


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> Path:
    """One feature cache for the module: the reference's features are extracted once."""
    return tmp_path_factory.mktemp("cache")


@pytest.fixture
def count_evaluations(monkeypatch):
    """The specs of the samples evaluate() was called on (score imports it at call time)."""
    calls: list[str] = []
    real = gen_eval.evaluation.evaluate

    def spy(source, *args, **kwargs):
        calls.append(source.spec)
        return real(source, *args, **kwargs)

    monkeypatch.setattr(gen_eval.evaluation, "evaluate", spy)
    return calls


def _rows(result) -> dict[str, object]:
    return {row.name: row for row in result.rows}


def test_batch_scores_good_submissions_and_refuses_hostile_ones(
    tmp_path, cache, monkeypatch, one_thread, count_evaluations
):
    subs, outside, scratch = tmp_path / "subs", tmp_path / "outside", tmp_path / "scratch"
    outside.mkdir()
    scratch.mkdir()
    expected = build_submissions(subs, outside)
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))  # where archives are unpacked
    written: list[Path] = []
    real_copy = archives._copy
    monkeypatch.setattr(
        archives, "_copy", lambda src, target, *a: (written.append(target), real_copy(src, target, *a))
    )

    result = gen_eval.score(subs, out=tmp_path / "out", cache_dir=cache, **OPTIONS)

    rows = _rows(result)
    assert set(rows) == set(expected)
    for name, fragment in expected.items():
        row = rows[name]
        if fragment is None:
            assert row.status == "scored" and row.error is None, (name, row.error)
            assert row.metrics["fid"]["interval"] is not None and row.collapse["verdict"]
        else:
            assert row.status == "error" and fragment in row.error, (name, row.error)
            assert "\n" not in row.error and str(scratch) not in row.error, row.error
    twins = [r for r in result.rows if r.name == "twin"]  # the folder twin/ and the file twin.npy
    assert len(twins) == 2 and all("several entries share" in r.error for r in twins)
    assert sorted(count_evaluations) == [
        "alice/samples.npz",
        "animated",
        "big",  # 16x16 would be resized to 8x8; its truncated PNG is found while decoding
        "bob.zip/bob/samples",
        "carol.tar.gz/samples.npy",
        "corrupt",  # found while decoding, inside evaluate
        "pc_against_images.npy",  # well-formed clouds: refused when evaluate compares kinds
        "zoë and ñ — 名前",
    ]
    # The five good ones are ranked by FID, the failures follow without a rank.
    good = {"alice", "animated", "bob", "carol", "zoë and ñ — 名前"}
    assert [r.rank for r in result.rows[:5]] == [1, 2, 3, 4, 5] and {r.name for r in result.rows[:5]} == good
    assert all(r.rank is None for r in result.rows[5:])
    assert not (tmp_path / CANARY).exists()  # the pickle was never loaded
    assert any("img_100.webp): only the first frame is used" in w for w in rows["animated"].warnings)
    assert rows["animated"].num_samples == 13
    fids = [r.value("fid") for r in result.rows[:5]]
    assert fids == sorted(fids)
    assert rows["bob"].student == "Bob" and rows["bob"].family == "VAE" and rows["bob"].num_samples == 60
    assert rows["carol"].num_samples == 60

    # Nothing escaped: archives were unpacked only into the scratch folder, which is empty again.
    assert written and all(path.resolve().is_relative_to(scratch.resolve()) for path in written)
    assert list(scratch.iterdir()) == []
    assert [p.name for p in outside.iterdir()] == ["secret.png"]  # only what the fixture put there
    assert not list(tmp_path.rglob("escaped.txt"))

    # Claims: inside the interval, a modest FID (worse than measured: met, how far), and not
    # measured (tests/test_claims.py has both directions); the TOML's junk is a warning.
    alice = rows["alice"]
    claims = {c.metric: c for c in alice.claims}
    assert claims["precision"].verdict == "inside" and claims["precision"].met
    assert claims["fid"].verdict == "under" and claims["fid"].met and claims["fid"].off > 0
    assert claims["fid"].off == pytest.approx(1000.0 - claims["fid"].interval[1])
    assert "met, the model does better than claimed" in claims["fid"].describe()
    assert "above the interval" in claims["fid"].describe()
    assert claims["sharpness"].verdict == "not measured"
    assert any("unexpected" in w for w in alice.warnings)

    out = tmp_path / "out"
    table = list(csv.DictReader((out / "leaderboard.csv").open()))
    by_name = {row["submission"]: row for row in table}
    assert by_name["alice"]["family"].startswith("'=")  # a formula stays text in a spreadsheet
    assert (
        float(by_name["alice"]["fid_low"])
        <= float(by_name["alice"]["fid"])
        <= float(by_name["alice"]["fid_high"])
    )
    assert "zip-slip" in by_name["slip"]["error"] and "above the interval" in by_name["alice"]["claims"]
    page = (out / "leaderboard.html").read_text()
    assert "<script>alert" not in page and "&lt;script&gt;" in page and "reports/alice.html" in page
    _check_board_layout(page, rows["alice"])
    document = json.loads((out / "leaderboard.json").read_text())
    assert len(document["rows"]) == len(result.rows)
    assert document["ignored"] == [
        "..dotdot (hidden: the name starts with '.'; rename it to grade it)",
        "_private (the name starts with '_', which marks entries to skip; rename it to grade it)",
        "notes.txt (not a folder, archive, .npz/.npy array or .jsonl text file)",
    ]
    for row in result.rows:
        assert (out / row.report).is_file()
    # Reports share one plotly.js beside them (relative, offline) instead of 4.6 MB inlined each.
    [script] = (out / "reports").glob("plotly-*.min.js")
    assert script.stat().st_size > 3_000_000 and "plotly.js v" in script.read_text()[:400]
    alice_page = (out / rows["alice"].report).read_text()
    assert f"<script src='{script.name}' charset='utf-8'></script>" in alice_page
    assert "* plotly.js v" not in alice_page and "cdn" not in alice_page.lower()
    assert len(alice_page.encode()) < 1_000_000, len(alice_page.encode())
    assert "plotly-graph-div" in alice_page  # the figures are still there
    run_names = sorted(p.name for p in (out / "runs").iterdir())
    assert run_names[:4] == ["alice", "animated", "bob", "carol"] and run_names[4].startswith("zo-and")
    gen_eval.load_run(out / "runs" / "bob")


def test_resume_redoes_only_what_is_unfinished_changed_or_failed(tmp_path, cache, monkeypatch, one_thread):
    subs, out = tmp_path / "subs", tmp_path / "out"
    for i, name in enumerate(("a", "b", "c")):
        (subs / name).mkdir(parents=True)
        np.save(subs / name / "samples.npy", digits(30 * i, 30 * i + 30))
    write_pngs(subs / "tiny", digits(0, 3))
    calls: list[str] = []
    real = gen_eval.evaluation.evaluate

    def interrupted(source, *args, **kwargs):
        calls.append(source.spec)
        if len(calls) == 2:
            raise KeyboardInterrupt  # the grader pressed Ctrl-C during the second evaluation
        return real(source, *args, **kwargs)

    def counted(source, *args, **kwargs):
        calls.append(source.spec)
        return real(source, *args, **kwargs)

    monkeypatch.setattr(gen_eval.evaluation, "evaluate", interrupted)
    with pytest.raises(KeyboardInterrupt):
        gen_eval.score(subs, out=out, cache_dir=cache, **OPTIONS)
    assert calls == ["a/samples.npy", "b/samples.npy"]
    assert not (out / "runs" / "b").exists()  # nothing half-written

    monkeypatch.setattr(gen_eval.evaluation, "evaluate", counted)
    calls.clear()
    second = gen_eval.score(subs, out=out, cache_dir=cache, **OPTIONS)
    assert calls == ["b/samples.npy", "c/samples.npy"]
    assert {r.name: r.status for r in second.rows} == {
        "a": "resumed",
        "b": "scored",
        "c": "scored",
        "tiny": "error",
    }
    created = {n: json.loads((out / "runs" / n / "manifest.json").read_text())["created"] for n in "abc"}

    calls.clear()
    third = gen_eval.score(subs, out=out, cache_dir=cache, **OPTIONS)
    assert calls == []
    assert [r.status for r in third.rows] == ["resumed"] * 3 + ["error"]
    assert [r.metrics for r in third.rows] == [r.metrics for r in second.rows]

    # Fix the failed one, change a's samples, only b's claims, and damage c's run: a, c and tiny are redone.
    write_pngs(subs / "tiny", digits(100, 130))
    np.save(subs / "a" / "samples.npy", digits(200, 230))
    (subs / "b" / "submission.toml").write_text("[claimed]\nfid = 3.5\n")
    metrics_file = out / "runs" / "c" / "metrics.json"
    metrics_file.write_text(metrics_file.read_text().replace('"fid"', '"fid" ', 1))
    calls.clear()
    fourth = gen_eval.score(subs, out=out, cache_dir=cache, **OPTIONS)
    assert sorted(calls) == ["a/samples.npy", "c/samples.npy", "tiny"]
    rows = _rows(fourth)
    assert {n: r.status for n, r in rows.items()} == {
        "a": "scored",
        "b": "resumed",
        "c": "scored",
        "tiny": "scored",
    }
    assert rows["b"].claims[0].claimed == 3.5 and rows["b"].claims[0].measured == rows["b"].value("fid")
    assert json.loads((out / "runs" / "b" / "manifest.json").read_text())["created"] == created["b"]

    # Other options are other runs: a new seed redoes everything.
    calls.clear()
    gen_eval.score(subs, out=out, cache_dir=cache, seed=1, **OPTIONS)
    assert len(calls) == 4


def test_tar_header_bomb_is_stopped_while_listing(tmp_path):
    # A pax header of 8 MiB (tarfile would hold it in memory) for a member of 0 bytes.
    write_tar(tmp_path / "pax.tar.gz", {"samples.npy": b""}, comment="x" * (8 << 20))
    entry = Entry("pax", "pax", tmp_path / "pax.tar.gz", "tar")
    with (
        pytest.raises(GenEvalError, match="more than its size limit"),
        prepare(entry, Limits(max_bytes=1 << 20, max_members=10)),
    ):
        pass
    write_tar(tmp_path / "ok.tar", {"s/samples.npy": npy_bytes(digits(0, 20))})
    with prepare(Entry("ok", "ok", tmp_path / "ok.tar", "tar")) as ready:
        assert ready.label == "ok.tar/s/samples.npy" and ready.samples.is_file()
        scratch = ready.samples.parents[1]
    assert not scratch.exists()


def _check_board_layout(page: str, alice) -> None:
    """Readable at 1,280 px without a browser: short cells, long texts one click away.

    Every cell shows at most 40 characters outside <details> (a metric's value and interval are
    about 25; the old page showed whole claim sentences, 20+ lines in a narrow column), and the
    details open into a floating panel (position:absolute) so opening one never widens the table.
    """
    import re
    from html import unescape

    table = page[
        page.index("<table class='board'>") : page.index("</table>", page.index("<table class='board'>"))
    ]
    assert ".board .panel{position:absolute" in page
    for cell in re.findall(r"<td class='([^']*)'>(.*?)</td>", table, flags=re.S):
        shown = unescape(
            re.sub(r"<[^>]+>", "", re.sub(r"<div class='panel'>.*?</div>", "", cell[1], flags=re.S))
        )
        limit = 120 if cell[0] == "name" else 40  # the name cell wraps (max-width 14em)
        assert len(shown) <= limit, (cell[0], shown)
    details = re.findall(r"<details><summary class='([^']*)'>([^<]*)</summary>", table)
    assert ("worse", "2/3 met") in details  # alice's claims (sharpness not measured), one click away
    assert ("warning", f"{len(alice.warnings)} warning{'s' if len(alice.warnings) != 1 else ''}") in details
    assert alice.claims[1].describe() in unescape(table)  # in the panel, whole


def test_cli_prints_the_leaderboard_and_refuses_a_missing_folder(tmp_path, cache, one_thread):
    subs = tmp_path / "subs"
    (subs / "good").mkdir(parents=True)
    np.save(subs / "good" / "samples.npy", digits(0, 40))
    write_pngs(subs / "tiny", digits(0, 2))
    args = ["score", str(subs), "-r", "digits:test", "--num-resamples", "5", "--cache-dir", str(cache)]
    done = CliRunner().invoke(app, [*args, "--out", str(tmp_path / "out"), "--quiet"])
    assert done.exit_code == 3, done.output  # a failed submission: its own status, not 0 and not 2
    assert "subs vs digits:test" in done.output and "ERROR" in done.output
    assert "tiny: tiny: only 2 samples" in done.output and "leaderboard written to" in done.output
    assert (tmp_path / "out" / "leaderboard.html").is_file()  # written all the same
    assert "3  some submissions failed" in CliRunner().invoke(app, ["score", "--help"]).output
    shutil.rmtree(subs / "tiny")  # the failing one gone, the rest resumed: status 0
    clean = CliRunner().invoke(app, [*args, "--out", str(tmp_path / "out"), "--quiet"])
    assert clean.exit_code == 0, clean.output
    missing = CliRunner().invoke(
        app, ["score", str(tmp_path / "nowhere"), "-r", "digits:test", "--out", str(tmp_path / "o2")]
    )
    assert missing.exit_code == 2 and "not a folder" in missing.output
    assert not (tmp_path / "o2").exists()


def test_leaderboard_page_opens_in_a_browser_without_errors(
    tmp_path, cache, one_thread, headless_browser, artifacts_dir
):
    subs = tmp_path / "subs"
    (subs / "good").mkdir(parents=True)
    np.save(subs / "good" / "samples.npy", digits(0, 40))
    write_pngs(subs / "tiny", digits(0, 2))
    out = tmp_path / "out"
    gen_eval.score(subs, "digits:test", out=out, num_resamples=5, cache_dir=cache)
    (subs / "good" / "submission.toml").write_text(
        'student = "Ada"\n[claimed]\nfid = 1.0\nprecision = 0.5\nrecall = 0.99\nkid = 0.001\n'
    )
    gen_eval.score(subs, "digits:test", out=out, num_resamples=5, cache_dir=cache)
    visit = headless_browser.open(
        out / "leaderboard.html",
        wait_for="table",
        screenshot=artifacts_dir / "leaderboard.png",
        width=1280,
        expressions=[
            "document.querySelectorAll('table tbody tr').length",
            "document.documentElement.scrollWidth",
            "document.querySelector('table.board tbody tr').getBoundingClientRect().height",
            "(() => { const d = document.querySelectorAll('table.board details');"
            " d.forEach(e => e.open = true); return document.documentElement.scrollWidth; })()",
        ],
    )
    assert visit.errors == [] and visit.external_requests == []
    rows, width, height, opened = visit.values
    assert rows == 2  # one scored row, one row in the "not scored" table
    assert width <= 1280 and opened <= 1280  # no horizontal scroll, closed or with every panel open
    assert height < 80  # one row: value + interval, name + who, one-line summaries
