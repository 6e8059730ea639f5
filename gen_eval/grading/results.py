"""What ``gen-eval score`` returns: one :class:`SubmissionRow` per submission inside a :class:`ScoreResult`.

Plain dataclasses, apart from the scoring itself, so the leaderboard pages
(:mod:`gen_eval.grading.pages`) and the printers read them without importing the scorer.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from gen_eval.grading.claims import Claim


@dataclass
class SubmissionRow:
    """One leaderboard row."""

    name: str
    key: str
    kind: str
    status: str = "error"  # "scored", "resumed" (finished in an earlier run) or "error"
    error: str | None = None
    student: str | None = None
    family: str | None = None
    num_samples: int | None = None
    metrics: dict[str, dict[str, Any]] = field(default_factory=dict)  # name -> Result.to_dict()
    collapse: dict[str, str] = field(default_factory=dict)  # {"status", "verdict"}
    claims: list[Claim] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    rank: int | None = None
    run_dir: str | None = None  # relative to the output folder
    report: str | None = None  # relative to the output folder
    seconds: float = 0.0

    def value(self, metric: str) -> float | None:
        entry = self.metrics.get(metric)
        return None if entry is None else entry["value"]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class ScoreResult:
    """What ``score`` did: one row per submission (ranked rows first) and where it all went."""

    submissions_dir: str
    reference: str
    features: str
    out_dir: Path
    rank_by: str
    rows: list[SubmissionRow]
    ignored: list[str]
    options: dict[str, Any]
    seconds: float = 0.0
    warnings: list[str] = field(default_factory=list)  # about the whole batch (a read-only cache)

    @property
    def metric_names(self) -> list[str]:
        """Every metric measured for some submission, in the order evaluate produced them."""
        return list(dict.fromkeys(name for row in self.rows for name in row.metrics))

    @property
    def failed(self) -> list[SubmissionRow]:
        return [row for row in self.rows if row.status == "error"]

    def to_dict(self) -> dict[str, Any]:
        data = {k: v for k, v in asdict(self).items() if k != "rows"}
        return {**data, "out_dir": str(self.out_dir), "rows": [row.to_dict() for row in self.rows]}
