"""The demo's sections beyond the digits leaderboard: one declaration each, one engine for all.

A :class:`Section` says which bundled models it scores (a predicate over registry entries), against
which reference, with which extractor and metrics, whether a real-data floor row comes first, and
which table columns it prints. :func:`score_section` runs ``evaluate`` for the floor and each model
(one run folder each, recorded so a rerun never deletes a user's file), and
:func:`section_rows` / :func:`print_section` make its table. The point-cloud, text, conditional,
paired and translation sections (``gen_eval/demo/*.py``) are declarations over this engine.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gen_eval.errors import GenEvalError

if TYPE_CHECKING:
    from gen_eval.demo.leaderboard import ModelScore
    from gen_eval.evaluation import Evaluation
    from reference_models import ModelEntry

# (column label, metric key, format spec) of one table column.
Column = tuple[str, str, str]
FLOOR = "validation split"


@dataclass(frozen=True)
class Section:
    """One demo section: which models, scored how, shown as which table.

    Attributes
    ----------
    key : str
        Names the floor's run folder (``KEY-SPLIT-floor``) and the section in messages.
    title : str
        The table's title.
    reference : str
        The reference source spec (a paired task's ``task:NAME``).
    belongs : callable
        ``(entry) -> bool``: whether a registry entry is one of this section's models.
    metrics : tuple of str
        Metrics wanted, in order (those not registered here are left out).
    columns : tuple of Column
        The table's metric columns.
    floor_spec : str, optional
        Real data scored like a model, as the first row (None: no floor).
    floor_label : str
        The floor row's name.
    features : str
        The extractor (``auto``: the reference's own network).
    max_samples, num_reference : int, optional
        A cap on samples per model (all-pairs metrics), and the reference's size (None: all).
    train : str or None
        ``evaluate``'s ``train`` (None skips a training set's features).
    floor_drops : tuple of str
        Metrics the floor cannot have (data has no ``log_prob``).
    extra_columns : callable, optional
        ``(scores) -> (labels, cells per score)``: columns computed from whole scores.
    coverage : callable, optional
        ``(evaluation) -> dict``: the ModelScore's ``coverage`` (classes covered).
    after : callable, optional
        ``(name, run_dir, out_dir, seed, show_progress)``: called after each model's run.
    left : tuple of str
        Columns aligned left.
    """

    key: str
    title: str
    reference: str
    belongs: Callable[[ModelEntry], bool]
    metrics: tuple[str, ...]
    columns: tuple[Column, ...]
    floor_spec: str | None = None
    floor_label: str = FLOOR
    features: str = "auto"
    max_samples: int | None = None
    num_reference: int | None = None
    train: str | None = "auto"
    floor_drops: tuple[str, ...] = ()
    extra_columns: Callable[[list[ModelScore]], tuple[list[str], list[list[str]]]] | None = None
    coverage: Callable[[Evaluation], dict[str, Any]] | None = None
    after: Callable[..., None] | None = None
    left: tuple[str, ...] = ("model", "family")
    options: dict[str, Any] = field(default_factory=dict)

    def model_names(self) -> list[str]:
        """Every registered model of this section with a shipped checkpoint (or needing none)."""
        from reference_models import MODELS

        return [n for n, e in MODELS.items() if self.belongs(e) and _shipped(e)]


def _shipped(entry: ModelEntry) -> bool:
    return entry.checkpoint.is_file() or not getattr(entry, "needs_checkpoint", True)


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


def split_for_section(names: list[str] | None, section: Section) -> tuple[list[str] | None, list[str]]:
    """``(other models, this section's models)`` of a ``--models`` list (None: every shipped one)."""
    from reference_models import MODELS

    if names is None:
        return None, section.model_names()
    return [n for n in names if not section.belongs(MODELS[n])], [
        n for n in names if section.belongs(MODELS[n])
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

    return ModelScore.from_evaluation(name, family, dataset, faulty, evaluation, coverage)


def run_name(section: Section, name: str) -> str:
    """The run folder of ``name`` in this section (the floor's names the section)."""
    if name == section.floor_label and section.floor_spec:  # census_names:validation -> ...-validation-floor
        return f"{section.key}-{section.floor_spec.split(':')[-1]}-floor"
    return name


def score_section(
    section: Section,
    names: list[str],
    *,
    out_dir: str | Path | None,
    num_samples: int = 1000,
    num_resamples: int = 100,
    seed: int = 0,
    show_progress: bool = True,
    overwrite: bool = True,
    latent: bool = False,
) -> list[ModelScore]:
    """Evaluate the section's models ``names`` (and its floor first) against its reference.

    Parameters
    ----------
    section : Section
        What to score and how.
    names : list of str
        Bundled models of this section (an empty list scores nothing, not even the floor).
    out_dir : path, optional
        One run per model, ``out_dir/NAME`` (the floor: ``out_dir/KEY-SPLIT-floor``).
    num_samples : int
        Samples drawn from each model (capped by ``section.max_samples``).
    num_resamples, seed, show_progress : as for :func:`gen_eval.demo.leaderboard.score_models`.
    overwrite : bool
        False refuses to replace files the demo did not write (:mod:`gen_eval.demo.files`).
    latent : bool
        Run ``section.after`` (the latent analyses) after each model's run.

    Returns
    -------
    list of ModelScore, the floor first.
    """
    from gen_eval.progress import progress_group
    from reference_models import MODELS

    if not names:
        return []
    wrong = [name for name in names if not section.belongs(MODELS[name])]
    if wrong:
        raise GenEvalError(f"{', '.join(wrong)}: not models of the demo's {section.key} section")
    jobs = [(n, MODELS[n].family, MODELS[n].faulty, f"ref:{n}") for n in names]
    if section.floor_spec:
        jobs.insert(0, (section.floor_label, "data", None, section.floor_spec))
    if out_dir is not None:
        from gen_eval.demo.files import check_replaceable

        check_replaceable(out_dir, [run_name(section, name) for name, *_ in jobs], overwrite)
    metrics = registered_metrics(section.metrics)
    count = num_samples if section.max_samples is None else min(num_samples, section.max_samples)
    scores = []
    with progress_group(f"{section.key} models", len(jobs), show_progress) as group:
        for name, family, faulty, spec in jobs:
            with group.item(name):
                floor = name == section.floor_label and bool(section.floor_spec)
                wanted = [m for m in metrics if not (floor and m in section.floor_drops)]
                evaluation = _evaluate(
                    section, name, spec, wanted, out_dir, count, num_resamples, seed, show_progress
                )
                if latent and section.after is not None and not floor and evaluation.run_dir:
                    section.after(name, Path(evaluation.run_dir), out_dir, seed, show_progress)
                coverage = section.coverage(evaluation) if section.coverage is not None else None
                dataset = section.key if floor else MODELS[name].dataset
                scores.append(model_score(name, family, faulty, evaluation, dataset, coverage))
    return scores


def _evaluate(
    section: Section,
    name: str,
    spec: str,
    metrics: list[str],
    out_dir: str | Path | None,
    num_samples: int,
    num_resamples: int,
    seed: int,
    show_progress: bool,
) -> Evaluation:
    from gen_eval.evaluation import evaluate
    from gen_eval.metrics import metric_requirement
    from gen_eval.progress import progress_stage, sampling_progress
    from gen_eval.sources import open_source

    with progress_stage("loading", show_progress):
        source = open_source(spec, num_samples=num_samples, seed=seed)
    metrics = [m for m in metrics if _offered(metric_requirement(m), source)]
    target = None if out_dir is None else Path(out_dir) / run_name(section, name)
    with sampling_progress(source, show_progress):
        evaluation = evaluate(
            source,
            section.reference,
            features=section.features,
            metrics=metrics,
            num_samples=min(num_samples, len(source)),
            num_reference=section.num_reference,
            num_resamples=num_resamples,
            seed=seed,
            out=target,
            overwrite=True,
            # The training split as the floor: its own memorisation check would find nothing but copies.
            train=None if spec == section.floor_spec and spec.endswith(":train") else section.train,
            metric_options=dict(section.options) or None,
            show_progress=show_progress,
        )
    if target is not None and evaluation.run_dir:
        from gen_eval.demo.files import record_files

        record_files(out_dir, [target.name])
    return evaluation


def _offered(need: str, source: Any) -> bool:
    """Whether a source can meet a section metric's need: one section holds labelled and unlabelled
    sets (the floor is plain data), paired and unpaired ones; a metric that cannot apply is left out
    for that row (shown as "-") rather than refused."""
    if need in ("labels", "labelled logits"):
        return bool(getattr(source, "num_classes", None))
    if need.startswith("pairs"):
        return bool(getattr(source, "paired", False))
    if need == "translation":
        return callable(getattr(getattr(source, "model", None), "translate_back", None))
    return True


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


def section_rows(section: Section, scores: list[ModelScore]) -> tuple[list[str], list[list[str]]]:
    """Column names and text rows of a section's table (metric columns, extras, the collapse status)."""
    columns, rows = metric_rows(scores, section.columns)
    if section.extra_columns is not None:
        labels, cells = section.extra_columns(scores)
        columns += labels
        for row, extra in zip(rows, cells, strict=True):
            row += extra
    for score, row in zip(scores, rows, strict=True):
        row.append(score.collapse.get("status", "-"))
    return [*columns, "collapse"], rows


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


def print_section(section: Section, scores: list[ModelScore]) -> None:
    """The section's table on the terminal (nothing when none of its models was scored)."""
    if scores:
        print_section_table(section.title, *section_rows(section, scores), left=section.left)
