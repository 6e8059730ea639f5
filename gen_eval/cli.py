"""The ``gen-eval`` command line: a thin layer over the public functions.

Heavy libraries (torch, numpy, PIL) are imported inside the commands, so ``--help``
answers without loading them.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from typer.core import TyperGroup

from gen_eval.errors import GenEvalError
from gen_eval.options import parse_option_pairs
from gen_eval.schemas import to_json
from gen_eval.sources.resize import RESIZE_METHOD_HELP

ERROR_PREFIX = "error: "  # every error the command line prints starts so, usage errors included
# Typer may bring its own copy of click (typer._click): take click's classes from typer's own.
_ClickException = next(c for c in typer.BadParameter.__mro__ if c.__name__ == "ClickException")
_UsageError = next(c for c in typer.BadParameter.__mro__ if c.__name__ == "UsageError")


class _OneLineUsageErrors(TyperGroup):
    """Usage errors (unknown option, bad value) as one line "error: ...", like every other error.

    Click prints them after the usage line as a rich panel titled Error (or a line starting
    Error with a capital); here they read like gen-eval's own errors, with the help to read, and
    keep click's exit status 2.
    """

    def main(self, *args: Any, standalone_mode: bool = True, **kwargs: Any) -> Any:
        if not standalone_mode:
            return super().main(*args, standalone_mode=False, **kwargs)
        try:
            result = super().main(*args, standalone_mode=False, **kwargs)
        except _UsageError as exc:
            if type(exc).__name__ == "NoArgsIsHelpError":  # bare `gen-eval`: the help, as typer prints it
                from typer import rich_utils

                rich_utils.rich_format_error(exc)
                sys.exit(exc.exit_code)
            where = f"; see {exc.ctx.command_path} --help" if exc.ctx is not None else ""
            message = " ".join(exc.format_message().split()).rstrip(".")  # one line, whatever click wrapped
            typer.secho(f"{ERROR_PREFIX}{message}{where}", fg=typer.colors.RED, err=True)
            sys.exit(exc.exit_code)
        except _ClickException as exc:
            typer.secho(
                f"{ERROR_PREFIX}{' '.join(exc.format_message().split())}", fg=typer.colors.RED, err=True
            )
            sys.exit(exc.exit_code)
        except typer.Abort:
            typer.secho("interrupted: nothing was written", fg=typer.colors.RED, err=True)
            sys.exit(130)
        sys.exit(result if isinstance(result, int) else 0)


app = typer.Typer(
    cls=_OneLineUsageErrors,
    name="gen-eval",
    help="Score and explain generative models: FID and friends, on your samples, offline.",
    no_args_is_help=True,
    rich_markup_mode="rich",
    pretty_exceptions_enable=False,
    add_completion=False,
)

# Shared by every command that takes --trust-code (evaluate, collapse, latent).
UnsafeNoIsolation = Annotated[
    bool,
    typer.Option(
        "--unsafe-no-isolation",
        help="Run a --trust-code file even where the kernel cannot confine it (no Landlock or "
        "seccomp): it can then read, write and reach what you can.",
    ),
]
_state = {"debug": False}
T = TypeVar("T")


def _guard(action: Callable[[], T]) -> T:
    """Run a command body; a GenEvalError becomes one line on stderr and exit status 2."""
    try:
        return action()
    except GenEvalError as exc:
        if _state["debug"]:
            raise
        typer.secho(f"{ERROR_PREFIX}{exc}", fg=typer.colors.RED, err=True)
        raise typer.Exit(2) from None
    except KeyboardInterrupt:
        typer.secho("interrupted: nothing was written", fg=typer.colors.RED, err=True)
        raise typer.Exit(130) from None


def _version(value: bool) -> None:
    if value:
        from gen_eval import __version__

        typer.echo(f"gen-eval {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks for errors.")] = False,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
    threads: Annotated[
        int | None,
        typer.Option(
            "--threads",
            min=1,
            envvar="GEN_EVAL_THREADS",
            help="CPU threads for torch and numpy's BLAS (default: theirs, one per core). On a busy "
            "machine 1 can be several times faster for small networks (threads that wait spin).",
        ),
    ] = None,
) -> None:
    _state["debug"] = debug
    if threads is not None:
        set_threads(threads)


def set_threads(threads: int) -> None:
    """Use ``threads`` CPU threads in torch (intra-op) and the BLAS/OpenMP libraries from now on.

    Libraries already loaded are limited through threadpoolctl; the environment variables cover
    those loaded later (scipy brings its own OpenBLAS) and child processes.
    """
    for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[name] = str(threads)
    import torch
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(threads)
    threadpool_limits(limits=threads)  # a plain call applies the limit for the rest of the process


EVALUATE_EXAMPLES = """
[bold]Examples[/bold]

  gen-eval evaluate digits:train --reference digits:test
  gen-eval evaluate samples.npz --reference real_images/ --features inception --inception-weights pt_inception.pth
  gen-eval evaluate my_gan.py:make_model --trust-code --num-samples 2000 --reference digits:test
  gen-eval evaluate ring8:test --reference ring8 --json
  gen-eval evaluate samples/ -r digits:test --metrics fid,kid,fd_inf -o kid_subset_size=500 --num-resamples 200
"""


@app.command(epilog=EVALUATE_EXAMPLES)
def evaluate(
    source: Annotated[
        str, typer.Argument(help="Samples: folder, .npz/.npy, file.py:factory, or dataset[:split].")
    ],
    reference: Annotated[
        str, typer.Option("--reference", "-r", help="Reference set (same forms).")
    ] = "digits:test",
    features: Annotated[
        str, typer.Option(help="Feature extractor (see `gen-eval features`) or auto.")
    ] = "auto",
    metrics: Annotated[
        str, typer.Option(help="Comma-separated metric names (see `gen-eval metrics`), or auto.")
    ] = "auto",
    num_samples: Annotated[int | None, typer.Option(help="Use the first N samples (or draw N).")] = None,
    num_reference: Annotated[int | None, typer.Option(help="Use the first N reference samples.")] = None,
    batch_size: Annotated[
        int | None, typer.Option(help="Samples per forward pass (auto by default).")
    ] = None,
    device: Annotated[str, typer.Option(help="auto, cpu or cuda.")] = "auto",
    seed: Annotated[int, typer.Option(help="Seed for generators, subsets and bootstrap resamples.")] = 0,
    num_resamples: Annotated[
        int, typer.Option(help="Bootstrap resamples for 95% intervals (0: none).")
    ] = 100,
    option: Annotated[
        list[str] | None,
        typer.Option(
            "--option",
            "-o",
            help="Metric or detector option KEY=VALUE, e.g. kid_subset_size=500 (see gen-eval metrics); "
            "unknown keys and mistyped values are refused.",
        ),
    ] = None,
    out: Annotated[Path | None, typer.Option(help="Run directory (default: runs/<time>-<source>).")] = None,
    no_save: Annotated[bool, typer.Option("--no-save", help="Print results without writing a run.")] = False,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing --out directory.")] = False,
    cache_dir: Annotated[
        Path | None, typer.Option(help="Feature cache (default: $GEN_EVAL_CACHE or ~/.cache/gen-eval).")
    ] = None,
    no_cache: Annotated[
        bool, typer.Option("--no-cache", help="Neither read nor write cached features.")
    ] = False,
    trust_code: Annotated[bool, typer.Option(help="Allow running a Python generator file.")] = False,
    sandbox: Annotated[
        bool,
        typer.Option(
            help="Run that file in a separate process with time and memory limits "
            "(GEN_EVAL_SANDBOX_TIME_S, GEN_EVAL_SANDBOX_MEMORY_MB); --no-sandbox imports it here."
        ),
    ] = True,
    unsafe_no_isolation: UnsafeNoIsolation = False,
    inception_weights: Annotated[Path | None, typer.Option(help="Local Inception-v3 weights (.pth).")] = None,
    channels_last: Annotated[
        bool | None,
        typer.Option(
            "--channels-last/--no-channels-last",
            help="Inception in channels-last layout (default: on for CPU, ~1.6x faster, features within 2e-6).",
            show_default=False,
        ),
    ] = None,
    resize: Annotated[
        int | None, typer.Option(help="Resize folder images to SIZE x SIZE (with --resize-method).")
    ] = None,
    resize_method: Annotated[str, typer.Option(help=RESIZE_METHOD_HELP)] = "bicubic",
    key: Annotated[str | None, typer.Option(help="Array name inside an .npz (default arr_0).")] = None,
    value_range: Annotated[str, typer.Option(help="Float arrays: auto, 0,1, -1,1 or 0,255.")] = "auto",
    no_collapse: Annotated[
        bool, typer.Option("--no-collapse", help="Skip the mode-collapse detectors (on by default).")
    ] = False,
    train: Annotated[
        str | None,
        typer.Option(help="Training set for the memorisation check (default: the reference's train split)."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars.")] = False,
) -> None:
    """Score SOURCE against a reference and write a run directory (with a mode-collapse verdict)."""

    def body() -> None:
        from gen_eval.evaluation import default_run_dir
        from gen_eval.evaluation import evaluate as run_evaluate
        from gen_eval.report_text import print_evaluation

        target = None if no_save else (out or default_run_dir(source))
        result = run_evaluate(
            source,
            reference,
            features=features,
            metrics="auto" if metrics == "auto" else [m.strip() for m in metrics.split(",") if m.strip()],
            num_samples=num_samples,
            num_reference=num_reference,
            batch_size=batch_size,
            device=device,
            seed=seed,
            num_resamples=num_resamples,
            metric_options=parse_option_pairs(option or []),
            out=target,
            overwrite=overwrite,
            cache_dir=None if no_cache else (cache_dir or True),
            trust_code=trust_code,
            sandbox=sandbox,
            unsafe_no_isolation=unsafe_no_isolation,
            inception_weights=inception_weights,
            channels_last=channels_last,
            resize=resize,
            resize_method=resize_method,
            key=key,
            value_range=value_range,
            collapse=not no_collapse,
            train=train or "auto",
            show_progress=not quiet and not as_json,
        )
        if as_json:
            typer.echo(to_json(result.to_dict()))
        else:
            print_evaluation(result)

    _guard(body)


@app.command(epilog="[bold]Example[/bold]\n\n  gen-eval datasets")
def datasets(as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """List the embedded datasets and their splits (nothing is downloaded)."""

    def body() -> None:
        from gen_eval.datasets import dataset_names, get_dataset

        rows = []
        for name in dataset_names():
            info = get_dataset(name)
            sizes = {split: info.size(split) for split in info.splits}
            rows.append(
                {
                    "name": name,
                    "kind": info.data_kind,
                    "splits": sizes,
                    "default": info.default_split,
                    "description": info.description,
                }
            )
        if as_json:
            typer.echo(to_json(rows))
            return
        _print_table(
            "Embedded datasets",
            ["name", "kind", "splits (size)", "description"],
            [
                [
                    r["name"],
                    r["kind"],
                    ", ".join(
                        f"{s}{'*' if s == r['default'] else ''} ({n:,})" for s, n in r["splits"].items()
                    ),
                    r["description"],
                ]
                for r in rows
            ],
            caption="* default split; use NAME:SPLIT, e.g. digits:test",
        )

    _guard(body)


@app.command(
    epilog="[bold]Example[/bold]\n\n  gen-eval features --inception-weights ~/weights/pt_inception.pth"
)
def features(
    inception_weights: Annotated[Path | None, typer.Option(help="Check this Inception weights file.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List the feature extractors and whether their weights are available here."""

    def body() -> None:
        from gen_eval.features import extractor_status

        rows = extractor_status(weights_path=inception_weights)
        if as_json:
            typer.echo(to_json(rows))
            return
        _print_table(
            "Feature extractors",
            ["name", "input", "available", "description", "weights"],
            [
                [
                    r["name"],
                    r["input"],
                    "yes" if r["available"] else "[red]no[/red]",
                    r["description"],
                    r["detail"],
                ]
                for r in rows
            ],
        )

    _guard(body)


@app.command("train-features", epilog="[bold]Example[/bold]\n\n  gen-eval train-features digits --seed 0")
def train_features(
    name: Annotated[str, typer.Argument(help="Which extractor to retrain (digits).")] = "digits",
    epochs: Annotated[int | None, typer.Option(help="Training epochs (default: the shipped recipe).")] = None,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    out: Annotated[Path | None, typer.Option(help="Weights file (default: the shipped file).")] = None,
) -> None:
    """Retrain a bundled feature network reproducibly and write its safetensors weights."""

    def body() -> None:
        if name != "digits":
            raise GenEvalError(f"train-features {name!r}: only the digits network is trained by gen-eval")
        from gen_eval.features.digits import DEFAULT_WEIGHTS, retrain_digits_weights

        options: dict[str, Any] = {"seed": seed}
        if epochs is not None:
            options["epochs"] = epochs
        info = retrain_digits_weights(out or DEFAULT_WEIGHTS, **options)
        typer.echo(to_json(info, default=str))

    _guard(body)


@app.command(epilog="[bold]Example[/bold]\n\n  gen-eval metrics")
def metrics(as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """List the metrics, what each needs, and which are computed by default."""

    def body() -> None:
        from gen_eval.metrics import metric_table

        rows = metric_table()
        if as_json:
            typer.echo(to_json(rows))
            return
        from gen_eval.options import option_rows

        _print_table(
            "Metrics",
            ["name", "needs", "default", "what"],
            [[r["name"], r["requires"], "yes" if r["default"] else "no", r["summary"]] for r in rows],
            caption="defaults run when their needs are met; pick others with --metrics a,b,c",
        )
        _print_table("Options (-o KEY=VALUE)", ["option", "of", "default", "what"], option_rows())

    _guard(body)


def _print_table(title: str, columns: list[str], rows: list[list[Any]], caption: str | None = None) -> None:
    """A rich table, nothing cut: the first column (names) never wraps, long paths and URLs fold."""
    from rich.table import Table

    from gen_eval.tables import console_for, unclipped

    table = Table(title=title, caption=caption)
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(*[str(cell) for cell in row])
    unclipped(table, whole=columns[:1])
    console_for(table).print(table)


from gen_eval import (  # noqa: E402, F401  (register their commands)
    cli_bench,
    cli_collapse,
    cli_compare,
    cli_dashboard,
    cli_latent,
    cli_models,
    cli_report,
    cli_score,
)


def main() -> None:
    """Console-script entry point (also for ``torchrun -m gen_eval``: ranks other than 0 stay quiet)."""
    from gen_eval import distributed

    if not distributed.is_main():
        import os

        sys.stdout = open(os.devnull, "w")  # noqa: SIM115  (for the life of the process)
    try:
        app(prog_name="gen-eval")
    finally:
        distributed.shutdown()


if __name__ == "__main__":  # pragma: no cover
    main()
    sys.exit(0)
