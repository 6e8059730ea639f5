"""Bad paired submissions for the robustness corpus (issue 23): each must be one error line naming
the file, never a traceback or a half-scored row.

The corpus is scored against ``digits:test``; a paired submission is read (and refused on its own
fault: counts, shapes, names, an unknown task) before its kind or size is compared with the
reference's.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from pathlib import Path


def _images(count: int, size: int = 28, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (count, 1, size, size), dtype=np.uint8)


def _png(image: np.ndarray) -> bytes:
    from gen_eval.bench.hostile_files import png_bytes

    return png_bytes(image)


def paired_cases(root: Path) -> dict[str, str]:
    """Write the bad paired submissions under ``root``: submission name -> expected error fragment."""
    outputs = _images(12)
    expected: dict[str, str] = {}
    np.savez(root / "paired_short_task.npz", outputs=outputs, task=np.array("sr4"))
    expected["paired_short_task"] = "paired_short_task.npz: 12 outputs for task sr4"
    np.savez(root / "paired_unknown_task.npz", outputs=outputs, task=np.array("sr8"))
    expected["paired_unknown_task"] = "paired_unknown_task.npz: task is 'sr8'; name one of sr4"
    np.savez(root / "paired_counts.npz", outputs=outputs, inputs=_images(11, 7), targets=_images(12))
    expected["paired_counts"] = "paired_counts.npz: 11 inputs but 12 targets"
    np.savez(
        root / "paired_target_shape.npz", outputs=outputs, inputs=_images(12, 7), targets=_images(12, 14)
    )
    expected["paired_target_shape"] = (
        "paired_target_shape.npz: outputs are 1x28x28 (C x H x W) but targets 1x14x14"
    )
    np.savez(root / "paired_no_partner.npz", outputs=outputs)
    expected["paired_no_partner"] = "paired_no_partner.npz: outputs without inputs/targets or a task"
    folder = root / "paired_names"
    for part, names in (("outputs", ["a.png", "b.png"]), ("targets", ["a.png", "c.png"])):
        (folder / part).mkdir(parents=True)
        for name, image in zip(names, _images(2), strict=True):
            (folder / part / name).write_bytes(_png(image[0]))
    expected["paired_names"] = "paired_names: outputs/ (2 files) and targets/ (2) do not hold the same names"
    return expected
