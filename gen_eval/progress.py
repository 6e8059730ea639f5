"""Progress bars for long work (rich), silent when disabled.

Bars opened while another is showing join its display (rich draws one live display at a time)
as lines under it, and go when their work is done. ``progress_label("vae")`` prefixes every bar
opened inside it with what is being worked on, so a demo shows ``vae · generated (digits)``
under its overall ``demo · model 5 of 11: vae`` bar instead of an anonymous
``generated (digits)``. :func:`progress_group` is that overall bar: one step per item, and one
line per finished item saying how long it took and where the time went (its bars' own times).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import Any, Protocol


class Progress(Protocol):
    def advance(self, amount: int) -> None: ...


class _Silent:
    def advance(self, amount: int) -> None:
        pass


_LIVE: list[Any] = []  # the rich Progress drawing now, if any: bars opened meanwhile join it
_LABELS: list[str] = []  # prefixes for new bars (the model being scored)
_FINISHED: list[list[tuple[str, float]]] = []  # (stage, own seconds) of bars closed in each group item
_NESTED: list[float] = []  # seconds of the bars closed inside each open joined bar


class _Task:
    def __init__(self, bar: Any, task: Any) -> None:
        self._bar, self._task = bar, task

    def advance(self, amount: int) -> None:
        self._bar.advance(self._task, amount)


def _columns() -> tuple[Any, ...]:
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    return (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )


@contextmanager
def _shown(description: str, total: int | None) -> Iterator[tuple[Any, Any]]:
    """(rich Progress, task id) of a new bar: a line in the live display, or a display of its own."""
    if _LIVE:
        bar = _LIVE[-1]
        task = bar.add_task(description, total=total)
        started = time.perf_counter()
        _NESTED.append(0.0)
        try:
            yield bar, task
        finally:
            bar.remove_task(task)
            took, inner = time.perf_counter() - started, _NESTED.pop()
            if _NESTED:
                _NESTED[-1] += took
            if _FINISHED:  # its own time: sampling inside a feature bar counts once, as sampling
                stage = description.removeprefix(" · ".join(_LABELS) + " · ") if _LABELS else description
                _FINISHED[-1].append((stage, took - inner))
        return
    from rich.console import Console
    from rich.progress import Progress as RichProgress

    with RichProgress(*_columns(), console=Console(stderr=True), transient=False) as bar:
        _LIVE.append(bar)
        try:
            yield bar, bar.add_task(description, total=total)
        finally:
            _LIVE.pop()


@contextmanager
def progress_task(description: str, total: int | None, enabled: bool = True) -> Iterator[Progress]:
    """A progress bar on stderr for ``total`` units of work (None: unknown); ``advance(n)`` moves it.

    Its text is ``description`` after the labels of the enclosing :func:`progress_label` blocks.
    """
    from gen_eval.distributed import is_main

    if not enabled or not is_main():  # under torchrun only rank 0 draws bars
        yield _Silent()
        return
    with _shown(" · ".join([*_LABELS, description]), total) as (bar, task):
        yield _Task(bar, task)


@contextmanager
def progress_stage(description: str, enabled: bool = True) -> Iterator[None]:
    """A one-step bar for work that cannot count its steps (a collapse check): named while it runs."""
    with progress_task(description, 1, enabled) as bar:
        yield
        bar.advance(1)


@contextmanager
def progress_label(label: str) -> Iterator[None]:
    """Prefix every bar opened inside the block with ``label`` (``vae · metrics``)."""
    _LABELS.append(label)
    try:
        yield
    finally:
        _LABELS.pop()


class Group:
    """The overall bar of :func:`progress_group`; ``item(name)`` wraps the work on one item."""

    def __init__(self, description: str, total: int, bar: Any, task: Any) -> None:
        self._description, self._total, self._bar, self._task = description, total, bar, task
        self._done = 0

    @property
    def display(self) -> Any:
        """The live rich Progress (None when bars are off): where items run elsewhere draw."""
        return self._bar

    def _describe(self, text: str) -> None:
        if self._bar is not None:
            self._bar.update(self._task, description=f"{self._description} · {text}")

    @contextmanager
    def item(self, name: str) -> Iterator[None]:
        """Work on ``name`` here: the overall bar names it, bars inside are labelled with it, and a
        line says how long it took and which stages took the time."""
        self._describe(f"{self._done + 1} of {self._total}: {name}")
        started = time.perf_counter()
        _FINISHED.append([])
        try:
            with progress_label(name):
                yield
        finally:
            stages = _FINISHED.pop()
        self.finished(name, time.perf_counter() - started, stages)

    def show_running(self, names: list[str]) -> None:
        """Name the items running elsewhere (worker processes)."""
        running = f", running: {', '.join(names)}" if names else ""
        self._describe(f"{self._done} of {self._total} done{running}")

    def finished(self, name: str, took: float, stages: list[tuple[str, float]]) -> None:
        """Count ``name`` as done: one step, and a line with its time and its stages' own times."""
        self._done += 1
        if self._bar is None:
            return
        self._bar.advance(self._task, 1)
        stages = [*stages, ("other", took - sum(seconds for _, seconds in stages))]  # work with no bar
        spent = ", ".join(f"{stage} {seconds:.0f} s" for stage, seconds in stages if seconds >= 0.5)
        self._bar.console.print(  # one line however narrow the terminal: logs are read with grep
            f"{name} ({self._done} of {self._total}) took {took:.0f} s" + (f": {spent}" if spent else ""),
            soft_wrap=True,
        )


@contextmanager
def progress_group(description: str, total: int, enabled: bool = True) -> Iterator[Group]:
    """An overall bar over ``total`` items (models), shown above the bars of the current item."""
    from gen_eval.distributed import is_main

    if not enabled or not is_main():
        yield Group(description, total, None, None)
        return
    with _shown(description, total) as (bar, task):
        yield Group(description, total, bar, task)


@contextmanager
def sampling_progress(source: Any, enabled: bool) -> Iterator[None]:
    """A bar for the sampling of a generator source (``source.model.sample``), which otherwise shows
    only as a feature bar that waits at 0 while a slow model draws its first batch.

    The model's ``sample`` is wrapped for the duration (the calls and their arguments, hence the
    samples, are unchanged); the bar opens at the first call and closes when all are drawn.
    """
    model = getattr(source, "model", None)
    if not enabled or model is None or not callable(getattr(model, "sample", None)):
        yield
        return
    original, total, drawn = model.sample, len(source), [0]
    stack = ExitStack()

    def sample(n: int, generator: Any = None, **options: Any) -> Any:  # options: a conditional model's labels
        if len(drawn) == 1:  # the first draw (open_source's one-sample probe came before)
            bar = stack.enter_context(progress_task("sampling", total, True))
            drawn.append(bar)
        out = original(n, generator=generator, **options)
        if drawn[0] < total:  # later draws (a sample grid) come after the bar is done
            drawn[0] += n
            drawn[1].advance(n)
            if drawn[0] >= total:
                stack.close()
        return out

    model.sample = sample
    try:
        yield
    finally:
        stack.close()
        del model.sample  # the instance attribute; the class's method shows through again
