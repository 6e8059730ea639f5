"""A submission's ``submission.toml``: who made it, what model, and the numbers it claims.

The file (UTF-8, at most ``Limits.max_metadata_bytes``, 64 KiB by default) is read as data, never
executed, by ``tomllib``; every problem in it becomes a warning, never an error::

    student = "Ada Lovelace"       # or name
    family = "GAN"                 # or model
    [claimed]                      # the numbers the student reports, checked against the measured ones
    fid = 21.3
    precision = 0.71

Used by :mod:`gen_eval.grading.submissions` when it prepares a submission.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gen_eval.grading.archives import Limits, clean_text

METADATA = "submission.toml"


@dataclass
class Metadata:
    """What ``submission.toml`` said, checked and cleaned."""

    student: str | None = None
    family: str | None = None
    claimed: dict[str, float] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


def _load_toml(text: str) -> dict[str, Any]:
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        try:
            import tomli as tomllib  # type: ignore[no-redef]
        except ModuleNotFoundError as exc:
            raise ValueError("reading TOML on Python 3.10 needs the tomli package") from exc
    return tomllib.loads(text)


def read_metadata(path: Path, limits: Limits = Limits()) -> Metadata:
    """Read ``submission.toml`` as untrusted data: problems become warnings, never errors.

    Parameters
    ----------
    path : Path
        The file (absent: empty metadata).
    limits : Limits
        Its size limit.

    Returns
    -------
    Metadata
    """
    meta = Metadata()
    if not path.is_file():
        return meta
    try:
        if path.stat().st_size > limits.max_metadata_bytes:
            raise ValueError(f"larger than {limits.max_metadata_bytes:,} bytes")
        document = _load_toml(path.read_bytes().decode("utf-8"))
    except Exception as exc:  # tomllib, UnicodeDecodeError, RecursionError on absurd nesting
        meta.warnings.append(f"{METADATA} ignored: {clean_text(exc, 160)}")
        return meta
    for key, value in document.items():
        if key in ("student", "name", "family", "model") and isinstance(value, str):
            setattr(meta, "student" if key in ("student", "name") else "family", clean_text(value) or None)
        elif key == "claimed" and isinstance(value, dict):
            for metric, number in value.items():
                if (
                    isinstance(number, (int, float))
                    and not isinstance(number, bool)
                    and math.isfinite(number)
                ):
                    meta.claimed[clean_text(metric, 40).lower()] = float(number)
                else:
                    meta.warnings.append(
                        f"{METADATA}: claimed {clean_text(metric, 40)} is not a finite number"
                    )
        else:
            meta.warnings.append(f"{METADATA}: key {clean_text(key, 40)!r} not understood, ignored")
    return meta
