"""``gen-eval compare``: is run B really better than run A, on what, and by how much? (registered by ``gen_eval.cli.main``)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from gen_eval.cli.common import _guard, app
from gen_eval.schemas import to_json

if TYPE_CHECKING:
    from rich.console import Console

    from gen_eval.comparison.result import Comparison

COMPARE_EXAMPLES = """
[bold]Examples[/bold]

  gen-eval compare runs/baseline runs/new
  gen-eval compare runs/dcgan runs/vae runs/ddpm --metric coverage --html compare.html
  gen-eval compare runs/a runs/b --json compare.json --num-resamples 500
  gen-eval compare runs/a runs/b --json -
"""
# Verdict -> rich style: green better, red worse, grey no difference.
STYLES = {"better": "bold green", "best": "bold green", "worse": "bold red"}


@app.command(epilog=COMPARE_EXAMPLES)
def compare(
    runs: Annotated[
        list[Path],
        typer.Argument(
            metavar="RUN",
            help="Run directories written by evaluate; the first is the baseline A.",
        ),
    ],
    html: Annotated[Path | None, typer.Option(help="Write a self-contained HTML page with charts.")] = None,
    as_json: Annotated[
        str | None,
        typer.Option("--json", help="Write JSON to this file; '-' prints it instead of the table."),
    ] = None,
    force: Annotated[
        bool, typer.Option(help="Compare runs with different references or features anyway (marked).")
    ] = False,
    metric: Annotated[
        str | None, typer.Option(help="Rank the runs by this metric (default: fid, with 3+ runs).")
    ] = None,
    num_resamples: Annotated[
        int, typer.Option(help="Bootstrap resamples per run (0: stored intervals).")
    ] = 200,
    seed: Annotated[int, typer.Option(help="Seed of the bootstrap resamples.")] = 0,
    cache_dir: Annotated[
        Path | None,
        typer.Option(
            help="Feature cache with the reference features (default: $GEN_EVAL_CACHE or ~/.cache/gen-eval)."
        ),
    ] = None,
    device: Annotated[
        str, typer.Option(help="auto, cpu or cuda (where the metrics are recomputed).")
    ] = "auto",
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
) -> None:
    """Compare runs metric by metric: B - A with a 95% bootstrap interval and a verdict.

    Runs must share the reference set and the feature extractor. Each run's cached generated
    features are resampled (the reference fixed) and every metric recomputed, so nothing is
    extracted again; MS-SSIM and bits/dim use the runs' stored intervals. With three or more runs,
    a ranking (by FID unless --metric says otherwise) gives each run's difference to the best.
    """

    def body() -> None:
        from gen_eval.comparison.compare import compare as run_compare

        to_stdout = as_json == "-"
        comparison = run_compare(
            runs,
            force=force,
            num_resamples=num_resamples,
            random_state=seed,
            cache_dir=cache_dir,
            metric=metric,
            device=device,
            show_progress=not quiet and not to_stdout,
        )
        document = to_json(comparison.to_dict())
        if html is not None:
            from gen_eval.comparison.html import write_comparison_html

            write_comparison_html(comparison, html)
        if to_stdout:
            typer.echo(document)
            return
        if as_json is not None:
            _write_text(Path(as_json), document)
        print_comparison(comparison)
        for target in (html, as_json):
            if target is not None:
                typer.echo(f"written to {target}")

    _guard(body)


def _write_text(path: Path, text: str) -> None:
    from gen_eval.errors import GenEvalError

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text + "\n", encoding="utf-8")
    except OSError as exc:
        raise GenEvalError(f"{path}: cannot write the JSON ({exc.strerror}); choose another --json") from exc


def print_comparison(comparison: Comparison, console: Console | None = None) -> None:
    """Print the comparison table (and the ranking) with coloured verdicts, then warnings and notes.

    Parameters
    ----------
    comparison : Comparison
        What :func:`gen_eval.comparison.compare.compare` returned.
    console : rich.console.Console, optional
        Where to print (default: a new console on stdout).
    """
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    from gen_eval.comparison.html import fmt, interval_text, signed
    from gen_eval.comparison.result import METHODS
    from gen_eval.tables import console_for, unclipped

    given, console = console, console or Console()
    runs = comparison.runs
    methods = sorted({row.method for row in comparison.rows})
    notes: list[str] = []
    for other in runs[1:]:  # one table per run B against the baseline A
        title = f"B = {other.label} vs A = {runs[0].label}"
        caption = f"95% intervals of B - A ({comparison.num_resamples} bootstrap resamples per run)"
        table = Table(title=escape(title), caption=caption)
        columns = ["metric", "A", "B", "B - A", "95% interval", "verdict"] + (
            ["method"] if len(methods) > 1 else []
        )
        for column in columns:
            left = column in ("metric", "verdict", "method")
            # "no significant difference" may wrap in a narrow terminal; numbers never do.
            wrap = {"no_wrap": False, "min_width": 11} if column == "verdict" else {"no_wrap": True}
            table.add_column(column, justify="left" if left else "right", **wrap)
        for row in (row for row in comparison.rows if row.run_b == other.label):
            verdict = row.verdict if row.comparable else f"not comparable ({row.verdict})"
            style = STYLES.get(row.verdict, "dim") if row.comparable else "dim"
            marker = ""
            if row.warnings:
                marker = f" ({len(notes) + 1})"
                notes.append(f"({len(notes) + 1}) {row.metric}, {other.label}: {'; '.join(row.warnings)}")
            cells = [escape(row.metric + marker), fmt(row.a), fmt(row.b), signed(row.difference)]
            cells += [escape(interval_text(row.interval)), f"[{style}]{escape(verdict)}[/{style}]"]
            table.add_row(*cells, *([row.method] if len(methods) > 1 else []))
        (given or console_for(unclipped(table, whole=("metric",)))).print(table)
    if len(methods) == 1:
        console.print(f"[dim]intervals: {escape(METHODS[methods[0]])}[/dim]")
    for note in notes:
        console.print(f"[yellow]{escape(note)}[/yellow]")
    if comparison.ranking:
        ranking = Table(title=f"Ranking by {comparison.ranking_metric}")
        for column in ("run", "value [95%]", "vs best [95%]", "verdict"):
            left = column in ("run", "verdict")
            wrap = {"no_wrap": False, "min_width": 11} if left else {"no_wrap": True}
            ranking.add_column(column, justify="left" if left else "right", **wrap)
        for entry in comparison.ranking:
            style = STYLES.get(entry.verdict, "dim") if entry.comparable else "dim"
            versus = (
                ""
                if entry.verdict == "best"
                else f"{signed(entry.difference)} {interval_text(entry.difference_interval)}"
            )
            ranking.add_row(
                escape(f"{entry.rank}. {entry.run}"),
                escape(f"{fmt(entry.value)} {interval_text(entry.interval)}"),
                escape(versus),
                f"[{style}]{entry.verdict if entry.comparable else 'not comparable'}[/{style}]",
            )
        (given or console_for(unclipped(ranking))).print(ranking)
    if comparison.human:
        _print_human(comparison, console, given)
    for run in runs:
        if run.collapse_verdict:
            console.print(f"[dim]{escape(run.label)}: collapse check: {escape(run.collapse_verdict)}[/dim]")
    for note in comparison.notes:
        console.print(f"[dim]note: {escape(note)}[/dim]")
    for warning in comparison.warnings:
        console.print(f"[yellow]warning: {escape(warning)}[/yellow]")


def _print_human(comparison: Comparison, console: Console, given: Console | None) -> None:
    """The human judgement rows: each run's error rate (fakes judged real + reals judged fake), B - A, the test."""
    from rich.markup import escape
    from rich.table import Table

    from gen_eval.comparison.html import interval_text
    from gen_eval.human import CHANCE_NOTE
    from gen_eval.human.results import human_verdict
    from gen_eval.tables import console_for, unclipped

    table = Table(
        title="Human judgement: error rate (fakes judged real + reals judged fake)",
        caption="95% intervals of B - A in points: Newcombe's over judgements, and a bootstrap over people; a "
        "difference needs p < 0.05 and the one over people to exclude 0. Higher = harder to tell from real",
    )
    for column in ("B vs A", "A", "B", "B - A", "95% interval", "over people", "p (test)", "verdict"):
        table.add_column(column, justify="left" if column in ("B vs A", "verdict") else "right")
    for row in comparison.human:
        if row["difference"] is None:
            continue
        verdict = human_verdict(row)
        style = {"harder to tell from real": "bold green", "easier to tell from real": "bold red"}.get(
            verdict, "dim"
        )
        studies = "" if row["same_study"] else f" (studies {row['study_a']}, {row['study_b']})"
        table.add_row(
            escape(f"{row['label_b']} vs {row['label_a']}{studies}"),
            f"{100 * row['error_rate_a']:.1f}% of {row['judgements_a']}",
            f"{100 * row['error_rate_b']:.1f}% of {row['judgements_b']}",
            f"{100 * row['difference']:+.1f} pts",
            escape(interval_text(tuple(100 * x for x in row["interval"]))),
            escape(
                interval_text(
                    None if row["interval_people"] is None else [100 * x for x in row["interval_people"]]
                )
            ),
            f"{row['p_value']:.3g} ({row['test']})",
            f"[{style}]{verdict}[/{style}]",
        )
    (given or console_for(unclipped(table, whole=("B vs A",)))).print(table)
    console.print(f"[dim]{escape(CHANCE_NOTE)}[/dim]")
