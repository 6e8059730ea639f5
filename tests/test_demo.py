"""`gen-eval demo`: it keeps files a person added to its folder, and its bars say what runs."""

import time
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from gen_eval import progress
from gen_eval.cli import app
from gen_eval.demo.files import RECORD, check_replaceable, foreign_files, record_files
from gen_eval.demo.leaderboard import score_models, write_leaderboard
from gen_eval.errors import GenEvalError

runner = CliRunner()
QUICK = ["--models", "baseline", "--num-samples", "60", "--num-resamples", "0", "-q"]


def _demo(out: Path, *extra: str):
    return runner.invoke(app, ["demo", *QUICK, "--out", str(out), *extra])


def test_a_second_demo_replaces_its_own_files_but_refuses_to_delete_a_users(tmp_path):
    out = tmp_path / "demo"
    assert _demo(out).exit_code == 0
    board = (out / "leaderboard.json").read_bytes()
    again = _demo(out)  # only its own files there: replaced without a word
    assert again.exit_code == 0, again.output
    assert (out / "leaderboard.json").read_bytes() == board  # seeded: the same numbers

    (out / "baseline" / "report.html").write_text("<p>my report</p>")
    (out / "notes.md").write_text("mine, outside what the demo writes")
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    refused = _demo(out)
    assert refused.exit_code == 2
    lines = refused.output.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in refused.output
    assert str(out / "baseline" / "report.html") in lines[0] and "--overwrite" in lines[0]
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before  # nothing touched

    replaced = _demo(out, "--overwrite")
    assert replaced.exit_code == 0, replaced.output
    assert not (out / "baseline" / "report.html").exists()  # --overwrite replaces, as evaluate's does
    assert (out / "notes.md").read_text().startswith("mine")  # never the demo's to replace
    assert _demo(out).exit_code == 0  # and the record is whole again


def test_files_saved_into_a_run_and_edited_leaderboards_count_as_the_users(tmp_path):
    from gen_eval.runs.run import add_run_files

    out = tmp_path / "demo"
    scores = score_models(["baseline"], out_dir=out, num_samples=60, num_resamples=0, show_progress=False)
    write_leaderboard(scores, out)
    assert foreign_files(out, ["baseline", "leaderboard.json", "leaderboard.csv"]) == []
    # What the dashboard does when it saves an embedding: a new file, and the manifest changes.
    add_run_files(out / "baseline", {"latent/embedding_tsne.json": b"{}"})
    found = foreign_files(out, ["baseline"])
    assert found == ["baseline/latent/embedding_tsne.json", "baseline/manifest.json"]  # new first
    with pytest.raises(GenEvalError, match=r"embedding_tsne\.json \(and 1 more\): not written by the demo"):
        score_models(
            ["baseline"], out_dir=out, num_samples=60, num_resamples=0, show_progress=False, overwrite=False
        )
    with (out / "leaderboard.csv").open("a") as handle:
        handle.write("my,row\n")
    assert foreign_files(out, ["leaderboard.csv"]) == ["leaderboard.csv"]


def test_the_record_vouches_only_for_what_it_lists(tmp_path):
    (tmp_path / "run" / "sub").mkdir(parents=True)
    (tmp_path / "run" / "a.txt").write_text("a")
    (tmp_path / "run" / "sub" / "b.txt").write_text("b")
    assert foreign_files(tmp_path, ["run"]) == ["run/a.txt", "run/sub/b.txt"]  # no record: all foreign
    record_files(tmp_path, ["run"])
    assert foreign_files(tmp_path, ["run", "missing"]) == []
    check_replaceable(tmp_path, ["run"], overwrite=False)
    (tmp_path / "run" / "a.txt").write_text("changed")
    assert foreign_files(tmp_path, ["run"]) == ["run/a.txt"]
    check_replaceable(tmp_path, ["run"], overwrite=True)  # --overwrite: no questions
    (tmp_path / RECORD).write_text("not json")
    assert foreign_files(tmp_path, ["run"]) == ["run/a.txt", "run/sub/b.txt"]


def test_bars_name_the_item_and_the_stage_and_a_line_says_where_the_time_went(capsys):
    seen = []
    with progress.progress_group("models", 2, True) as group:
        for name in ("vae", "ddpm"):
            with group.item(name), progress.progress_task("metrics", 3, True) as bar:
                seen.append([task.description for task in progress._LIVE[-1].tasks])
                with progress.progress_task("sampling", None, True):
                    time.sleep(0.6)
                bar.advance(3)
    assert seen[0][:2] == ["models · 1 of 2: vae", "vae · metrics"]
    assert seen[1][:2] == ["models · 2 of 2: ddpm", "ddpm · metrics"]
    err = capsys.readouterr().err
    # Own times: the sampling inside the metrics bar counts once, as sampling.
    assert "vae (1 of 2) took 1 s: sampling 1 s" in err and "ddpm (2 of 2) took 1 s: sampling 1 s" in err
    assert not progress._LIVE and not progress._LABELS  # all closed


def test_sampling_progress_leaves_the_samples_and_the_model_as_they_were():
    from gen_eval.sources import open_source

    source = open_source("ref:baseline", num_samples=300, seed=3)
    plain = torch.cat([b.data for b in source.batches(128)])
    with progress.sampling_progress(source, True):
        assert "sample" in vars(source.model)
        shown = torch.cat([b.data for b in source.batches(128)])
    assert "sample" not in vars(source.model)
    assert torch.equal(plain, shown)


def test_score_models_scores_on_the_threads_asked_for_and_restores_them(monkeypatch):
    import gen_eval.demo.leaderboard as leaderboard

    seen = []
    evaluate = leaderboard.evaluate

    def spy(*args, **kwargs):
        seen.append(torch.get_num_threads())
        return evaluate(*args, **kwargs)

    monkeypatch.setattr(leaderboard, "evaluate", spy)
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        score_models(
            ["baseline"], out_dir=None, num_samples=60, num_resamples=0, show_progress=False, threads=1
        )
        assert seen == [1, 1]  # the train-split floor and the model
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


def test_the_demo_command_runs_on_one_thread_unless_told(tmp_path, monkeypatch):
    import gen_eval.demo.leaderboard as leaderboard

    asked = []
    monkeypatch.setattr(leaderboard, "score_models", lambda *a, **k: asked.append(k["threads"]) or [])
    monkeypatch.setattr(leaderboard, "write_leaderboard", lambda scores, out: Path(out) / "leaderboard.json")
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    assert _demo(tmp_path / "a").exit_code == 0
    monkeypatch.setenv("OMP_NUM_THREADS", "2")  # what --threads 2 and GEN_EVAL_THREADS=2 set
    assert _demo(tmp_path / "b").exit_code == 0
    assert asked == [1, None]


def test_models_scored_in_two_processes_score_as_one_after_another(tmp_path):
    settings = {"num_samples": 60, "num_resamples": 5, "show_progress": False}
    serial = score_models(["baseline", "gmm"], out_dir=tmp_path / "a", **settings)
    parallel = score_models(["baseline", "gmm"], out_dir=tmp_path / "b", workers=2, threads=1, **settings)
    assert [s.name for s in parallel] == ["train split", "baseline", "gmm"]  # registry order
    for one, other in zip(serial, parallel, strict=True):
        assert one.metrics == other.metrics and one.collapse == other.collapse
        assert Path(other.run_dir).parent == tmp_path / "b"
    assert foreign_files(tmp_path / "b", ["digits-train-floor", "baseline", "gmm"]) == []  # all recorded


def test_a_workers_bars_reach_the_display_here():
    import queue

    from gen_eval.workers import _forwarding, _RemoteDisplay

    calls = []

    class Display:
        def add_task(self, description, total=None):
            calls.append(("add", description, total))
            return len(calls)

        def advance(self, task, amount):
            calls.append(("advance", task, amount))

        def update(self, task, description):
            calls.append(("update", task, description))

        def remove_task(self, task):
            calls.append(("remove", task))

    pipe = queue.Queue()
    with _forwarding(pipe, Display()):
        remote = _RemoteDisplay(pipe, job=3)
        progress._LIVE.append(remote)
        try:
            with progress.progress_label("ddpm"), progress.progress_task("sampling", 10, True) as bar:
                bar.advance(4)
        finally:
            progress._LIVE.pop()
    assert calls == [("add", "ddpm · sampling", 10), ("advance", 1, 4), ("remove", 1)]


def _job(value: int, fail: bool = False) -> int:
    """A job for run_jobs (module level: spawned workers import it by name)."""
    if fail:
        raise GenEvalError(f"job {value}: planted failure")
    return value * value


def test_a_failing_job_is_one_error_here_and_the_others_results_are_in_order():
    from gen_eval.workers import run_jobs

    with progress.progress_group("jobs", 3, False) as group:
        results = run_jobs(
            [(str(v), _job, {"value": v}) for v in (1, 2, 3)],
            workers=2,
            group=group,
            threads=1,
            first=lambda label: label == "3",
        )
    assert results == [1, 4, 9]
    with (
        progress.progress_group("jobs", 2, False) as group,
        pytest.raises(GenEvalError, match="job 2: planted"),
    ):
        run_jobs(
            [("1", _job, {"value": 1}), ("2", _job, {"value": 2, "fail": True})],
            workers=2,
            group=group,
            threads=1,
        )
