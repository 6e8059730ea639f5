"""Issue 18: grading reads only what was submitted, within limits, and storage faults are one line.

The hostile corpus (links, hidden names, nested archives, GIFs, animated WebP, a count bomb) is
scored in tests/test_score.py; here: the 16-million-image .npz, the time limit, --max-samples,
files left out beside real samples, and a read-only or full cache or output disk.
"""

from __future__ import annotations

import errno
import os
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

import gen_eval
import gen_eval.evaluation
from gen_eval import GenEvalError
from gen_eval.bench.hostile import count_bomb_npz, digits, npy_bytes, write_pngs, write_zip
from gen_eval.cli import app
from gen_eval.errors import StorageError
from gen_eval.grading import contents
from gen_eval.grading.submissions import Entry, Limits, discover, prepare

OPTIONS = {"reference": "digits:test", "features": "digits", "num_resamples": 5}


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("cache")


def _two(subs: Path) -> None:
    for name, start in (("a", 0), ("b", 40)):
        (subs / name).mkdir(parents=True)
        np.save(subs / name / "samples.npy", digits(start, start + 40))


def test_sixteen_million_images_in_a_small_npz_are_refused_from_the_header(tmp_path, cache, monkeypatch):
    subs = tmp_path / "subs"
    subs.mkdir()
    count_bomb_npz(subs / "huge.npz", 16_000_000)
    assert (subs / "huge.npz").stat().st_size < 10 << 20  # 1 GB of pixels in a few MB
    called = []
    monkeypatch.setattr(gen_eval.evaluation, "evaluate", lambda *a, **k: called.append(a))
    result = gen_eval.score(subs, out=tmp_path / "out", cache_dir=cache, **OPTIONS)
    (row,) = result.rows
    assert row.status == "error" and not called
    assert "huge.npz: 16,000,000 samples, over the limit of 50,000 per submission" in row.error
    assert row.seconds < 2.0, row.seconds  # the header alone: nothing decompressed


def test_max_samples_and_num_samples_decide_what_is_read(tmp_path, cache, one_thread):
    subs = tmp_path / "subs"
    _two(subs)
    small = Limits(max_samples=30)
    refused = gen_eval.score(subs, out=tmp_path / "o1", cache_dir=cache, limits=small, **OPTIONS)
    assert all("40 samples, over the limit of 30" in (r.error or "") for r in refused.rows)
    first = gen_eval.score(
        subs, out=tmp_path / "o2", cache_dir=cache, limits=small, num_samples=20, **OPTIONS
    )
    assert [r.status for r in first.rows] == ["scored", "scored"]  # only the first 20 are read
    with pytest.raises(GenEvalError, match="--num-samples 31 is over --max-samples 30"):
        gen_eval.score(subs, out=tmp_path / "o3", cache_dir=cache, limits=small, num_samples=31, **OPTIONS)
    args = ["score", str(subs), "-r", "digits:test", "--cache-dir", str(cache), "--quiet"]
    done = CliRunner().invoke(app, [*args, "--out", str(tmp_path / "o4"), "--max-samples", "39"])
    assert done.exit_code == 3 and "40 samples, over the limit of 39" in done.output, done.output
    bad = CliRunner().invoke(app, [*args, "--out", str(tmp_path / "o5"), "--time-limit", "-1"])
    assert bad.exit_code == 2 and "--time-limit must be >= 0" in bad.output


def test_time_limit_stops_a_slow_submission_and_the_next_one_is_scored(tmp_path, cache, monkeypatch):
    subs = tmp_path / "subs"
    _two(subs)
    real = gen_eval.evaluation.evaluate
    calls = []

    def slow_first(source, *args, **kwargs):
        calls.append(source.spec)
        if len(calls) == 1:
            time.sleep(60)  # a submission that would run for an hour
        return real(source, *args, **kwargs)

    monkeypatch.setattr(gen_eval.evaluation, "evaluate", slow_first)
    outer = signal.getitimer(signal.ITIMER_REAL)[0]  # pytest-timeout's alarm, when it uses one
    started = time.monotonic()
    result = gen_eval.score(
        subs, out=tmp_path / "out", cache_dir=cache, limits=Limits(time_limit=8.0), **OPTIONS
    )
    assert time.monotonic() - started < 45
    rows = {r.name: r for r in result.rows}
    assert rows["a"].status == "error" and "a: still running after the time limit of 8 s" in rows["a"].error
    assert rows["b"].status == "scored"
    assert not (tmp_path / "out" / "runs" / "a").exists()
    if outer:
        assert 0 < signal.getitimer(signal.ITIMER_REAL)[0] <= outer  # re-armed, not cancelled


def test_time_limit_keeps_an_earlier_alarm_that_comes_due_first():
    fired = []
    previous = signal.signal(signal.SIGALRM, lambda *_: fired.append(time.monotonic()))
    outer = signal.setitimer(signal.ITIMER_REAL, 0.2)
    try:
        with pytest.raises(GenEvalError, match=r"time limit of 0\.6 s"), contents.time_limit(0.6, "x"):
            time.sleep(5)
        assert len(fired) == 1  # the outer alarm reached its owner, and ours still fired after it
    finally:
        signal.signal(signal.SIGALRM, previous)
        signal.setitimer(signal.ITIMER_REAL, *outer)


def test_files_never_read_are_warnings_beside_samples_and_links_are_refused(tmp_path):
    folder = tmp_path / "subs" / "amy"
    write_pngs(folder / "samples", digits(0, 12))
    (folder / "samples" / "extra.gif").write_bytes(b"GIF89a")
    write_zip(folder / "old.zip", {"samples.npy": npy_bytes(digits(0, 12))})
    with prepare(Entry("amy", "amy", folder, "folder")) as ready:
        assert ready.label == "amy/samples"
        assert ready.warnings == [
            "1 file(s) ignored: an archive inside a submission folder is not unpacked (e.g. amy/old.zip)",
            "1 file(s) ignored: GIF images are not read (e.g. amy/samples/extra.gif)",
        ]
    (folder / "samples" / "more").symlink_to(tmp_path, target_is_directory=True)
    with (
        pytest.raises(GenEvalError, match=r"amy/samples/more: a folder that is a symbolic link \(to outside"),
        prepare(Entry("amy", "amy", folder, "folder")),
    ):
        pass
    (tmp_path / "subs" / "broken").symlink_to(tmp_path / "subs" / "nowhere")
    (tmp_path / "subs" / "far").symlink_to(tmp_path / "elsewhere.npy")
    np.save(tmp_path / "elsewhere.npy", digits(0, 12))
    entries, ignored = discover(tmp_path / "subs")
    errors = {entry.name: entry.error for entry in entries}
    assert "leads nowhere usable" in errors["broken"] and "a link pointing outside" in errors["far"]
    assert errors["amy"] is None and ignored == []


def _no_cache_writes(monkeypatch, cache_root: Path) -> None:
    """As a read-only folder does for an unprivileged user (the tests may run as root)."""
    import tempfile

    real = tempfile.mkstemp

    def refuse(*args, dir=None, **kwargs):
        if dir is not None and Path(dir).resolve().is_relative_to(cache_root.resolve()):
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(dir))
        return real(*args, dir=dir, **kwargs)

    monkeypatch.setattr(tempfile, "mkstemp", refuse)


def test_read_only_cache_is_a_warning_and_every_submission_is_scored(tmp_path, monkeypatch, one_thread):
    ro = tmp_path / "ro-cache"
    ro.mkdir()
    _no_cache_writes(monkeypatch, ro)
    evaluation = gen_eval.evaluate(
        "digits:train", "digits:test", out=tmp_path / "run", num_resamples=0, cache_dir=ro, collapse=False
    )
    assert any(f"feature cache {ro}: not written (Permission denied)" in w for w in evaluation.warnings)
    assert list(ro.rglob("*.safetensors")) == [] and gen_eval.load_run(tmp_path / "run")
    subs = tmp_path / "subs"
    _two(subs)
    result = gen_eval.score(subs, out=tmp_path / "out", cache_dir=ro, **OPTIONS)
    assert [r.status for r in result.rows] == ["scored", "scored"]
    (warning,) = result.warnings
    assert warning.startswith(f"feature cache {ro}: not writable (Permission denied)")


def test_full_disk_while_caching_leaves_no_partial_entry(tmp_path, monkeypatch, one_thread):
    import safetensors.torch

    real = safetensors.torch.save_file

    def full(tensors, filename, metadata=None):
        Path(filename).write_bytes(b"half an entry")
        raise safetensors.SafetensorError(
            "Error while serializing: I/O error: No space left on device (os error 28)"
        )

    monkeypatch.setattr(safetensors.torch, "save_file", full)
    cache = tmp_path / "cache"
    evaluation = gen_eval.evaluate(
        "digits:train", "digits:test", cache_dir=cache, num_resamples=0, collapse=False, metrics=["fid"]
    )
    assert any("not written (No space left on device)" in w for w in evaluation.warnings)
    assert [p for p in cache.rglob("*") if p.is_file()] == []  # no temporary file, no half entry
    monkeypatch.setattr(safetensors.torch, "save_file", real)


def test_a_real_write_limit_while_writing_a_run_is_one_line(tmp_path):
    """The kernel refuses the write (RLIMIT_FSIZE: EFBIG), as a full disk would with ENOSPC."""

    def limit() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (64 << 10, 64 << 10))

    command = [sys.executable, "-m", "gen_eval", "evaluate", "digits:train", "--reference", "digits:test"]
    command += ["--out", str(tmp_path / "run"), "--cache-dir", str(tmp_path / "cache"), "--quiet"]
    command += ["--num-resamples", "0", "--metrics", "fid"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, preexec_fn=limit)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert "Traceback" not in done.stderr and len(lines) == 1, done.stderr
    assert "writing the run failed (File too large); nothing was written" in lines[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cache"]  # no run, no staging folder
    assert not [p for p in (tmp_path / "cache").rglob("*.tmp")]


def test_full_disk_while_scoring_stops_the_batch_in_one_line(tmp_path, cache, monkeypatch, one_thread):
    from gen_eval.runs import run as run_module

    subs = tmp_path / "subs"
    _two(subs)

    def full_disk(*_args, **_kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(run_module, "_write_bytes", full_disk)
    with pytest.raises(StorageError, match=r"No space left on device.*scoring stopped after 0 of 2"):
        gen_eval.score(subs, out=tmp_path / "out", cache_dir=cache, **OPTIONS)
    assert not [p for p in (tmp_path / "out").rglob("*") if p.is_file()]  # no run, state or half page
    args = ["score", str(subs), "-r", "digits:test", "--cache-dir", str(cache), "--quiet"]
    done = CliRunner().invoke(app, [*args, "--out", str(tmp_path / "out2")])
    assert done.exit_code == 2 and "Traceback" not in done.output
    assert "scoring stopped after 0 of 2 submissions" in done.output
