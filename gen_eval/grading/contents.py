"""What a submission holds, checked before its samples are read: links, counts, files never read.

``gen-eval score`` grades only what each student submitted. These checks run on a prepared
submission (:mod:`gen_eval.grading.submissions`) before a byte of its samples is hashed or decoded:

* a folder inside the submission that is a symbolic link is refused, wherever it points (another
  student's submission, or outside): its images are not the student's;
* the number of samples is read from the array header or counted from the file names, and a
  submission over ``Limits.max_samples`` is refused before anything is decompressed;
* files the grader never reads (archives inside the submission, GIF or TIFF images) refuse the
  submission when nothing else is there, and are named in a warning when samples were found;
* :func:`time_limit` stops a submission that runs past ``Limits.time_limit`` seconds.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType

from gen_eval.errors import GenEvalError
from gen_eval.grading.archives import TAR_SUFFIXES, clean_text
from gen_eval.sources.folder import IMAGE_SUFFIXES

ARCHIVE_SUFFIXES = (".zip", ".7z", ".rar", ".gz", ".bz2", ".xz", *TAR_SUFFIXES)
# Image formats people export by habit that the grader does not decode (only PNG, JPEG, WebP, BMP).
UNREAD_IMAGES = {".gif": "GIF", ".tif": "TIFF", ".tiff": "TIFF", ".heic": "HEIC", ".avif": "AVIF"}
UNREAD_IMAGES |= {".svg": "SVG", ".ico": "ICO", ".ppm": "PPM", ".pgm": "PGM", ".jp2": "JPEG 2000"}


def refuse_linked_folders(root: Path, label: str, submissions: Path | None = None) -> None:
    """Refuse a submission folder holding a folder that is a symbolic link (links are never followed).

    Parameters
    ----------
    root : Path
        The submission's folder (or the folder an archive was unpacked into).
    label : str
        The submission as the grader names it (``alice``).
    submissions : Path, optional
        SUBMISSIONS_DIR, to say when the link points at another submission.

    Raises
    ------
    GenEvalError
        Naming the first linked folder and where it points.
    """
    for folder, names, _files in os.walk(root, followlinks=False):
        for name in sorted(names):
            path = Path(folder) / name
            if not path.is_symlink():
                continue
            target = path.resolve()
            where = "outside the submission"
            if target.is_relative_to(root.resolve()):
                where = "elsewhere in the submission"
            elif submissions is not None and target.is_relative_to(submissions.resolve()):
                other = target.relative_to(submissions.resolve()).parts
                where = f"another submission, {clean_text(other[0], 60)!r}" if other else where
            relative = path.relative_to(root).as_posix()
            raise GenEvalError(
                f"{label}/{clean_text(relative)}: a folder that is a symbolic link (to {where}); links are "
                "not followed, so the submission is refused: put the files themselves in it"
            )


def declared_count(samples: Path, label: str, key: str | None = None) -> int:
    """How many samples a submission holds, from the array header or the image file names alone.

    Parameters
    ----------
    samples : Path
        An ``.npy``/``.npz`` file or a folder of images.
    label : str
        For messages.
    key : str, optional
        The ``.npz`` member holding the samples (None: ``arr_0`` or the only one).

    Returns
    -------
    int
    """
    if samples.is_file() and samples.suffix.lower() in (".txt", ".jsonl"):
        with samples.open("rb") as lines:  # one sample per line; the reader checks each one
            return sum(1 for _ in lines)
    if samples.is_file():
        from gen_eval.sources.arrays import declared_shape

        shape = declared_shape(samples, key, label)
        return shape[0] if shape else 0
    from gen_eval.sources.pointcloud import CLOUD_SUFFIXES, is_cloud_folder

    suffixes = CLOUD_SUFFIXES if is_cloud_folder(samples) else IMAGE_SUFFIXES  # one cloud per file
    return sum(1 for p in samples.rglob("*") if p.suffix.lower() in suffixes and p.is_file())


def check_count(count: int, label: str, *, max_samples: int, num_samples: int | None) -> None:
    """Refuse a submission whose samples to read exceed ``max_samples`` (``--max-samples``).

    With ``num_samples`` only the first N are read, so only those count.
    """
    read = count if num_samples is None else min(count, num_samples)
    if read > max_samples:
        raise GenEvalError(
            f"{label}: {count:,} samples, over the limit of {max_samples:,} per submission; refused before "
            f"reading them (submit at most {max_samples:,}, or pass --max-samples / --num-samples)"
        )


def unread_files(root: Path, base: Path, label: str, archived: bool) -> list[tuple[str, str]]:
    """Files under ``root`` that the grader never reads, as (path as the grader names it, reason).

    Parameters
    ----------
    root : Path
        Where the submission's samples were looked for.
    base : Path
        What paths are named relative to (the submission's folder, or the unpacking folder).
    label : str
        The submission's entry name (``alice`` or ``bob.zip``).
    archived : bool
        Whether the submission is itself an archive (the message then says "zip inside a zip").
    """
    found = []
    for path in sorted(root.rglob("*"), key=lambda p: p.relative_to(root).as_posix()):
        lower = path.name.lower()
        if not path.is_file() or any(part.startswith(".") for part in path.relative_to(root).parts):
            continue
        name = "/".join([label, *path.relative_to(base).parts])
        if lower.endswith(ARCHIVE_SUFFIXES) and not lower.endswith((".npz", ".npy")):
            reason = (
                "an archive inside an archive (zip inside a zip) is not unpacked"
                if archived
                else "an archive inside a submission folder is not unpacked"
            )
            found.append((name, reason))
        elif path.suffix.lower() in UNREAD_IMAGES:
            found.append((name, f"{UNREAD_IMAGES[path.suffix.lower()]} images are not read"))
    return found


def refuse_or_warn(unread: list[tuple[str, str]], has_samples: bool, archived: bool) -> list[str]:
    """Refuse a submission whose only content is unread files; else warnings naming what was left out."""
    if not unread:
        return []
    reasons = Counter(reason for _, reason in unread)
    first, reason = unread[0]
    others = f" (and {len(unread) - 1} more such files)" if len(unread) > 1 else ""
    if not has_samples:
        if "archive" in reason:
            fix = "put the samples themselves at its top level" if archived else "unpack it into the folder"
        else:
            fix = "convert them to PNG"
        raise GenEvalError(
            f"{clean_text(first, 160)}: {reason}{others}, and nothing else holds samples; {fix}"
        )
    example = {reason: name for name, reason in reversed(unread)}  # the first file of each reason
    return [
        f"{count} file(s) ignored: {reason} (e.g. {clean_text(example[reason], 120)})"
        for reason, count in reasons.items()
    ]


class _Overtime(BaseException):
    """Raised by the alarm; a BaseException so that no ``except Exception`` on the way swallows it."""


@contextmanager
def time_limit(seconds: float | None, label: str) -> Iterator[None]:
    """Stop the block with a one-line GenEvalError once it has run ``seconds`` (None or 0: no limit).

    A wall-clock alarm (SIGALRM) interrupts whatever Python code is running, decoding or feature
    extraction alike. It needs the main thread of a Unix process and is not used across torchrun
    ranks (one rank stopping alone would leave the others waiting); elsewhere the block runs
    unlimited. An alarm already set (pytest-timeout's) is kept and re-armed afterwards.
    """
    from gen_eval import distributed

    usable = hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread()
    if not seconds or not usable or distributed.active():
        yield
        return
    started = time.monotonic()
    deadline = started + seconds
    previous = signal.getsignal(signal.SIGALRM)

    def fire(signum: int, frame: FrameType | None) -> None:
        if time.monotonic() >= deadline - 1e-3:
            raise _Overtime
        if callable(previous):  # the earlier alarm came due first: it is its owner's
            previous(signum, frame)
        signal.setitimer(signal.ITIMER_REAL, max(deadline - time.monotonic(), 1e-3))

    signal.signal(signal.SIGALRM, fire)
    outer, interval = signal.setitimer(signal.ITIMER_REAL, seconds)
    if outer and outer < seconds:
        signal.setitimer(signal.ITIMER_REAL, outer)
    try:
        yield
    except _Overtime:
        raise GenEvalError(
            f"{label}: still running after the time limit of {seconds:g} s per submission; stopped "
            "(pass --time-limit SECONDS to allow more)"
        ) from None
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        if outer:
            left = outer - (time.monotonic() - started)
            signal.setitimer(signal.ITIMER_REAL, max(left, 1e-3), interval)
