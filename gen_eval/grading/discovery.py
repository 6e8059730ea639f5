"""Finding the submissions in SUBMISSIONS_DIR: one :class:`Entry` per folder, archive or array file.

Entries are taken in sorted name order. Names starting with ``.`` or ``_`` and archiver debris
are not graded and are returned as ignored with the reason, as are files of other kinds. A
top-level entry that is a symbolic link is refused (an :class:`Entry` with its error): to another
submission it would be a silent duplicate, outside the folder it is not what was submitted. Two
entries whose file names would collide (case-blind) are both refused. Used by
:mod:`gen_eval.grading.submissions`, which re-exports :class:`Entry` and :func:`discover`.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from gen_eval.errors import GenEvalError
from gen_eval.grading.archives import SKIPPED_NAMES, TAR_SUFFIXES, clean_text

ARRAY_SUFFIXES = (".npz", ".npy")
TEXT_SUFFIXES = (".txt", ".jsonl")  # text samples: one per line (gen_eval/sources/text.py)
# A bare top-level text entry must be .jsonl: a .txt beside the submissions is usually a note.
BARE_TEXT_SUFFIXES = (".jsonl",)


@dataclass
class Entry:
    """One submission as found in SUBMISSIONS_DIR."""

    name: str  # for people: the entry's name without its archive suffix, control characters removed
    key: str  # for files: runs/<key>, reports/<key>.html
    path: Path
    kind: str  # "folder", "zip", "tar", "array" or "link" (always refused)
    error: str | None = None  # a problem found before opening it (two entries with one name)


def _kind(path: Path) -> tuple[str, str] | None:
    """(kind, name without suffix) of a directory entry, or None when it is not a submission."""
    lower = path.name.lower()
    if path.is_dir():
        return "folder", path.name
    if not path.is_file():
        return None
    for suffixes, kind in (
        ((".zip",), "zip"),
        (TAR_SUFFIXES, "tar"),
        (ARRAY_SUFFIXES + BARE_TEXT_SUFFIXES, "array"),
    ):
        for suffix in sorted(suffixes, key=len, reverse=True):
            if lower.endswith(suffix) and len(lower) > len(suffix):
                return kind, path.name[: -len(suffix)]
    return None


def _skip_reason(path: Path) -> str | None:
    """Why a top-level entry is passed over without being graded (None: it is looked at)."""
    if path.name in SKIPPED_NAMES:
        return "archiver or system debris"
    if path.name.startswith("."):
        return "hidden: the name starts with '.'; rename it to grade it"
    if path.name.startswith("_"):
        return "the name starts with '_', which marks entries to skip; rename it to grade it"
    return None


def _link_error(path: Path, root: Path, base: Path) -> str:
    """Every top-level link is refused: its files are not what the student submitted under that name."""
    target = path.resolve()
    if not target.is_relative_to(base):
        return f"{path.name}: a link pointing outside {root}; copy the submission in instead"
    other = target.relative_to(base).parts
    if not path.exists() or not other:
        return f"{path.name}: a symbolic link that leads nowhere usable; copy the submission in instead"
    return (
        f"{path.name}: a symbolic link to the submission {clean_text(other[0], 60)!r}, refused rather "
        "than scored as a duplicate; submit the files themselves"
    )


def discover(root: Path, exclude: tuple[Path, ...] = ()) -> tuple[list[Entry], list[str]]:
    """The submissions in ``root`` in sorted order, and the names of entries that are not submissions.

    Parameters
    ----------
    root : Path
        SUBMISSIONS_DIR.
    exclude : tuple of Path
        Entries to pass over (the output folder when it lies inside ``root``).

    Returns
    -------
    (list of Entry, list of str)
        The ignored entries are named with the reason: ``"..dotdot (hidden: the name starts with '.')"``.
    """
    if not root.is_dir():
        raise GenEvalError(f"{root}: not a folder; point at the folder that holds one entry per submission")
    excluded = {path.absolute() for path in exclude} | {path.resolve() for path in exclude}
    base = root.resolve()
    entries, ignored = [], []
    for path in sorted(root.iterdir(), key=lambda p: p.name):
        if path.absolute() in excluded or (not path.is_symlink() and path.resolve() in excluded):
            continue
        if (reason := _skip_reason(path)) is not None:
            ignored.append(f"{clean_text(path.name)} ({reason})")
            continue
        found = _kind(path) or (("link", path.name) if path.is_symlink() else None)
        if found is None:
            ignored.append(
                f"{clean_text(path.name)} (not a folder, archive, .npz/.npy array or .jsonl text file)"
            )
            continue
        kind, stem = found
        key = re.sub(r"[^A-Za-z0-9_.-]+", "-", stem).strip(".-")[:71] or "submission"
        if key != stem:  # lossy (unicode, spaces): a hash of the real name keeps keys distinct
            key = f"{key}-{hashlib.sha256(stem.encode()).hexdigest()[:8]}"
        entry = Entry(clean_text(stem) or key, key, path, kind)
        if path.is_symlink():
            entry.error = _link_error(path, root, base)
        entries.append(entry)
    # Keys name files; compare them case-blind, as a macOS or Windows disk would.
    counts = Counter(entry.key.lower() for entry in entries)
    for entry in entries:
        if counts[entry.key.lower()] > 1:
            twins = ", ".join(e.path.name for e in entries if e.key.lower() == entry.key.lower())
            entry.error = f"{entry.path.name}: several entries share the name {entry.key!r} ({twins}); rename all but one"
    return entries, ignored
