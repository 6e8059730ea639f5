"""One self-contained HTML report per run: ``gen-eval report RUN`` writes ``RUN/report.html``.

The page holds everything a reader needs to judge and reproduce the run's numbers, top to
bottom: the metrics with their intervals (a table and a chart), the sample grid, the
mode-collapse verdict with each finding and its figures, latent-space analyses when the run
has them, and the manifest (versions, sources and their hashes, extractor and weights hash,
options, timings, the command that reproduces it, and the raw JSON).

plotly.js is inlined once and every image is a data URI, so the file opens offline. The
report is written beside the run's files but is not one of them: it is not in the manifest's
checksum list, so ``load_run`` still verifies the run, and rewriting the report never
touches what it describes.
"""

from __future__ import annotations

import io
import json
import math
import os
import re
import shlex
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gen_eval.errors import GenEvalError
from gen_eval.runs.html import Page, escape, image_tag, table
from gen_eval.runs.run import SAMPLES, Run, load_run

if TYPE_CHECKING:
    import plotly.graph_objects as go

    from gen_eval.metrics.result import Result

REPORT = "report.html"

# Metrics whose values live on [0, 1] (density can pass 1): they share one axis in the chart;
# every other metric has a scale of its own (FID in the hundreds next to KID in the thousandths).
_UNIT_SCALE = ("precision", "recall", "density", "coverage", "ms_ssim", "ms_ssim_reference")
_LABELS = {
    "fid": "FID",
    "fd_inf": "FD∞",
    "kid": "KID",
    "is": "IS",
    "ms_ssim": "MS-SSIM",
    "ms_ssim_reference": "MS-SSIM (reference)",
    "bits_per_dim": "bits/dim",
}
# Data figures first, each followed by the evidence images behind it; unknown names go last.
_COLLAPSE_ORDER = ("modes", "classes", "stacked", "ndb", "ndb_bins", "birthday", "duplicates", "copies")
# Padding around and between cells in collapse evidence grids (gen_eval.collapse.figures.grid_array).
_GRID_PADDING = 2
_KINDS = {
    "estimate": "estimated from samples",
    "exact": "exact (no bound, no sampling of the likelihood)",
    "bound": "a bound (ELBO, IWAE or dequantised likelihood), not the exact value",
}

# Additions to the shared style: long hashes and warnings wrap instead of widening the page,
# so it stays readable at laptop width.
_STYLE = """<style>
.wrap{overflow-x:auto}.kv td{overflow-wrap:anywhere;text-align:left}.kv td:first-child{white-space:nowrap}
.metrics td,.metrics th{white-space:nowrap}.metrics td:last-child{white-space:normal;text-align:left;min-width:12em;max-width:30em;font-size:.85em;color:#b35900}
.verdict{padding:.6em 1em;border-left:6px solid currentColor;background:#fafafa;font-size:1.15em;margin:.8em 0}
nav{margin:.4em 0 1em}nav a{margin-right:1.1em}h3{font-size:1.05em;margin:1.6em 0 .3em}
figure{margin:1em 0}figcaption{color:#555;font-size:.9em;margin-top:.3em}figcaption ul{margin:.2em 0}
details{margin:.8em 0}summary{cursor:pointer;color:#1f77b4}code{overflow-wrap:anywhere}
.row>div table{width:100%}pre.command{font-size:.85em}
.grid td{vertical-align:middle;text-align:left;padding:0 .7em 0 0;border:0}.grid img{display:block}
img.evidence{image-rendering:pixelated;max-width:100%}
</style>"""


def _label(name: str, result: Result | None = None) -> str:
    label = _LABELS.get(name, name.replace("_", " "))
    return f"{label} (bound)" if result is not None and result.kind == "bound" else label


def _fmt(value: float | None) -> str:
    """Four decimals, like the terminal table; very large or small values in 4 significant digits."""
    if value is None or not math.isfinite(value):
        return "–" if value is None else str(value)
    return f"{value:.4f}" if 1e-3 <= abs(value) < 1e4 or value == 0 else f"{value:.4g}"


def _plain(text: object) -> str:
    """Plotly title text without its markup (titles move out of the figure into HTML headings)."""
    return re.sub(r"<[^>]+>", "", str(text).replace("<br>", " "))


def run_report_html(run: Run) -> str:
    """The self-contained HTML report of a loaded run.

    Parameters
    ----------
    run : Run
        A run from :func:`gen_eval.runs.run.load_run` (its checksums already verified).

    Returns
    -------
    str
        A complete HTML document: metrics table and chart, sample grid, collapse verdict,
        findings and figures, latent analyses when present, and the manifest. plotly.js is
        inlined once and images are data URIs, so it needs no network.
    """
    manifest = run.manifest
    generated, reference = manifest.get("generated", {}), manifest.get("reference", {})
    extractor = manifest.get("extractor", {}).get("name", "?")
    page = Page(f"{generated.get('spec', '?')} vs {reference.get('spec', '?')} ({extractor} features)")
    page.add(_STYLE)
    versions = manifest.get("versions", {})
    page.paragraph(
        f"Run {run.path.resolve()} · created {manifest.get('created', '?')} · "
        f"gen-eval {versions.get('gen-eval', '?')} · seed {manifest.get('options', {}).get('seed', '?')}",
        "muted",
    )
    if run.collapse is not None:
        status = run.collapse.get("status", "")
        page.add(
            f"<div class='verdict {escape(status)}'>Mode collapse: {escape(run.collapse.get('verdict', '?'))}</div>"
        )
    sections = [("metrics", "Metrics"), ("samples", "Samples"), ("collapse", "Mode collapse")]
    if (run.path / "latent").is_dir():
        sections.append(("latent", "Latent space"))
    sections.append(("manifest", "Manifest"))
    page.add("<nav>" + "".join(f"<a href='#{key}'>{escape(text)}</a>" for key, text in sections) + "</nav>")

    _metrics_section(page, run)
    _samples_section(page, run)
    _collapse_section(page, run)
    if (run.path / "latent").is_dir():
        page.add("<h2 id='latent'>Latent space</h2>")
        _latent_numbers(page, run)
        if not _folder_figures(page, run, "latent", _LATENT_ORDER):
            page.paragraph("The latent/ folder holds no figures.", "muted")
    _manifest_section(page, run)
    return page.render()


def write_report(run_dir: str | Path, out: str | Path | None = None) -> Path:
    """Write the HTML report of the run at ``run_dir``.

    The run is loaded (and its checksums verified) first; the page is written to a temporary
    file and renamed into place, so a reader never sees half a report.

    Parameters
    ----------
    run_dir : str or Path
        A run directory written by ``evaluate``.
    out : str or Path, optional
        Where to write the page (default ``run_dir/report.html``, which is not one of the run's
        checksummed files). An existing directory receives ``report.html`` inside it.

    Returns
    -------
    Path
        The file written.

    Raises
    ------
    GenEvalError
        If ``run_dir`` is not a valid run or the page cannot be written.
    """
    run = load_run(run_dir)
    target = Path(out) if out is not None else Path(run_dir) / REPORT
    if target.is_dir():
        target = target / REPORT
    text = run_report_html(run)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
        try:
            with os.fdopen(handle, "w", encoding="utf-8") as stream:
                stream.write(text)
            os.chmod(temporary, 0o666 & ~_umask())  # mkstemp makes it private; a report is for sharing
            os.replace(temporary, target)
        finally:
            if os.path.exists(temporary):
                os.unlink(temporary)
    except OSError as exc:
        raise GenEvalError(
            f"{target}: cannot write the report ({exc.strerror}); choose another place with --out"
        ) from exc
    return target


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# -- metrics ---------------------------------------------------------------------------------------


def _metrics_section(page: Page, run: Run) -> None:
    page.add("<h2 id='metrics'>Metrics</h2>")
    if not run.metrics:
        page.paragraph("This run computed no metrics (a collapse-only run).", "muted")
        return
    rows = []
    for name, result in run.metrics.items():
        interval = f"{_fmt(result.interval[0])} – {_fmt(result.interval[1])}" if result.interval else "–"
        method = result.details.get("interval_method", "")
        rows.append(
            [
                f"<span title='{escape(name)}'>{escape(_label(name, result))}</span>",
                _fmt(result.value),
                f"<span title='{escape(method)}'>{interval}</span>" if method else interval,
                "↓ lower" if result.direction == "lower" else "↑ higher",
                f"{result.num_generated:,}",
                f"{result.num_reference:,}" if result.num_reference else "–",
                f"<span title='{escape(_KINDS.get(result.kind, ''))}'>{escape(result.kind)}</span>",
                "<br>".join(escape(w) for w in result.warnings),
            ]
        )
    columns = ["metric", "value", "95% interval", "better", "n gen", "n ref", "kind", "warnings"]
    page.add(f"<div class='wrap metrics'>{table(columns, rows, raw=True)}</div>")
    resamples = run.manifest.get("options", {}).get("num_resamples")
    intervals = (
        f"Intervals: 95% bootstrap over {resamples} resamples of the generated set, the reference fixed "
        "(hover an interval for its method)."
        if resamples
        else "No intervals: the run was evaluated with --num-resamples 0."
    )
    page.paragraph(
        f"{intervals} n ref '–': the metric does not use the reference. "
        "kind: estimate from samples, exact, or a likelihood bound.",
        "muted",
    )
    notes = [
        f"{role}: {note}"
        for role in ("generated", "reference")
        for note in run.manifest.get(role, {}).get("conversions", [])
    ]
    if notes:
        page.add(
            "<p class='muted'>Conversions and notes recorded in the manifest:</p><ul class='muted'>"
            + "".join(f"<li>{escape(note)}</li>" for note in notes)
            + "</ul>"
        )
    figure = metrics_figure(run.metrics)
    if figure is not None:
        with_intervals = any(r.interval for r in run.metrics.values())
        page.add(f"<h3>Each metric{' with its 95% interval' if with_intervals else ''}</h3>")
        page.figure(figure)
        page.paragraph(
            "Each row has its own axis; the scores on [0, 1] (precision, recall, density, coverage, "
            "MS-SSIM) share one. ↓: lower is better, ↑: higher is better.",
            "muted",
        )


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
            f"{_label(n, r)} {'↓' if r.direction == 'lower' else '↑'}"
            for n, r in zip(group, results, strict=True)
        ]
        values = [r.value for r in results]
        # Bias-shifted intervals contain the point, but clip anyway so a bar never points backwards.
        above = [max(r.interval[1] - r.value, 0.0) if r.interval else 0.0 for r in results]
        below = [max(r.value - r.interval[0], 0.0) if r.interval else 0.0 for r in results]
        intervals = [
            f"{_fmt(r.interval[0])} – {_fmt(r.interval[1])}" if r.interval else "no interval" for r in results
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


# -- samples ---------------------------------------------------------------------------------------


def _samples_section(page: Page, run: Run) -> None:
    page.add("<h2 id='samples'>Samples</h2>")
    path = run.path / SAMPLES
    if not path.is_file():
        page.paragraph("This run has no sample picture.", "muted")
        return
    generated = run.manifest.get("generated", {})
    count = int(generated.get("count") or 0)
    if generated.get("data_kind") == "vector":
        shape = generated.get("sample_shape") or [2]
        reference_count = int(run.manifest.get("reference", {}).get("count") or 0)
        caption = (
            f"The first {min(count, 5000):,} generated points (blue) over the first "
            f"{min(reference_count, 5000):,} reference points (grey)"
            + (f", first two of {shape[0]} coordinates" if shape and shape[0] > 2 else "")
            + "."
        )
    else:
        caption = (
            f"The first {min(count, 64):,} of {count:,} generated samples (upscaled, nearest neighbour)."
        )
    page.add(f"<figure>{image_tag(path.read_bytes(), 'generated samples')}<figcaption>{escape(caption)}")
    page.add("</figcaption></figure>")


# -- collapse and other figure folders -------------------------------------------------------------


def _collapse_section(page: Page, run: Run) -> None:
    page.add("<h2 id='collapse'>Mode collapse</h2>")
    collapse = run.collapse
    if collapse is None:
        page.paragraph("The collapse check was not run (the run was evaluated with --no-collapse).", "muted")
        return
    status = collapse.get("status", "")
    page.add(f"<div class='verdict {escape(status)}'>{escape(collapse.get('verdict', '?'))}</div>")
    rows = [
        [
            f"<span class='{escape(f.get('severity', ''))}'>{escape(f.get('severity', ''))}</span>",
            escape(f.get("detector", "")),
            escape(f.get("message", "")),
        ]
        for f in collapse.get("findings", [])
    ]
    if rows:
        page.add(
            f"<div class='wrap'>{table(['verdict', 'detector', 'finding'], rows, left=3, raw=True)}</div>"
        )
    skipped = collapse.get("skipped") or {}
    if skipped:
        page.add(
            "<p class='muted'>Not run: "
            + "; ".join(f"{escape(name)} ({escape(why)})" for name, why in skipped.items())
            + "</p>"
        )
    _folder_figures(page, run, "collapse", _COLLAPSE_ORDER)
    detectors = collapse.get("detectors")
    if detectors:
        page.add(
            "<details><summary>Every detector's numbers (JSON)</summary><pre>"
            + escape(json.dumps(detectors, indent=1))
            + "</pre></details>"
        )


_LATENT_ORDER = (
    "interpolation",
    "traversal",
    "dimension_activity",
    "smoothness",
    "ppl",
    "arithmetic",
    "embedding",
)


def _latent_numbers(page: Page, run: Run) -> None:
    """The numbers of ``latent.json`` as a table, with its notes."""
    from gen_eval.latent.analyse import summary_rows

    path = run.path / "latent.json"
    if not path.is_file():
        return
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        page.add(table(["analysis", "result"], summary_rows(doc.get("analyses", {})), left=2))
    except (ValueError, KeyError, TypeError) as exc:
        page.paragraph(f"latent.json: cannot be shown ({exc})", "error")
        return
    notes = doc.get("notes", []) + doc.get("analyses", {}).get("ppl", {}).get("notes", [])
    for note in notes:
        page.paragraph(note, "muted")


def _folder_figures(page: Page, run: Run, folder: str, order: tuple[str, ...]) -> int:
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
        page.add(heading + _image_grid(png_path.read_bytes(), captions, json_path.stem))
        return
    figure = plotly.io.from_json(text)
    # The title becomes an HTML heading, which wraps on a narrow screen where plotly's would clip.
    figure.update_layout(title_text="", margin_t=30)
    page.add(heading)
    page.figure(figure)
    if png_path is not None:
        page.add(f"<figure>{image_tag(png_path.read_bytes(), png_path.stem)}</figure>")


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


# -- manifest --------------------------------------------------------------------------------------


def _value_html(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, str) and re.fullmatch(r"[0-9a-f]{32,}", value):
        return f"<code>{escape(value)}</code>"
    if isinstance(value, dict):
        return "; ".join(f"{escape(k)} = {_value_html(v)}" for k, v in value.items()) or "–"
    if isinstance(value, list | tuple):
        if value and all(isinstance(v, int | float) for v in value):
            return escape(" x ".join(str(v) for v in value))  # a shape
        if all(isinstance(v, str) and len(v) < 40 for v in value):
            return escape(", ".join(value)) or "–"  # names (metrics, features)
        return "<br>".join(_value_html(v) for v in value) or "–"  # sentences (conversions)
    if isinstance(value, float):
        return escape(f"{value:g}")
    return escape(value)


def _kv_table(items: dict[str, Any], heading: str = "") -> str:
    head = f"<thead><tr><th class='l' colspan='2'>{escape(heading)}</th></tr></thead>" if heading else ""
    rows = "".join(
        f"<tr><td>{escape(key)}</td><td>{_value_html(value)}</td></tr>" for key, value in items.items()
    )
    return f"<div class='kv wrap'><table>{head}<tbody>{rows}</tbody></table></div>"


def reproduce_command(manifest: dict[str, Any], collapse: bool = True, multiline: bool = False) -> str:
    """The ``gen-eval evaluate`` command line that recomputes a run from its manifest.

    Parameters
    ----------
    manifest : dict
        A run's ``manifest.json``.
    collapse : bool
        Whether the run holds a collapse verdict (else ``--no-collapse`` is added).
    multiline : bool
        One option per line, joined by backslash continuations (for reading; still pastes).

    Returns
    -------
    str
        A shell-quoted command. Paths are as they were given (run it from the same folder);
        Inception weights appear as a placeholder path naming the start of their SHA-256.
    """
    generated, reference = manifest.get("generated", {}), manifest.get("reference", {})
    options = manifest.get("options", {})
    extractor = manifest.get("extractor", {})
    parts = [["gen-eval", "evaluate", str(generated.get("spec", "?")), "-r", str(reference.get("spec", "?"))]]
    parts.append(["--features", str(extractor.get("name", "auto"))])
    if options.get("metrics"):
        parts.append(["--metrics", ",".join(options["metrics"])])
    for flag, key in (
        ("--num-samples", "num_samples"),
        ("--num-reference", "num_reference"),
        ("--seed", "seed"),
        ("--num-resamples", "num_resamples"),
        ("--batch-size", "batch_size"),
        ("--device", "device"),
        ("--resize", "resize"),
        ("--key", "key"),
    ):
        if options.get(key) is not None:
            parts.append([flag, str(options[key])])
    if options.get("value_range") not in (None, "auto"):
        parts.append(["--value-range", str(options["value_range"])])
    for key, value in (options.get("metric_options") or {}).items():
        if isinstance(value, bool):
            value = str(value).lower()
        elif isinstance(value, list | tuple):
            value = ",".join(str(v) for v in value)
        parts.append(["-o", f"{key}={value}"])
    if generated.get("kind") == "python":
        parts.append(["--trust-code"])
    if extractor.get("name") == "inception":
        digest = str(extractor.get("weights_sha256", ""))[:12]
        parts.append(["--inception-weights", f"/path/to/inception-{digest}.pth"])
        if options.get("channels_last") is False:
            parts.append(["--no-channels-last"])
    if not collapse:
        parts.append(["--no-collapse"])
    elif (manifest.get("training_set") or {}).get("spec"):
        parts.append(["--train", str(manifest["training_set"]["spec"])])
    lines = [" ".join(shlex.quote(a) for a in part) for part in parts]
    return " \\\n  ".join(lines) if multiline else " ".join(lines)


def _manifest_section(page: Page, run: Run) -> None:
    manifest = run.manifest
    page.add("<h2 id='manifest'>Manifest: how to reproduce these numbers</h2>")
    page.add("<h3>Command</h3>")
    command = reproduce_command(manifest, collapse=run.collapse is not None, multiline=True)
    page.add(f"<pre class='command'>{escape(command)}</pre>")
    page.paragraph(
        "Run it from the folder the original ran in (relative paths are as given). The same versions, "
        "source fingerprints, extractor weights and seed give the same numbers; on another device "
        "they agree to rounding.",
        "muted",
    )
    page.add("<h3>Sources</h3><div class='row'>")
    for role in ("generated", "reference", "training_set"):
        source = manifest.get(role)
        if not source:
            continue
        source = dict(source)
        fingerprint = source.pop("fingerprint", None)
        # Show the content hash right after the spec: it is what the cache and comparisons key on.
        ordered = {"spec": source.pop("spec", None), "content SHA-256": fingerprint, **source}
        page.add(f"<div>{_kv_table(ordered, role.replace('_', ' '))}</div>")
    page.add("</div>")
    extractor = manifest.get("extractor")
    if extractor:
        page.add("<h3>Feature extractor</h3>")
        page.add(_kv_table(extractor))
    page.add("<div class='row'>")
    if manifest.get("options"):
        page.add(f"<div><h3>Options</h3>{_kv_table(manifest['options'])}</div>")
    if manifest.get("versions"):
        page.add(f"<div><h3>Versions</h3>{_kv_table(manifest['versions'])}</div>")
    if manifest.get("timings_s"):
        timings = {
            key: f"{value:.3f} s" if value is not None else None
            for key, value in manifest["timings_s"].items()
        }
        page.add(f"<div><h3>Timings</h3>{_kv_table(timings)}</div>")
    page.add("</div>")
    if manifest.get("files"):
        page.add("<h3>Files (SHA-256, verified when the run is loaded)</h3>")
        page.add(_kv_table(manifest["files"]))
    page.add(
        "<details><summary>manifest.json (raw)</summary><pre>"
        + escape(json.dumps(manifest, indent=2))
        + "</pre></details>"
    )
