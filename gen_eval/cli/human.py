"""``gen-eval human``: human judgement studies, created, read and exported (registered by ``gen_eval.cli.main``).

``gen-eval human RUNS_DIR`` prints a study's results (``show`` is the default subcommand, so the
short form works); ``gen-eval human create RUNS_DIR --runs A,B`` snapshots samples and prints the
code participants type in the dashboard; ``gen-eval human close RUNS_DIR`` stops a study.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from typer.core import TyperGroup

from gen_eval.cli.common import _guard, _print_table, app
from gen_eval.schemas import to_json

if TYPE_CHECKING:
    from gen_eval.human import HumanStore, Study


class _ShowByDefault(TyperGroup):
    """``gen-eval human RUNS_DIR ...`` means ``gen-eval human show RUNS_DIR ...``."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ("--help", "-h"):
            args = ["show", *args]
        return super().parse_args(ctx, args)


HUMAN_EXAMPLES = """
[bold]Examples[/bold]

  gen-eval human create runs/class --runs alice,bob,real-data --trials 40
  gen-eval human create runs/class --runs alice,bob --mode pair --time-limit 1
  gen-eval human runs/class                      # the latest study's results
  gen-eval human runs/class --study K7PM2Q --json
  gen-eval human runs/class --export csv --out judgements.csv
  gen-eval human close runs/class --study K7PM2Q
"""

human_app = typer.Typer(
    cls=_ShowByDefault,
    help="Human judgement studies: can people tell each run's samples from real ones?",
    no_args_is_help=True,
    rich_markup_mode="rich",
    epilog=HUMAN_EXAMPLES,
)
app.add_typer(human_app, name="human")

RunsDir = Annotated[Path, typer.Argument(metavar="RUNS_DIR", help="The folder holding the runs.")]
StudyOption = Annotated[
    str | None, typer.Option("--study", help="Study id or code (default: the latest study).")
]


def _existing_store(runs_dir: Path) -> HumanStore:
    """The runs folder's store, without creating one (reading results writes nothing)."""
    from gen_eval.errors import GenEvalError
    from gen_eval.human import HumanStore
    from gen_eval.human.store import DATABASE

    if runs_dir.is_dir() and not (runs_dir / DATABASE).is_file():
        raise GenEvalError(
            f"{runs_dir}: no studies yet ({runs_dir / DATABASE} does not exist); "
            "create one with gen-eval human create RUNS_DIR --runs A,B"
        )
    return HumanStore.for_runs(runs_dir)


def _study(store: HumanStore, wanted: str | None) -> Study:
    from gen_eval.errors import GenEvalError

    studies = store.studies()
    if not studies:
        raise GenEvalError(
            f"{store.path}: no studies yet; create one with gen-eval human create RUNS_DIR --runs A,B"
        )
    if wanted is None:
        return studies[-1]
    found = store.find_study(wanted) or next((s for s in studies if s.study_id == wanted), None)
    if found is None:
        known = ", ".join(f"{s.code} ({s.study_id})" for s in studies)
        raise GenEvalError(f"--study {wanted}: no such study in {store.path} (studies: {known})")
    return found


def _percent(rate: float | None, interval: tuple[float, float] | None) -> str:
    if rate is None:
        return "—"
    shown = f"{100 * rate:.1f}%"
    return shown if interval is None else f"{shown} [{100 * interval[0]:.1f}, {100 * interval[1]:.1f}]"


@human_app.command("show", epilog=HUMAN_EXAMPLES)
def show(
    runs_dir: RunsDir,
    study: StudyOption = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the results as JSON instead of a table.")
    ] = False,
    export: Annotated[
        str | None, typer.Option(help="Write every judgement to --out as csv or json (one row each).")
    ] = None,
    out: Annotated[Path | None, typer.Option(help="The file --export writes.")] = None,
    max_attention_failures: Annotated[
        int, typer.Option(min=0, help="Leave out participants who miss more attention checks than this.")
    ] = 0,
) -> None:
    """A study's results per run: how often fakes were judged real, reals fake, and both, with 95% intervals.

    A model whose samples are the real data lands at about 50% error: 50% is the best possible.
    """

    def body() -> None:
        from gen_eval.errors import GenEvalError
        from gen_eval.human import CHANCE_NOTE, study_results
        from gen_eval.human.results import INTERVAL_NOTE

        if (export is None) != (out is None):
            raise GenEvalError("--export and --out go together: --export csv|json --out FILE")
        store = _existing_store(runs_dir)
        chosen = _study(store, study)
        if export is not None:
            written = store.export(chosen.study_id, export, out)  # type: ignore[arg-type]
            typer.echo(
                f"{len(store.judgements(chosen.study_id))} judgements written to {written}", err=as_json
            )
        results = study_results(store, chosen.study_id, max_attention_failures)
        document = {
            "study": {
                "study_id": chosen.study_id,
                "code": chosen.code,
                "runs": list(chosen.runs),
                "settings": chosen.settings.to_dict(),
                "created": chosen.created,
                "closed": chosen.closed,
                "participants": len(store.participants(chosen.study_id)),
            },
            "results": [result.to_dict() for result in results],
            "note": CHANCE_NOTE,
            "intervals": INTERVAL_NOTE,
        }
        if as_json:
            typer.echo(to_json(document))
            return
        rows = [
            [
                r.run,
                f"{r.participants} ({r.excluded_participants} left out)",
                r.judgements,
                _percent(r.fool_rate, r.fool_interval),
                _percent(r.real_error_rate, r.real_error_interval),
                _percent(r.error_rate, r.error_interval),
                _percent(r.error_rate, r.error_interval_people),
                "—"
                if r.participant_min is None
                else f"{100 * r.participant_min:.0f}–{100 * r.participant_max:.0f}%",  # type: ignore[operator]
                "—" if r.median_seconds is None else f"{r.median_seconds:.1f} s",
            ]
            for r in results
        ]
        state = "closed" if chosen.closed else "open"
        _print_table(
            f"Human judgement · study {chosen.code} ({chosen.study_id}, {chosen.settings.mode} mode, {state})",
            [
                "run",
                "participants",
                "judgements",
                "fakes judged real",
                "reals judged fake",
                "error (both)",
                "error, people resampled",
                "per participant",
                "median time",
            ],
            rows,
            caption=f"{CHANCE_NOTE} {INTERVAL_NOTE}.",
        )

    _guard(body)


@human_app.command("create", epilog=HUMAN_EXAMPLES)
def create(
    runs_dir: RunsDir,
    runs: Annotated[
        str,
        typer.Option("--runs", help="Comma-separated run folders, relative to RUNS_DIR.", show_default=False),
    ],
    mode: Annotated[
        str, typer.Option(help="single: real or fake?, one at a time; pair: which one is fake?")
    ] = "single",
    time_limit: Annotated[
        float | None,
        typer.Option("--time-limit", help="Seconds per trial, shown as a countdown (default: none)."),
    ] = None,
    practice: Annotated[int, typer.Option(help="Practice trials first, with feedback (not scored).")] = 4,
    attention_checks: Annotated[int, typer.Option(help="Obviously broken images mixed in.")] = 2,
    trials: Annotated[
        int, typer.Option(help="Scored trials per participant (even: half real, half fake).")
    ] = 40,
    samples: Annotated[
        int, typer.Option(help="Generated samples copied per run, and as many real ones.")
    ] = 100,
    seed: Annotated[int, typer.Option(help="Seed of the sample choice and every participant's order.")] = 0,
    trust_code: Annotated[
        bool, typer.Option("--trust-code", help="Sample a run's generator file (file.py:factory) again.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the new study as JSON.")] = False,
) -> None:
    """Create a study: copy each run's samples and its reference's, and print the code participants join with."""

    def body() -> None:
        from gen_eval.human import HumanStore, StudySettings

        settings = StudySettings(
            mode=mode,
            time_limit_s=time_limit,
            practice=practice,
            attention_checks=attention_checks,
            trials_per_participant=trials,
            samples_per_run=samples,
            seed=seed,
        )
        names = [name.strip() for name in runs.split(",") if name.strip()]
        store = HumanStore.for_runs(runs_dir)
        study = store.create_study(
            runs_dir, names, settings, trust_code=trust_code, show_progress=not as_json
        )
        if as_json:
            typer.echo(
                to_json(
                    {
                        "study_id": study.study_id,
                        "code": study.code,
                        "runs": list(study.runs),
                        "counts": list(study.counts),
                        "settings": settings.to_dict(),
                        "folder": str(study.folder),
                    }
                )
            )
            return
        typer.echo(f"study {study.study_id} created over {', '.join(study.runs)}")
        typer.echo(f"samples copied per run: {', '.join(map(str, study.counts))} generated, as many real")
        typer.secho(f"code: {study.code}", bold=True)
        typer.echo(
            f"Participants open the dashboard (gen-eval dashboard {runs_dir}), page Human judgement, "
            f"and type the code. Results: gen-eval human {runs_dir} --study {study.code}"
        )

    _guard(body)


@human_app.command("close", epilog=HUMAN_EXAMPLES)
def close(runs_dir: RunsDir, study: StudyOption = None) -> None:
    """Close a study: it takes no more answers; its results stay."""

    def body() -> None:

        store = _existing_store(runs_dir)
        chosen = _study(store, study)
        store.close_study(chosen.study_id)
        typer.echo(
            f"study {chosen.code} ({chosen.study_id}) closed: {len(store.judgements(chosen.study_id))} judgements"
        )

    _guard(body)
