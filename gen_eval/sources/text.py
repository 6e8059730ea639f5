"""Text files as sources: ``.txt`` (one sample per line) and ``.jsonl`` (``text``, optional ``label``).

Both are read whole and checked before anything is evaluated, so every problem is one line
naming the file and the line: invalid UTF-8, binary content (a NUL byte), a blank line, a line
over :data:`gen_eval.kinds.text.MAX_LENGTH` characters, an empty file, a bad JSON line or label.
A final newline and Windows line ends (CRLF) are accepted. Blank lines are refused rather than
read as empty samples because in a hand-made file they are nearly always a mistake; a model
that generates an empty string shows it through a generator or a ``.jsonl`` line ``{"text": ""}``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from gen_eval.errors import GenEvalError
from gen_eval.kinds.text import MAX_LENGTH, encode_strings
from gen_eval.sources.base import Batch, Source

SUFFIXES = (".txt", ".jsonl")


def _lines(path: Path, raw: bytes) -> list[str]:
    if not raw.strip():
        raise GenEvalError(f"{path}: the file is empty; write one sample per line")
    if b"\x00" in raw:
        line = raw[: raw.index(b"\x00")].count(b"\n") + 1
        raise GenEvalError(f"{path}: line {line} holds a NUL byte: this is a binary file, not UTF-8 text")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        line = raw[: error.start].count(b"\n") + 1
        raise GenEvalError(f"{path}: line {line} is not valid UTF-8; save the file as UTF-8") from None
    lines = text.removeprefix("\ufeff").split("\n")
    if lines[-1] == "":
        lines.pop()  # the final newline
    return [line.removesuffix("\r") for line in lines]


def read_text_file(path: Path) -> tuple[list[str], np.ndarray | None]:
    """(strings, labels or None) of a ``.txt`` or ``.jsonl`` file, or a one-line GenEvalError."""
    raw = path.read_bytes()
    lines = _lines(path, raw)
    strings: list[str] = []
    labels: list[int] = []
    jsonl = path.suffix.lower() == ".jsonl"
    for number, line in enumerate(lines, start=1):
        if jsonl:
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                raise GenEvalError(
                    f'{path}: line {number} is not JSON; write {{"text": "...", "label": 0}} per line'
                ) from None
            if not isinstance(record, dict) or not isinstance(record.get("text"), str):
                raise GenEvalError(f'{path}: line {number} needs a string field "text"')
            if "label" in record:
                label = record["label"]
                if isinstance(label, bool) or not isinstance(label, int) or label < 0:
                    raise GenEvalError(f"{path}: line {number}: label must be a non-negative integer")
                labels.append(label)
            line = record["text"]
        elif not line.strip():
            raise GenEvalError(f"{path}: line {number} is blank; remove blank lines (one sample per line)")
        if len(line) > MAX_LENGTH:
            raise GenEvalError(
                f"{path}: line {number} has {len(line):,} characters, over the limit of {MAX_LENGTH}; "
                "split or shorten it"
            )
        if "\x00" in line:
            raise GenEvalError(f"{path}: line {number} contains a NUL character")
        strings.append(line)
    if labels and len(labels) != len(strings):
        raise GenEvalError(f"{path}: some lines have a label and some do not; label every line or none")
    return strings, (np.array(labels, np.int64) if labels else None)


@dataclass
class TextFileSource(Source):
    """The samples of one ``.txt`` or ``.jsonl`` file (the first ``limit`` when given)."""

    kind = "text file"
    path: Path = field(default_factory=Path)
    limit: int | None = None
    _strings: list[str] = field(default_factory=list, init=False, repr=False)
    _labels: np.ndarray | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        strings, labels = read_text_file(self.path)
        count = len(strings) if self.limit is None else min(self.limit, len(strings))
        self._strings, self._labels = strings[:count], None if labels is None else labels[:count]
        if self._labels is not None and len(self._labels):  # labelled: conditional metrics apply
            self.num_classes = int(self._labels.max()) + 1
        self._count = count
        self.data_kind = "text"
        self.sample_shape = (max(len(s) for s in self._strings) if self._strings else 1,)
        digest = hashlib.sha256(f"text:{count}:".encode())
        digest.update(self.path.read_bytes())
        self._fingerprint = digest.hexdigest()

    def batches(self, batch_size: int) -> Iterator[Batch]:
        import torch

        for start in range(0, self._count, batch_size):
            chunk = self._strings[start : start + batch_size]
            codes = encode_strings(chunk, self.sample_shape[0], name=str(self.path))
            labels = None if self._labels is None else self._labels[start : start + batch_size]
            yield Batch(torch.from_numpy(codes), labels)

    def describe(self) -> dict:
        info = super().describe()
        info.update(path=str(self.path), labelled=self._labels is not None)
        return info
