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
