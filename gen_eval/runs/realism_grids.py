"""The most and least realistic generated images (realism score, :mod:`gen_eval.metrics.realism`) as run files.

``evaluate`` writes ``realism/most_realistic.png`` and ``realism/least_realistic.png`` into a run
when the realism metric ran on images; the report and the dashboard show them. Other kinds get no
picture: their pages list the samples' indices and scores from ``metrics.json``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from gen_eval.metrics.result import Result

FOLDER = "realism"
GRIDS = {"most_realistic": "most realistic", "least_realistic": "least realistic"}


def realism_files(
    result: Result, take: Callable[[list[int]], Any], provides: tuple[str, ...] | frozenset
) -> dict[str, bytes]:
    """``{"realism/most_realistic.png": PNG, ...}`` for an image run; empty for other kinds.

    Parameters
    ----------
    result : Result
        The ``realism`` result (its details list the indices at each end of the ranking).
    take : callable
        Indices -> uint8 (N, C, H, W) samples in that order (``Source.take`` or the kept samples).
    provides : collection of str
        What the data kind provides; grids are drawn only when it provides ``"images"``.

    Returns
    -------
    dict of str to bytes
        Relative run paths mapped to PNG bytes.
    """
    if "images" not in provides:
        return {}
    from gen_eval.kinds.image import image_grid_png

    files = {}
    for key in GRIDS:
        indices = [int(i) for i in result.details.get(key, [])]
        if indices:
            files[f"{FOLDER}/{key}.png"] = image_grid_png(np.asarray(take(indices)))
    return files
