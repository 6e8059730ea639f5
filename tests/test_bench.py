"""The benchmark harness: fresh-process measurement and the interval rows, at toy sizes."""

from gen_eval.bench.metrics_bench import _interval_rows, _ours_precision_recall, measure


def test_measure_runs_a_task_in_a_fresh_process_and_reports_its_own_memory():
    import numpy as np

    # A parent larger than the task: ru_maxrss would report the parent's size, VmHWM the task's.
    ballast = np.ones(1500 * 2**20 // 8)
    record = measure(_ours_precision_recall, 300, 16)
    assert record["seconds"] > 0
    assert 0 <= record["working_mb"] < record["peak_mb"] < ballast.nbytes / 2**20
    assert 0 <= record["values"]["precision"] <= 1 and 0 <= record["values"]["recall"] <= 1


def test_interval_rows_time_without_and_with_resamples():
    rows = _interval_rows(300, 8, 3)
    assert [row[1] for row in rows] == ["0", "3"]
    assert all(float(row[2]) >= 0 for row in rows)


def test_scale_runs_report_the_child_s_own_peak():
    import sys

    import numpy as np

    from gen_eval.bench.scale import _run

    ballast = np.ones(1500 * 2**20 // 8)
    seconds, peak = _run([sys.executable, "-c", "import numpy; block = numpy.ones(50 * 2**20 // 8)"])
    assert seconds > 0 and 50 < peak < ballast.nbytes / 2**20


def test_disentanglement_bench_checks_the_planted_expectations(tmp_path):
    from gen_eval.bench.disentanglement import run_disentanglement_benchmark

    out = tmp_path / "disentanglement.md"
    small = {"dci": {"n_estimators": 5}}
    text, failed = run_disentanglement_benchmark(
        out, num_train=600, cases=("perfect", "noise"), options=small, progress=False
    )
    assert out.read_text() == text and "| perfect | 1.000 | 1.000 |" in text
    checks = [line for line in text.splitlines() if line.startswith(("| perfect |", "| noise |"))]
    assert len(checks) == 2 + 11  # two summary rows; 6 + 5 expectations on these two encoders
    assert failed == text.count("**no**")

    # An encoder that fails its expectations is reported as failing: noise scored as if perfect.
    from gen_eval.bench.disentanglement import measure, report_text

    results = measure(("perfect",), 300, options=small, progress=False)
    results["noise"] = results["perfect"]
    text, failed = report_text(results, 300, small)
    assert failed >= 4 and text.count("**no**") == failed
