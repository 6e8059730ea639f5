"""The ``gen-eval`` app and what every command shares: one-line errors, ``_guard``, ``--threads``.

Command modules (``gen_eval.cli.<group>``) import only this module and register their commands
on ``app``; ``gen_eval.cli.main`` imports them all, so nothing imports back up (no cycle).
Heavy libraries (torch, numpy, PIL) are imported inside the commands, so ``--help``
answers without loading them.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

import typer
from typer.core import TyperGroup

from gen_eval.errors import GenEvalError

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
