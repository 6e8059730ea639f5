"""Piped tables print names, paths and URLs whole; every error line starts with the same prefix."""

from __future__ import annotations

import io
import subprocess
import sys

import pytest
import torch
from rich.console import Console
from rich.table import Table
from typer.testing import CliRunner

from gen_eval.cli import ERROR_PREFIX, app
from gen_eval.features import inception
from gen_eval.tables import console_for, unclipped

runner = CliRunner()
URL = "https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/weights-inception-2015-12-05-6726825d.pth"
PATH = "/a/rather/long/folder/name/that/a/user/must/copy/exactly/weights-inception-2015-12-05-6726825d.pth"


def _table() -> Table:
    table = Table(title="t")
    for column in ("name", "description", "weights"):
        table.add_column(column)
    table.add_row("pixelcnn_on_a_long_name", "some words " * 12, f"from {URL} or {PATH}")
    return table


def test_plain_rich_cuts_what_console_for_keeps(monkeypatch):
    """The fault being fixed, shown on rich itself: at a pipe's 80 columns the URL is cut or folded."""
    monkeypatch.delenv("COLUMNS", raising=False)
    plain = io.StringIO()
    Console(file=plain, width=80).print(_table())
    assert URL not in plain.getvalue() and "…" in plain.getvalue()

    piped = io.StringIO()
    table = unclipped(_table(), whole=("name",))
    console = console_for(table)
    console.file = piped
    console.print(table)
    text = piped.getvalue()
    assert URL in text and PATH in text and "pixelcnn_on_a_long_name" in text and "…" not in text
    assert console.width >= len(URL)


def test_features_piped_shows_the_weights_url_file_and_path_whole(monkeypatch, tmp_path):
    monkeypatch.delenv(inception.INCEPTION_WEIGHTS_ENV, raising=False)
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "a-hub-folder-with-a-long-name" / "hub"))
    result = runner.invoke(app, ["features"])
    assert result.exit_code == 0, result.output
    hub_file = str(inception.hub_cache_weights_path())
    for whole in (inception.INCEPTION_WEIGHTS_URL, inception.INCEPTION_WEIGHTS_FILENAME, hub_file):
        assert whole in result.stdout, whole
    assert "…" not in result.stdout
    assert "--features digits" in result.stdout and "--features identity" in result.stdout


def test_missing_weights_error_names_the_offline_extractors(monkeypatch, tmp_path):
    monkeypatch.delenv(inception.INCEPTION_WEIGHTS_ENV, raising=False)
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    result = runner.invoke(app, ["evaluate", "digits:test", "--features", "inception", "--no-save", "-q"])
    assert result.exit_code == 2
    line = result.stderr.strip()
    assert line.count("\n") == 0 and line.startswith(ERROR_PREFIX)
    assert (
        "--features digits" in line
        and "--features identity" in line
        and inception.INCEPTION_WEIGHTS_URL in line
    )


@pytest.mark.parametrize("command", ["models", "datasets", "metrics"])
def test_listing_tables_piped_keep_every_name_whole(command):
    listed = runner.invoke(app, [command, "--json"])
    names = [row["name"] for row in __import__("json").loads(listed.stdout)]
    result = runner.invoke(app, [command])
    assert result.exit_code == 0, result.output
    assert "…" not in result.stdout
    cells = {cell.strip() for line in result.stdout.splitlines() for cell in line.split("│")}
    assert set(names) <= cells, set(names) - cells


def test_leaderboard_piped_keeps_long_model_names(capsys):
    from gen_eval.demo.leaderboard import ModelScore, print_leaderboard

    fid = {"value": 12.5, "kind": "estimate", "interval": [11.0, 14.0], "direction": "lower"}
    names = ["a_student_model_with_a_really_long_name_v2", "pixelcnn_conditional_large"]
    scores = [
        ModelScore(name, "vae", "digits", None, {"fid": fid}, None, {"covered": 10, "total": 10}, {})
        for name in names
    ]
    print_leaderboard(scores)
    out = capsys.readouterr().out
    assert all(name in out for name in names) and "…" not in out


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["evaluate", "digits:test", "--bogus", "1"], "No such option: --bogus"),
        (["evaluate"], "Missing argument"),
        (["--threads", "0", "datasets"], "--threads"),
        (["nosuchcommand"], "No such command"),
        (["evaluate", "no/such/folder", "--no-save"], "no/such/folder"),  # gen-eval's own error
    ],
)
def test_every_error_is_one_line_with_one_prefix(args, fragment):
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    line = result.stderr.strip()
    assert line.startswith(ERROR_PREFIX) and line.count("\n") == 0, result.stderr
    assert fragment in line and "Error" not in line and "Traceback" not in line
    if "--threads" not in args:
        assert "--help" in line or "no/such/folder" in line


def test_the_installed_command_prints_usage_errors_the_same_way():
    """Through the console script (standalone click, not CliRunner): the same single line."""
    done = subprocess.run(
        [sys.executable, "-m", "gen_eval", "metrics", "--bogus"], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 2
    assert done.stderr.startswith(ERROR_PREFIX) and done.stderr.strip().count("\n") == 0, done.stderr
    assert "Error" not in done.stderr and "╭" not in done.stderr


def test_prefix_is_the_only_error_prefix_in_the_command_line_code():
    from pathlib import Path

    import gen_eval

    paths = sorted((Path(gen_eval.__file__).parent / "cli").glob("*.py"))
    assert len(paths) >= 10, paths  # the package's modules, not an empty glob that passes vacuously
    for path in paths:
        text = path.read_text()
        assert '"Error:' not in text and 'f"error: ' not in text, path


def test_score_table_piped_keeps_long_submission_names(capsys, tmp_path):
    from gen_eval.cli.score import print_score
    from gen_eval.grading.score import ScoreResult, SubmissionRow

    fid = {"value": 12.5, "kind": "estimate", "interval": [11.0, 14.0], "direction": "lower"}
    names = ["s2026_0042_ada_lovelace_final_submission_v3.zip", "grace_hopper_dcgan_with_spectral_norm"]
    rows = [
        SubmissionRow(name, name, "folder", "scored", student=name.upper(), metrics={"fid": fid}, rank=i)
        for i, name in enumerate(names, 1)
    ]
    result = ScoreResult("subs", "digits:test", "digits", tmp_path, "fid", rows, [], {})
    print_score(result)
    out = capsys.readouterr().out
    assert all(name in out and name.upper() in out for name in names) and "…" not in out
