"""The collapse check inside ``evaluate``: from sources and their features to a report and run files."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from gen_eval.kinds import Registry
from gen_eval.sources.dataset import (  # re-exported: evaluate imports them here
    dataset_name,
    default_train_spec,
)

if TYPE_CHECKING:
    from gen_eval.collapse.check import CollapseReport
    from gen_eval.features.extract import Features
    from gen_eval.metrics.base import MetricContext
    from gen_eval.metrics.result import Result
    from gen_eval.sources import Source


# How the evidence behind a verdict is shown, per data kind: "images" (grids of the samples the
# detectors point at) or "points" (the features drawn in the detectors' plots). The detectors
# themselves read features, so they apply to every kind; a kind without an entry gets no evidence.
EVIDENCE: Registry[str] = Registry("collapse evidence style")
EVIDENCE.register("image", "images")
EVIDENCE.register("vector", "points")
EVIDENCE.register("pointcloud", "points")  # the detectors' plots draw the clouds' features
EVIDENCE.register("text", "strings")  # tables of the repeated, copied and mismatched strings


def sample_strings(source: Source, features: Features | None = None) -> list[str]:
    """A text source's strings: a generator's kept samples (no second draw), else read again."""
    from gen_eval.kinds.text import decode_rows
    from gen_eval.metrics.text import source_strings

    kept = None if features is None else features.samples
    return decode_rows(kept) if kept is not None else source_strings(source)


def mixture_name(reference: Source) -> str | None:
    """The embedded 2-D mixture the reference comes from, if any."""
    from gen_eval.datasets.mixtures import MIXTURES

    name = dataset_name(reference)
    return name if name in MIXTURES else None


def check_sources(
    gen: Source,
    ref: Source,
    gen_features: Features,
    ref_features: Features,
    metrics: dict[str, Result],
    context: MetricContext,
    train: str | Path | Source | None,
    extract: Any,
) -> tuple[CollapseReport, Source | None]:
    """Run :func:`gen_eval.collapse.check.check_collapse` for one evaluation.

    ``train`` is a source spec, a Source, ``"auto"`` (the reference dataset's train split) or
    None (no memorisation check); ``extract(source, label)`` returns its Features.
    """
    from gen_eval.collapse.check import check_collapse
    from gen_eval.kinds import get_kind
    from gen_eval.sources import Source, open_source

    if isinstance(train, str) and train == "auto":
        train = default_train_spec(ref)
    train_source = None
    train_features = None
    # Strings are compared as strings where it matters: exact repeats and exact copies.
    text = EVIDENCE.find(gen.data_kind) == "strings"
    strings = None
    if train is not None:
        train_source = train if isinstance(train, Source) else open_source(train, seed=context.random_state)
        if not text:
            train_features = extract(train_source, "training set").tensors
    if text:
        strings = (
            sample_strings(gen, gen_features),
            sample_strings(ref),
            sample_strings(train_source) if train_source is not None else None,
        )
    report = check_collapse(
        gen_features.tensors,
        ref_features.tensors,
        # Labels of strings are classes (a name's sex), not the modes of a mixture in feature space.
        reference_labels=None if "strings" in get_kind(ref.data_kind).provides else ref_features.labels,
        mixture=mixture_name(ref),
        train=train_features,
        metrics=metrics,
        options=context.options,
        random_state=context.random_state,
        cached_reference=context.cached_reference_tensor,
        strings=strings,
        # Per-class findings for a labelled submission or a conditional model (its labels are
        # requests; a dataset's are facts) against a labelled reference.
        class_labels=None
        if not gen.num_classes or context.generated_labels is None or context.reference_labels is None
        else (context.generated_labels, context.reference_labels),
    )
    if strings is not None:
        from gen_eval.collapse.strings import attach_examples

        attach_examples(report, *strings)
    return report, train_source


def evidence(
    report: CollapseReport,
    gen: Source,
    ref: Source,
    train: Source | None,
    gen_features: Features,
    batch_size: int,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(figures, image grids) behind the verdict; reads the images it shows from the sources."""
    from gen_eval.collapse.figures import collapse_figures, evidence_images
    from gen_eval.collapse.outputs import all_figures

    style = EVIDENCE.find(gen.data_kind)
    points = gen_features.tensors["features"].numpy() if style == "points" else None
    figures = collapse_figures(report, points, mixture_name(ref))
    grids: dict = {}
    if style == "strings":
        from gen_eval.collapse.strings import string_tables

        train_strings = sample_strings(train) if train is not None else None
        figures.update(
            string_tables(report, sample_strings(gen, gen_features), sample_strings(ref), train_strings)
        )
    if style == "images":
        kept = gen_features.samples  # a generator's samples kept with its features: no resampling

        grids = evidence_images(
            report,
            (lambda index: kept[index].numpy())
            if kept is not None
            else (lambda index: gen.take(index, batch_size)),
            lambda index: ref.take(index, batch_size),
            (lambda index: train.take(index, batch_size)) if train is not None else None,
        )
    return all_figures(report, grids, figures), grids
