"""Unpacking submitted archives safely: every member is checked before the first byte is written.

Absolute paths, ``..``, links, device files, encrypted members, more than ``Limits.max_members``
files, more than ``Limits.max_bytes`` unpacked or a member compressed more than
``Limits.max_ratio`` to 1 refuse the whole archive. Members are then copied into the target
folder (never outside it), counting the bytes actually written, so a forged header cannot
write more than it declared. Used by :mod:`gen_eval.grading.submissions`.
"""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import re
import stat
import tarfile
import unicodedata
import zipfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from gen_eval.errors import GenEvalError

TAR_SUFFIXES = (".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tar.xz")
SKIPPED_NAMES = {"__MACOSX", ".DS_Store", "Thumbs.db"}  # archiver debris, never samples
_CHUNK = 1 << 20


@dataclass(frozen=True)
class Limits:
    """What a submission may cost the grader; anything larger is refused, not truncated.

    Attributes
    ----------
    max_bytes : int
        Bytes an archive may unpack to, an array's samples may take, and decoded images may take.
    max_members : int
        Files in an archive.
    max_ratio : float
        Uncompressed / compressed size of an archive member (or of a whole tar) above 1 MiB.
    max_image_pixels : int
        Pixels one image may declare (read from its header before decoding).
    max_metadata_bytes : int
        Size of ``submission.toml``.
    max_samples : int
        Samples a submission may make the grader read (``--max-samples``), counted from the array
        header or the image file names before anything is decoded. 50,000 is the usual size of a
        FID evaluation set.
    time_limit : float or None
        Wall-clock seconds one submission may take from unpacking to its run written
        (``--time-limit``; None or 0: no limit). One hour: 50,000 samples through Inception at the
        21.8 images/s measured on a 2-thread CPU (``reports/scale.md``) take 38 minutes, so a
        full-size submission on the slowest machine gen-eval supports fits with 1.5x to spare.
    """

    max_bytes: int = 1 << 30
    max_members: int = 20_000
    max_ratio: float = 100.0
    max_image_pixels: int = 4096 * 4096
    max_metadata_bytes: int = 64 << 10
    max_samples: int = 50_000
    time_limit: float | None = 3600.0


def clean_text(value: object, limit: int = 80) -> str:
    """``value`` as one line of printable text (control and format characters dropped), cut to ``limit``."""
    text = "".join(" " if ch.isspace() else ch for ch in str(value))
    text = "".join(ch for ch in text if not unicodedata.category(ch).startswith("C"))
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _safe_parts(name: str, archive: Path) -> tuple[str, ...]:
    """The path components of an archive member, refusing names that would land outside the folder."""
    text = name.replace("\\", "/")
    if text.startswith("/") or re.match(r"^[A-Za-z]:", text) or "\0" in text:
        raise GenEvalError(
            f"{archive.name}: member {clean_text(name)!r} has an absolute path (zip-slip); refused, nothing unpacked"
        )
    parts = tuple(part for part in text.split("/") if part not in ("", "."))
    if ".." in parts:
        raise GenEvalError(
            f"{archive.name}: member {clean_text(name)!r} points outside the archive's folder (zip-slip); "
            "refused, nothing unpacked"
        )
    return parts


def _debris(parts: tuple[str, ...]) -> bool:
    return any(part in SKIPPED_NAMES for part in parts) or parts[-1].startswith("._")


class _Budget:
    """Counts members and bytes against the limits while an archive is listed."""

    def __init__(self, archive: Path, limits: Limits) -> None:
        self.archive, self.limits = archive, limits
        self.members, self.total = 0, 0
        self.seen: set[tuple[str, ...]] = set()

    def add(self, parts: tuple[str, ...], size: int, packed: int | None) -> None:
        name = self.archive.name
        self.members += 1
        self.total += size
        if self.members > self.limits.max_members:
            raise GenEvalError(f"{name}: more than {self.limits.max_members:,} files; refused")
        if self.total > self.limits.max_bytes:
            raise GenEvalError(
                f"{name}: unpacks to more than {self.limits.max_bytes:,} bytes (archive bomb?); refused, "
                "nothing unpacked"
            )
        if packed is not None and size > _CHUNK and size > self.limits.max_ratio * max(packed, 1):
            raise GenEvalError(
                f"{name}: member {'/'.join(parts)!r} is compressed {size / max(packed, 1):,.0f} to 1 "
                f"(over {self.limits.max_ratio:g}; zip bomb?); refused, nothing unpacked"
            )
        if parts in self.seen:
            raise GenEvalError(f"{name}: member {'/'.join(parts)!r} appears twice; refused")
        self.seen.add(parts)


def _copy(source: IO[bytes], target: Path, declared: int, archive: Path) -> None:
    """Copy one member into ``target`` (a new file), never writing more than it declared."""
    written = 0
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target, "xb") as handle:
        while chunk := source.read(_CHUNK):
            written += len(chunk)
            if written > declared:
                raise GenEvalError(f"{archive.name}: a member holds more than its declared size; refused")
            handle.write(chunk)


def unpack_zip(path: Path, target: Path, limits: Limits) -> None:
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise GenEvalError(f"{path.name}: not a readable zip archive ({exc}); re-create it") from exc
    with archive:
        budget, plan = _Budget(path, limits), []
        size_on_disk = path.stat().st_size
        for info in archive.infolist():  # everything is checked before the first byte is written
            parts = _safe_parts(info.filename, path)
            mode = info.external_attr >> 16
            if stat.S_ISLNK(mode):
                raise GenEvalError(
                    f"{path.name}: member {clean_text(info.filename)!r} is a symbolic link; archives with "
                    "links are refused, nothing unpacked"
                )
            if info.is_dir() or not parts:
                continue
            if stat.S_IFMT(mode) not in (0, stat.S_IFREG):
                raise GenEvalError(
                    f"{path.name}: member {clean_text(info.filename)!r} is not a plain file; refused"
                )
            if info.flag_bits & 0x1:
                raise GenEvalError(f"{path.name}: member {clean_text(info.filename)!r} is encrypted; refused")
            if info.compress_size > size_on_disk:
                raise GenEvalError(f"{path.name}: member sizes exceed the file (forged header); refused")
            budget.add(parts, info.file_size, info.compress_size)
            if not _debris(parts):
                plan.append((info, parts))
        try:
            for info, parts in plan:
                with archive.open(info) as member:
                    _copy(member, target.joinpath(*parts), info.file_size, path)
        except (zipfile.BadZipFile, OSError, RuntimeError, NotImplementedError, zlib.error, EOFError) as exc:
            raise GenEvalError(f"{path.name}: cannot unpack ({exc}); re-create the archive") from exc


class _Capped(io.RawIOBase):
    """A decompressed stream that refuses to produce more than ``cap`` bytes (bounds a tar bomb)."""

    def __init__(self, stream: IO[bytes], cap: int, name: str) -> None:
        self.stream, self.left, self.name = stream, cap, name

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self.stream.read(min(len(buffer), self.left + 1))
        if len(data) > self.left:
            raise GenEvalError(f"{self.name}: unpacks to more than its size limit (archive bomb?); refused")
        self.left -= len(data)
        buffer[: len(data)] = data
        return len(data)


@contextmanager
def _tar_stream(path: Path, limits: Limits) -> Iterator[tarfile.TarFile]:
    raw = open(path, "rb")  # noqa: SIM115 (closed below)
    try:
        magic = raw.read(6)
        raw.seek(0)
        opener = {b"\x1f\x8b": gzip.GzipFile, b"BZ": bz2.BZ2File, b"\xfd7": lzma.LZMAFile}.get(magic[:2])
        stream: IO[bytes] = opener(fileobj=raw) if opener is gzip.GzipFile else opener(raw) if opener else raw
        # Headers (pax ones included) and padding take a few KiB per member on top of the data.
        cap = limits.max_bytes + (limits.max_members + 16) * 3072
        with tarfile.open(fileobj=io.BufferedReader(_Capped(stream, cap, path.name)), mode="r|") as tar:
            yield tar
    finally:
        raw.close()


def unpack_tar(path: Path, target: Path, limits: Limits) -> None:
    errors = (tarfile.TarError, OSError, EOFError, lzma.LZMAError, zlib.error, ValueError)
    try:
        budget, plan = _Budget(path, limits), []
        with _tar_stream(path, limits) as tar:  # first pass: headers only, nothing written
            for member in tar:
                parts = _safe_parts(member.name, path)
                if member.issym() or member.islnk():
                    raise GenEvalError(
                        f"{path.name}: member {clean_text(member.name)!r} is a link; archives with links are "
                        "refused, nothing unpacked"
                    )
                if member.isdir() or not parts:
                    continue
                if not member.isreg() or member.issparse():
                    raise GenEvalError(
                        f"{path.name}: member {clean_text(member.name)!r} is not a plain file; refused"
                    )
                budget.add(parts, member.size, None)
                plan.append(parts)
        packed = path.stat().st_size
        if budget.total > _CHUNK and budget.total > limits.max_ratio * max(packed, 1):
            raise GenEvalError(
                f"{path.name}: compressed {budget.total / packed:,.0f} to 1 (over {limits.max_ratio:g}; "
                "archive bomb?); refused, nothing unpacked"
            )
        with _tar_stream(path, limits) as tar:  # second pass: the same members, in the same order
            for index, member in enumerate(m for m in tar if m.isreg()):
                parts = _safe_parts(member.name, path)
                if index >= len(plan) or parts != plan[index]:
                    raise GenEvalError(f"{path.name}: changed while being unpacked; refused")
                if not _debris(parts):
                    handle = tar.extractfile(member)
                    assert handle is not None  # regular files always have a stream
                    _copy(handle, target.joinpath(*parts), member.size, path)
    except errors as exc:
        raise GenEvalError(f"{path.name}: not a readable tar archive ({exc}); re-create it") from exc
