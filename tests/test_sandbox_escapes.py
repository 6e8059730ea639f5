"""Hostile ``--trust-code`` generators cannot escape the kernel sandbox (issue 18).

Each case of :mod:`gen_eval.bench.hostile_code` tries one escape; it must end in a one-line error
naming the submission, and the judge (planted files, listening sockets, processes, memory) must
see nothing escape. Where this kernel lacks a feature the sandbox needs, these tests fail: they
never skip.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch

from gen_eval.bench import hostile_code
from gen_eval.errors import GenEvalError
from gen_eval.sources import sandbox
from gen_eval.sources.confinement import landlock_abi, missing_features
from gen_eval.sources.python import open_python_source

TIME_LIMIT_S = 8


@pytest.fixture(scope="module")
def arena(tmp_path_factory):
    os.environ["GEN_EVAL_SANDBOX_TIME_S"] = str(TIME_LIMIT_S)
    torch.zeros(1)  # torch's own memory is counted before the forged-reply case measures growth
    world = hostile_code.Arena(tmp_path_factory.mktemp("hostile"))
    yield world
    world.close()
    os.environ.pop("GEN_EVAL_SANDBOX_TIME_S", None)


def test_this_kernel_offers_what_the_sandbox_needs():
    assert missing_features() == [], "the sandbox cannot confine the worker on this system"
    assert landlock_abi() >= 3


@pytest.mark.parametrize("case", list(hostile_code.CASES))
def test_a_hostile_generator_is_caught_and_nothing_escapes(arena, case):
    outcome = hostile_code.run_case(arena, case)
    assert outcome.escapes == []
    assert outcome.error is not None and "\n" not in outcome.error
    assert str(arena.file) in outcome.error  # names the submission
    assert arena.secret not in outcome.error and "Traceback" not in outcome.error
    assert outcome.caught, outcome.error
    if case == "forge":  # 1 GiB was sent after a 3 GiB header: none of it may reach our memory
        assert outcome.memory_growth_mb < 128
    if case == "hang":  # loading (a few s) plus the limit, not forever
        assert outcome.seconds < TIME_LIMIT_S * 2 + 5


KERNEL_CASES = [
    c for c in hostile_code.CASES if c not in ("hang", "forge", "ansi") and not c.startswith("returns")
]


@pytest.mark.parametrize("case", KERNEL_CASES)
def test_without_the_audit_hook_the_kernel_alone_holds(arena, case, monkeypatch):
    monkeypatch.setattr(sandbox, "AUDIT_HOOK", False)
    outcome = hostile_code.run_case(arena, case)
    assert outcome.escapes == []
    assert outcome.caught, outcome.error
    assert "gen-eval sandbox" not in outcome.error  # the kernel's errno, not the hook's message


@pytest.mark.parametrize("case", ["truncate", "ctypes_open", "ctypes_udp"])
def test_the_judge_sees_escapes_when_isolation_is_off(arena, case):
    """Planted fault: with --unsafe-no-isolation these escapes succeed, and the judge must say so."""
    outcome = hostile_code.run_case(arena, case, isolation=False)
    assert outcome.escapes and not outcome.caught


GOOD = """
import os, sys, torch

HERE = os.path.dirname(os.path.abspath(__file__))


class Threads:
    def sample(self, n, generator=None):
        torch.set_num_threads(4)  # threads are allowed (clone with CLONE_THREAD)
        weights = torch.rand(256, 256, generator=generator)
        mixed = (weights @ weights).sum() * 0
        return torch.rand(n, 1, 8, 8, generator=generator) + mixed


def threads():
    return Threads()


class Home:
    def sample(self, n, generator=None):
        home = os.environ["HOME"]
        with open(os.path.join(home, "scratch.txt"), "w") as handle:  # its private temp folder
            handle.write(open(os.path.join(HERE, "weights.txt")).read())
        allowed = {"PATH", "HOME", "TMPDIR", "LANG", "LANGUAGE", "TZ"}
        extra = [k for k in os.environ if k not in allowed and not k.startswith(("LC_", "OMP_", "MKL_", "OPENBLAS_"))]
        if extra or os.environ["TMPDIR"] != home or home == os.path.expanduser("~root"):
            raise RuntimeError("environment not scrubbed: %s" % extra)
        status = open("/proc/self/status").read()
        if "CapEff:\t0000000000000000" not in status or "NoNewPrivs:\t1" not in status:
            raise RuntimeError("capabilities left: %s" % status)
        return torch.rand(n, 1, 8, 8, generator=generator)


def home():
    return Home()


def sibling():
    import helper  # a module beside the file, in the submission's own folder

    return helper.Model()


class Sleep:
    def sample(self, n, generator=None):
        import time
        time.sleep(3600)


def sleep():
    return Sleep()
"""


@pytest.fixture
def good(tmp_path, monkeypatch):
    path = tmp_path / "student" / "gens.py"
    path.parent.mkdir()
    path.write_text(textwrap.dedent(GOOD))
    (path.parent / "weights.txt").write_text("0.5")
    monkeypatch.setenv("GEN_EVAL_SANDBOX_TIME_S", "60")
    return path


def test_threads_home_and_the_scrubbed_environment_work_and_the_temp_folder_goes(good, monkeypatch):
    monkeypatch.setenv("GEN_EVAL_SOME_TOKEN", "x")
    source = open_python_source(f"{good}:threads", 20, 3, trust_code=True)
    inside = torch.cat([batch.data for batch in source.batches(8)])
    reference = open_python_source(f"{good}:threads", 20, 3, trust_code=True, sandbox=False)
    assert torch.equal(inside, torch.cat([batch.data for batch in reference.batches(8)]))
    assert any("confined by the kernel" in note for note in source.notes)
    homed = open_python_source(f"{good}:home", 4, 0, trust_code=True)
    temp = Path(homed.model._temp)
    assert (temp / "scratch.txt").read_text() == "0.5"
    homed.model.close()
    assert not temp.exists()
    (good.parent / "helper.py").write_text(
        "import torch\nclass Model:\n    def sample(self, n, generator=None):\n"
        "        return torch.zeros(n, 1, 4, 4)\n"
    )
    assert len(open_python_source(f"{good}:sibling", 3, 0, trust_code=True).model.sample(3)) == 3


def test_a_kernel_without_the_features_is_refused_unless_unsafe(good, monkeypatch):
    monkeypatch.setattr(sandbox, "missing_features", lambda: ["Landlock ABI >= 3 (this kernel: none)"])
    with pytest.raises(GenEvalError) as refused:
        open_python_source(f"{good}:home", 4, 0, trust_code=True)
    message = str(refused.value)
    assert "\n" not in message and "Landlock ABI >= 3" in message and "--unsafe-no-isolation" in message
    source = open_python_source(f"{good}:threads", 4, 0, trust_code=True, unsafe_no_isolation=True)
    assert any("NOT isolated" in note for note in source.notes)


def _workers_of(path: Path) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                command = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if b"sandbox_worker" in command and str(path).encode() in command:
                found.append(int(entry.name))
    return found


def test_the_worker_dies_with_a_killed_grader(good):
    grader = textwrap.dedent(f"""
        from gen_eval.sources.sandbox import sandboxed_model
        from pathlib import Path
        model = sandboxed_model("s", Path({str(good)!r}), "sleep")
        print("started", flush=True)
        model.sample(1)
    """)
    process = subprocess.Popen([sys.executable, "-c", grader], stdout=subprocess.PIPE, text=True)
    assert process.stdout.readline().strip() == "started"
    deadline = time.monotonic() + 30
    while not _workers_of(good) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _workers_of(good), "the worker never started"
    process.send_signal(signal.SIGKILL)
    process.wait()
    deadline = time.monotonic() + 10
    while _workers_of(good) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _workers_of(good) == []  # PR_SET_PDEATHSIG took it down with the grader


def test_the_robustness_report_counts_escapes_hangs_and_tracebacks(tmp_path, monkeypatch):
    from gen_eval.bench import robustness

    chosen = {name: hostile_code.CASES[name] for name in ("truncate", "returns_str")}
    monkeypatch.setattr(hostile_code, "CASES", chosen)
    report = robustness.Robustness()
    robustness._hostile_code(report, tmp_path)
    assert [c.ok for c in report.checks] == [True, True] and report.escapes == report.hangs == 0
    report.escapes += 1  # a planted escape must show in the summary and its row
    report.add("code", "planted", "error", "ESCAPED", False, 1)
    text = robustness._markdown(report)
    assert "escapes: **1**, hangs: **0**, tracebacks: **0**" in text
    assert "| ESCAPED | 1 | **NO** |" in text


def test_the_cli_refuses_trust_code_in_one_line_where_the_kernel_cannot_confine(good, monkeypatch):
    from typer.testing import CliRunner

    from gen_eval.cli import app

    monkeypatch.setattr(sandbox, "missing_features", lambda: ["Landlock ABI >= 3 (this kernel: ABI 2)"])
    command = ["evaluate", f"{good}:threads", "--trust-code", "--num-samples", "4"]
    command += ["--reference", "digits:test", "--no-save", "--metrics", "fid", "--num-resamples", "0"]
    result = CliRunner().invoke(app, command)
    assert result.exit_code != 0
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and "Landlock ABI >= 3" in lines[0] and "--unsafe-no-isolation" in lines[0]
    assert "Traceback" not in result.output
