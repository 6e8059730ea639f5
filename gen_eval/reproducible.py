"""Reproducible CPU training: one context manager shared by every network gen-eval trains."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import numpy as np
import torch


@contextlib.contextmanager
def reproducible(seed: int, threads: int = 1) -> Iterator[torch.Generator]:
    """Seed torch and numpy, use deterministic kernels and a fixed thread count; restore it all after.

    Yields a CPU ``torch.Generator`` seeded with ``seed``: pass it to every random call (weight
    initialisation uses the seeded global RNG) so training repeats exactly. One thread by
    default: CPU reductions then split the same way on every machine, so the weights do not
    depend on the core count, and tiny nets train faster than with threads fighting a busy CPU.
    ``fork_rng`` restores torch's global RNG, so training does not perturb the caller's stream.
    """
    was_deterministic = torch.are_deterministic_algorithms_enabled()
    was_warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
    old_threads, numpy_state = torch.get_num_threads(), np.random.get_state()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        np.random.seed(seed)
        torch.use_deterministic_algorithms(True)
        torch.set_num_threads(threads)
        try:
            yield torch.Generator().manual_seed(seed)
        finally:
            torch.set_num_threads(old_threads)
            torch.use_deterministic_algorithms(was_deterministic, warn_only=was_warn_only)
            np.random.set_state(numpy_state)
