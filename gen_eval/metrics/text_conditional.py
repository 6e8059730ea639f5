"""Conditional accuracy: does the bundled classifier read the label each string was generated for?

A class-conditional model is asked for a label (a ``.jsonl`` line's ``label``, a dataset's
labels); the run's classifier (``char-names`` on ``census_names``: the sex label) reads each
generated string, and the metric is the share whose predicted class (argmax of the logits) is
the requested one. A model that ignores its label scores about the share of the majority label
(0.5 for balanced labels); real labelled data scores the classifier's own accuracy, given as
``details["reference_value"]`` when the reference is labelled (97.5% for ``char-names`` on the
``census_names`` test split, against 98.5% for the Bayes rule).

The labels are read from the generated source (one cheap pass for files and datasets). Sources
without labels give no result, and so do code sources (they would sample again, and generators
return no labels yet) and labels outside the classifier's classes (its classes must be the labels').

Interval: the percentile bootstrap of the share over the generated strings (each string's hit or
miss resampled), so it covers the sampling of the generated set, the classifier fixed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from gen_eval.metrics.result import Result

if TYPE_CHECKING:
    from gen_eval.metrics.base import MetricContext
    from gen_eval.sources import Source


def source_labels(source: Source, batch_size: int = 4096) -> np.ndarray | None:
    """Every label ``source`` yields, or None when any batch has none."""
    parts = []
    for batch in source.batches(batch_size):
        if batch.labels is None:
            return None
        parts.append(np.asarray(batch.labels).reshape(-1))
    return np.concatenate(parts) if parts else None


def _hits(logits: np.ndarray, labels: np.ndarray | None) -> np.ndarray | None:
    if labels is None or len(labels) != len(logits):
        return None
    if labels.min(initial=0) < 0 or labels.max(initial=0) >= logits.shape[1]:
        return None
    return (logits.argmax(axis=1) == labels).astype(float)


def conditional_accuracy(generated: dict, reference: dict, context: MetricContext) -> dict[str, Result]:
    """Share of generated strings the classifier assigns to the label they were generated for."""
    import torch

    from gen_eval.metrics.bootstrap import percentile_interval, resample_counts

    assert context.generated_source is not None and context.reference_source is not None
    if context.generated_source.fingerprint is None:  # code that samples: never drawn a second time
        return {}
    logits = generated["logits"].double().cpu().numpy()
    labels = source_labels(context.generated_source)
    hits = _hits(logits, labels)
    if hits is None or labels is None:
        return {}
    interval = None
    if context.num_resamples > 0 and len(hits):
        weights = resample_counts(len(hits), context.num_resamples, context.random_state).double()
        interval = percentile_interval(weights @ torch.from_numpy(hits) / len(hits), context.confidence)
    ref_hits = _hits(reference["logits"].double().cpu().numpy(), source_labels(context.reference_source))
    return {
        "conditional_accuracy": Result(
            "conditional_accuracy",
            float(hits.mean()),
            "higher",
            len(hits),
            len(context.reference_source),
            interval=interval,
            interval_covers="the generated strings resampled, the classifier fixed",
            details={
                "means": "share of generated strings classified as the label they were generated for",
                "classifier": context.extractor,
                "reference_value": float(ref_hits.mean()) if ref_hits is not None else None,
                "reference_means": "the classifier's accuracy on the labelled reference (the ceiling)",
                "majority_share": float(np.bincount(labels.astype(int)).max() / len(labels)),
                "majority_means": "share of the most frequent requested label (what always answering it scores)",
            },
        )
    }
