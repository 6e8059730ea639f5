"""The strings a text run keeps: every generated string and (up to a cap) the reference's.

A text run is small (10,000 names are ~100 kB of JSON), so it keeps its samples as text rather
than pictures: ``compare`` resamples them for intervals on the text metrics (which read strings,
not features), and the HTML report and the dashboard show them as a table with novelty marks and
draw n-gram and length histograms from them. Files: ``text/generated.json`` and
``text/reference.json``, each ``{"strings": [...], "labels": [...] or null, "total": N}``.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from gen_eval.errors import GenEvalError

if TYPE_CHECKING:
    from pathlib import Path

    from gen_eval.sources import Source

GENERATED = "text/generated.json"
REFERENCE = "text/reference.json"
# Reference strings kept for the histograms and the table's marks; compare re-reads the reference
# itself (checked by fingerprint) when it needs all of it.
REFERENCE_CAP = 20_000


def _strings(source: Source, kept: Any | None, cap: int | None) -> dict[str, Any]:
    from gen_eval.kinds.text import decode_rows

    strings: list[str] = []
    labels: list[int] = []
    if kept is not None:  # a generator's samples, kept with its features: no second draw
        strings = decode_rows(kept)
    else:
        for batch in source.batches(1024):
            strings += decode_rows(batch.data)
            if batch.labels is not None:
                labels += [int(v) for v in batch.labels]
            if cap is not None and len(strings) >= cap:
                break
    shown = strings if cap is None else strings[:cap]
    return {
        "strings": shown,
        "labels": labels[: len(shown)] if len(labels) >= len(shown) and labels else None,
        "total": len(source),
    }


def text_run_files(generated: Source, reference: Source, kept: Any | None = None) -> dict[str, bytes]:
    """The run files of a text run: all generated strings, the first ``REFERENCE_CAP`` reference ones.

    Parameters
    ----------
    generated, reference : Source
        The run's text sources (a statistics reference keeps no strings).
    kept : tensor, optional
        The generated code points already drawn (a generator's samples kept with its features).

    Returns
    -------
    dict of str to bytes
        Relative run path -> JSON bytes.
    """
    files = {GENERATED: json.dumps(_strings(generated, kept, None), ensure_ascii=False).encode()}
    if reference.kind != "statistics" and reference.data_kind == "text":
        files[REFERENCE] = json.dumps(_strings(reference, None, REFERENCE_CAP), ensure_ascii=False).encode()
    return files


def read_run_strings(run_dir: Path, which: str = "generated") -> list[str] | None:
    """The strings a run kept (``"generated"`` or ``"reference"``); None for a run that kept none.

    Raises
    ------
    GenEvalError
        When the file is there but unreadable (its checksum was verified when the run loaded).
    """
    path = run_dir / (GENERATED if which == "generated" else REFERENCE)
    if not path.is_file():
        return None
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise GenEvalError(f"{path}: unreadable ({exc}); re-run evaluate") from exc
    strings = doc.get("strings") if isinstance(doc, dict) else None
    if not isinstance(strings, list) or not all(isinstance(s, str) for s in strings):
        raise GenEvalError(f"{path}: not a list of strings; re-run evaluate")
    return strings
