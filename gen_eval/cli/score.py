"""``gen-eval score``: grade a folder of students' submissions (registered by ``gen_eval.cli.main``)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from gen_eval.cli.common import _guard, app
from gen_eval.features import RESIZE_MODE_HELP
from gen_eval.grading.archives import Limits
from gen_eval.sources.resize import RESIZE_METHOD_HELP

if TYPE_CHECKING:
    from gen_eval.grading.results import ScoreResult

SCORE_EXAMPLES = """
[bold]Examples[/bold]

  gen-eval score submissions/ --reference digits:test
  gen-eval score submissions/ -r digits:test --num-samples 300 --num-resamples 200 --out grades
  gen-eval score submissions/ -r real_images/ --features inception --resize 64

[bold]Layout[/bold] (one entry per submission, taken in sorted order)

  submissions/alice/samples.npz        or any one .npz/.npy, or images (png, jpg, webp, bmp)
  submissions/alice/submission.toml    optional: student, family, and \\[claimed] fid = 21.3 ...
  submissions/bob.zip                  the same inside a .zip, .tar, .tar.gz or .tgz
  submissions/carol.npz                a bare array

Names starting with . or _ are listed as ignored. Refused: links to other submissions or outside
(a linked folder anywhere inside a submission too), archives inside submissions, GIF/TIFF images,
more than --max-samples samples (50,000), more than --time-limit seconds each (3,600).

Rerunning resumes: finished submissions whose samples and options are unchanged are not redone.

[bold]Exit status[/bold]

  0  every submission was scored
  3  some submissions failed (their errors are on the leaderboard, which is written all the same)
  2  the command itself could not run (bad reference, options or folder): nothing graded
"""

# Distinct from 2 (an input error of the command itself, nothing graded) so a script can tell "the
# batch ran but some students' submissions failed" from "the grader could not run".
EXIT_FAILED_SUBMISSIONS = 3


@app.command(epilog=SCORE_EXAMPLES)
def score(
    submissions_dir: Annotated[Path, typer.Argument(help="Folder with one entry per submission.")],
    reference: Annotated[str, typer.Option("--reference", "-r", help="Reference set, e.g. digits:test.")],
    features: Annotated[
        str, typer.Option(help="Feature extractor or auto (chosen from the reference).")
    ] = "auto",
    out: Annotated[Path | None, typer.Option(help="Output folder (default: score-<folder name>).")] = None,
    num_samples: Annotated[
        int | None, typer.Option(help="Score the first N samples of each; fewer is an error.")
    ] = None,
    num_resamples: Annotated[int, typer.Option(help="Bootstrap resamples for 95% intervals.")] = 100,
    seed: Annotated[int, typer.Option(help="Seed for subsets and bootstrap resamples.")] = 0,
    cache_dir: Annotated[
        Path | None, typer.Option(help="Feature cache (default: $GEN_EVAL_CACHE or ~/.cache/gen-eval).")
    ] = None,
    resize: Annotated[
        int | None, typer.Option(help="Resize folder images to SIZE x SIZE (with --resize-method).")
    ] = None,
    resize_method: Annotated[str, typer.Option(help=RESIZE_METHOD_HELP)] = "bicubic",
    resize_mode: Annotated[str | None, typer.Option(help=RESIZE_MODE_HELP)] = None,
    rank_by: Annotated[str, typer.Option(help="Metric the rank follows (in its own direction).")] = "fid",
    max_samples: Annotated[
        int,
        typer.Option(help="Refuse a submission holding more samples (read from headers, before decoding)."),
    ] = Limits.max_samples,
    time_limit: Annotated[
        float,
        typer.Option(help="Seconds one submission may take before it is stopped and failed (0: no limit)."),
    ] = 3600.0,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
) -> None:
    """Grade every submission in SUBMISSIONS_DIR: a leaderboard (CSV, HTML, JSON), a run and a report each.

    A bad submission (corrupt, too few samples, NaNs, unsafe archive...) gets its error on the leaderboard
    and the batch goes on; the exit status is then 3. Nothing submitted is unpickled or executed.
    """

    def body() -> ScoreResult:
        from gen_eval.grading.score import score as run_score

        result = run_score(
            submissions_dir,
            reference,
            features=features,
            out=out,
            num_samples=num_samples,
            num_resamples=num_resamples,
            seed=seed,
            cache_dir=cache_dir,
            resize=resize,
            resize_method=resize_method,
            resize_mode=resize_mode,
            rank_by=rank_by,
            limits=Limits(max_samples=max_samples, time_limit=time_limit),
            show_progress=not quiet,
        )
        print_score(result)
        return result

    if _guard(body).failed:  # after the leaderboard is written and printed
        raise typer.Exit(EXIT_FAILED_SUBMISSIONS)


_STATUS = {"ok": "green", "warning": "yellow", "collapse": "bold red", "memorisation": "bold magenta"}
# Beside the ranking metric, the first _MAX_SHOWN of these that the runs have: the headline numbers
# of paired, conditional and translation submissions (issue 23) before the unconditional ones.
_SHOWN = (
    "psnr",
    "ssim",
    "lpips",
    "consistency",
    "conditional_accuracy",
    "fid_per_class",
    "label_preservation",
    "cycle_consistency",
    "kid",
    "is",
    "precision",
    "recall",
    "density",
    "coverage",
)
_MAX_SHOWN = 7


def print_score(result: ScoreResult) -> None:
    """The leaderboard as a rich table, then each error and each claim outside its interval."""
    from rich import box
    from rich.markup import escape
    from rich.table import Table

    from gen_eval.tables import console_for, unclipped

    shown = [m for m in _SHOWN if m in result.metric_names and m != result.rank_by][:_MAX_SHOWN]
    table = Table(
        title=f"{escape(Path(result.submissions_dir).name)} vs {escape(result.reference)} ({result.features} features)",
        box=box.SIMPLE_HEAD,
    )
    for column in ["#", "submission", "student", "family", "n", result.rank_by, "95% CI", *shown]:
        table.add_column(
            escape(column), justify="left" if column in ("submission", "student", "family") else "right"
        )
    table.add_column("collapse")
    table.add_column("claims", justify="right")
    for row in result.rows:
        entry = row.metrics.get(result.rank_by) or {}
        interval = entry.get("interval")
        cells = [str(row.rank or "-"), escape(row.name), escape(row.student or ""), escape(row.family or "")]
        cells.append(str(row.num_samples or "-"))
        cells.append(f"{entry['value']:.4g}" if entry else "-")
        cells.append(f"{interval[0]:.4g}-{interval[1]:.4g}" if interval else "-")
        cells += [f"{row.value(m):.3g}" if row.value(m) is not None else "-" for m in shown]
        if row.status == "error":
            cells.append("[bold red]ERROR[/bold red]")
        else:
            status = row.collapse.get("status", "")
            cells.append(f"[{_STATUS.get(status, 'white')}]{escape(status or '-')}[/]")
        met = sum(bool(claim.met) for claim in row.claims)
        colour = "green" if met == len(row.claims) else "red"
        cells.append(f"[{colour}]{met}/{len(row.claims)} met[/]" if row.claims else "-")
        table.add_row(*cells)
    # Submission names are what an instructor looks up: whole, never "alice_v2_fin…".
    console = console_for(unclipped(table, whole=("submission",)))
    console.print(table)
    for row in result.rows:
        if row.error:
            console.print(f"[red]{escape(row.name)}: {escape(row.error)}[/red]")
        for warning in row.warnings:  # files left out, animated images, metadata not understood
            console.print(f"[yellow]{escape(row.name)}: {escape(warning)}[/yellow]")
        for claim in row.claims:
            if not claim.met:  # not met or not measured; a modest claim needs no attention
                console.print(f"[yellow]{escape(row.name)} claims {escape(claim.describe())}[/yellow]")
        if row.collapse.get("status") in ("collapse", "memorisation"):
            console.print(f"[magenta]{escape(row.name)}: {escape(row.collapse['verdict'])}[/magenta]")
    resumed = sum(row.status == "resumed" for row in result.rows)
    console.print(
        f"[dim]{len(result.rows)} submissions, {len(result.failed)} failed, {resumed} kept from an earlier run "
        f"(unchanged), in {result.seconds:.1f} s; claims: met when the model is at least as good as claimed, allowing for the 95% interval[/dim]"
    )
    for ignored in result.ignored:  # with the reason: a student whose folder is skipped must hear why
        console.print(f"[dim]ignored: {escape(ignored)}[/dim]")
    for warning in result.warnings:
        console.print(f"[yellow]warning: {escape(warning)}[/yellow]")
    out = result.out_dir
    console.print(f"leaderboard written to [bold]{escape(str(out / 'leaderboard'))}.{{csv,html,json}}[/bold]")
