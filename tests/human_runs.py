"""Tiny runs for the human-study tests (and the dashboard's): two digits runs made by evaluate.

``good`` holds 60 real training digits (a model whose samples are real data), ``noise`` 60
images of uniform noise; both are scored against ``digits:test`` with FID only, no cache.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


def make_runs(root: Path, count: int = 60) -> Path:
    """Write ``root/good`` and ``root/noise`` (and their sample arrays in ``root/arrays``); return ``root``."""
    import gen_eval
    from gen_eval.sources import open_source

    arrays = root / "arrays"
    arrays.mkdir(parents=True, exist_ok=True)
    real = open_source("digits:train").take(list(range(count)))
    np.savez(arrays / "good.npz", arr_0=real.transpose(0, 2, 3, 1))
    noise = np.random.default_rng(0).integers(0, 256, size=(count, 8, 8, 1), dtype=np.uint8)
    np.savez(arrays / "noise.npz", arr_0=noise)
    for name in ("good", "noise"):
        gen_eval.evaluate(
            str(arrays / f"{name}.npz"),
            "digits:test",
            features="digits",
            metrics=["fid"],
            collapse=False,
            num_resamples=2,
            out=root / name,
            cache_dir=False,
        )
    return root
