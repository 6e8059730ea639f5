"""Writing one evaluation's run directory: the sample picture, the kind's own files, the features.

A labelled generated image set also gets ``classes.png`` (:mod:`gen_eval.runs.classes`), a
paired one ``triplets.png`` (:mod:`gen_eval.runs.triplets`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from gen_eval.kinds import get_kind
from gen_eval.metrics.result import Result
from gen_eval.sources import Source


def write_evaluation(
    out: Path,
    manifest: dict[str, Any],
    metrics: dict[str, Result],
    collapse: dict[str, Any] | None,
    gen: Source,
    ref: Source,
    gen_features: Any,
    overwrite: bool,
    extra_files: dict[str, bytes],
) -> Path:
    """Write the run of ``evaluate`` to ``out`` (atomically, by :func:`gen_eval.runs.run.write_run`).

    The picture is the kind's own (``DataKind.draw``); a kind's ``run_files`` and, for strings,
    every string (compare resamples them, the reports show them) go in beside it.
    """
    from gen_eval.runs.run import write_run

    kind = get_kind(gen.data_kind)
    shown = (
        None if not kind.picture_reference or ref.kind == "statistics" else ref.samples(kind.picture_count)
    )
    shown = shown.data.numpy() if shown is not None else None
    names = (f"generated: {gen.spec}", f"reference: {ref.spec}")
    drawn = gen.samples(kind.picture_count).data.numpy()
    picture = kind.draw(drawn, shown, names)
    if kind.run_files is not None:  # samples the kind keeps for the reports (point clouds' 3-D views)
        kept = shown
        if kept is None and ref.kind != "statistics":
            kept = ref.samples(kind.picture_count).data.numpy()
        extra_files = {**extra_files, **kind.run_files(drawn, kept)}
    if "strings" in kind.provides:
        from gen_eval.runs.text_files import text_run_files

        extra_files = {**extra_files, **text_run_files(gen, ref, gen_features.samples)}
    extra_files = {**extra_files, **_class_grid(gen, ref, gen_features, manifest)}
    extra_files = {**extra_files, **_triplets(gen)}
    stored = dict(gen_features.tensors)
    if gen_features.labels is not None:
        stored["labels"] = gen_features.labels
    return write_run(out, manifest, metrics, stored, picture, overwrite, collapse, extra_files)


def _class_grid(gen: Source, ref: Source, gen_features: Any, manifest: dict[str, Any]) -> dict[str, bytes]:
    """``classes.png`` (:mod:`gen_eval.runs.classes`) when the generated set is labelled; else nothing."""
    from gen_eval.runs.classes import class_grid_files

    labels = gen_features.labels
    if gen.num_classes is None or labels is None:
        return {}
    kept = gen_features.samples  # a generator's samples kept with its features: no second draw
    batch_size = manifest["options"]["batch_size"]  # a seeded generator redraws the same samples at it
    take = (lambda index: kept[index].numpy()) if kept is not None else (lambda i: gen.take(i, batch_size))
    return class_grid_files(gen, ref, labels.cpu().numpy(), take)


def _triplets(gen: Source) -> dict[str, bytes]:
    """``triplets.png`` (:mod:`gen_eval.runs.triplets`) when the generated set is paired; else nothing."""
    from gen_eval.runs.triplets import triplet_files

    return triplet_files(gen)
