"""The gen-eval command line as a user meets it."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from gen_eval.cli import app

ROOT = Path(__file__).resolve().parents[1]
runner = CliRunner()


def _cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "gen_eval", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
    )


def test_help_does_not_import_torch():
    code = "import sys; from gen_eval.cli import app; print(sorted(m for m in ('torch', 'numpy', 'PIL') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
    done = _cli("--help")
    assert done.returncode == 0
    for command in ("evaluate", "datasets", "features", "metrics", "train-features", "bench"):
        assert command in done.stdout


@pytest.mark.parametrize(
    "command",
    ["evaluate", "datasets", "features", "metrics", "train-features", "bench metrics", "bench parity"],
)
def test_every_command_has_help_with_examples(command):
    result = runner.invoke(app, [*command.split(), "--help"])
    assert result.exit_code == 0
    assert "Example" in result.output and "gen-eval " in result.output


def test_user_errors_are_one_line_with_exit_status_2(tmp_path):
    done = _cli("evaluate", str(tmp_path / "nothing-here"), "--no-save")
    assert done.returncode == 2
    assert done.stderr.strip().count("\n") == 0 and done.stderr.startswith("error: ")
    assert "nothing-here" in done.stderr and "Traceback" not in done.stderr
    debug = _cli("--debug", "evaluate", str(tmp_path / "nothing-here"), "--no-save")
    assert "Traceback" in debug.stderr
    host = runner.invoke(app, ["dashboard", str(tmp_path), "--host", "every-machine"])
    assert host.exit_code == 2 and "--host 'every-machine' is not an IP address" in host.output


def test_evaluate_json_and_table(tmp_path):
    env = {"GEN_EVAL_CACHE": str(tmp_path / "cache")}
    sizes = ("--num-samples", "2000", "--num-reference", "2000")
    done = _cli(
        "evaluate", "ring8:test", "-r", "ring8", *sizes, "--json", "--out", str(tmp_path / "run"), env=env
    )
    assert done.returncode == 0, done.stderr
    payload = json.loads(done.stdout)
    assert payload["manifest"]["extractor"]["name"] == "identity"
    metrics = payload["metrics"]
    assert 0 <= metrics["fid"]["value"] < 0.01
    assert metrics["fid"]["interval"][0] <= metrics["fid"]["value"] <= metrics["fid"]["interval"][1]
    assert {"fid", "kid", "precision", "recall", "density", "coverage"} <= set(metrics)
    assert "is" not in metrics  # identity features have no logits
    assert (tmp_path / "run" / "manifest.json").exists()
    table = runner.invoke(app, ["evaluate", "ring8:test", "-r", "ring8", *sizes, "--no-save", "-q"], env=env)
    assert (
        table.exit_code == 0
        and "FID" in table.output
        and "2,000" in table.output
        and "95% interval" in table.output
    )


def test_datasets_and_features_listings(tmp_path):
    datasets = json.loads(runner.invoke(app, ["datasets", "--json"]).output)
    assert {row["name"] for row in datasets} == {
        "digits",
        "shapes",
        "ring8",
        "grid25",
        "stacked_digits",
        "shapes3d",
        "census_names",
        "hmm_language",
        "mnist",
    }
    mnist = next(row for row in datasets if row["name"] == "mnist")
    assert mnist["splits"] == {"all": 5000, "train": 4000, "test": 1000}
    digits = next(row for row in datasets if row["name"] == "digits")
    assert digits["splits"] == {"all": 1797, "train": 1437, "test": 360}
    env = {"GEN_EVAL_INCEPTION_WEIGHTS": "", "TORCH_HOME": str(tmp_path)}
    features = json.loads(runner.invoke(app, ["features", "--json"], env=env).output)
    by_name = {row["name"]: row for row in features}
    # At least these (other helpers' extractors, DINOv2, CLIP, PointNet, char-names, join them).
    assert {"inception", "digits", "identity", "stacked_digits"} <= set(by_name)
    assert by_name["identity"]["available"] and by_name["digits"]["available"]
    assert not by_name["inception"]["available"]


def test_readme_commands_are_what_ci_runs():
    readme = (ROOT / "README.md").read_text()
    quick_start = readme.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    commands = re.findall(r"^\s*(make \w[\w-]*)\s*$", quick_start, flags=re.M)
    assert commands[:2] == ["make demo", "make test"]
    ci = (ROOT / ".ci" / "run").read_text()
    assert re.search(r"^make test$", ci, flags=re.M)
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"^demo:", makefile, flags=re.M) and re.search(r"^test:", makefile, flags=re.M)
    assert "pytest" in makefile


def test_threads_option_sets_torch_and_blas_threads(monkeypatch):
    import torch
    from threadpoolctl import threadpool_info, threadpool_limits

    for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        monkeypatch.delenv(name, raising=False)  # restored after the test
    before = torch.get_num_threads()
    with threadpool_limits(limits=None):  # restores numpy's BLAS pools afterwards
        try:
            done = runner.invoke(app, ["--threads", "1", "datasets"])
            assert done.exit_code == 0, done.output
            assert torch.get_num_threads() == 1
            import scipy.linalg  # noqa: F401  (its own OpenBLAS, loaded later, reads the environment)

            assert all(pool["num_threads"] == 1 for pool in threadpool_info()), threadpool_info()
            assert os.environ["OPENBLAS_NUM_THREADS"] == "1"
        finally:
            torch.set_num_threads(before)
    refused = runner.invoke(app, ["--threads", "0", "datasets"])
    assert refused.exit_code == 2 and "--threads" in refused.output  # a usage error, no traceback
