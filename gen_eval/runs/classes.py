"""The per-class sample grid of a labelled generated image set: ``classes.png`` (issue 23).

One row per class: the first generated samples labelled with it (the classes a conditional model
was asked for, or a submission's labels), then, after a gap, the first reference samples of that
class when the reference has class labels and images of the same shape. ``evaluate`` writes it
into a run whose generated set has ``num_classes``; the report and the dashboard show it by name.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from gen_eval.sources import Source

FILE = "classes.png"
PER_CLASS = 6  # samples per class and side
MAX_CLASSES = 20  # rows; a 1,000-class model's grid would be too tall to read
_REFERENCE_SCAN = 20_000  # reference samples read at most while looking for every class


def _reference_by_class(
    ref: Source, classes: list[int], per_class: int, shape: tuple[int, ...]
) -> dict[int, list[np.ndarray]] | None:
    """The first ``per_class`` reference samples of each class, or None when the reference cannot give them."""
    from gen_eval.sources.labels import reference_classes

    if ref.kind == "statistics" or tuple(ref.sample_shape) != shape or reference_classes(ref) is None:
        return None
    found: dict[int, list[np.ndarray]] = {c: [] for c in classes}
    read = 0
    for batch in ref.batches(256):
        if batch.labels is None:
            return None
        for image, label in zip(batch.data.numpy(), np.asarray(batch.labels), strict=True):
            if int(label) in found and len(found[int(label)]) < per_class:
                found[int(label)].append(image)
        read += len(batch.data)
        if read >= _REFERENCE_SCAN or all(len(v) == per_class for v in found.values()):
            break
    return found


def class_grid_files(
    gen: Source,
    ref: Source,
    labels: np.ndarray | None,
    take: Callable[[list[int]], Any],
    per_class: int = PER_CLASS,
    max_classes: int = MAX_CLASSES,
) -> dict[str, bytes]:
    """``{"classes.png": PNG}`` for a labelled generated image set; empty otherwise.

    Parameters
    ----------
    gen, ref : Source
        The generated set (drawn only when it has ``num_classes`` and holds images) and the reference.
    labels : numpy.ndarray, optional
        One class per generated sample (the features' labels).
    take : callable
        Indices -> uint8 (N, C, H, W) generated samples in that order (``Source.take`` or kept samples).
    per_class, max_classes : int
        Samples per class and side; classes shown (the lowest-numbered ones).

    Returns
    -------
    dict of str to bytes
    """
    from gen_eval.figure_style import labelled_grid_png
    from gen_eval.kinds import get_kind

    if gen.num_classes is None or labels is None or "images" not in get_kind(gen.data_kind).provides:
        return {}
    labels = np.asarray(labels)
    present = sorted(int(c) for c in np.unique(labels))
    classes = present[:max_classes]
    picks = {c: np.flatnonzero(labels == c)[:per_class] for c in classes}
    images = np.asarray(take([int(i) for c in classes for i in picks[c]]))
    shape = tuple(images.shape[1:])
    blank = np.full(shape, 255, np.uint8)
    reference = _reference_by_class(ref, classes, per_class, shape)

    def padded(tiles: list[np.ndarray]) -> list[np.ndarray]:
        return tiles + [blank] * (per_class - len(tiles))

    rows, row_labels, start = [], [], 0
    for c in classes:
        own = list(images[start : start + len(picks[c])])
        start += len(picks[c])
        row = padded(own) + ([blank, *padded(reference[c])] if reference is not None else [])
        rows.append(np.stack(row))
        count = int((labels == c).sum())
        shown = (
            f" (ref. {len(reference[c])})" if reference is not None and len(reference[c]) < per_class else ""
        )
        row_labels.append(f"class {c}: {count:,} generated{shown}")
    columns = [""] * len(rows[0])
    columns[(per_class - 1) // 2] = "generated"
    if reference is not None:
        columns[per_class + 1 + (per_class - 1) // 2] = "reference"
    note = f"Each row is one class: the first {per_class} generated samples labelled with it"
    note += f", then the first {per_class} reference samples of it" if reference is not None else ""
    if len(present) > len(classes):
        note += f"; classes {classes[0]}-{classes[-1]} of the {len(present)} present"
    title = f"Samples by class: {gen.spec}" + (f" beside {ref.spec}" if reference is not None else "")
    return {FILE: labelled_grid_png(np.stack(rows), title, row_labels, columns, note, label_width=220)}
