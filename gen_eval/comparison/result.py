"""What ``compare`` returns: the rows, the ranking and the runs it shows, as plain dataclasses.

Kept apart from the computation (:mod:`gen_eval.comparison.compare`) so that the printers, the HTML
page and the dashboard can read a comparison without importing the bootstrap machinery.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

METHODS = {
    "bootstrap": "independent bootstrap of each run's generated features (reference fixed), metric "
    "recomputed per replicate; percentile interval of the differences, shifted by their bias",
    "normal": "normal approximation from the two stored 95% intervals",
    "none": "no interval: a run stored none (evaluate with --num-resamples > 0)",
}


@dataclass
class Row:
    """One metric, run B against run A.

    Attributes
    ----------
    metric, run_a, run_b : str
        Result name (``"fid"``) and the two runs' labels (their folder names).
    a, b, difference : float
        The stored values and B - A.
    interval : (low, high) or None
        95% interval of B - A.
    direction : {"lower", "higher"}
        Which way is better.
    method : {"bootstrap", "normal", "none"}
        How the interval was obtained (:data:`METHODS`).
    verdict : str
        "better" or "worse" (B relative to A) when the interval excludes 0, "no significant
        difference" when it does not, "not tested" without an interval.
    comparable : bool
        False when the runs differ in reference or features (shown only with ``force``).
    num_generated : (int, int)
        Sample sizes of A and B.
    warnings : list of str
        Sample sizes or metric options that differ, and similar caveats.
    """

    metric: str
    run_a: str
    run_b: str
    a: float
    b: float
    difference: float
    interval: tuple[float, float] | None
    direction: str
    method: str
    verdict: str
    comparable: bool = True
    num_generated: tuple[int, int] = (0, 0)
    warnings: list[str] = field(default_factory=list)


@dataclass
class RankEntry:
    """One run in the ranking: its value and its difference to the best run."""

    rank: int
    run: str
    value: float
    interval: tuple[float, float] | None
    difference: float
    difference_interval: tuple[float, float] | None
    verdict: str
    comparable: bool = True


@dataclass
class RunSummary:
    """What the comparison shows of one run (values with intervals, collapse verdict)."""

    label: str
    path: str
    generated: str
    count: int | None
    reference: str
    extractor: str
    collapse_verdict: str | None
    collapse_status: str | None
    metrics: dict[str, dict[str, Any]]
    class_counts: dict[str, list[int]] | None = None  # {"generated": [...], "reference": [...]}


@dataclass
class Comparison:
    """The result of :func:`compare` (what ``gen-eval compare`` prints).

    Attributes
    ----------
    runs : list of RunSummary
        The runs in the order given (the first is the baseline A).
    rows : list of Row
        Each later run against the first, one row per metric both computed.
    warnings, notes : list of str
        Caveats (incomparable runs under ``force``, metrics not recomputed) and what was done
        (a reference re-extracted).
    comparable : bool
        Whether every run shares the baseline's reference and features.
    ranking, ranking_metric : list of RankEntry and str, or None
        With three or more runs (or a ``metric``): the runs from best to worst on that metric.
    num_resamples, random_state : int
        Bootstrap settings.
    human : list of dict
        Human error rates of each later run against the first, when a study judged both.
    """

    runs: list[RunSummary]
    rows: list[Row]
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    comparable: bool = True
    ranking: list[RankEntry] | None = None
    ranking_metric: str | None = None
    num_resamples: int = 0
    random_state: int = 0
    # Human judgement, each later run against the first when both were judged (gen_eval.human):
    # compare_human's dict (error rates, B - A, its interval, the test) plus label_a/label_b.
    human: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict (intervals as lists)."""
        out = asdict(self)
        out["methods"] = METHODS
        return json_ready(out)


def json_ready(value: Any) -> Any:
    """Tuples -> lists and non-finite floats -> None, recursively (JSON has no NaN)."""
    if isinstance(value, dict):
        return {key: json_ready(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_ready(item) for item in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
