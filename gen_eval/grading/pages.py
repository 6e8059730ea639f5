"""The pages ``gen-eval score`` writes: the leaderboard as CSV and HTML, and a failed submission's page."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from gen_eval.grading.results import ScoreResult, SubmissionRow


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
    from gen_eval.report.html import Page, escape, table

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
        rows.append(_board_row(row, result.metric_names))
    page.add(_BOARD_STYLE)
    page.paragraph(
        "Each metric: value, and its 95% interval below. Collapse, claims and warnings open with a "
        "click. A claim is met when the model is at least as good as claimed, allowing for the interval.",
        "muted",
    )
    page.add(_board_table(result, rows))
    if failed:
        page.heading(f"Not scored ({len(failed)})")
        page.add(table(["submission", "student", "error"], failed, left=3, raw=True))
    if result.ignored:
        page.paragraph(f"Not submissions (ignored): {'; '.join(result.ignored)}", "muted")
    for warning in result.warnings:
        page.paragraph(warning, "warning")
    return page.render()


# The page must fit a 1,280-px window: intervals sit under their values in a smaller font, the
# student and family under the name, and the long texts (collapse verdict, claims, warnings) are
# one-line summaries that open on a click (<details>, no script) into a floating panel rather
# than 20-line cells.
_BOARD_STYLE = """<style>
.scroll{overflow-x:auto}table.board{font-size:.86em;width:100%}
.board th,.board td{padding:.3em .45em}.board td.m{white-space:nowrap}
.board .ci{color:#777;font-size:.82em;white-space:nowrap}
.board td.name{max-width:14em;overflow-wrap:anywhere;text-align:left}
.board .who{color:#777;font-size:.85em}
.board td.d{text-align:left;position:relative}.board summary{white-space:nowrap;cursor:pointer}
.board .panel{position:absolute;right:0;top:1.7em;z-index:2;width:30em;max-width:80vw;background:#fff;
border:1px solid #ccc;border-radius:4px;box-shadow:0 3px 10px rgba(0,0,0,.18);padding:.4em .8em}
.board .panel ul{margin:.2em 0;padding-left:1.1em}.board .panel li,.board .panel p{margin:.25em 0}
</style>"""


def _details(summary: str, css: str, items: list[tuple[str, str]], as_list: bool = True) -> str:
    """A one-line summary that opens to its items (escaped text, each with a CSS class)."""
    from gen_eval.report.html import escape

    if not items:
        return ""
    if as_list:
        body = "<ul>" + "".join(f"<li class='{c}'>{escape(t)}</li>" for t, c in items) + "</ul>"
    else:
        body = "".join(f"<p class='{c}'>{escape(t)}</p>" for t, c in items)
    # The panel floats over the rows below instead of stretching its column: opening one never
    # reflows the table.
    return f"<details><summary class='{css}'>{escape(summary)}</summary><div class='panel'>{body}</div></details>"


def _board_row(row: SubmissionRow, metrics: list[str]) -> list[str]:
    """The cells of one scored submission: rank, who, metrics, then three one-line summaries."""
    from gen_eval.report.html import escape

    name = escape(row.name)
    link = f"<a href='{escape(row.report)}'>{name}</a>" if row.report else name
    who = " · ".join(escape(part) for part in (row.student, row.family) if part)
    samples = f"{row.num_samples:,} samples" if row.num_samples else ""
    about = " · ".join(part for part in (who, samples) if part)
    cells = [escape(row.rank or "-"), link + (f"<div class='who'>{about}</div>" if about else "")]
    for metric in metrics:
        entry = row.metrics.get(metric) or {}
        low, high = entry.get("interval") or (None, None)
        band = f"<div class='ci'>[{_fmt(low)}, {_fmt(high)}]</div>" if low is not None else ""
        cells.append(escape(_fmt(entry.get("value"))) + band)
    status = row.collapse.get("status", "")
    verdict = row.collapse.get("verdict", "")
    cells.append(_details(status or "-", status, [(verdict, "")], as_list=False) if verdict else "")
    met = sum(bool(claim.met) for claim in row.claims)
    claims = [(c.describe(), "ok" if c.met else "worse") for c in row.claims]
    cells.append(_details(f"{met}/{len(claims)} met", "ok" if met == len(claims) else "worse", claims))
    notes = [(warning, "warning") for warning in row.warnings]
    plural = "s" if len(notes) != 1 else ""
    cells.append(_details(f"{len(notes)} warning{plural}", "warning", notes))
    return cells


def _board_table(result: ScoreResult, rows: list[list[str]]) -> str:
    """The scored submissions' table (cells already HTML), metric headers with their direction."""
    from gen_eval.report.html import escape

    arrows = {"lower": " ↓", "higher": " ↑"}
    head = ["<th>#</th>", "<th class='l'>submission</th>"]
    for metric in result.metric_names:
        direction = next((r.metrics[metric].get("direction") for r in result.rows if metric in r.metrics), "")
        head.append(
            f"<th title='{escape(direction or '')} is better'>{escape(metric)}{arrows.get(direction, '')}</th>"
        )
    head += ["<th class='l'>collapse</th>", "<th class='l'>claims</th>", "<th class='l'>warnings</th>"]
    classes = ["", "name", *(["m"] * len(result.metric_names)), "d", "d", "d"]
    body = "".join(
        "<tr>"
        + "".join(f"<td class='{css}'>{cell}</td>" for css, cell in zip(classes, cells, strict=True))
        + "</tr>"
        for cells in rows
    )
    return f"<div class='scroll'><table class='board'><thead><tr>{''.join(head)}</tr></thead><tbody>{body}</tbody></table></div>"


def error_page(row: SubmissionRow) -> str:
    """The report page of a submission that was not scored: its error and warnings."""
    from gen_eval.report.html import Page

    page = Page(f"Submission {row.name}: not scored")
    for text, css in [(row.error or "", "error"), *((w, "warning") for w in row.warnings)]:
        page.paragraph(text, css)
    return page.render()
