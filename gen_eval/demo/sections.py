"""What the demo's per-dataset sections (point clouds, text) share: model lists, scores and tables."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from gen_eval.demo.leaderboard import ModelScore
    from gen_eval.evaluation import Evaluation

# (column label, metric key, format spec) of one table column.
Column = tuple[str, str, str]


def split_by_dataset(names: list[str] | None, dataset: str) -> tuple[list[str] | None, list[str]]:
    """``(other models, models of dataset)`` of a ``--models`` list.

    None (every model) gives None for the others (the digits demo's default) and every shipped
    model of ``dataset``; an explicit list is split by each model's dataset.
    """
    from reference_models import MODELS

    if names is None:
        return None, [n for n, e in MODELS.items() if e.dataset == dataset and e.checkpoint.is_file()]
    return [n for n in names if MODELS[n].dataset != dataset], [
        n for n in names if MODELS[n].dataset == dataset
    ]


def registered_metrics(wanted: Sequence[str]) -> list[str]:
    """Those of ``wanted`` that are registered here."""
    from gen_eval.metrics import METRICS

    return [name for name in wanted if METRICS.find(name) is not None]


def model_score(
    name: str,
    family: str,
    faulty: str | None,
    evaluation: Evaluation,
    dataset: str,
    coverage: dict[str, Any] | None = None,
) -> ModelScore:
    """The leaderboard's record of one section model's evaluation."""
    from gen_eval.demo.leaderboard import ModelScore

    report = evaluation.collapse
    return ModelScore(
        name=name,
        family=family,
        dataset=dataset,
        faulty=faulty,
        metrics={k: v.to_dict() for k, v in evaluation.metrics.items()},
        run_dir=str(evaluation.run_dir) if evaluation.run_dir else None,
        coverage=coverage or {},
        collapse={"status": report.status, "verdict": report.verdict} if report else {},
    )


def metric_rows(scores: list[ModelScore], columns: Sequence[Column]) -> tuple[list[str], list[list[str]]]:
    """Labels of the columns some score has, and per score: name, family and those values."""
    present = [c for c in columns if any(s.value(c[1]) is not None for s in scores)]
    rows = []
    for score in scores:
        cells = [score.name + (" (faulty)" if score.faulty else ""), score.family]
        for _, key, spec in present:
            value = score.value(key)
            cells.append("-" if value is None else format(value, spec))
        rows.append(cells)
    return ["model", "family", *[label for label, _, _ in present]], rows


def print_section_table(title: str, columns: list[str], rows: list[list[str]], left: Sequence[str]) -> None:
    """A section's table on the terminal (``left``: the columns aligned left)."""
    from rich import box
    from rich.table import Table

    from gen_eval.tables import console_for, unclipped

    table = Table(title=title, box=box.SIMPLE_HEAD)
    for column in columns:
        table.add_column(column, justify="left" if column in left else "right")
    unclipped(table, whole=("model",))
    for cells in rows:
        table.add_row(*cells)
    console_for(table).print(table)
