"""Submitted generator code runs in a separate, limited process (gen_eval/sources/sandbox.py)."""

from __future__ import annotations

import textwrap
import time

import pytest
import torch

from gen_eval.errors import GenEvalError
from gen_eval.sources.python import open_python_source

GENERATORS = """
import os, signal, sys, time, torch

CANARY = os.path.join(os.path.dirname(__file__), "imported-here")


class Good:
    family, dataset = "gan", "digits"

    def sample(self, n, generator=None):
        print("chatty models must not break the protocol")
        return torch.rand(n, 1, 8, 8, generator=generator)


def good():
    try:  # the worker may not write its folder (the kernel refuses); the grader's process may
        open(CANARY + "-" + str(os.getpid()), "w").close()
    except PermissionError:
        pass
    model = Good()
    model.family = "gan-" + str(os.getpid())  # comes back to the grader from the worker
    return model


class Hang(Good):
    def sample(self, n, generator=None):
        time.sleep(3600)


class Greedy(Good):
    def sample(self, n, generator=None):
        hoard = []
        while True:
            hoard.append(bytearray(256 * 2**20))


class Crash(Good):
    def sample(self, n, generator=None):
        os.kill(os.getpid(), signal.SIGSEGV)


def hang():
    return Hang()


def greedy():
    return Greedy()


def crash():
    return Crash()


def broken():
    raise ValueError("no weights here")


class Own(Good):
    def __init__(self):
        with open("weights.txt") as handle:  # its own folder: allowed
            self.scale = float(handle.read())


def own():
    return Own()


def peek():
    with open(os.path.join(os.path.dirname(os.path.dirname(__file__)), "other", "samples.txt")) as h:
        return h.read()


def spawn():
    import subprocess
    subprocess.run(["true"])


def dial():
    import socket
    socket.create_connection(("127.0.0.1", 9), timeout=1)
"""


@pytest.fixture
def generators(tmp_path, monkeypatch):
    path = tmp_path / "student" / "gens.py"
    path.parent.mkdir()
    path.write_text(textwrap.dedent(GENERATORS))
    monkeypatch.setenv("GEN_EVAL_SANDBOX_TIME_S", "20")
    return path


def _all(source) -> torch.Tensor:
    return torch.cat([batch.data for batch in source.batches(32)])


def test_sandboxed_samples_equal_in_process_ones_and_the_code_ran_elsewhere(generators):
    import os

    sandboxed = open_python_source(f"{generators}:good", 100, 7, trust_code=True)
    in_process = open_python_source(f"{generators}:good", 100, 7, trust_code=True, sandbox=False)
    assert torch.equal(_all(sandboxed), _all(in_process))
    assert any("separate process" in note for note in sandboxed.notes)
    pids = {p.name.rsplit("-", 1)[1] for p in generators.parent.glob("imported-here-*")}
    assert pids == {str(os.getpid())}  # imported here once (sandbox=False); the worker could not write
    worker = sandboxed.model.family.split("-")[1]
    assert worker.isdigit() and worker != str(os.getpid())  # the worker's import ran elsewhere
    assert not hasattr(sandboxed.model, "log_prob")  # the stand-in only samples


def test_a_hanging_generator_is_stopped_at_the_time_limit(generators, monkeypatch):
    monkeypatch.setenv("GEN_EVAL_SANDBOX_TIME_S", "3")
    started = time.perf_counter()
    with pytest.raises(GenEvalError, match=r"took longer than 3 s; stopped"):
        open_python_source(f"{generators}:hang", 10, 0, trust_code=True)
    assert time.perf_counter() - started < 30


def test_unbounded_allocation_is_stopped_by_the_memory_limit(generators, monkeypatch):
    monkeypatch.setenv("GEN_EVAL_SANDBOX_MEMORY_MB", "5000")  # torch itself reserves about 3 GiB
    monkeypatch.setenv("GEN_EVAL_SANDBOX_TIME_S", "120")
    with pytest.raises(GenEvalError, match="ran out of its memory limit"):
        open_python_source(f"{generators}:greedy", 10, 0, trust_code=True)


def test_crashes_and_failing_factories_are_reported(generators):
    with pytest.raises(GenEvalError, match="crashed with SIGSEGV"):
        open_python_source(f"{generators}:crash", 10, 0, trust_code=True)
    with pytest.raises(GenEvalError, match=r"broken\(\) raised ValueError: no weights here"):
        open_python_source(f"{generators}:broken", 10, 0, trust_code=True)
    with pytest.raises(GenEvalError, match="--trust-code"):
        open_python_source(f"{generators}:good", 10, 0, trust_code=False)


def test_the_worker_reads_its_own_folder_but_not_other_submissions(generators, tmp_path):
    (generators.parent / "weights.txt").write_text("0.5")
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "samples.txt").write_text("someone else's work")
    assert len(_all(open_python_source(f"{generators}:own", 10, 0, trust_code=True))) == 10
    with pytest.raises(GenEvalError, match=r"outside the submission's folder"):
        open_python_source(f"{generators}:peek", 10, 0, trust_code=True)
    with pytest.raises(GenEvalError, match="starting processes is not allowed"):
        open_python_source(f"{generators}:spawn", 10, 0, trust_code=True)
    with pytest.raises(GenEvalError, match="network access is not allowed"):
        open_python_source(f"{generators}:dial", 10, 0, trust_code=True)


def test_log_prob_runs_in_the_worker_and_gives_the_in_process_bits_per_dim():
    from gen_eval.evaluation import evaluate

    spec = "examples/pixel_categorical.py:make_model"
    common = {
        "metrics": ["bpd"],
        "num_samples": 50,
        "num_resamples": 0,
        "trust_code": True,
        "collapse": False,
    }
    sandboxed = evaluate(spec, "digits:test", **common)
    in_process = evaluate(spec, "digits:test", sandbox=False, **common)
    assert sandboxed.metrics["bits_per_dim"].value == in_process.metrics["bits_per_dim"].value
    assert sandboxed.metrics["bits_per_dim"].kind == "exact"  # the model's `likelihood` came through
    # The run records how the submitted code ran.
    recorded = {"trust_code": True, "sandbox": True, "unsafe_no_isolation": False}
    assert recorded.items() <= sandboxed.manifest["options"].items()
    assert in_process.manifest["options"]["sandbox"] is False
