"""Terminal rendering of results (rich tables)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from gen_eval.metrics.result import better_label, display_name

if TYPE_CHECKING:
    from rich.console import Console

    from gen_eval.collapse.check import CollapseReport
    from gen_eval.evaluation import Evaluation
    from gen_eval.metrics.result import Result


def _fmt(value: float) -> str:
    return f"{value:.4f}" if abs(value) < 1e4 else f"{value:.4g}"


def metric_label(name: str, result: Result) -> str:
    """A metric's row label: ``FID at N=500`` (FID depends on N), ``bits per dim (bound)``.

    Parameters
    ----------
    name : str
        Result name.
    result : Result

    Returns
    -------
    str
    """
    label = display_name(name)
    if name == "fid":
        label += f" at N={result.num_generated:,}"
    if name == "bits_per_dim" and result.kind == "estimate":  # a likelihood with log Z from AIS
        return label + " (AIS estimate)"
    return label + (" (bound)" if result.kind == "bound" else "")


def interval_notes(metrics: dict[str, Result]) -> list[tuple[str, str]]:
    """(label, sentence) for each result whose interval says what it covers, in table order.

    Parameters
    ----------
    metrics : dict of str to Result

    Returns
    -------
    list of (str, str)
        Empty for runs written before ``Result.interval_covers`` existed.
    """
    return [
        (metric_label(name, result), result.interval_covers)
        for name, result in metrics.items()
        if result.interval is not None and result.interval_covers
    ]


def print_evaluation(evaluation: Evaluation) -> None:
    """Print the metrics table, conversion notes, warnings, and where the run was written."""
    from rich.markup import escape
    from rich.table import Table

    from gen_eval.tables import console_for, unclipped

    manifest = evaluation.manifest
    title = f"{manifest['generated']['spec']} vs {manifest['reference']['spec']} ({manifest['extractor']['name']} features)"
    table = Table(title=title)
    with_intervals = any(result.interval for result in evaluation.metrics.values())
    columns = [("metric", "left"), ("value", "right")]
    columns += [("95% interval", "right")] if with_intervals else []
    columns += [("better", "center"), ("n gen", "right"), ("n ref", "right")]
    for column, justify in columns:
        # Short cells (names, numbers) that never wrap: on a narrow terminal they fold, never "…".
        table.add_column(column, justify=justify, no_wrap=True, overflow="fold")  # type: ignore[arg-type]
    warnings = []
    notes = interval_notes(evaluation.metrics)
    marks = {label: f"[{index}]" for index, (label, _) in enumerate(notes, 1)}
    for name, result in evaluation.metrics.items():
        label = metric_label(name, result)
        cells = [label, _fmt(result.value)]
        if with_intervals:
            mark = f" {marks[label]}" if label in marks else ""
            cells.append(
                f"{_fmt(result.interval[0])} – {_fmt(result.interval[1])}{mark}" if result.interval else "-"
            )
        arrow = better_label(name, result.direction)
        reference_count = f"{result.num_reference:,}" if result.num_reference else "-"  # IS uses none
        cells += [arrow, f"{result.num_generated:,}", reference_count]
        table.add_row(*cells)
        warnings += [f"{name}: {w}" for w in result.warnings]
    console = console_for(unclipped(table))
    console.print(table)
    for label, sentence in notes:  # what each interval is an interval for (FID's: at this N)
        console.print(f"[dim]{marks[label]} {escape(sentence)}[/dim]", highlight=False)
    if evaluation.collapse is not None:
        print_collapse(evaluation.collapse, console, detailed=False)
    for note in evaluation.notes:
        console.print(f"[dim]note: {note}[/dim]")
    for warning in [*evaluation.warnings, *warnings]:  # the run's own first (fewer samples than asked)
        console.print(f"[yellow]warning: {escape(warning)}[/yellow]")
    cached = [role for role in ("reference", "generated") if manifest[role].get("features_from_cache")]
    if cached:
        console.print(f"[dim]features from cache: {', '.join(cached)}[/dim]")
    if evaluation.run_dir is not None:
        console.print(f"run written to [bold]{evaluation.run_dir}[/bold]")


_SEVERITY_STYLES = {
    "ok": "green",
    "warning": "yellow",
    "collapse": "bold red",
    "memorisation": "bold magenta",
}


def print_collapse(report: CollapseReport, console: Console | None = None, detailed: bool = True) -> None:
    """The collapse verdict; with ``detailed``, one row per finding (only the problems otherwise)."""
    from rich.table import Table

    from gen_eval.tables import console_for, unclipped

    style = _SEVERITY_STYLES.get(report.status, "")
    shown = [f for f in report.findings if detailed or f.severity != "ok"]
    table = Table(title="Mode-collapse detectors", show_lines=False)
    for column in ("detector", "verdict", "finding"):
        table.add_column(column)
    unclipped(table, whole=("detector", "verdict"))
    console = console or console_for(table)
    console.print(f"mode collapse: [{style}]{report.verdict}[/{style}]")
    if not detailed:
        return
    for finding in shown:
        severity_style = _SEVERITY_STYLES.get(finding.severity, "")
        table.add_row(
            finding.detector, f"[{severity_style}]{finding.severity}[/{severity_style}]", finding.message
        )
    console.print(table)
    for name, why in report.skipped.items():
        console.print(f"[dim]not run: {name} ({why})[/dim]")
