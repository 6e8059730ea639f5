"""torch.distributed for ``torchrun --nproc-per-node N -m gen_eval evaluate ...`` (and ``score``).

Under torchrun (``WORLD_SIZE`` > 1) every rank reads the sources in the same order, but runs
the feature extractor only on its own batches (batch i goes to rank i mod N); the features are
then gathered in batch order, so every rank holds exactly the arrays a single process would have
computed, and metrics, intervals and collapse checks come out identical. Rank 0 alone writes the
run, the cache and the terminal output. Reading is repeated on every rank (a generator must draw
its batches in order to give the single-process samples); the extractor, the expensive part at
Inception scale, is what is split. Communication is torch.distributed's: NCCL on GPUs, gloo on
CPU, with a timeout (``GEN_EVAL_DIST_TIMEOUT_S``, default 600 s) so a dead rank fails the job
instead of hanging it.
"""

from __future__ import annotations

import datetime
import os
from collections.abc import Iterable, Iterator
from typing import Any, TypeVar

T = TypeVar("T")
_state: dict[str, Any] = {"initialised": False}


def world_size() -> int:
    """Processes in the job (1 outside torchrun)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def rank() -> int:
    """This process's rank (0 outside torchrun)."""
    return int(os.environ.get("RANK", "0"))


def is_main() -> bool:
    """Whether this process writes runs and prints (rank 0)."""
    return rank() == 0


def active() -> bool:
    """Whether this process is one of several under torchrun."""
    return world_size() > 1


def init() -> None:
    """Join the process group torchrun set up (once); a no-op for a single process."""
    if not active() or _state["initialised"]:
        return
    import torch
    import torch.distributed as dist

    timeout = datetime.timedelta(seconds=float(os.environ.get("GEN_EVAL_DIST_TIMEOUT_S", "600")))
    backend = "nccl" if torch.cuda.is_available() else "gloo"
    if backend == "nccl":
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    dist.init_process_group(backend=backend, timeout=timeout)
    _state["initialised"] = True


def shutdown() -> None:
    """Leave the process group (after a barrier, so no rank exits while another still sends)."""
    if _state["initialised"]:
        import torch.distributed as dist

        dist.barrier()
        dist.destroy_process_group()
        _state["initialised"] = False


def barrier() -> None:
    """Wait for every rank (a no-op for a single process)."""
    if active():
        import torch.distributed as dist

        init()
        dist.barrier()


def own_batches(batches: Iterable[T]) -> Iterator[tuple[int, T]]:
    """(index, batch) of the batches this rank extracts: index mod world size == rank."""
    size, me = world_size(), rank()
    for index, batch in enumerate(batches):
        _test_failure_hook(index)
        if index % size == me:
            yield index, batch


def gather_in_order(parts: list[tuple[int, Any]]) -> list[Any]:
    """Every rank's (index, value) pairs, merged and sorted by index, on every rank."""
    if not active():
        return [value for _, value in sorted(parts, key=lambda item: item[0])]
    import torch.distributed as dist

    init()
    gathered: list[Any] = [None] * world_size()
    dist.all_gather_object(gathered, parts)
    merged = [pair for rank_parts in gathered for pair in rank_parts]
    return [value for _, value in sorted(merged, key=lambda item: item[0])]


def _test_failure_hook(index: int) -> None:
    """Test-only: ``GEN_EVAL_TEST_FAIL_RANK=R`` makes rank R die at its first batch, as a crash would."""
    target = os.environ.get("GEN_EVAL_TEST_FAIL_RANK")
    if target is not None and int(target) == rank() and active():
        os._exit(1)
