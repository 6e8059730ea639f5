"""Run every mode-collapse detector that applies to a pair of feature sets and give a verdict.

Which detectors run depends on what the data offers:

=================  ======================================================================
known modes        2-D mixtures with known centres (``ring8``, ``grid25``) or any vector
                   reference with labels (one Gaussian fitted per label)
stacked digits     features from the ``stacked_digits`` extractor (per-channel logits)
classes            an extractor with class logits (``digits``, ``inception``)
NDB                always (k-means bins of the reference features)
birthday           always (closest pairs in batches of generated features)
Vendi              features with 8 or more dimensions (generated and reference side by side)
memorisation       when training-set features are given (``train``)
per class          labelled sets (``class_labels``): Vendi per class, and findings from the
                   conditional metrics (``collapse/per_class.py``)
coverage, MS-SSIM  read from the metrics when they were computed
=================  ======================================================================

Options (``metric_options`` of :func:`gen_eval.evaluate`, ``-o`` on the command line) are
declared in :data:`DETECTOR_OPTIONS`, which is what user options are checked against:
``ndb_bins`` (100), ``ndb_alpha`` (0.05), ``birthday_batch_sizes`` ("8,16,24,32"),
``birthday_batches`` (200), ``birthday_quantile`` (0.01), ``memorisation_quantile`` (0.01),
``class_confidence`` (0.8), ``vendi_samples`` (2000).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from gen_eval.collapse.verdict import SEVERITY_ORDER, Finding, summarise
from gen_eval.option_types import COLLAPSE, Option, coerce_against

if TYPE_CHECKING:
    import torch

    from gen_eval.metrics.result import Result

# Detector -> the options it reads; keep in step with check_collapse (tests/test_options.py checks).
DETECTOR_OPTIONS: dict[str, dict[str, Option]] = {
    "classes": {
        "class_confidence": Option(float, 0.8, "softmax confidence for a sample to count in its class")
    },
    "ndb": {
        "ndb_bins": Option(int, 100, "k-means bins of the reference features"),
        "ndb_alpha": Option(float, 0.05, "significance level of each bin's test"),
    },
    "birthday": {
        "birthday_batch_sizes": Option(tuple, (8, 16, 24, 32), "batch sizes searched for near-duplicates"),
        "birthday_batches": Option(int, 200, "batches per size"),
        "birthday_quantile": Option(float, 0.01, "reference distance quantile that counts as a duplicate"),
    },
    "vendi": {"vendi_samples": Option(int, 2000, "samples per set in the similarity matrix")},
    "memorisation": {
        "memorisation_quantile": Option(
            float, 0.01, "distance quantile that counts as a copy of training data"
        )
    },
}


@dataclass
class CollapseReport:
    """What the detectors found.

    Attributes
    ----------
    verdict : str
        One line: "no collapse detected", "partial collapse: 3 of 8 modes missing (5, 6, 7)", ...
    status : str
        The most severe finding's severity ("ok", "warning", "collapse" or "memorisation").
    findings : list of Finding
        One or more per detector that ran, each naming its detector.
    detectors : dict
        Detector name -> its result object (each has ``to_dict()``).
    skipped : dict
        Detector name -> why it did not run.
    """

    verdict: str
    status: str
    findings: list[Finding]
    detectors: dict[str, Any] = field(repr=False)
    skipped: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "verdict": self.verdict,
            "status": self.status,
            "findings": [asdict(f) for f in self.findings],
            "detectors": {name: result.to_dict() for name, result in self.detectors.items()},
            "skipped": dict(self.skipped),
        }


def _numpy(tensor: Any) -> np.ndarray:
    return tensor.detach().cpu().numpy() if hasattr(tensor, "detach") else np.asarray(tensor)


def _batch_sizes(value: Any) -> tuple[int, ...]:
    if isinstance(value, str):
        return tuple(int(part) for part in value.replace(";", ",").split(",") if part.strip())
    return tuple(int(v) for v in value)


def check_collapse(
    generated: dict[str, torch.Tensor],
    reference: dict[str, torch.Tensor],
    *,
    reference_labels: torch.Tensor | np.ndarray | None = None,
    mixture: str | None = None,
    train: dict[str, torch.Tensor] | None = None,
    metrics: dict[str, Result] | None = None,
    options: dict[str, Any] | None = None,
    random_state: int = 0,
    cached_reference: Callable[[str, Callable[[], torch.Tensor]], torch.Tensor] | None = None,
    strings: tuple[list[str], list[str], list[str] | None] | None = None,
    class_labels: tuple[np.ndarray, np.ndarray] | None = None,
) -> CollapseReport:
    """Run the applicable detectors on generated vs reference features and summarise them.

    Parameters
    ----------
    generated, reference : dict of str to torch.Tensor
        Feature dicts from one extractor (``"features"``, and ``"logits"`` or
        ``"channel_logits"`` when it has them).
    reference_labels : array, optional
        Labels of the reference samples; for vector data they define the known modes.
    mixture : str, optional
        Name of the embedded mixture the reference comes from (exact centres and std).
    train : dict of str to torch.Tensor, optional
        Features of the training set, for the memorisation check (skipped without it).
    metrics : dict of str to Result, optional
        Computed metrics; coverage and MS-SSIM are summarised when present.
    options : dict, optional
        Detector options (:data:`DETECTOR_OPTIONS`); an undeclared key or a value of the wrong
        type raises a one-line GenEvalError.
    random_state : int
        Seed of every random choice (k-means, batches, subsets).
    cached_reference : callable, optional
        ``(name, compute) -> tensor`` that computes a reference-only quantity once and caches it
        (the NDB bin centroids); see :meth:`gen_eval.metrics.base.MetricContext.cached_reference_tensor`.
    strings : (generated, reference, train or None), optional
        The samples as strings (text): the birthday test and the memorisation check then count
        identical strings (:mod:`gen_eval.collapse.strings`) instead of thresholding features.
    class_labels : (generated labels, reference labels), optional
        One class per row of each set (a conditional model's requested classes, the reference's
        true ones): adds the per-class detector and findings (:mod:`gen_eval.collapse.per_class`).

    Returns
    -------
    CollapseReport
    """
    import torch

    from gen_eval.collapse.birthday import birthday_test
    from gen_eval.collapse.ndb import fit_bins, ndb_test
    from gen_eval.collapse.vendi import vendi_comparison

    # Called directly, a misspelt detector option must fail as it does through evaluate; metric
    # options (evaluate passes them all) are declared too, so they pass.
    from gen_eval.metrics import metric_options

    declared = {key: option for options_ in DETECTOR_OPTIONS.values() for key, option in options_.items()}
    valid = list(declared)
    declared |= {key: option for read in metric_options().values() for key, option in read.items()}
    options = coerce_against(options, declared, valid, f"the {COLLAPSE} check")
    gen, ref = _numpy(generated["features"]), _numpy(reference["features"])
    detectors: dict[str, Any] = {}
    skipped: dict[str, str] = {}

    if mixture is not None:
        from gen_eval.collapse.known_modes import mode_coverage
        from gen_eval.datasets.mixtures import get_mixture

        spec = get_mixture(mixture)
        detectors["modes"] = mode_coverage(gen, spec.centres, spec.std)
    elif reference_labels is not None and "logits" not in generated and "channel_logits" not in generated:
        from gen_eval.collapse.known_modes import labelled_mode_coverage

        labels = _numpy(reference_labels)
        if labels.ndim == 1 and len(np.unique(labels)) <= max(2, len(labels) // 20):
            detectors["modes"] = labelled_mode_coverage(gen, ref, labels)
        else:
            skipped["modes"] = "the reference labels are not mode labels (too many distinct values)"
    else:
        skipped["modes"] = "no labelled modes (a 2-D mixture or a labelled vector reference)"

    if "channel_logits" in generated:
        from gen_eval.collapse.stacked import stacked_mode_count

        detectors["stacked"] = stacked_mode_count(generated["channel_logits"])
        detectors["stacked_reference"] = stacked_mode_count(reference["channel_logits"][: len(gen)])
    if "logits" in generated and "logits" in reference:
        from gen_eval.collapse.classes import class_coverage

        detectors["classes"] = class_coverage(
            generated["logits"],
            reference["logits"],
            min_confidence=float(options.get("class_confidence", 0.8)),
        )
    elif "channel_logits" not in generated:
        skipped["classes"] = "the feature extractor has no class logits"

    bins = int(options.get("ndb_bins", 100))
    centroids = None
    if cached_reference is not None and bins <= len(ref) // 5:
        centroids = _numpy(
            cached_reference(
                f"ndb_centroids:{bins}:{random_state}",
                lambda: torch.from_numpy(fit_bins(ref, bins, random_state)),
            )
        )
    detectors["ndb"] = ndb_test(
        gen,
        ref,
        num_bins=bins,
        alpha=float(options.get("ndb_alpha", 0.05)),
        random_state=random_state,
        centroids=centroids,
    )
    sizes = _batch_sizes(options.get("birthday_batch_sizes", (8, 16, 24, 32)))
    if strings is not None:  # text: a duplicate is an identical string
        from gen_eval.collapse.strings import exact_birthday

        detectors["birthday"] = exact_birthday(
            strings[0], strings[1], sizes, int(options.get("birthday_batches", 200)), random_state
        )
    else:
        detectors["birthday"] = birthday_test(
            gen,
            ref,
            batch_sizes=sizes,
            num_batches=int(options.get("birthday_batches", 200)),
            threshold_quantile=float(options.get("birthday_quantile", 0.01)),
            random_state=random_state,
        )
    if gen.shape[1] >= 8:
        detectors["vendi"] = vendi_comparison(
            gen, ref, max_samples=int(options.get("vendi_samples", 2000)), random_state=random_state
        )
    else:  # a cosine-similarity spectrum in D dimensions has at most D effective directions
        skipped["vendi"] = (
            f"the features have {gen.shape[1]} dimensions, so the Vendi score is at most {gen.shape[1]}"
        )
    if strings is not None and strings[2] is not None:  # text: exact copies of training strings
        from gen_eval.collapse.strings import exact_memorisation

        detectors["memorisation"] = exact_memorisation(strings[0], strings[2], strings[1])
    elif train is not None:
        from gen_eval.collapse.memorisation import memorisation_check

        detectors["memorisation"] = memorisation_check(
            gen, _numpy(train["features"]), quantile=float(options.get("memorisation_quantile", 0.01))
        )
    else:
        skipped["memorisation"] = "no training set given (--train)"

    if class_labels is not None:
        from gen_eval.collapse.per_class import per_class_vendi

        detectors["per_class"] = per_class_vendi(
            gen, ref, *class_labels, int(options.get("vendi_samples", 2000)), random_state
        )
    findings = summarise(detectors, metrics or {})
    if class_labels is not None:
        from gen_eval.collapse.per_class import per_class_findings

        findings += per_class_findings(detectors["per_class"], metrics or {})
    worst = max((f.severity for f in findings), key=SEVERITY_ORDER.index, default="ok")
    return CollapseReport(_headline(findings, worst), worst, findings, detectors, skipped)


def _headline(findings: list[Finding], worst: str) -> str:
    if worst in ("collapse", "memorisation"):
        return "; ".join(f.message for f in findings if f.severity in ("collapse", "memorisation"))
    warnings = [f.message for f in findings if f.severity == "warning"]
    if warnings:
        return "no collapse detected, but " + "; ".join(warnings)
    return "no collapse detected"
