"""``gen-eval bench robustness``: the hostile corpus, faults and kills, counted in reports/robustness.md.

Three parts, each measured in a fresh temporary folder:

1. **Corpus**: every case of :func:`gen_eval.bench.hostile.build_submissions` in one batch with
   the good submissions; each bad one must get its expected one-line error, every good one must
   be scored, nothing may be written outside the scratch folders, and the pickle canary must not fire.
2. **Faults while writing**: a full disk (ENOSPC injected into the run writer) and an output
   path under a file must give a clear error and leave no run folder or staging debris; a
   read-only or full feature cache is a one-line warning and leaves no partial entry; a full
   disk stops ``score`` in one line; a submission past ``--time-limit`` is stopped.
3. **Hostile code**: every generator of :mod:`gen_eval.bench.hostile_code` through the sandbox;
   each must get its one-line error, and escapes (judged from outside), hangs and tracebacks
   are counted on their own.
4. **Reference statistics**: malformed, crafted (a ``.pkl`` that would run a command) and
   mismatched statistics files through ``gen-eval evaluate --reference``
   (:mod:`gen_eval.bench.robustness_statistics`): one-line errors, no run folder, nothing run.
5. **Kills**: ``gen-eval score`` is killed with SIGKILL once a first submission is finished, and
   ``gen-eval evaluate`` at 0.5, 2 and 4 s; each rerun must complete, keep what was finished
   (features cached before the kill are reused), leave no staging debris, and its runs must verify.
"""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from unittest import mock

from gen_eval.errors import GenEvalError

SCORE_OPTIONS = {"num_resamples": 10, "show_progress": False}


@dataclass
class Check:
    """One case: what was tried, what was expected, what happened, and whether that was right."""

    part: str
    case: str
    expected: str
    got: str
    ok: bool
    escapes: int = 0


@dataclass
class Robustness:
    checks: list[Check] = field(default_factory=list)
    data_lost: int = 0
    seconds: float = 0.0
    escapes: int = 0
    hangs: int = 0
    tracebacks: int = 0

    def add(self, part: str, case: str, expected: str, got: str, ok: bool, escapes: int = 0) -> None:
        self.checks.append(Check(part, case, expected, got.replace("\n", " "), ok, escapes))


def _corpus(report: Robustness, scratch: Path) -> None:
    from gen_eval.bench.hostile import CANARY, IGNORED_ENTRIES, READS_ELSEWHERE, build_submissions
    from gen_eval.grading.score import score

    subs, outside, unpack = scratch / "corpus" / "subs", scratch / "outside", scratch / "unpack"
    outside.mkdir(parents=True)
    unpack.mkdir()
    expected = build_submissions(subs, outside)
    with mock.patch.object(tempfile, "tempdir", str(unpack)):
        result = score(subs, "digits:test", out=scratch / "corpus" / "out", **SCORE_OPTIONS)
    rows: dict[str, list] = {}
    for row in result.rows:
        rows.setdefault(row.name, []).append(row)
    for name, fragment in sorted(expected.items()):
        found = rows.get(name, [])
        report.tracebacks += sum((r.error or "").startswith("internal error") for r in found)
        if fragment is None:
            ok = bool(found) and all(r.status == "scored" for r in found)
            report.data_lost += 0 if ok else 1
            got = "scored" if ok else "; ".join(str(r.error) for r in found) or "missing"
            report.add("corpus", name, "scored", got, ok)
        else:
            ok = bool(found) and all(r.status == "error" and fragment in (r.error or "") for r in found)
            # Scoring a link case grades files the student did not submit: an escape of the data path.
            leaked = sum(r.status != "error" for r in found) if name in READS_ELSEWHERE else 0
            report.escapes += leaked
            got = "; ".join(str(r.error) if r.status == "error" else "scored" for r in found) or "missing"
            report.add("corpus", name, f"error containing '{fragment}'", got, ok, leaked)
    listed = {entry.split(" (")[0]: entry for entry in result.ignored}
    hidden = {name: listed.get(name, "not listed") for name in IGNORED_ENTRIES}
    ok = all("(" in text for text in hidden.values()) and not any(name in rows for name in hidden)
    got = "; ".join(hidden.values())
    report.add(
        "corpus", "entries named '.*' and '_*'", "listed as ignored with the reason, not scored", got, ok
    )
    escaped = sorted(p.name for p in outside.iterdir() if p.name != "secret.png")
    escaped += [str(p) for p in scratch.rglob("escaped.txt")]
    report.add("corpus", "nothing written outside", "no files", ", ".join(escaped) or "none", not escaped)
    leftovers = list(unpack.iterdir())
    report.add("corpus", "unpack folder emptied", "empty", f"{len(leftovers)} entries", not leftovers)
    fired = (subs.parent / CANARY).exists()
    report.add("corpus", "pickle canary", "never loaded", "fired" if fired else "not fired", not fired)


def _hostile_code(report: Robustness, scratch: Path, time_limit_s: int = 8) -> None:
    """Each hostile generator through the kernel sandbox; escapes are judged from outside."""
    from gen_eval.bench import hostile_code

    previous = os.environ.get("GEN_EVAL_SANDBOX_TIME_S")
    os.environ["GEN_EVAL_SANDBOX_TIME_S"] = str(time_limit_s)
    arena = hostile_code.Arena(scratch / "hostile-code")
    try:
        for case, (tried, fragment) in hostile_code.CASES.items():
            try:
                outcome = hostile_code.run_case(arena, case)
            except Exception as exc:  # anything but a one-line GenEvalError is a traceback
                report.tracebacks += 1
                report.add("code", case, fragment, f"traceback: {type(exc).__name__}: {exc}", False)
                continue
            hung = outcome.seconds > 2 * time_limit_s + 10
            report.escapes += len(outcome.escapes)
            report.hangs += hung
            got = "; ".join(outcome.escapes) or str(outcome.error)
            got += f" ({outcome.seconds:.1f} s" + (
                f", grader memory +{outcome.memory_growth_mb:.0f} MB)" if case == "forge" else ")"
            )
            ok = outcome.caught and not hung and (case != "forge" or outcome.memory_growth_mb < 128)
            expected = "error containing " + " or ".join(f"'{part}'" for part in fragment.split("|"))
            report.add("code", f"{case}: {tried}", expected, got, ok, len(outcome.escapes))
    finally:
        arena.close()
        if previous is None:
            os.environ.pop("GEN_EVAL_SANDBOX_TIME_S", None)
        else:
            os.environ["GEN_EVAL_SANDBOX_TIME_S"] = previous


def _faults(report: Robustness, scratch: Path) -> None:
    import gen_eval
    from gen_eval.runs import run as run_module

    def full_disk(*_args, **_kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    out = scratch / "faults" / "full"
    with mock.patch.object(run_module, "_write_bytes", full_disk):
        try:
            gen_eval.evaluate("digits:train", "digits:test", out=out, num_resamples=0, show_progress=False)
            got, ok = "no error", False
        except GenEvalError as exc:
            debris = [p.name for p in out.parent.iterdir()] if out.parent.exists() else []
            got, ok = f"{exc} (left: {debris or 'nothing'})", "No space left" in str(exc) and not debris
    report.add("faults", "disk full while writing a run", "clear error, nothing left", got, ok)

    blocker = scratch / "faults" / "a-file"
    blocker.write_text("not a folder")
    try:
        gen_eval.evaluate(
            "digits:train", "digits:test", out=blocker / "run", num_resamples=0, show_progress=False
        )
        got, ok = "no error", False
    except GenEvalError as exc:
        got, ok = str(exc), "cannot create the run folder" in str(exc)
    report.add("faults", "output folder under a file", "clear error", got, ok)


def _storage_faults(report: Robustness, scratch: Path) -> None:
    """A read-only or full cache, a full disk while scoring, and a submission past --time-limit."""
    import numpy as np
    import safetensors
    import safetensors.torch

    import gen_eval
    import gen_eval.evaluation
    from gen_eval.bench.hostile import digits
    from gen_eval.grading.archives import Limits
    from gen_eval.runs import run as run_module

    root = scratch / "storage"
    subs = root / "subs"
    for name, start in (("a", 0), ("b", 40)):
        (subs / name).mkdir(parents=True)
        np.save(subs / name / "samples.npy", digits(start, start + 40))
    quick = {"num_resamples": 0, "show_progress": False, "collapse": False, "metrics": ["fid"]}

    readonly = root / "ro-cache"
    readonly.mkdir()
    real_mkstemp = tempfile.mkstemp

    def refuse(*args, dir=None, **kwargs):  # what a read-only folder does to a non-root user
        if dir is not None and Path(dir).resolve().is_relative_to(readonly.resolve()):
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(dir))
        return real_mkstemp(*args, dir=dir, **kwargs)

    def attempt(action, expect: str, check) -> tuple[str, bool]:
        try:
            value = action()
        except GenEvalError as exc:
            return str(exc), check(exc)
        except Exception as exc:  # a traceback is what this part exists to rule out
            report.tracebacks += 1
            return f"traceback: {type(exc).__name__}: {exc}", False
        return check(value) or expect, bool(check(value))

    with mock.patch.object(tempfile, "mkstemp", refuse):
        got, ok = attempt(
            lambda: gen_eval.evaluate("digits:train", "digits:test", cache_dir=readonly, **quick),
            "no warning",
            lambda e: next((w for w in getattr(e, "warnings", []) if "Permission denied" in w), ""),
        )
    report.add(
        "faults", "read-only feature cache (evaluate)", "a one-line warning, the run completes", got, ok
    )

    full_cache = root / "full-cache"

    def full_write(tensors, filename, metadata=None):
        Path(filename).write_bytes(b"half an entry")
        raise safetensors.SafetensorError("Error while serializing: I/O error: No space left (os error 28)")

    with mock.patch.object(safetensors.torch, "save_file", full_write):
        got, ok = attempt(
            lambda: gen_eval.evaluate("digits:train", "digits:test", cache_dir=full_cache, **quick),
            "no warning",
            lambda e: next((w for w in getattr(e, "warnings", []) if "No space left" in w), ""),
        )
    left = [p.name for p in full_cache.rglob("*") if p.is_file()]
    report.add(
        "faults",
        "disk full while writing the feature cache",
        "a one-line warning, no partial entry",
        f"{got} (left: {left or 'nothing'})",
        ok and not left,
    )

    def full_disk(*_args, **_kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    out = root / "score-full"
    with mock.patch.object(run_module, "_write_bytes", full_disk):
        got, ok = attempt(
            lambda: gen_eval.score(subs, "digits:test", out=out, cache_dir=root / "cache", **SCORE_OPTIONS),
            "no error",
            lambda e: isinstance(e, GenEvalError) and "scoring stopped after 0 of 2" in str(e),
        )
    written = [p.name for p in out.rglob("*") if p.is_file()] if out.exists() else []
    report.add(
        "faults",
        "disk full while gen-eval score writes a run",
        "one line, the batch stops, nothing half-written",
        f"{got} (left: {written or 'nothing'})",
        ok and not written,
    )

    real_evaluate, calls = gen_eval.evaluation.evaluate, []

    def endless_first(source, *args, **kwargs):
        calls.append(source.spec)
        if len(calls) == 1:
            time.sleep(600)  # a submission that would keep the grader busy for ten minutes
        return real_evaluate(source, *args, **kwargs)

    started = time.monotonic()
    with mock.patch.object(gen_eval.evaluation, "evaluate", endless_first):
        result = gen_eval.score(
            subs,
            "digits:test",
            out=root / "score-slow",
            cache_dir=root / "cache",
            limits=Limits(time_limit=10.0),
            **SCORE_OPTIONS,
        )
    seconds = time.monotonic() - started
    statuses = {row.name: (row.status, row.error) for row in result.rows}
    report.hangs += seconds > 120
    ok = "time limit of 10 s" in (statuses["a"][1] or "") and statuses["b"][0] == "scored"
    got = f"a: {statuses['a'][1]}; b: {statuses['b'][0]} ({seconds:.0f} s for both)"
    report.add("faults", "a submission running past --time-limit 10", "stopped, the next one scored", got, ok)


def _finished_runs(out: Path) -> list[str]:
    """Names of the runs ``score`` has finished under ``out``: hidden staging folders are not runs."""
    folder = out / "runs"
    return sorted(p.name for p in folder.iterdir() if not p.name.startswith(".")) if folder.is_dir() else []


def _kill(report: Robustness, scratch: Path) -> None:
    from gen_eval.bench.hostile import digits
    from gen_eval.runs.run import load_run

    subs, out = scratch / "kill" / "subs", scratch / "kill" / "out"
    import numpy as np

    subs.mkdir(parents=True)
    for i in range(4):
        np.save(subs / f"student{i}.npy", digits(i * 50, i * 50 + 50))
    command = [
        sys.executable,
        "-m",
        "gen_eval",
        "score",
        str(subs),
        "--reference",
        "digits:test",
        "--out",
        str(out),
    ]
    command += ["--num-resamples", "10"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and process.poll() is None and not _finished_runs(out):
        time.sleep(0.05)
    finished_before = _finished_runs(out)
    process.send_signal(signal.SIGKILL)
    process.wait()
    rerun = subprocess.run(command, capture_output=True, text=True, timeout=600)
    runs = _finished_runs(out)
    verified = 0
    for name in runs:
        try:
            load_run(out / "runs" / name)
            verified += 1
        except GenEvalError:
            pass
    kept = all(name in runs for name in finished_before)
    ok = rerun.returncode == 0 and len(runs) == 4 and verified == 4 and kept
    report.data_lost += 0 if kept else 1
    got = (
        f"killed with {len(finished_before)} finished; rerun exit {rerun.returncode}, "
        f"{len(runs)} runs, {verified} verify"
    )
    report.add(
        "kills", "SIGKILL during gen-eval score, then rerun", "rerun completes, 4 runs verify", got, ok
    )


def _kill_evaluate(report: Robustness, scratch: Path, moments: tuple[float, ...] = (0.5, 2.0, 4.0)) -> None:
    """SIGKILL ``gen-eval evaluate`` at a few moments; each rerun must write a run that verifies."""
    from gen_eval.runs.run import load_run

    root = scratch / "kill-evaluate"
    root.mkdir(parents=True, exist_ok=True)
    cache = root / "cache"
    out = root / "run"
    command = [sys.executable, "-m", "gen_eval", "evaluate", "ref:dcgan", "--reference", "digits:test"]
    command += ["--num-samples", "2000", "--num-resamples", "50", "--out", str(out), "--overwrite"]
    command += ["--cache-dir", str(cache), "--quiet"]
    for moment in moments:
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(moment)
        finished = process.poll() is not None
        process.send_signal(signal.SIGKILL)
        process.wait()
        rerun = subprocess.run(command, capture_output=True, text=True, timeout=600)
        try:
            load_run(out)
            verified = True
        except GenEvalError:
            verified = False
        debris = [p.name for p in root.iterdir() if p.name.startswith(".run.")]
        ok = rerun.returncode == 0 and verified and not debris
        report.data_lost += 0 if verified else 1
        when = "after it had finished" if finished else f"{moment:g} s in"
        got = f"killed {when}; rerun exit {rerun.returncode}, run verifies: {verified}, debris: {debris or 'none'}"
        report.add(
            "kills",
            f"SIGKILL during gen-eval evaluate at {moment:g} s, then rerun",
            "rerun writes a verified run",
            got,
            ok,
        )


def run_robustness(out: str | Path = "reports/robustness.md") -> Robustness:
    """Run the parts and write the markdown report to ``out``; returns the counts."""
    from gen_eval.bench.robustness_statistics import statistics_cases

    report = Robustness()
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="gen-eval-robustness-") as folder:
        scratch = Path(folder)
        _corpus(report, scratch)
        statistics_cases(report, scratch)
        _hostile_code(report, scratch)
        _faults(report, scratch)
        _storage_faults(report, scratch)
        _kill(report, scratch)
        _kill_evaluate(report, scratch)
    report.seconds = time.perf_counter() - started
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    Path(out).write_text(_markdown(report), encoding="utf-8")
    return report


def _markdown(report: Robustness) -> str:
    correct = sum(check.ok for check in report.checks)
    lines = [
        "# Robustness: hostile input, faults and kills",
        "",
        "Regenerate with `gen-eval bench robustness` (this file is written by it).",
        "",
        f"- cases tried: **{len(report.checks)}**, handled as expected: **{correct}**, "
        f"data lost: **{report.data_lost}** ({report.seconds:.0f} s)",
        f"- hostile code (`gen_eval/bench/hostile_code.py`, `--trust-code` in the kernel sandbox): "
        f"escapes: **{report.escapes}**, hangs: **{report.hangs}**, tracebacks: **{report.tracebacks}**",
        "- corpus: `gen_eval/bench/hostile.py`, one batch scored with `gen-eval score` against digits:test;",
        "  the good submissions must be scored, each bad one must get its own one-line error",
        "- statistics: `gen_eval/bench/robustness_statistics.py`, broken, crafted and mismatched reference",
        "  statistics files given to `gen-eval evaluate --reference`: one-line errors, no run, nothing run",
        "- faults: a full disk is simulated by injecting ENOSPC into the run writer, the feature cache",
        "  (safetensors) and score's writes; a read-only cache by refusing its temporary files (as",
        "  a read-only folder does to a non-root user); a slow submission by a 10-minute sleep",
        "- corpus escapes: a link case (a linked folder or entry) that gets scored has graded files the",
        "  student did not submit; tracebacks: a row whose error is an 'internal error'",
        "",
        "| part | case | expected | got | escapes | ok |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for check in report.checks:
        got = check.got.replace("|", "\\|")
        lines.append(
            f"| {check.part} | {check.case} | {check.expected} | {got} | {check.escapes} "
            f"| {'yes' if check.ok else '**NO**'} |"
        )
    return "\n".join(lines) + "\n"
