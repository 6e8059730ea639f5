"""The report's figures: the metrics chart and a run folder's plotly figures and evidence images."""

from __future__ import annotations

import io
import json
import math
import re
from pathlib import Path
from typing import TYPE_CHECKING

from gen_eval.metrics.result import display_name
from gen_eval.report.html import Page, escape, image_tag
from gen_eval.runs.run import Run

if TYPE_CHECKING:
    import plotly.graph_objects as go

    from gen_eval.metrics.result import Result

# Metrics whose values live on [0, 1] (density can pass 1): they share one axis in the chart;
# every other metric has a scale of its own (FID in the hundreds next to KID in the thousandths).
_UNIT_SCALE = ("precision", "recall", "density", "coverage", "ms_ssim", "ms_ssim_reference")


# Padding around and between cells in collapse evidence grids (gen_eval.collapse.figures.grid_array).
_GRID_PADDING = 2


def label(name: str, result: Result | None = None) -> str:
    """A metric's display name; FID says its N (``FID at N=500``: FID depends on N), bounds say so."""
    label = display_name(name)
    if name == "fid" and result is not None:
        label += f" at N={result.num_generated:,}"
    if name == "bits_per_dim" and result is not None and result.kind == "estimate":  # log Z from AIS
        return f"{label} (AIS estimate)"
    return f"{label} (bound)" if result is not None and result.kind == "bound" else label


def fmt(value: float | None) -> str:
    """Four decimals, like the terminal table; very large or small values in 4 significant digits."""
    if value is None or not math.isfinite(value):
        return "–" if value is None else str(value)
    return f"{value:.4f}" if 1e-3 <= abs(value) < 1e4 or value == 0 else f"{value:.4g}"


def _plain(text: object) -> str:
    """Plotly title text without its markup (titles move out of the figure into HTML headings)."""
    return re.sub(r"<[^>]+>", "", str(text).replace("<br>", " "))


def metrics_figure(metrics: dict[str, Result]) -> go.Figure | None:
    """The metrics as points with their interval bars, one axis per scale.

    Parameters
    ----------
    metrics : dict of str to Result
        The run's metrics, in display order.

    Returns
    -------
    plotly.graph_objects.Figure or None
        One subplot row per metric with its own x axis (values of different metrics are on
        unrelated scales), except that the [0, 1] scores share one row; None when no metric
        has a finite value.
    """
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    finite = {name: r for name, r in metrics.items() if math.isfinite(r.value)}
    if not finite:
        return None
    groups: list[list[str]] = []
    for name in finite:
        if name in _UNIT_SCALE:
            unit = next((g for g in groups if g[0] in _UNIT_SCALE), None)
            if unit is None:
                groups.append([name])
            else:
                unit.append(name)
        else:
            groups.append([name])
    per_metric, gap = 34, 46  # pixels per metric row, and between groups for the axis labels
    heights = [per_metric * len(g) + 10 for g in groups]
    total = sum(heights) + gap * (len(groups) - 1) + 70
    figure = make_subplots(
        rows=len(groups),
        cols=1,
        row_heights=heights,
        vertical_spacing=gap / total if len(groups) > 1 else 0,
    )
    for row, group in enumerate(groups, start=1):
        results = [finite[name] for name in group]
        labels = [
            f"{label(n, r)} {'↓' if r.direction == 'lower' else '↑'}"
            for n, r in zip(group, results, strict=True)
        ]
        values = [r.value for r in results]
        # Bias-shifted intervals contain the point, but clip anyway so a bar never points backwards.
        above = [max(r.interval[1] - r.value, 0.0) if r.interval else 0.0 for r in results]
        below = [max(r.value - r.interval[0], 0.0) if r.interval else 0.0 for r in results]
        intervals = [
            f"{fmt(r.interval[0])} – {fmt(r.interval[1])}" if r.interval else "no interval" for r in results
        ]
        figure.add_trace(
            go.Scatter(
                x=values,
                y=labels,
                mode="markers",
                marker={
                    "size": 10,
                    "color": "#1f77b4",
                    "symbol": ["circle-open" if r.kind == "bound" else "circle" for r in results],
                },
                error_x={
                    "type": "data",
                    "symmetric": False,
                    "array": above,
                    "arrayminus": below,
                    "thickness": 2,
                    "width": 6,
                    "visible": any(r.interval for r in results),
                },
                customdata=[
                    [text, r.num_generated, r.num_reference]
                    for text, r in zip(intervals, results, strict=True)
                ],
                hovertemplate="%{y}: %{x:.4g}<br>95%: %{customdata[0]}<br>n gen %{customdata[1]}, "
                "n ref %{customdata[2]}<extra></extra>",
                showlegend=False,
            ),
            row=row,
            col=1,
        )
        figure.update_yaxes(autorange="reversed", row=row, col=1)
        if group[0] in _UNIT_SCALE:
            top = max([1.0, *(r.interval[1] if r.interval else r.value for r in results)])
            figure.update_xaxes(range=[0, top * 1.03], row=row, col=1)
        else:
            figure.update_xaxes(rangemode="tozero", row=row, col=1)
    figure.update_layout(
        template="plotly_white", height=total, margin={"l": 10, "r": 20, "t": 20, "b": 40}, showlegend=False
    )
    figure.update_yaxes(automargin=True)
    return figure


def folder_figures(page: Page, run: Run, folder: str, order: tuple[str, ...]) -> int:
    """Render ``folder/*.json`` (plotly figures) and ``folder/*.png``; return how many were shown.

    A JSON figure that only shows an image grid, next to a PNG of the same name, is shown as
    that PNG with the figure's captions: sharper at small sizes and a fraction of the bytes.
    """
    root = run.path / folder
    if not root.is_dir():
        return 0
    checksummed = set(run.manifest.get("files", {}))
    stems = sorted({p.stem for p in root.iterdir() if p.suffix in (".json", ".png") and p.is_file()})
    stems.sort(key=lambda stem: order.index(stem) if stem in order else len(order))
    shown = 0
    for stem in stems:
        json_path, png_path = root / f"{stem}.json", root / f"{stem}.png"
        unverified = [
            p.relative_to(run.path).as_posix()
            for p in (json_path, png_path)
            if p.is_file() and p.relative_to(run.path).as_posix() not in checksummed
        ]
        note = (
            f"<p class='muted'>{escape(', '.join(unverified))}: not covered by the run's checksums.</p>"
            if unverified
            else ""
        )
        try:
            if json_path.is_file():
                _json_figure(page, json_path, png_path if png_path.is_file() else None)
            else:
                page.add(f"<h3>{escape(stem.replace('_', ' '))}</h3>")
                page.add(f"<figure>{image_tag(png_path.read_bytes(), stem)}</figure>")
        except (ValueError, KeyError, TypeError) as exc:  # a damaged figure must not cost the report
            page.paragraph(f"{folder}/{stem}: cannot be shown ({exc})", "error")
            continue
        page.add(note)
        shown += 1
    return shown


def _json_figure(page: Page, json_path: Path, png_path: Path | None) -> None:
    import plotly.io

    text = json_path.read_text(encoding="utf-8")
    spec = json.loads(text)
    layout = spec.get("layout", {})
    title = layout.get("title", "")
    title = title.get("text", "") if isinstance(title, dict) else title
    heading = f"<h3>{escape(_plain(title or json_path.stem.replace('_', ' ')))}</h3>"
    traces = spec.get("data", [])
    if png_path is not None and traces and all(trace.get("type") == "image" for trace in traces):
        captions = [_plain(a.get("text", "")) for a in layout.get("annotations", []) if a.get("text")]
        # The figure's own image is the bare grid, cut into rows beside HTML captions; the PNG file
        # (labelled, for opening on its own) is the fallback for runs whose figure lacks it.
        png = _data_uri_png(traces[0].get("source")) if len(traces) == 1 else None
        page.add(heading + _image_grid(png or png_path.read_bytes(), captions, json_path.stem))
        return
    figure = plotly.io.from_json(text)
    # The title becomes an HTML heading, which wraps on a narrow screen where plotly's would clip.
    figure.update_layout(title_text="", margin_t=30)
    page.add(heading)
    page.figure(figure)
    if png_path is not None:
        page.add(f"<figure>{image_tag(png_path.read_bytes(), png_path.stem)}</figure>")


def _data_uri_png(source: object) -> bytes | None:
    """The PNG inside a ``data:image/png;base64,...`` URI, or None for anything else."""
    import base64
    import binascii

    prefix = "data:image/png;base64,"
    if not isinstance(source, str) or not source.startswith(prefix):
        return None
    try:
        return base64.b64decode(source[len(prefix) :], validate=True)
    except (binascii.Error, ValueError):
        return None


def _image_grid(png: bytes, captions: list[str], alt: str) -> str:
    """An evidence grid with each row's caption beside it (as a list below when rows cannot be cut)."""
    rows = _grid_rows(png, len(captions)) if captions else None
    if rows is None:
        listed = "".join(f"<li>{escape(c)}</li>" for c in captions)
        caption = f"<figcaption>Rows, top to bottom:<ol>{listed}</ol></figcaption>" if captions else ""
        return f"<figure>{image_tag(png, alt)}{caption}</figure>"
    body = "".join(
        f"<tr><td>{image_tag(row, f'{alt}: {caption}', 'evidence')}</td><td>{escape(caption)}</td></tr>"
        for row, caption in zip(rows, captions, strict=True)
    )
    return f"<div class='wrap'><table class='grid'><tbody>{body}</tbody></table></div>"


def _grid_rows(png: bytes, count: int) -> list[bytes] | None:
    """Cut a grid PNG into ``count`` equal rows (None when its height does not divide evenly)."""
    from PIL import Image

    image = Image.open(io.BytesIO(png))
    step, rest = divmod(image.height - _GRID_PADDING, count)
    if rest or step <= _GRID_PADDING:
        return None
    rows = []
    for index in range(count):
        buffer = io.BytesIO()
        image.crop((0, index * step, image.width, (index + 1) * step + _GRID_PADDING)).save(buffer, "PNG")
        rows.append(buffer.getvalue())
    return rows
