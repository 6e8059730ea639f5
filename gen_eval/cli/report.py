"""``gen-eval report``: one self-contained HTML page per run (registered by ``gen_eval.cli.main``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from gen_eval.cli.common import ERROR_PREFIX, _guard, _state, app

REPORT_EXAMPLES = """
[bold]Examples[/bold]

  gen-eval report runs/mine
  gen-eval report runs/mine --out ~/mine.html
  gen-eval report runs/demo/*
"""


@app.command(epilog=REPORT_EXAMPLES)
def report(
    runs: Annotated[list[Path], typer.Argument(metavar="RUN", help="Run directories written by evaluate.")],
    out: Annotated[
        Path | None,
        typer.Option(help="Where to write the page (one RUN only; default RUN/report.html)."),
    ] = None,
) -> None:
    """Write RUN/report.html: metrics, samples, collapse verdict and figures, and the manifest.

    Self-contained (plotly.js inlined, images embedded), it opens offline; the run still verifies.
    """

    def body() -> None:
        from gen_eval.errors import GenEvalError
        from gen_eval.report.run_report import write_report

        if out is not None and len(runs) > 1:
            raise GenEvalError(
                f"--out names one file but {len(runs)} runs were given; drop --out to write each RUN/report.html"
            )
        failed = 0
        for run in runs:
            try:
                written = write_report(run, out)
            except GenEvalError as exc:
                # With several runs, one bad folder should not cost the others their reports.
                if len(runs) == 1 or _state["debug"]:
                    raise
                typer.secho(f"{ERROR_PREFIX}{exc}", fg=typer.colors.RED, err=True)
                failed += 1
                continue
            typer.echo(f"report written to {written}")
        if failed:
            raise typer.Exit(2)

    _guard(body)
