"""Class-histogram coverage: which classes a classifier reads in generated vs reference images."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np
import torch


@dataclass
class ClassCoverage:
    """Predicted-class histograms and what they say.

    Only confident predictions count (top softmax probability >= ``min_confidence``, 0.8): a
    blurry sample is not read as any class. A class is *judged* when the reference predicts it
    often enough that the generated set should show at least ``min_expected`` (5) of it; rarer
    classes (most of Inception's 1,008 on a few hundred images) say nothing either way. A judged
    class counts as covered when its generated share is at least ``min_relative_share`` (25%)
    of its reference share (a few misread samples do not make a class present), and as missing
    when it is not covered and its generated count is significantly low (one-sided binomial
    test at 0.01, Bonferroni-corrected over the judged classes).

    On the digits test split scored against itself or the train split, no class is missing; the
    bundled collapsed_digits GAN misses exactly the 7 classes it never draws.
    """

    generated_counts: list[int]
    reference_counts: list[int]
    covered: list[int]
    kl_to_reference: float  # KL(generated histogram || reference histogram), nats, smoothed
    judged: list[int] = field(default_factory=list)
    missing: list[int] = field(default_factory=list)

    @property
    def num_classes(self) -> int:
        """Classes the verdict is about: the judged ones."""
        return len(self.judged)

    @property
    def classes_covered(self) -> int:
        return len(self.covered)

    @property
    def over_represented(self) -> list[int]:
        """Judged classes whose generated share is at least twice their reference share."""
        gen_total = max(sum(self.generated_counts), 1)
        ref_total = max(sum(self.reference_counts), 1)
        return [
            k
            for k in self.judged
            if self.generated_counts[k] / gen_total >= 2 * self.reference_counts[k] / ref_total
        ]

    def to_dict(self) -> dict:
        return {
            **asdict(self),
            "num_classes": self.num_classes,
            "classes_covered": self.classes_covered,
            "over_represented": self.over_represented,
        }


def class_coverage(
    generated_logits: torch.Tensor | np.ndarray,
    reference_logits: torch.Tensor | np.ndarray,
    min_relative_share: float = 0.25,
    min_confidence: float = 0.8,
    min_expected: float = 5.0,
    alpha: float = 0.01,
) -> ClassCoverage:
    """Compare predicted-class histograms of generated and reference samples.

    Parameters
    ----------
    generated_logits, reference_logits : (N, K) class scores from the same classifier.
    min_relative_share : a class is covered when its generated share >= this times its reference share.
    min_confidence : predictions with a lower top softmax probability are not counted as any class.
    min_expected : a class is judged only when the generated set should hold at least this many of it.
    alpha : family-wise level of the binomial tests that call a class missing.

    Returns
    -------
    ClassCoverage
    """
    from scipy.stats import binom

    k = torch.as_tensor(reference_logits).shape[1]

    def confident_counts(logits: torch.Tensor | np.ndarray) -> tuple[np.ndarray, int]:
        probs = torch.as_tensor(logits, dtype=torch.float64).softmax(1)
        top, label = probs.max(1)
        return np.bincount(label[top >= min_confidence].numpy(), minlength=k), len(probs)

    gen_counts, gen_total = confident_counts(generated_logits)
    ref_counts, ref_total = confident_counts(reference_logits)
    gen_share, ref_share = gen_counts / gen_total, ref_counts / ref_total
    judged = [c for c in range(k) if ref_counts[c] > 0 and gen_total * ref_share[c] >= min_expected]
    covered = [c for c in judged if gen_share[c] >= min_relative_share * ref_share[c]]
    level = alpha / max(len(judged), 1)
    missing = [
        c for c in judged if c not in covered and binom.cdf(gen_counts[c], gen_total, ref_share[c]) < level
    ]
    # Add-half smoothing keeps the KL finite when a class is missing from either set.
    p = (gen_counts + 0.5) / (gen_counts.sum() + 0.5 * k)
    q = (ref_counts + 0.5) / (ref_counts.sum() + 0.5 * k)
    return ClassCoverage(
        generated_counts=[int(c) for c in gen_counts],
        reference_counts=[int(c) for c in ref_counts],
        covered=covered,
        kl_to_reference=float((p * np.log(p / q)).sum()),
        judged=judged,
        missing=missing,
    )
