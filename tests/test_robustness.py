"""Faults while writing and kills while scoring (gen_eval/bench/robustness.py); the corpus is in test_score."""

from __future__ import annotations

import pytest

from gen_eval.bench import robustness


def test_full_disk_and_blocked_output_give_clear_errors_and_leave_nothing(tmp_path, one_thread):
    (tmp_path / "faults").mkdir()
    report = robustness.Robustness()
    robustness._faults(report, tmp_path)
    assert [c.case for c in report.checks] == ["disk full while writing a run", "output folder under a file"]
    for check in report.checks:
        assert check.ok, check
    assert "No space left on device" in report.checks[0].got


@pytest.mark.timeout(400)
def test_score_killed_with_sigkill_resumes_and_loses_nothing(tmp_path):
    report = robustness.Robustness()
    robustness._kill(report, tmp_path)
    (check,) = report.checks
    assert check.ok, check.got
    assert "killed with" in check.got and report.data_lost == 0


def test_report_counts_and_flags_failures(tmp_path):
    report = robustness.Robustness()
    report.add("corpus", "a", "x", "x", True)
    report.add("corpus", "b|c", "y", "z|w", False)
    text = robustness._markdown(report)
    assert "cases tried: **2**, handled as expected: **1**, data lost: **0**" in text
    assert "| **NO** |" in text and "z\\|w" in text


@pytest.mark.timeout(400)
def test_evaluate_killed_mid_run_then_rerun_writes_a_verified_run(tmp_path):
    report = robustness.Robustness()
    robustness._kill_evaluate(report, tmp_path, moments=(1.5,))
    (check,) = report.checks
    assert check.ok, check.got


def test_a_new_write_removes_a_killed_writers_debris(tmp_path):
    import gen_eval

    (tmp_path / ".run.tmp-dead").mkdir()
    (tmp_path / ".run.tmp-dead" / "metrics.json").write_text("{half")
    (tmp_path / ".run.old-dead").mkdir()
    gen_eval.evaluate("digits:train", "digits:test", out=tmp_path / "run", num_resamples=0, collapse=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]


def test_storage_faults_are_one_line_and_a_slow_submission_is_stopped(tmp_path, one_thread):
    report = robustness.Robustness()
    robustness._storage_faults(report, tmp_path)
    assert [c.case for c in report.checks] == [
        "read-only feature cache (evaluate)",
        "disk full while writing the feature cache",
        "disk full while gen-eval score writes a run",
        "a submission running past --time-limit 10",
    ]
    for check in report.checks:
        assert check.ok, check
    assert report.tracebacks == 0 and report.hangs == 0
    assert "Permission denied" in report.checks[0].got and "left: nothing" in report.checks[1].got


def test_corpus_counts_a_scored_link_as_an_escape(tmp_path, monkeypatch, one_thread):
    """A planted fault: with the link checks switched off, the link cases are scored and counted."""
    from gen_eval.grading import discovery, submissions

    monkeypatch.setattr(submissions, "refuse_linked_folders", lambda *args: None)
    monkeypatch.setattr(discovery, "_link_error", lambda *args: None)
    report = robustness.Robustness()
    robustness._corpus(report, tmp_path)
    escaped = {c.case: c.escapes for c in report.checks if c.escapes}
    assert escaped.keys() >= {"linkshare", "mirror"} and report.escapes == sum(escaped.values())
    hidden = next(c for c in report.checks if c.case == "entries named '.*' and '_*'")
    assert hidden.ok and "..dotdot (hidden" in hidden.got
