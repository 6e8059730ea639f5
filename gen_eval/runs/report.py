"""One self-contained HTML report per run (placeholder until the full report lands)."""

from __future__ import annotations

from pathlib import Path

from gen_eval.runs.html import Page, table
from gen_eval.runs.run import Run, load_run


def run_report_html(run: Run) -> str:
    """The HTML report of a loaded run."""
    page = Page(f"gen-eval run: {run.manifest['generated']['spec']} vs {run.manifest['reference']['spec']}")
    rows = [[name, f"{r.value:.4f}"] for name, r in run.metrics.items()]
    page.add(table(["metric", "value"], rows))
    return page.render()


def write_report(run_dir: str | Path, out: str | Path | None = None) -> Path:
    """Write the report of the run at ``run_dir`` to ``out`` (default ``run_dir/report.html``)."""
    run = load_run(run_dir)
    target = Path(out) if out is not None else Path(run_dir) / "report.html"
    target.write_text(run_report_html(run), encoding="utf-8")
    return target
