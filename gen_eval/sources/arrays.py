"""``.npy`` and ``.npz`` sample files, streamed in chunks and never unpickled.

The OpenAI evaluator convention: the images are array ``arr_0`` of an ``.npz``, NHWC
uint8. ``key`` picks another array. Arrays are read straight from the file (for
``.npz``, through the zip member's stream, compressed or not), so a 50,000 x 256 x 256
x 3 file never sits in memory whole. A first pass hashes the bytes, checks for NaN/inf
and measures the value range; the second pass converts.

An ``.npz`` may hold a ``labels`` array beside the samples (one non-negative integer class per
sample): the set is then labelled (``num_classes``; see :mod:`gen_eval.sources.labels`).

The header's declared shape is checked against the bytes the file (or zip member) holds
before anything is read, so a forged header cannot make a read ask for terabytes, and
``max_bytes`` lets a caller (``gen-eval score``) refuse arrays larger than it will read.
"""

from __future__ import annotations

import hashlib
import math
import os
import zipfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import numpy as np

from gen_eval.errors import GenEvalError
from gen_eval.sources.base import Batch, Source
from gen_eval.sources.convert import (
    Layout,
    ValueRule,
    check_finite,
    choose_value_rule,
    infer_layout,
    to_canonical,
)

_SCAN_CHUNK_BYTES = 64 << 20
LABELS = "labels"  # the .npz member that labels the samples beside it


@dataclass(frozen=True)
class _ArrayHeader:
    shape: tuple[int, ...]
    dtype: np.dtype
    fortran_order: bool


def _read_header(stream: IO[bytes], name: str) -> _ArrayHeader:
    try:
        version = np.lib.format.read_magic(stream)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(stream)
        else:
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(stream)
    except ValueError as exc:
        raise GenEvalError(f"{name}: not a valid .npy array ({exc}); re-save it with numpy.save") from exc
    if dtype.hasobject:
        raise GenEvalError(
            f"{name}: holds an object array (pickled Python objects), which gen-eval never unpickles; "
            "save a numeric array (uint8 images or float vectors)"
        )
    if not (np.issubdtype(dtype, np.number) or dtype == np.bool_) or np.issubdtype(dtype, np.complexfloating):
        raise GenEvalError(f"{name}: dtype {dtype} is not a real numeric type; save uint8 or float samples")
    return _ArrayHeader(tuple(shape), dtype, fortran)


def _check_declared_size(header: _ArrayHeader, available: int, name: str) -> None:
    """Refuse a header whose shape needs more bytes than follow it (a truncated file or a forged
    header: reading what it declares would try to allocate that much memory)."""
    if any(size < 0 for size in header.shape):
        raise GenEvalError(f"{name}: header declares a negative shape {header.shape}; re-save it")
    declared = math.prod(header.shape) * header.dtype.itemsize
    if declared > available:
        raise GenEvalError(
            f"{name}: header declares shape {header.shape} ({declared:,} bytes) but only "
            f"{max(available, 0):,} bytes follow (truncated or forged); re-save it with numpy.save"
        )


# What opening a damaged .npy, or a damaged or encrypted .npz member, raises.
_HEADER_ERRORS = (
    OSError,
    zipfile.BadZipFile,
    KeyError,
    RuntimeError,
    NotImplementedError,
    EOFError,
    zlib.error,
)


def declared_shape(path: Path, key: str | None = None, label: str | None = None) -> tuple[int, ...]:
    """The shape an ``.npy`` file (or an ``.npz`` member) declares, read from its header alone.

    Only the first bytes are read (for an ``.npz``, decompressed), so a file declaring millions
    of samples is sized in milliseconds, before anything else is read.

    Parameters
    ----------
    path : Path
        The ``.npy`` or ``.npz`` file.
    key : str, optional
        The ``.npz`` member (default: ``arr_0``, else the only array).
    label : str, optional
        The name used in messages (default: ``path``).

    Returns
    -------
    tuple of int
    """
    name = label or str(path)
    try:
        if path.suffix.lower() != ".npz":
            with open(path, "rb") as stream:
                return _read_header(stream, name).shape
        with zipfile.ZipFile(path) as archive:
            names = [n[:-4] for n in archive.namelist() if n.endswith(".npy")]
            member = key or ("arr_0" if "arr_0" in names or not names else names[0])
            with archive.open(f"{member}.npy") as stream:
                return _read_header(stream, f"{name}[{member}]").shape
    except _HEADER_ERRORS as exc:
        raise GenEvalError(
            f"{name}: cannot read the array header ({exc}); re-save it with numpy.save"
        ) from exc


@dataclass
class ArraySource(Source):
    """Samples stored as one array in a ``.npy`` or ``.npz`` file."""

    kind = "array"
    path: Path = field(default=Path())
    key: str | None = None
    limit: int | None = None
    value_range: str = "auto"
    max_bytes: int | None = None  # refuse arrays whose samples (as declared) take more bytes

    def __post_init__(self) -> None:
        self.path = Path(self.path)
        if self.path.suffix.lower() == ".npz":
            self.key = self._pick_key()
        self.label = f"{self.path}" + (f"[{self.key}]" if self.key else "")
        with self._open() as (_stream, header):
            self._header = header
        if len(header.shape) < 2 or header.shape[0] == 0:
            raise GenEvalError(
                f"{self.label}: array of shape {header.shape} holds no samples; expected (N, ...)"
            )
        rows = header.shape[0] if self.limit is None else min(self.limit, header.shape[0])
        wanted = rows * math.prod(header.shape[1:]) * header.dtype.itemsize
        if self.max_bytes is not None and wanted > self.max_bytes:
            raise GenEvalError(
                f"{self.label}: {rows:,} samples of shape {header.shape[1:]} ({header.dtype}) take "
                f"{wanted:,} bytes, over the limit of {self.max_bytes:,}; submit fewer or smaller samples"
            )
        self._layout: Layout = infer_layout(header.shape, header.dtype, self.label)
        self.data_kind = self._layout.data_kind
        self.sample_shape = self._layout.sample_shape
        self._count = header.shape[0] if self.limit is None else min(self.limit, header.shape[0])
        self._rule: ValueRule | None = None
        self._labels = self._read_labels()
        self._scan()
        if self._labels is not None:  # labels are part of what the set is: cached features carry them
            digest = hashlib.sha256(f"{self._fingerprint}:labels".encode())
            digest.update(self._labels.tobytes())
            self._fingerprint = digest.hexdigest()
        if self._layout.note:
            self.notes.insert(0, self._layout.note)

    # -- reading ---------------------------------------------------------------------------
    def _pick_key(self) -> str:
        try:
            with zipfile.ZipFile(self.path) as archive:
                names = [n[:-4] for n in archive.namelist() if n.endswith(".npy")]
        except (zipfile.BadZipFile, OSError) as exc:
            raise GenEvalError(
                f"{self.path}: not a readable .npz archive ({exc}); re-save it with numpy.savez"
            ) from exc
        if self.key is not None:
            if self.key not in names:
                raise GenEvalError(
                    f"{self.path}: no array {self.key!r}; it holds {', '.join(names) or 'nothing'}"
                )
            return self.key
        if "arr_0" in names:
            return "arr_0"
        samples = [name for name in names if name != LABELS]  # labels lie beside the samples
        if len(samples) == 1:
            return samples[0]
        raise GenEvalError(f"{self.path}: holds arrays {', '.join(names)}; pick one with --key")

    @contextmanager
    def _open(self) -> Iterator[tuple[IO[bytes], _ArrayHeader]]:
        archive = None
        try:
            if self.key is None:
                stream: IO[bytes] = open(self.path, "rb")  # noqa: SIM115 (closed below)
                size = os.fstat(stream.fileno()).st_size
            else:
                archive = zipfile.ZipFile(self.path)
                info = archive.getinfo(f"{self.key}.npy")
                stream, size = archive.open(info), info.file_size
        # zipfile refuses encrypted members with RuntimeError, unknown methods with NotImplementedError.
        except (OSError, zipfile.BadZipFile, KeyError, RuntimeError, NotImplementedError) as exc:
            if archive is not None:
                archive.close()
            raise GenEvalError(f"{self.path}: cannot open ({exc})") from exc
        try:
            header = _read_header(stream, self.label)
            _check_declared_size(header, size - stream.tell(), self.label)
            yield stream, header
        finally:
            stream.close()
            if archive is not None:
                archive.close()

    def _chunks(self, rows_per_chunk: int) -> Iterator[tuple[int, np.ndarray]]:
        """Raw rows in file order, ``rows_per_chunk`` at a time, with their starting index."""
        header = self._header
        if header.fortran_order:
            # Fortran order interleaves samples; such files are rare (np.save writes C order for
            # transposed 4-D arrays), so read the whole array rather than seek around.
            whole = np.load(self.path, allow_pickle=False, mmap_mode=None if self.key else "r")
            whole = whole[self.key] if self.key else whole
            for start in range(0, self._count, rows_per_chunk):
                yield start, np.ascontiguousarray(whole[start : start + rows_per_chunk])
            return
        row_shape = header.shape[1:]
        row_bytes = int(np.prod(row_shape)) * header.dtype.itemsize
        with self._open() as (stream, _):
            for start in range(0, self._count, rows_per_chunk):
                rows = min(rows_per_chunk, self._count - start)
                buffer = stream.read(rows * row_bytes)
                if len(buffer) != rows * row_bytes:
                    raise GenEvalError(
                        f"{self.label}: file ends after sample {start + len(buffer) // max(row_bytes, 1)} of "
                        f"{header.shape[0]} (truncated); re-save it"
                    )
                yield start, np.frombuffer(buffer, dtype=header.dtype).reshape((rows, *row_shape))

    def _rows_per_chunk(self, target_bytes: int) -> int:
        row_bytes = int(np.prod(self._header.shape[1:])) * self._header.dtype.itemsize
        return max(1, target_bytes // max(row_bytes, 1))

    def _read_labels(self) -> np.ndarray | None:
        """The ``labels`` member beside the samples (first ``_count`` of them), checked; None if absent."""
        from gen_eval.sources.labels import check_labels, dropped_classes_note

        if self.key is None or self.key == LABELS:
            return None
        try:
            with zipfile.ZipFile(self.path) as archive:
                if f"{LABELS}.npy" not in archive.namelist():
                    return None
        except (zipfile.BadZipFile, OSError) as exc:
            raise GenEvalError(f"{self.path}: cannot open ({exc})") from exc
        name = f"{self.path}[{LABELS}]"
        total = self._header.shape[0]
        shape = declared_shape(self.path, LABELS, str(self.path))
        if len(shape) != 1 or shape[0] != total:  # checked before reading: the header may be forged
            found = f"{shape[0]:,} labels" if len(shape) == 1 else f"labels of shape {shape}"
            raise GenEvalError(
                f"{name}: {found} for {total:,} samples; save one integer class per sample, in order"
            )
        try:
            with np.load(self.path, allow_pickle=False) as archive:
                labels = archive[LABELS]
        except (*_HEADER_ERRORS, ValueError) as exc:
            raise GenEvalError(
                f"{name}: cannot read the labels ({exc}); re-save them with numpy.savez"
            ) from exc
        labels = check_labels(labels, total, name)
        self.num_classes = int(labels.max()) + 1
        self.notes.append(f"labelled by its {LABELS!r} array: {self.num_classes} classes (largest label + 1)")
        note = dropped_classes_note(labels, self._count)
        self.notes += [note] if note else []
        return labels[: self._count]

    # -- first pass: hash, finiteness, value range ----------------------------------------
    def _scan(self) -> None:
        digest = hashlib.sha256()
        digest.update(repr((self._header.shape[1:], self._header.dtype.str, self._count)).encode())
        low, high = np.inf, -np.inf
        for start, chunk in self._chunks(self._rows_per_chunk(_SCAN_CHUNK_BYTES)):
            digest.update(np.ascontiguousarray(chunk).tobytes())
            check_finite(chunk, self.label, offset=start)
            if chunk.size:
                low, high = min(low, float(chunk.min())), max(high, float(chunk.max()))
        self._fingerprint = digest.hexdigest()
        if self.data_kind == "image":
            self._rule = choose_value_rule(self._header.dtype, low, high, self.label, self.value_range)
            self.notes.append(self._rule.note)
        elif np.abs([low, high]).max() > 1e6:
            raise GenEvalError(
                f"{self.label}: vector values reach {max(abs(low), abs(high)):.3g}; this is outside any sane "
                "range for features or 2-D samples: check the array"
            )

    # -- Source interface -----------------------------------------------------------------
    def batches(self, batch_size: int) -> Iterator[Batch]:
        import torch

        for start, chunk in self._chunks(batch_size):
            labels = None if self._labels is None else self._labels[start : start + len(chunk)]
            yield Batch(torch.from_numpy(to_canonical(chunk, self._layout, self._rule)), labels)
