"""The self-contained HTML page of ``gen-eval compare`` (and the number formats it shares with the terminal).

One page: the comparison table, the ranking, a bar chart per metric with each run's interval,
precision against recall, the predicted-class histograms, the runs' sample grids side by side,
and each run's mode-collapse verdict. Built from :mod:`gen_eval.report.html`, so it opens offline.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING

from gen_eval.errors import GenEvalError
from gen_eval.report.html import Page, escape, image_tag, table

if TYPE_CHECKING:
    import plotly.graph_objects as go

    from gen_eval.comparison.result import Comparison

# Verdict -> CSS class of gen_eval.report.html.STYLE (green, red, grey).
VERDICT_CLASS = {"better": "better", "worse": "worse", "best": "better"}
_LAYOUT = {"template": "plotly_white", "height": 320, "margin": {"l": 50, "r": 20, "t": 50, "b": 60}}


def fmt(value: float | None) -> str:
    """Four significant digits (whole numbers from 10,000 on); "-" when missing."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:,.0f}" if abs(value) >= 1e4 else f"{value:.4g}"


def interval_text(interval: tuple[float, float] | list[float] | None) -> str:
    """``[low, high]`` as text, "-" when there is none."""
    return "-" if interval is None else f"[{fmt(interval[0])}, {fmt(interval[1])}]"


def _interval_cell(interval: tuple[float, float] | list[float] | None) -> str:
    return f"<span style='white-space:nowrap'>{escape(interval_text(interval))}</span>"


def signed(value: float) -> str:
    """A difference with its sign."""
    return ("+" if value >= 0 else "") + fmt(value)


def comparison_figures(comparison: Comparison) -> dict[str, go.Figure]:
    """The page's charts by name: ``metrics``, and ``precision_recall`` / ``classes`` where they apply."""
    figures = {"metrics": _metrics_figure(comparison)}
    if all({"precision", "recall"} <= set(run.metrics) for run in comparison.runs):
        figures["precision_recall"] = _precision_recall_figure(comparison)
    if any(run.class_counts for run in comparison.runs):
        figures["classes"] = _classes_figure(comparison)
    if all({"psnr", "fid"} <= set(run.metrics) for run in comparison.runs):
        figures["plane"] = _plane_figure(comparison)
    return figures


def _plane_figure(comparison: Comparison) -> go.Figure:
    """Paired runs on the distortion-realism plane, beside the bundled models of their tasks."""
    from gen_eval.report.plane import plane_figure, stored_points
    from gen_eval.runs.run import load_run

    points, tasks = [], set()
    for run in comparison.runs:
        task = load_run(Path(run.path)).manifest.get("generated", {}).get("task")
        tasks.add(task)
        metrics = run.metrics
        psnr, fid = metrics["psnr"]["value"], metrics["fid"]["value"]
        points.append({"name": run.label, "task": task, "psnr": psnr, "fid": fid, "submission": True})
    stored = [p for task in sorted(tasks, key=str) for p in stored_points(task)]
    return plane_figure([*stored, *points])


def comparison_html(comparison: Comparison) -> str:
    """The whole page of ``comparison`` as HTML text.

    Parameters
    ----------
    comparison : Comparison
        What :func:`gen_eval.comparison.compare.compare` returned.

    Returns
    -------
    str
        A complete HTML document (plotly.js and the sample images inlined).
    """
    labels = [run.label for run in comparison.runs]
    page = Page(f"gen-eval compare: {' vs '.join(labels)}")
    page.paragraph(
        f"Baseline A = {labels[0]}. Differences are B - A with 95% intervals "
        f"({comparison.num_resamples} bootstrap resamples per run, seed {comparison.random_state}).",
        "muted",
    )
    for warning in comparison.warnings:
        page.paragraph(f"warning: {warning}", "warning")
    for note in comparison.notes:
        page.paragraph(f"note: {note}", "muted")
    page.heading("Comparison")
    page.add(_rows_table(comparison))
    if comparison.ranking:
        page.heading(f"Ranking by {comparison.ranking_metric}")
        rows = [
            [
                str(entry.rank),
                escape(entry.run),
                fmt(entry.value),
                _interval_cell(entry.interval),
                "" if entry.verdict == "best" else signed(entry.difference),
                _interval_cell(entry.difference_interval),
                _verdict_cell(entry.verdict if entry.comparable else "not comparable"),
            ]
            for entry in comparison.ranking
        ]
        columns = ["rank", "run", "value", "95% interval", "- best", "95% interval", "verdict"]
        page.add(table(columns, rows, left=2, raw=True))
    if comparison.human:
        _human_table(page, comparison)
    headings = {
        "metrics": "Metrics per run (95% intervals)",
        "precision_recall": "Precision and recall",
        "classes": "Predicted classes",
        "plane": "Distortion vs realism (the runs as stars, the bundled models of their tasks as dots)",
    }
    for name, figure in comparison_figures(comparison).items():
        page.heading(headings[name])
        page.figure(figure)
        if name == "metrics":
            page.add(_interval_covers(comparison))
    page.heading("Samples")
    page.add(
        "<div class='row'>"
        + "".join(_samples(run.label, Path(run.path)) for run in comparison.runs)
        + "</div>"
    )
    _cloud_views(page, comparison)
    _text_views(page, comparison)
    page.heading("Mode-collapse verdicts")
    rows = [
        [escape(run.label), escape(run.generated), _collapse_cell(run.collapse_verdict, run.collapse_status)]
        for run in comparison.runs
    ]
    page.add(table(["run", "source", "verdict"], rows, left=3, raw=True))
    return page.render()


def _human_table(page: Page, comparison: Comparison) -> None:
    """Human judgement: each run's error rate against the baseline's (gen-eval human), and what 50% means."""
    from gen_eval.human import CHANCE_NOTE
    from gen_eval.human.results import human_verdict

    page.heading("Human judgement (error rate: fakes judged real + reals judged fake)")
    rows = [
        [
            escape(f"{row['label_b']} vs {row['label_a']}"),
            f"{100 * row['error_rate_a']:.1f}% of {row['judgements_a']}",
            f"{100 * row['error_rate_b']:.1f}% of {row['judgements_b']}",
            f"{100 * row['difference']:+.1f} pts",
            _interval_cell([100 * x for x in row["interval"]]),
            _interval_cell(
                None if row["interval_people"] is None else [100 * x for x in row["interval_people"]]
            ),
            escape(f"{row['p_value']:.3g} ({row['test']})"),
            escape(human_verdict(row)),
        ]
        for row in comparison.human
        if row["difference"] is not None
    ]
    columns = ["B vs A", "A", "B", "B - A", "95% interval", "over people", "p (test)", "verdict"]
    page.add(table(columns, rows, left=1, raw=True))
    page.paragraph(
        f"95% Newcombe interval of B - A; higher error = harder to tell from real. {CHANCE_NOTE}", "muted"
    )


def write_comparison_html(comparison: Comparison, path: str | Path) -> Path:
    """Write :func:`comparison_html` to ``path`` and return it.

    Parameters
    ----------
    comparison : Comparison
        The comparison to show.
    path : str or Path
        Target file (folders are created).

    Returns
    -------
    Path

    Raises
    ------
    GenEvalError
        When the file cannot be written.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(comparison_html(comparison), encoding="utf-8")
    except OSError as exc:
        raise GenEvalError(
            f"{path}: cannot write the HTML page ({exc.strerror}); choose another --html"
        ) from exc
    return path


def _interval_covers(comparison: Comparison) -> str:
    """What each run's interval of each shared metric covers (FID's: FID at that run's N), as a list.

    Parameters
    ----------
    comparison : Comparison

    Returns
    -------
    str
        HTML; empty when no run records it (runs written before ``interval_covers``).
    """
    items = []
    for name in _shared_metrics(comparison):
        sentences: dict[str, list[str]] = {}
        for run in comparison.runs:
            text = run.metrics[name].get("interval_covers")
            if text and run.metrics[name].get("interval_source") == "stored":
                sentences.setdefault(text, []).append(run.label)
        for text, labels in sentences.items():
            who = "" if len(sentences) == 1 else f" ({', '.join(labels)})"
            items.append(f"<li><b>{escape(name)}</b>{escape(who)}: {escape(text)}</li>")
    if not items:
        return ""
    return (
        "<p class='muted'>What each run's interval covers:</p><ul class='muted interval-covers'>"
        + "".join(items)
        + "</ul>"
    )


def _verdict_cell(verdict: str) -> str:
    return f"<span class='{VERDICT_CLASS.get(verdict, 'same')}'>{escape(verdict)}</span>"


def _collapse_cell(verdict: str | None, status: str | None) -> str:
    if verdict is None:
        return "<span class='muted'>not checked</span>"
    css = {"ok": "ok", "warning": "warning", "collapse": "collapse", "memorisation": "memorisation"}
    return f"<span class='{css.get(status or '', '')}'>{escape(verdict)}</span>"


def _rows_table(comparison: Comparison) -> str:
    several = len(comparison.runs) > 2
    rows = []
    for row in comparison.rows:
        cells = [escape(row.metric)] + ([escape(row.run_b)] if several else [])
        cells += [
            fmt(row.a),
            fmt(row.b),
            signed(row.difference),
            _interval_cell(row.interval),
            _verdict_cell(row.verdict if row.comparable else "not comparable"),
            escape(row.method),
            "<br>".join(f"<span class='warning'>{escape(w)}</span>" for w in row.warnings),
        ]
        rows.append(cells)
    runs = comparison.runs
    columns = ["metric", *(["run B"] if several else []), f"A: {runs[0].label}"]
    columns += [
        "B" if several else f"B: {runs[1].label}",
        "B - A",
        "95% interval",
        "verdict",
        "method",
        "notes",
    ]
    return table(columns, rows, left=2 if several else 1, raw=True)


def _shared_metrics(comparison: Comparison) -> list[str]:
    first = comparison.runs[0].metrics
    return [name for name in first if all(name in run.metrics for run in comparison.runs)]


def _errors(values: list[float], intervals: list) -> dict:
    """Asymmetric plotly error bars from intervals (0 where a run has none)."""
    upper = [(iv[1] - v) if iv else 0.0 for v, iv in zip(values, intervals, strict=True)]
    lower = [(v - iv[0]) if iv else 0.0 for v, iv in zip(values, intervals, strict=True)]
    return {"type": "data", "symmetric": False, "array": upper, "arrayminus": lower}


def _metrics_figure(comparison: Comparison) -> go.Figure:
    """One bar chart per shared metric (a grid of subplots), each run's bar with its interval."""
    import plotly.graph_objects as go
    from plotly.colors import qualitative
    from plotly.subplots import make_subplots

    runs, names = comparison.runs, _shared_metrics(comparison)
    columns = min(4, len(names)) or 1
    rows = math.ceil(len(names) / columns) or 1
    titles = [f"{name} ({runs[0].metrics[name]['direction']} is better)" for name in names]
    figure = make_subplots(rows=rows, cols=columns, subplot_titles=titles, horizontal_spacing=0.06)
    colours = [qualitative.Plotly[i % len(qualitative.Plotly)] for i in range(len(runs))]
    for i, name in enumerate(names):
        values = [run.metrics[name]["value"] for run in runs]
        intervals = [run.metrics[name]["interval"] for run in runs]
        bar = go.Bar(
            x=[run.label for run in runs],
            y=values,
            error_y=_errors(values, intervals),
            marker_color=colours,
            showlegend=False,
            name=name,
        )
        figure.add_trace(bar, row=i // columns + 1, col=i % columns + 1)
    figure.update_layout(**{**_LAYOUT, "height": 300 * rows + 40})
    return figure


def _precision_recall_figure(comparison: Comparison) -> go.Figure:
    import plotly.graph_objects as go

    figure = go.Figure()
    for run in comparison.runs:
        precision, recall = run.metrics["precision"], run.metrics["recall"]
        figure.add_trace(
            go.Scatter(
                x=[recall["value"]],
                y=[precision["value"]],
                mode="markers+text",
                text=[run.label],
                textposition="top center",
                name=run.label,
                marker={"size": 12},
                error_x=_errors([recall["value"]], [recall["interval"]]),
                error_y=_errors([precision["value"]], [precision["interval"]]),
            )
        )
    layout = {**_LAYOUT, "height": 420}
    figure.update_layout(title="precision vs recall (top right is best)", **layout)
    figure.update_xaxes(title="recall (coverage of the reference)", range=[0, 1.05])
    figure.update_yaxes(title="precision (fidelity)", range=[0, 1.05])
    return figure


def _classes_figure(comparison: Comparison) -> go.Figure:
    import plotly.graph_objects as go

    figure = go.Figure()
    reference = next((run.class_counts["reference"] for run in comparison.runs if run.class_counts), None)
    series = [(run.label, run.class_counts["generated"]) for run in comparison.runs if run.class_counts]
    if reference:
        series.append(("reference", reference))
    for label, counts in series:
        total = sum(counts) or 1
        figure.add_trace(
            go.Bar(
                x=[str(c) for c in range(len(counts))],
                y=[count / total for count in counts],
                name=label,
                marker_color="#7f7f7f" if label == "reference" else None,
            )
        )
    figure.update_layout(
        title="share of confidently classified samples per class", barmode="group", **_LAYOUT
    )
    figure.update_xaxes(title="class")
    return figure


def _cloud_views(page: Page, comparison: Comparison) -> None:
    """The first generated clouds of each run in 3-D, one row per run (runs of point clouds only)."""
    from gen_eval.report.pointclouds import cloud_figure, read_run_clouds

    rows = {}
    for run in comparison.runs:
        clouds = read_run_clouds(Path(run.path))
        if "generated" in clouds:
            rows[run.label] = clouds["generated"]
    if rows:
        page.heading("Point clouds in 3-D")
        page.figure(cloud_figure(rows, title="First generated clouds of each run (drag to turn)"))


def _text_views(page: Page, comparison: Comparison) -> None:
    """Text runs: each run's first strings with novelty marks and nearest training strings."""
    from gen_eval.report.text_compare import text_comparison_figures
    from gen_eval.report.text_run import load_text_view, text_section_html
    from gen_eval.runs.run import load_run

    views = {}
    for run in comparison.runs:
        view = load_text_view(load_run(run.path))
        if view is not None:
            views[run.label] = view
    if views:
        page.heading("Strings")
        for figure in text_comparison_figures(views):
            page.figure(figure)
        parts = [
            f"<div><h3>{escape(label)}</h3>{text_section_html(view, shown=20)}</div>"
            for label, view in views.items()
        ]
        page.add("<div class='row'>" + "".join(parts) + "</div>")


def _samples(label: str, run_path: Path) -> str:
    from gen_eval.runs.run import SAMPLES

    picture = run_path / SAMPLES
    body = (
        image_tag(picture.read_bytes(), f"samples of {label}")
        if picture.is_file()
        else "<p class='muted'>no samples.png</p>"
    )
    return f"<div><h3>{escape(label)}</h3>{body}</div>"
