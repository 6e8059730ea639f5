"""Files the collapse check leaves in a run, and a self-contained HTML page of the verdict."""

from __future__ import annotations

import html
import io
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import plotly.graph_objects as go

    from gen_eval.collapse.check import CollapseReport

GRID_TITLES = {
    "ndb_bins": "NDB: images from the most under-filled (reference) and over-filled (generated) bins",
    "duplicates": "Birthday test: the closest generated pairs",
    "copies": "Memorisation: generated samples next to their nearest training sample",
}


def _png(canvas: np.ndarray) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(canvas).save(buffer, format="PNG")
    return buffer.getvalue()


def all_figures(
    report: CollapseReport, grids: dict[str, tuple[np.ndarray, list[str]]], figures: dict[str, go.Figure]
) -> dict[str, go.Figure]:
    """The data figures plus one image figure per evidence grid."""
    from gen_eval.collapse.figures import image_grid_figure

    combined = dict(figures)
    for name, (grid, captions) in grids.items():
        combined[name] = image_grid_figure(GRID_TITLES.get(name, name), grid, captions)
    return combined


def collapse_files(
    figures: dict[str, go.Figure], grids: dict[str, tuple[np.ndarray, list[str]]]
) -> dict[str, bytes]:
    """``collapse/<name>.json`` (plotly JSON) for every figure and ``collapse/<name>.png`` per grid.

    The PNGs are opened on their own, so each has a title, a note and a label beside every row.
    """
    from gen_eval.figure_style import labelled_grid_png

    files = {f"collapse/{name}.json": figure.to_json().encode() for name, figure in figures.items()}
    for name, (grid, captions) in grids.items():
        columns = [f"pair {i + 1}" for i in range(grid.shape[1])] if name in _PAIRED else None
        title = GRID_TITLES.get(name, name)
        files[f"collapse/{name}.png"] = labelled_grid_png(
            grid, title, captions, columns, GRID_NOTES.get(name)
        )
    return files


_PAIRED = ("duplicates", "copies")  # grids whose columns are pairs (the two rows belong together)
GRID_NOTES = {
    "ndb_bins": "Rows are bins of a k-means partition of the reference features. Under-filled bins "
    "show reference images (what the model rarely makes); over-filled bins show generated images "
    "(what it makes too often). Counts: samples of each set in the bin.",
    "duplicates": "Each column is a pair: a generated sample (top) and the closest other generated "
    "sample (bottom). Near-identical pairs mean the model repeats itself.",
    "copies": "Each column is a pair: a generated sample (top) and its nearest training image "
    "(bottom). Near-identical pairs mean the model copies its training data.",
}


_SEVERITY_COLOURS = {"ok": "#2ca02c", "warning": "#ff7f0e", "collapse": "#d62728", "memorisation": "#9467bd"}


def collapse_html(report: CollapseReport, figures: dict[str, go.Figure], title: str) -> str:
    """A page with the verdict, every finding, and the figures; plotly.js inlined once, so it opens offline."""
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>{html.escape(title)}</title>",
        "<style>body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em}"
        "li{margin:.3em 0}.tag{display:inline-block;min-width:7em;font-weight:600}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
        f"<h2 style='color:{_SEVERITY_COLOURS.get(report.status, '#000')}'>{html.escape(report.verdict)}</h2>",
        "<ul>",
    ]
    for finding in report.findings:
        colour = _SEVERITY_COLOURS.get(finding.severity, "#000")
        parts.append(
            f"<li><span class='tag' style='color:{colour}'>{html.escape(finding.severity)}</span>"
            f"<b>{html.escape(finding.detector)}</b>: {html.escape(finding.message)}</li>"
        )
    parts.append("</ul>")
    if report.skipped:
        skipped = "; ".join(f"{name}: {why}" for name, why in report.skipped.items())
        parts.append(f"<p style='color:#777'>Not run: {html.escape(skipped)}</p>")
    for index, figure in enumerate(figures.values()):
        parts.append(figure.to_html(full_html=False, include_plotlyjs=index == 0))
    parts.append("</body></html>")
    return "\n".join(parts)


def summary_rows(report: CollapseReport) -> list[dict[str, Any]]:
    """One row per finding, for tables."""
    return [{"detector": f.detector, "severity": f.severity, "finding": f.message} for f in report.findings]
