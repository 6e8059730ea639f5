"""Which files in a leaderboard folder (``gen-eval demo --out``) the demo wrote itself.

A second demo replaces each model's run folder and the leaderboard files. Files a person put there
since (``gen-eval report`` writes ``RUN/report.html``; the dashboard saves embeddings into a run)
must not vanish with them. So the demo keeps a record, ``.gen-eval-demo.json`` in the folder,
of every file it wrote and its SHA-256; before any work, a new demo looks at what it is about to
replace, and any file missing from the record or changed since makes it stop with a one-line
error (as ``evaluate --out`` does for an existing run) unless ``--overwrite`` was given.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from gen_eval.errors import GenEvalError

RECORD = ".gen-eval-demo.json"
FORMAT = "gen-eval-demo-files-v1"


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _files_under(out: Path, name: str) -> list[str]:
    """Every file at ``out/name`` (a file, or a folder walked recursively), relative to ``out``."""
    target = out / name
    if target.is_file() or target.is_symlink():
        return [name]
    if not target.is_dir():
        return []
    return sorted(path.relative_to(out).as_posix() for path in target.rglob("*") if not path.is_dir())


def _read_record(out: Path) -> dict[str, str]:
    path = out / RECORD
    if not path.is_file():
        return {}
    try:
        document = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return {}  # an unreadable record vouches for nothing: every file counts as the user's
    files = document.get("files") if isinstance(document, dict) else None
    return files if document.get("format") == FORMAT and isinstance(files, dict) else {}


def foreign_files(out: str | Path, names: list[str]) -> list[str]:
    """Files under ``out/NAME`` (for each of ``names``) that the demo did not write, or that changed.

    Parameters
    ----------
    out : str or Path
        The demo's folder.
    names : list of str
        What the demo is about to replace: run folders (``vae``) and files (``leaderboard.json``).

    Returns
    -------
    list of str
        Paths relative to ``out``: files the demo never wrote first, then files changed since
        (a run the dashboard saved into has a changed manifest); empty when all are the demo's.
    """
    out = Path(out)
    record = _read_record(out)
    added, changed = [], []
    for name in names:
        for relative in _files_under(out, name):
            path = out / relative
            if relative not in record or path.is_symlink():
                added.append(relative)
            elif record[relative] != _sha256(path):
                changed.append(relative)
    return sorted(added) + sorted(changed)


def check_replaceable(out: str | Path, names: list[str], overwrite: bool) -> None:
    """Refuse (GenEvalError, before any work) to replace files in ``out`` that the demo did not write.

    With ``overwrite`` everything at ``out/NAME`` is replaced, as ``evaluate --overwrite`` does.
    """
    if overwrite:
        return
    found = foreign_files(out, names)
    if found:
        more = f" (and {len(found) - 1} more)" if len(found) > 1 else ""
        raise GenEvalError(
            f"{Path(out) / found[0]}{more}: not written by the demo, which would delete it; move it "
            f"out of {out}, choose another --out, or pass --overwrite to replace it "
            "(make demo DEMO_ARGS=--overwrite)"
        )


@contextmanager
def _locked(out: Path) -> Iterator[None]:
    """Hold ``out/.gen-eval-demo.lock``: models scored in parallel processes update one record."""
    try:
        import fcntl
    except ImportError:  # not POSIX: one process at a time is all there is (workers=1)
        yield
        return
    with open(out / f"{RECORD}.lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def record_files(out: str | Path, names: list[str]) -> None:
    """Add every file now under ``out/NAME`` to the record (replacing what it said about ``NAME``)."""
    out = Path(out)
    with _locked(out):
        _record(out, names)


def _record(out: Path, names: list[str]) -> None:
    record = _read_record(out)
    for name in names:
        prefix = f"{name}/"
        record = {k: v for k, v in record.items() if k != name and not k.startswith(prefix)}
        for relative in _files_under(out, name):
            record[relative] = _sha256(out / relative)
    text = json.dumps({"format": FORMAT, "files": dict(sorted(record.items()))}, indent=1) + "\n"
    # Written beside and renamed over the old record: a killed demo leaves one whole record.
    staging = out / f"{RECORD}.tmp-{os.getpid()}"
    staging.write_text(text)
    os.replace(staging, out / RECORD)
