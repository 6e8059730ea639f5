"""Per-class collapse: a conditional model that ignores its labels, or collapses within a class.

The whole-set detectors cannot see either failure: a model that draws good digits of random
classes whatever it is asked for covers every class, and one that draws a single image per class
still shows ten modes. With the requested labels (``MetricContext.generated_labels``) and the
reference's true ones, this module adds:

* a detector, :func:`per_class_vendi`: the Vendi score (``collapse/vendi.py``) of each class's
  generated samples against that class's real ones, centred on the class's real mean, at equal n;
  classes below :data:`~gen_eval.collapse.verdict.VENDI_RATIO` of real diversity are named;
* findings from the conditional metrics when they ran (:func:`per_class_findings`):
  ``conditional_accuracy`` near chance ("labels ignored", severity collapse), classes whose
  ``intra_class_diversity`` is below its collapsed ratio (collapse, with the class's recall
  when ``recall_per_class`` ran), classes with recall below :data:`RECALL_LOW` (warning), classes
  with precision below :data:`PRECISION_LOW` (warning; every class, without a classifier: labels
  ignored).

``check_collapse(class_labels=...)`` runs the detector and adds the findings; ``evaluate`` passes
the labels whenever both sets have them (``collapse/from_sources.py``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from threadpoolctl import threadpool_limits

from gen_eval.collapse.verdict import VENDI_RATIO, Finding
from gen_eval.metrics.conditional import SMALL_CLASS_ELEMENTS

if TYPE_CHECKING:
    from gen_eval.metrics.result import Result

# A class's recall below this is a warning (held-out digits score about 0.85-0.96 per class at k=3).
RECALL_LOW = 0.5
# A class's precision below this is a warning (held-out digits: 0.78-1.0 per class at k=3); below it
# in every class while the whole set's precision is above it, the samples are real-looking but not
# of the class asked for: labels ignored, seen without a classifier (digits with shuffled labels:
# 0.08 per class vs 0.89 overall).
PRECISION_LOW = 0.5
# Classes with fewer samples than this in either set are not scored by the Vendi detector: its
# score is bounded by n, so a handful of samples says little.
MIN_CLASS_SAMPLES = 10


@dataclass
class PerClassVendi:
    """Vendi scores of each class's generated and real samples, and their ratio.

    Attributes
    ----------
    generated, reference, ratio : dict of str to float
        Per class (keys are class numbers as strings, as in JSON).
    num_samples : dict of str to int
        Samples scored from each set per class (the smaller class size, at most ``max_samples``).
    collapsed : list of int
        Classes whose ratio is below :data:`~gen_eval.collapse.verdict.VENDI_RATIO`.
    skipped : list of int
        Classes with fewer than :data:`MIN_CLASS_SAMPLES` in a set, or in one set only.
    """

    generated: dict[str, float]
    reference: dict[str, float]
    ratio: dict[str, float]
    num_samples: dict[str, int]
    collapsed: list[int] = field(default_factory=list)
    skipped: list[int] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """The fields as a JSON-ready dict."""
        return {
            "generated": self.generated,
            "reference": self.reference,
            "ratio": self.ratio,
            "num_samples": self.num_samples,
            "collapsed": self.collapsed,
            "collapsed_below": VENDI_RATIO,
            "skipped": self.skipped,
        }


def per_class_vendi(
    generated: np.ndarray,
    reference: np.ndarray,
    generated_labels: np.ndarray,
    reference_labels: np.ndarray,
    max_samples: int = 2000,
    random_state: int = 0,
) -> PerClassVendi:
    """The Vendi comparison (:func:`gen_eval.collapse.vendi.vendi_comparison`) within each class.

    Parameters
    ----------
    generated, reference : numpy array
        (N, D) and (M, D) features.
    generated_labels, reference_labels : numpy array
        One class per row: the requested classes, the true ones.
    max_samples : int
        Most samples per class and set (``vendi_samples``).
    random_state : int
        Seed of the subsets.

    Returns
    -------
    PerClassVendi
    """
    from gen_eval.collapse.vendi import vendi_comparison

    gen_labels, ref_labels = np.asarray(generated_labels), np.asarray(reference_labels)
    classes = sorted(set(gen_labels.tolist()) | set(ref_labels.tolist()))
    scores: dict[str, dict[str, Any]] = {"generated": {}, "reference": {}, "ratio": {}, "num_samples": {}}
    collapsed, skipped = [], []
    results = {}
    largest = max((max((gen_labels == c).sum(), (ref_labels == c).sum()) for c in classes), default=0)
    # One BLAS thread for small classes, as metrics/conditional.py's per_class (threads cost more
    # than they save on matrices this size on a busy machine).
    threads = 1 if min(largest, max_samples) * generated.shape[1] <= SMALL_CLASS_ELEMENTS else None
    with threadpool_limits(limits=threads, user_api="blas"):
        for c in classes:
            gen_c, ref_c = generated[gen_labels == c], reference[ref_labels == c]
            if min(len(gen_c), len(ref_c)) < MIN_CLASS_SAMPLES:
                skipped.append(int(c))
                continue
            results[c] = vendi_comparison(
                gen_c, ref_c, max_samples=max_samples, random_state=random_state + int(c)
            )
    for c, result in results.items():
        for key, value in (
            ("generated", result.generated),
            ("reference", result.reference),
            ("ratio", result.ratio),
            ("num_samples", result.num_samples),
        ):
            scores[key][str(c)] = value
        if result.ratio < VENDI_RATIO:
            collapsed.append(int(c))
    return PerClassVendi(**scores, collapsed=collapsed, skipped=skipped)


def _listing(classes: list[int]) -> str:
    return ", ".join(str(c) for c in classes)


def per_class_findings(detector: PerClassVendi | None, metrics: dict[str, Result]) -> list[Finding]:
    """Findings from the per-class Vendi detector and the conditional metrics that ran."""
    findings = []
    accuracy = metrics.get("conditional_accuracy")
    if accuracy is not None:
        d = accuracy.details
        ceiling = d.get("reference_value")
        numbers = f"conditional accuracy {accuracy.value:.2f} (chance {d.get('chance', float('nan')):.2f}" + (
            f", the reference's own {ceiling:.2f})" if ceiling is not None else ")"
        )
        if d.get("labels_ignored"):
            findings.append(Finding("per_class", "collapse", f"labels ignored: {numbers}"))
        else:
            findings.append(Finding("per_class", "ok", f"labels obeyed: {numbers}"))
    if accuracy is None or not accuracy.details.get("labels_ignored"):  # else said once, above
        findings += _precision_findings(metrics, accuracy is None)
    recall = metrics.get("recall_per_class")
    recalls = recall.details.get("per_class", {}) if recall is not None else {}
    diversity = metrics.get("intra_class_diversity")
    ratios = diversity.details.get("per_class", {}) if diversity is not None else {}
    collapsed = diversity.details.get("collapsed_classes", []) if diversity is not None else []
    for c in collapsed:
        shown = f"recall {recalls[str(c)]:.2f}, " if str(c) in recalls else ""
        findings.append(
            Finding(
                "per_class",
                "collapse",
                f"class {c}: {shown}diversity {ratios[str(c)]:.2f} of real: collapsed within class",
            )
        )
    low = [int(c) for c, r in recalls.items() if r < RECALL_LOW and int(c) not in collapsed]
    if low:
        shown = ", ".join(f"class {c} {recalls[str(c)]:.2f}" for c in low)
        findings.append(
            Finding("per_class", "warning", f"low recall within classes (below {RECALL_LOW}): {shown}")
        )
    if detector is not None:
        extra = [c for c in detector.collapsed if c not in collapsed]
        if extra:
            shown = ", ".join(f"class {c} {detector.ratio[str(c)]:.2f}" for c in extra)
            findings.append(
                Finding(
                    "per_class",
                    "warning",
                    f"low diversity within classes (Vendi score below {VENDI_RATIO} of real): {shown}",
                )
            )
        elif not collapsed and detector.ratio:
            worst = min(detector.ratio, key=detector.ratio.__getitem__)
            findings.append(
                Finding(
                    "per_class",
                    "ok",
                    f"every class as diverse as real data (lowest Vendi ratio: class {worst}, "
                    f"{detector.ratio[worst]:.2f})",
                )
            )
    return findings


def _precision_findings(metrics: dict[str, Result], without_classifier: bool) -> list[Finding]:
    """Classes whose samples lie outside the real samples of their class (``precision_per_class``)."""
    precision = metrics.get("precision_per_class")
    if precision is None:
        return []
    values = {int(c): v for c, v in precision.details.get("per_class", {}).items()}
    low = [c for c, v in values.items() if v < PRECISION_LOW]
    overall = metrics.get("precision")
    if without_classifier and low and len(low) == len(values) and overall and overall.value >= PRECISION_LOW:
        return [
            Finding(
                "per_class",
                "collapse",
                f"labels ignored: precision within classes {precision.value:.2f} against {overall.value:.2f} "
                "for the whole set: the samples look real but not like the class asked for",
            )
        ]
    if not low:
        return []
    shown = ", ".join(f"class {c} {values[c]:.2f}" for c in low)
    return [
        Finding(
            "per_class",
            "warning",
            f"low precision within classes (below {PRECISION_LOW}): {shown}: samples unlike the class asked for",
        )
    ]
