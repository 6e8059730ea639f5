"""Progress bars for long work (rich), silent when disabled or not on a terminal."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Protocol


class Progress(Protocol):
    def advance(self, amount: int) -> None: ...


class _Silent:
    def advance(self, amount: int) -> None:
        pass


@contextmanager
def progress_task(description: str, total: int | None, enabled: bool = True) -> Iterator[Progress]:
    """A progress bar on stderr for ``total`` units of work; ``advance(n)`` moves it."""
    from gen_eval.distributed import is_main

    if not enabled or not is_main():  # under torchrun only rank 0 draws bars
        yield _Silent()
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )
    from rich.progress import Progress as RichProgress

    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    with RichProgress(*columns, console=Console(stderr=True), transient=False) as bar:
        task = bar.add_task(description, total=total)

        class _Task:
            def advance(self, amount: int) -> None:
                bar.advance(task, amount)

        yield _Task()
