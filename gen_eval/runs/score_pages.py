"""The pages ``gen-eval score`` writes: the leaderboard as CSV and HTML, and a failed submission's page."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from gen_eval.runs.score import ScoreResult, SubmissionRow


def _fmt(value: float | None) -> str:
    return "" if value is None else f"{value:.4g}"


def _csv_cell(value: Any) -> Any:
    # A spreadsheet runs a cell starting with = + - @ as a formula; student text must stay text.
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return "" if value is None else value


def leaderboard_csv(result: ScoreResult) -> str:
    """The leaderboard as CSV text: a row per submission, each metric with its interval bounds."""
    metrics, buffer = result.metric_names, io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    columns = ["rank", "submission", "student", "family", "status", "samples"]
    columns += [f"{metric}{end}" for metric in metrics for end in ("", "_low", "_high")]
    writer.writerow([*columns, "collapse_status", "collapse", "claims", "error", "warnings", "report"])
    for row in result.rows:
        cells = [row.rank, row.name, row.student, row.family, row.status, row.num_samples]
        for metric in metrics:
            entry = row.metrics.get(metric) or {}
            cells += [entry.get("value"), *(entry.get("interval") or (None, None))]
        cells += [row.collapse.get("status"), row.collapse.get("verdict")]
        cells += ["; ".join(c.describe() for c in row.claims), row.error, "; ".join(row.warnings), row.report]
        writer.writerow([_csv_cell(cell) for cell in cells])
    return buffer.getvalue()


def leaderboard_html(result: ScoreResult) -> str:
    """The leaderboard as one self-contained page, each submission linking to its report."""
    from gen_eval.runs.html import Page, escape, table

    page = Page(f"Leaderboard: {Path(result.submissions_dir).name} vs {result.reference}")
    count = {status: sum(row.status == status for row in result.rows) for status in ("scored", "resumed")}
    page.paragraph(
        f"{len(result.rows)} submissions: {count['scored']} scored now, {count['resumed']} kept from an "
        f"earlier run, {len(result.failed)} failed. Reference {result.reference}, {result.features} "
        f"features, {result.options['num_resamples']} bootstrap resamples for the 95% intervals (in "
        f"brackets), seed {result.options['seed']}; ranked by {result.rank_by}.",
        "muted",
    )
    rows, failed = [], []
    for row in result.rows:
        name = escape(row.name)
        if row.error:  # failed submissions get their own narrow table: the error is what matters
            link = f"<a href='{escape(row.report)}'>{name}</a>" if row.report else name
            failed.append(
                [link, escape(row.student or ""), f"<span class='error'>{escape(row.error)}</span>"]
            )
            continue
        cells = [
            escape(row.rank or "-"),
            f"<a href='{escape(row.report)}'>{name}</a>" if row.report else name,
        ]
        cells += [escape(row.student or ""), escape(row.family or ""), escape(row.num_samples or "")]
        for metric in result.metric_names:
            entry = row.metrics.get(metric) or {}
            low, high = entry.get("interval") or (None, None)
            band = f"<br><span class='muted'>[{_fmt(low)}, {_fmt(high)}]</span>" if low is not None else ""
            cells.append(escape(_fmt(entry.get("value"))) + band)
        status = escape(row.collapse.get("status", ""))
        cells.append(f"<span class='{status}'>{escape(row.collapse.get('verdict', ''))}</span>")
        lines = [(c.describe(), "ok" if c.met else "worse") for c in row.claims]
        notes = [(row.error, "error")] if row.error else []
        notes += [(warning, "warning") for warning in row.warnings]
        for group in (lines, notes):
            cells.append("<br>".join(f"<span class='{css}'>{escape(text)}</span>" for text, css in group))
        rows.append(cells)
    columns = ["rank", "submission", "student", "family", "samples", *result.metric_names]
    columns += ["collapse", "claimed vs measured", "warnings"]
    page.add(table(columns, rows, left=4, raw=True))
    if failed:
        page.heading(f"Not scored ({len(failed)})")
        page.add(table(["submission", "student", "error"], failed, left=3, raw=True))
    if result.ignored:
        page.paragraph(f"Not submissions (ignored): {'; '.join(result.ignored)}", "muted")
    for warning in result.warnings:
        page.paragraph(warning, "warning")
    return page.render()


def error_page(row: SubmissionRow) -> str:
    """The report page of a submission that was not scored: its error and warnings."""
    from gen_eval.runs.html import Page

    page = Page(f"Submission {row.name}: not scored")
    for text, css in [(row.error or "", "error"), *((w, "warning") for w in row.warnings)]:
        page.paragraph(text, css)
    return page.render()
