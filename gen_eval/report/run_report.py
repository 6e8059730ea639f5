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

import json
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from gen_eval.errors import GenEvalError
from gen_eval.kinds import KINDS, get_kind
from gen_eval.metrics.result import better_label
from gen_eval.report.conditional_paired import classes_section, has_classes, is_paired, pairs_section
from gen_eval.report.figures import fmt, folder_figures, label, metrics_figure
from gen_eval.report.html import Page, escape, image_tag, table
from gen_eval.report.human import human_judgements, human_section
from gen_eval.report.manifest import manifest_section, reference_statistics_note
from gen_eval.runs.realism_grids import FOLDER as REALISM_FOLDER
from gen_eval.runs.realism_grids import GRIDS as REALISM_GRIDS
from gen_eval.runs.run import SAMPLES, Run, load_run

if TYPE_CHECKING:
    pass

REPORT = "report.html"

# Data figures first, each followed by the evidence images behind it; unknown names go last.
_COLLAPSE_ORDER = ("modes", "classes", "stacked", "ndb", "ndb_bins", "birthday", "duplicates", "copies")
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


def run_report_html(run: Run, plotly_src: str | None = None) -> str:
    """The self-contained HTML report of a loaded run.

    Parameters
    ----------
    run : Run
        A run from :func:`gen_eval.runs.run.load_run` (its checksums already verified).
    plotly_src : str, optional
        Relative path of a shared plotly.js beside the page (``gen-eval score``'s reports);
        by default plotly.js is inlined.

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
    page = Page(
        f"{generated.get('spec', '?')} vs {reference.get('spec', '?')} ({extractor} features)", plotly_src
    )
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
    if "realism" in run.metrics:
        sections.insert(2, ("realism", "Realism"))
    if has_classes(run):
        sections.insert(2, ("classes", "Classes"))
    if is_paired(run):
        sections.insert(2, ("pairs", "Pairs"))
    if (run.path / "latent").is_dir():
        sections.append(("latent", "Latent space"))
    sections.append(("manifest", "Manifest"))
    judged = human_judgements(run)  # the studies under the runs folder that judged this run
    if judged:
        sections.insert(-1, ("human", "Human judgement"))
    page.add("<nav>" + "".join(f"<a href='#{key}'>{escape(text)}</a>" for key, text in sections) + "</nav>")

    _metrics_section(page, run)
    _samples_section(page, run)
    if is_paired(run):
        pairs_section(page, run)
    if has_classes(run):
        classes_section(page, run)
    if "realism" in run.metrics:
        _realism_section(page, run)
    _collapse_section(page, run)
    if (run.path / "latent").is_dir():
        page.add("<h2 id='latent'>Latent space</h2>")
        _latent_numbers(page, run)
        if not folder_figures(page, run, "latent", _LATENT_ORDER):
            page.paragraph("The latent/ folder holds no figures.", "muted")
    if judged:
        human_section(page, judged)
    manifest_section(page, run)
    return page.render()


def write_report(
    run_dir: str | Path, out: str | Path | None = None, *, plotly_src: str | None = None
) -> Path:
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
    plotly_src : str, optional
        Relative path (from the page) of a shared plotly.js, e.g. from
        :func:`gen_eval.report.html.write_plotly_js`; by default plotly.js is inlined.

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
    text = run_report_html(run, plotly_src)
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
    statistics = reference_statistics_note(run.manifest)  # a mean and covariance, not samples
    if statistics is not None:
        page.paragraph(statistics, "statistics")
    for warning in run.manifest.get("warnings", []):  # about the whole run: images resized, fewer samples
        page.paragraph(f"warning: {warning}", "warning")
    if not run.metrics:
        page.paragraph("This run computed no metrics (a collapse-only run).", "muted")
        return
    rows = []
    for name, result in run.metrics.items():
        interval = f"{fmt(result.interval[0])} – {fmt(result.interval[1])}" if result.interval else "–"
        method = result.details.get("interval_method", "")
        rows.append(
            [
                f"<span title='{escape(name)}'>{escape(label(name, result))}</span>",
                fmt(result.value),
                f"<span title='{escape(method)}'>{interval}</span>" if method else interval,
                better_label(name, result.direction),
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
    _interval_covers(page, run)
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


def _interval_covers(page: Page, run: Run) -> None:
    """What each interval is an interval for (``Result.interval_covers``); nothing for older runs."""
    covers = [
        (label(n, r), r.interval_covers) for n, r in run.metrics.items() if r.interval and r.interval_covers
    ]
    if covers:
        items = "".join(f"<li><b>{escape(name)}</b>: {escape(text)}</li>" for name, text in covers)
        page.add(f"<p>What each interval covers:</p><ul class='interval-covers'>{items}</ul>")


# -- samples ---------------------------------------------------------------------------------------


def _samples_section(page: Page, run: Run) -> None:
    page.add("<h2 id='samples'>Samples</h2>")
    path = run.path / SAMPLES
    if not path.is_file():
        page.paragraph("This run has no sample picture.", "muted")
        return
    generated, reference = run.manifest.get("generated", {}), run.manifest.get("reference", {})
    # The kind that drew the picture words its caption; a run of a kind not declared here (a
    # plug-in's) reads as the image grid it was before kinds were declared.
    kind = KINDS.find(str(generated.get("data_kind"))) or get_kind("image")
    count = int(generated.get("count") or 0)
    caption = (
        kind.caption(generated, reference)
        if kind.caption is not None
        else f"The first {min(count, kind.picture_count):,} of {count:,} generated samples."
    )
    page.add(f"<figure>{image_tag(path.read_bytes(), 'generated samples')}<figcaption>{escape(caption)}")
    page.add("</figcaption></figure>")
    _cloud_views(page, run)
    _text_views(page, run)


def _text_views(page: Page, run: Run) -> None:
    """A text run's samples as a table with novelty marks, and its n-gram and length histograms."""
    from gen_eval.report.text_run import figures, load_text_view, text_section_html

    view = load_text_view(run)
    if view is not None:
        page.add(text_section_html(view))
        for figure in figures(view):
            page.figure(figure)


def _cloud_views(page: Page, run: Run) -> None:
    """Interactive 3-D views of the first clouds, for runs of point clouds (they keep clouds.npz)."""
    from gen_eval.report.pointclouds import cloud_figure, read_run_clouds

    clouds = read_run_clouds(run.path)
    if clouds:
        page.figure(cloud_figure(clouds, title="First clouds in 3-D (drag to turn, scroll to zoom)"))


def _realism_section(page: Page, run: Run) -> None:
    """The most and least realistic generated samples: image grids, or their indices for other kinds."""
    result = run.metrics["realism"]
    scores = result.details.get("per_sample") or []
    page.add("<h2 id='realism'>Realism</h2>")
    page.paragraph(
        f"Realism score of each generated sample (Kynkäänniemi et al. 2019, k={result.details.get('k', '?')}): "
        f"the largest ratio of a kept reference ball's radius to the sample's distance from its centre, the "
        f"half of the balls with the largest radii dropped; at least 1 inside a kept ball. Median "
        f"{fmt(result.value)}; {fmt(100 * result.details.get('share_realistic', float('nan')))}% of the "
        "samples score at least 1.",
        "muted",
    )
    for key, title in REALISM_GRIDS.items():
        indices = [int(i) for i in result.details.get(key, [])]
        listed = [(i, scores[i] if i < len(scores) else None) for i in indices]
        page.add(f"<h3>The {len(indices)} {escape(title)} samples</h3>")
        path = run.path / REALISM_FOLDER / f"{key}.png"
        if path.is_file():
            caption = ", ".join(f"#{i}: {fmt(v)}" for i, v in listed)
            page.add(
                f"<figure>{image_tag(path.read_bytes(), title)}<figcaption>{escape(caption)}</figcaption></figure>"
            )
        else:  # not images: the samples' indices in the generated set, with their scores
            page.add(table(["generated sample", "realism"], [[str(i), fmt(v)] for i, v in listed]))


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
    folder_figures(page, run, "collapse", _COLLAPSE_ORDER)
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
