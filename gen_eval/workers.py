"""Run independent jobs (the demo's models) in worker processes, their bars in this process's display.

Why processes: the bundled networks are small, so a second torch thread per model mostly spins
(8x the CPU time for the same PixelCNN samples on a busy 2-core machine), while two models side
by side, one thread each, use both cores for real work; and on a shared machine each process
gets its own share of the CPU. Each job is seeded on its own, so its numbers are the same as
when it runs alone.

How the bars get here: in a worker, :mod:`gen_eval.progress` draws into a stand-in display
that sends every change (a bar added, advanced, removed) through a queue; a thread here applies
them to the live display under the overall bar, so each model's bars (``pixelcnn · sampling``)
show as if it ran in this process.
"""

from __future__ import annotations

import itertools
import os
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from contextlib import contextmanager
from typing import Any

from gen_eval import progress

_QUEUE: Any = None  # in a worker: where its bar changes go


class _RemoteDisplay:
    """What a worker's bars draw into: the calls of rich's Progress that progress.py makes, queued."""

    def __init__(self, queue: Any, job: int) -> None:
        self._queue, self._job, self._ids = queue, job, itertools.count()

    def add_task(self, description: str, total: float | None = None) -> int:
        task = next(self._ids)
        self._queue.put(("add", self._job, task, description, total))
        return task

    def advance(self, task: int, amount: float) -> None:
        self._queue.put(("advance", self._job, task, amount))

    def remove_task(self, task: int) -> None:
        self._queue.put(("remove", self._job, task))

    def update(self, task: int, description: str) -> None:
        self._queue.put(("update", self._job, task, description))


def _start_worker(queue: Any, threads: int | None) -> None:
    global _QUEUE
    _QUEUE = queue
    if threads is not None:  # before the libraries start their thread pools
        for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
            os.environ[name] = str(threads)
        import torch

        torch.set_num_threads(threads)


def _run_job(job: int, label: str, function: Callable[..., Any], kwargs: dict[str, Any]) -> tuple[Any, Any]:
    """In a worker: ``function(**kwargs)`` with its bars labelled and sent home; (result, stages)."""
    started = time.perf_counter()
    if _QUEUE is not None:
        progress._LIVE.append(_RemoteDisplay(_QUEUE, job))
    progress._FINISHED.append([])
    try:
        with progress.progress_label(label):
            result = function(**kwargs)
    finally:
        stages = progress._FINISHED.pop()
        if _QUEUE is not None:
            progress._LIVE.pop()
    return result, (time.perf_counter() - started, stages)


@contextmanager
def _forwarding(queue: Any, display: Any) -> Iterator[None]:
    """Apply the workers' bar changes to ``display`` (a rich Progress, or None: drop them)."""
    tasks: dict[tuple[int, int], Any] = {}

    def pump() -> None:
        while True:
            message = queue.get()
            if message is None:
                return
            if display is None:
                continue
            kind, job, task = message[:3]
            if kind == "add":
                tasks[job, task] = display.add_task(message[3], total=message[4])
            elif (job, task) in tasks:
                if kind == "advance":
                    display.advance(tasks[job, task], message[3])
                elif kind == "update":
                    display.update(tasks[job, task], description=message[3])
                elif kind == "remove":
                    display.remove_task(tasks.pop((job, task)))

    thread = threading.Thread(target=pump, name="gen-eval-bars", daemon=True)
    thread.start()
    try:
        yield
    finally:
        queue.put(None)
        thread.join(timeout=5)
        for task in tasks.values():  # bars of a job that failed
            display.remove_task(task)


def run_jobs(
    jobs: list[tuple[str, Callable[..., Any], dict[str, Any]]],
    *,
    workers: int,
    group: progress.Group,
    threads: int | None,
    first: Callable[[str], bool] = lambda label: False,
    done: Callable[[int, Any], None] = lambda index, result: None,
) -> list[Any]:
    """Run ``function(**kwargs)`` for each ``(label, function, kwargs)`` in ``workers`` processes.

    Parameters
    ----------
    jobs : list of (str, callable, dict)
        A label for the bars, a module-level function and its keyword arguments (both picklable).
    workers : int
        Processes (at least 2; use a plain loop for one).
    group : progress.Group
        The overall bar: one step and one line per finished job.
    threads : int, optional
        CPU threads per worker for torch and the BLAS libraries (None: their defaults).
    first : callable
        ``first(label)`` is True for jobs known to be slow: they start first, so a slow job does not
        run alone at the end.
    done : callable
        Called here with (index, result) as each job finishes, in finishing order.

    Returns
    -------
    list
        The results in the order of ``jobs``. The first job to raise stops the others that have not
        started, and its exception is raised here once the running ones end.
    """
    import multiprocessing

    # spawn: a fork of a process whose torch already started threads can deadlock.
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    order = sorted(range(len(jobs)), key=lambda index: not first(jobs[index][0]))
    results: list[Any] = [None] * len(jobs)
    with (
        _forwarding(queue, group.display),
        ProcessPoolExecutor(workers, context, initializer=_start_worker, initargs=(queue, threads)) as pool,
    ):
        pending: dict[Future[Any], int] = {
            pool.submit(_run_job, index, jobs[index][0], jobs[index][1], jobs[index][2]): index
            for index in order
        }
        try:
            while pending:
                finished, _ = wait(pending, return_when=FIRST_COMPLETED)
                for future in finished:
                    index = pending.pop(future)
                    result, (took, stages) = future.result()
                    results[index] = result
                    done(index, result)
                    group.finished(jobs[index][0], took, stages)
                running = sorted(jobs[i][0] for f, i in pending.items() if f.running())
                group.show_running(running)
        except BaseException:
            for future in pending:
                future.cancel()
            raise
    return results
