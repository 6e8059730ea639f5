"""Conditional accuracy: does the run's classifier read the class each sample was generated for?

One implementation for every kind whose extractor is a classifier: images (``digits``, ``mnist``,
Inception's 1,000 classes) and strings (``char-names`` on ``census_names``: the sex label). A
class-conditional model is asked for a label (a conditional generator's balanced requests, an
``.npz``'s ``labels``, a ``.jsonl`` line's ``label``); the metric is the share of generated samples
whose predicted class (argmax of the logits) is the requested one.

Beside it, in ``details``:

* ``chance``: what a model that ignores its labels scores, given both marginals: the sum over
  classes of (share of requests for c) x (share of samples classified as c), the accuracy expected
  when predictions are independent of requests (0.1 for balanced requests over 10 classes, whatever
  the model draws);
* ``reference_value``: the classifier's accuracy on the labelled reference, the ceiling a perfect
  model reaches (97.5% for ``char-names`` on the ``census_names`` test split);
* ``per_class``: the accuracy of each requested class;
* ``labels_ignored``: True when the accuracy is less than :data:`IGNORED_SHARE` of the way from
  chance to the ceiling; a warning says so, and the collapse check turns it into a finding
  (``gen_eval/collapse/per_class.py``).

The labels are the run's (``MetricContext.generated_labels``, kept with the features, so a
generator is never sampled twice); called without them, file and dataset sources are read again
for their labels. Sources without labels give no result, and so do labels outside the
classifier's classes (its classes must be the labels').

Interval: Wilson's score interval for a binomial share (scipy's ``binomtest``), so it covers the
sampling of the generated set, the classifier fixed; it keeps its coverage near 0 and 1, where
the plain normal interval does not.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from gen_eval.metrics.result import Result

if TYPE_CHECKING:
    from gen_eval.metrics.base import MetricContext
    from gen_eval.sources import Source

# Labels count as ignored when the accuracy has covered less than this share of the way from
# chance to the ceiling (the reference's own accuracy): a label-ignoring model sits at chance up
# to sampling noise (about +-0.02 at 1,000 samples), a working one near the ceiling.
IGNORED_SHARE = 0.1


def source_labels(source: Source, batch_size: int = 4096) -> np.ndarray | None:
    """Every label ``source`` yields, or None when any batch has none."""
    parts = []
    for batch in source.batches(batch_size):
        if batch.labels is None:
            return None
        parts.append(np.asarray(batch.labels).reshape(-1))
    return np.concatenate(parts) if parts else None


def _labels(given: np.ndarray | None, source: Source | None, rows: int) -> np.ndarray | None:
    """The run's labels for these rows, else (files and datasets only) the source's, read again."""
    if given is not None:
        given = np.asarray(given).reshape(-1)
        return given if len(given) == rows else None
    # Code that samples would draw new samples, whose labels are not these rows'.
    if source is None or source.fingerprint is None:
        return None
    return source_labels(source)


def _hits(logits: np.ndarray, labels: np.ndarray | None) -> np.ndarray | None:
    if labels is None or len(labels) != len(logits):
        return None
    if labels.min(initial=0) < 0 or labels.max(initial=0) >= logits.shape[1]:
        return None
    return (logits.argmax(axis=1) == labels).astype(float)


def chance_accuracy(requested: np.ndarray, predicted: np.ndarray, num_classes: int) -> float:
    """Expected accuracy when predictions are independent of requests: sum_c p_req(c) p_pred(c)."""
    p_req = np.bincount(requested, minlength=num_classes) / len(requested)
    p_pred = np.bincount(predicted, minlength=num_classes) / len(predicted)
    return float(p_req @ p_pred)


def conditional_accuracy(generated: dict, reference: dict, context: MetricContext) -> dict[str, Result]:
    """Share of generated samples the classifier assigns to the label they were generated for.

    Parameters
    ----------
    generated, reference : dict of str to torch.Tensor
        Feature dicts with ``"logits"`` (N, C).
    context : MetricContext
        The run's labels (or its sources, read again when labels are not given), confidence.

    Returns
    -------
    dict
        ``{"conditional_accuracy": Result}``, or empty when the generated samples have no labels
        in the classifier's range.
    """
    from scipy.stats import binomtest

    logits = generated["logits"].double().cpu().numpy()
    labels = _labels(context.generated_labels, context.generated_source, len(logits))
    hits = _hits(logits, labels)
    if hits is None or labels is None or not len(hits):
        return {}
    labels = labels.astype(np.int64)
    count, total, classes = int(hits.sum()), len(hits), logits.shape[1]
    value = count / total
    interval = None
    if context.num_resamples > 0:
        ci = binomtest(count, total).proportion_ci(context.confidence, method="wilson")
        interval = (float(ci.low), float(ci.high))
    ref_logits = reference["logits"].double().cpu().numpy() if "logits" in reference else None
    ref_hits = None
    if ref_logits is not None:
        ref_labels = _labels(context.reference_labels, context.reference_source, len(ref_logits))
        ref_hits = _hits(ref_logits, ref_labels)
    ceiling = float(ref_hits.mean()) if ref_hits is not None and len(ref_hits) else None
    chance = chance_accuracy(labels, logits.argmax(axis=1), classes)
    ignored = value - chance < IGNORED_SHARE * ((ceiling if ceiling is not None else 1.0) - chance)
    warnings = []
    if ignored:
        warnings.append(
            f"labels ignored: conditional accuracy {value:.3f} is near chance {chance:.3f} (ceiling "
            f"{ceiling if ceiling is not None else 1.0:.3f}): the classifier does not read the requested "
            "classes in the samples"
        )
    per_class = {
        str(c): float(hits[labels == c].mean()) for c in np.unique(labels).tolist() if (labels == c).any()
    }
    return {
        "conditional_accuracy": Result(
            "conditional_accuracy",
            value,
            "higher",
            total,
            len(ref_logits) if ref_logits is not None else 0,
            interval=interval,
            interval_covers=None
            if interval is None
            else "the share over the generated samples (Wilson score interval), the classifier fixed",
            warnings=warnings,
            details={
                "means": "share of generated samples classified as the label they were generated for",
                "classifier": context.extractor,
                "reference_value": ceiling,
                "reference_means": "the classifier's accuracy on the labelled reference (the ceiling)",
                "chance": chance,
                "chance_means": "accuracy expected if predictions ignored the requests: sum over classes "
                "of the request share times the predicted share",
                "majority_share": float(np.bincount(labels).max() / total),
                "majority_means": "share of the most frequent requested label (what always answering it scores)",
                "labels_ignored": bool(ignored),
                "per_class": per_class,
            },
        )
    }
