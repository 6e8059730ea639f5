"""Class-histogram coverage: which classes a classifier reads in generated vs reference images."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch


@dataclass
class ClassCoverage:
    """Predicted-class histograms and what they say.

    Only confident predictions count (top softmax probability >= ``min_confidence``, 0.8): a
    blurry sample is not read as any class. A class counts as covered when its share of all
    samples (confident ones of that class / all) is at least ``min_relative_share`` (25%) of
    its reference share: a few misread samples do not make a class present.
    """

    generated_counts: list[int]
    reference_counts: list[int]
    covered: list[int]
    kl_to_reference: float  # KL(generated histogram || reference histogram), nats, smoothed

    @property
    def num_classes(self) -> int:
        return len(self.reference_counts)

    @property
    def classes_covered(self) -> int:
        return len(self.covered)

    @property
    def missing(self) -> list[int]:
        return [k for k in range(self.num_classes) if k not in self.covered]

    def to_dict(self) -> dict:
        return {**asdict(self), "classes_covered": self.classes_covered, "missing": self.missing}


def class_coverage(
    generated_logits: torch.Tensor | np.ndarray,
    reference_logits: torch.Tensor | np.ndarray,
    min_relative_share: float = 0.25,
    min_confidence: float = 0.8,
) -> ClassCoverage:
    """Compare predicted-class histograms of generated and reference samples.

    Parameters
    ----------
    generated_logits, reference_logits : (N, K) class scores from the same classifier.
    min_relative_share : a class is covered when its generated share >= this times its reference share.
    min_confidence : predictions with a lower top softmax probability are not counted as any class.

    Returns
    -------
    ClassCoverage
    """
    k = torch.as_tensor(reference_logits).shape[1]

    def confident_counts(logits: torch.Tensor | np.ndarray) -> tuple[np.ndarray, int]:
        probs = torch.as_tensor(logits, dtype=torch.float64).softmax(1)
        top, label = probs.max(1)
        return np.bincount(label[top >= min_confidence].numpy(), minlength=k), len(probs)

    gen_counts, gen_total = confident_counts(generated_logits)
    ref_counts, ref_total = confident_counts(reference_logits)
    gen_share, ref_share = gen_counts / gen_total, ref_counts / ref_total
    covered = [c for c in range(k) if ref_counts[c] > 0 and gen_share[c] >= min_relative_share * ref_share[c]]
    # Add-half smoothing keeps the KL finite when a class is missing from either set.
    p = (gen_counts + 0.5) / (gen_counts.sum() + 0.5 * k)
    q = (ref_counts + 0.5) / (ref_counts.sum() + 0.5 * k)
    return ClassCoverage(
        generated_counts=[int(c) for c in gen_counts],
        reference_counts=[int(c) for c in ref_counts],
        covered=covered,
        kl_to_reference=float((p * np.log(p / q)).sum()),
    )
