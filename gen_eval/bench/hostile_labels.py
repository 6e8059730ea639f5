"""Badly labelled submissions for the robustness corpus (issue 23): each must be one error line
naming the file, refused when it is opened, before anything is evaluated.

Labels come from an ``.npz``'s ``labels`` array or from class folders ``0/ 1/ ...``
(:mod:`gen_eval.sources.labels`); the corpus is scored against ``digits:test``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from pathlib import Path


def label_cases(root: Path) -> dict[str, str]:
    """Write the badly labelled submissions under ``root``: submission name -> expected error fragment."""
    from gen_eval.bench.hostile_files import digits, write_pngs

    images = digits(0, 40)
    classes = np.arange(40) % 10
    arrays = {
        "labels_count": (classes[:39], "samples.npz[labels]: 39 labels for 40 samples"),
        "labels_float": (classes * 1.0, "samples.npz[labels]: labels are float64, not integers"),
        "labels_negative": (classes - 1, "samples.npz[labels]: label -1 at sample 0 is negative"),
    }
    expected = {}
    for name, (labels, fragment) in arrays.items():
        (root / name).mkdir()
        np.savez(root / name / "samples.npz", samples=images, labels=labels)
        expected[name] = fragment
    for label in (0, 1):  # class folders with an unlabelled image beside them
        write_pngs(root / "classes_stray" / str(label), images[classes == label])
    write_pngs(root / "classes_stray", images[:1])
    expected["classes_stray"] = "img_000.png: an image beside the class folders 0/, 1/"
    return expected
