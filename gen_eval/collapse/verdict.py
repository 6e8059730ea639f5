"""Turn detector results into findings: one sentence each, with the numbers behind it.

The thresholds below decide what is called collapse. Each was checked against true held-out
data (which must not be flagged) and planted failures (which must be); see
``tests/test_collapse_verdict.py``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from gen_eval.metrics.result import Result

SEVERITY_ORDER = ("ok", "warning", "memorisation", "collapse")  # collapse is the question asked first


@dataclass
class Finding:
    """One claim of the verdict and the detector (key of ``CollapseReport.detectors``) behind it."""

    detector: str
    severity: str  # "ok", "warning", "collapse" or "memorisation"
    message: str


# Stacked digits: collapse when fewer distinct triples are seen than this share of the reference's own
# count on as many samples (the reference is not exactly uniform and the classifier errs).
STACKED_SHARE = 0.8
# NDB: more differing bins than chance allows at this one-sided binomial p-value.
NDB_P_VALUE = 1e-3
# Vendi: generated diversity below this share of the reference's.
VENDI_RATIO = 0.5
# Coverage below this (about 0.97 is expected for samples from the reference distribution, k = 5).
COVERAGE_LOW = 0.5
# MS-SSIM: generated pairs more alike than reference pairs by more than this.
MS_SSIM_EXCESS = 0.1
# Birthday: more near-duplicate batches than the reference's own rate at this one-sided p-value
# (two-proportion z-test at the largest batch size), and at least twice that rate. Real held-out
# digits (0.5% vs the reference's 0.4%) stay "ok"; a 1,700-image sampler (25% vs 0.4%) is flagged.
BIRTHDAY_P_VALUE = 1e-3


def _listing(items: list[int], limit: int = 10) -> str:
    shown = ", ".join(str(i) for i in items[:limit])
    return shown + (f", ... ({len(items) - limit} more)" if len(items) > limit else "")


def _modes(result: Any) -> list[Finding]:
    missing = result.missing
    if result.modes_covered == 0:
        return [
            Finding("modes", "collapse", f"collapse: no sample lies near any of the {result.num_modes} modes")
        ]
    if missing:
        return [
            Finding(
                "modes",
                "collapse",
                f"partial collapse: {len(missing)} of {result.num_modes} modes missing ({_listing(missing)})",
            )
        ]
    return [
        Finding(
            "modes",
            "ok",
            f"all {result.num_modes} modes covered; {result.hq_share:.1%} of samples are high quality "
            "(98.9% for a perfect sampler)",
        )
    ]


def _classes(result: Any) -> list[Finding]:
    unjudged = sum(1 for c in result.reference_counts if c > 0) - result.num_classes
    rare = f"; {unjudged} classes too rare in the reference to judge" if unjudged > 0 else ""
    findings = []
    if result.missing:
        findings.append(
            Finding(
                "classes",
                "collapse",
                f"partial collapse: {len(result.missing)} of {result.num_classes} classes missing "
                f"({_listing(result.missing)})",
            )
        )
        if result.over_represented:
            findings.append(
                Finding(
                    "classes", "warning", f"over-represented classes: {_listing(result.over_represented)}"
                )
            )
    else:
        findings.append(
            Finding(
                "classes",
                "ok",
                f"no class missing: {result.classes_covered} of {result.num_classes} judged classes covered "
                f"(KL to reference {result.kl_to_reference:.3f}){rare}",
            )
        )
    return findings


def _stacked(result: Any, reference: Any) -> list[Finding]:
    text = (
        f"{result.modes} of {result.num_modes} stacked-digit modes seen in {result.num_samples:,} samples "
        f"(the reference shows {reference.modes} at {reference.num_samples:,}); KL to uniform "
        f"{result.kl_to_uniform:.3f} (floor ~{result.kl_floor:.3f})"
    )
    if result.modes < STACKED_SHARE * reference.modes:
        return [Finding("stacked", "collapse", "partial collapse: " + text)]
    return [Finding("stacked", "ok", text)]


def _ndb(result: Any) -> list[Finding]:
    text = (
        f"NDB {result.ndb}/{result.num_bins} bins differ (about {result.expected_by_chance:.0f} by chance "
        f"at alpha {result.alpha}): {len(result.under_filled)} under-filled, {len(result.over_filled)} over-filled"
    )
    if result.chance_p_value < NDB_P_VALUE:
        return [Finding("ndb", "warning", "distribution mismatch: " + text)]
    return [Finding("ndb", "ok", text)]


def _birthday(result: Any) -> list[Finding]:
    if result.small_support:
        support = (
            f"{result.support_estimate:,.0f}" if result.support_estimate else f"{result.batch_size**2:,}"
        )
        return [
            Finding(
                "birthday",
                "collapse",
                f"small support: near-duplicates in {result.duplicate_rate:.0%} of batches of {result.batch_size}, "
                f"so the model draws from about {support} distinct samples",
            )
        ]
    reference_rate = result.reference_duplicate_rates[-1] if result.reference_duplicate_rates else 0.0
    p_value = excess_p_value(result.duplicate_rate, reference_rate, result.num_batches)
    if p_value < BIRTHDAY_P_VALUE and result.duplicate_rate >= 2 * reference_rate:
        support = (
            f"; about {result.support_estimate:,.0f} distinct samples" if result.support_estimate else ""
        )
        return [
            Finding(
                "birthday",
                "warning",
                f"more near-duplicates than real data: {result.duplicate_rate:.0%} of batches of "
                f"{result.batch_size} vs {reference_rate:.0%} for the reference (p = {p_value:.1g}){support}",
            )
        ]
    return [
        Finding(
            "birthday",
            "ok",
            f"near-duplicates in {result.duplicate_rate:.0%} of batches of {result.batch_size} "
            f"(reference {reference_rate:.0%}): no more than real data",
        )
    ]


def excess_p_value(rate: float, reference_rate: float, num_batches: int) -> float:
    """One-sided p-value that ``rate`` exceeds ``reference_rate`` by chance, both over ``num_batches``.

    Two-proportion z-test with the pooled rate (normal approximation; both sets drew
    ``num_batches`` batches).

    Parameters
    ----------
    rate, reference_rate : float
        Shares of batches holding a near-duplicate, generated and reference.
    num_batches : int
        Batches behind each rate.

    Returns
    -------
    float
        1.0 when the pooled rate is 0 or 1 (nothing to tell apart).
    """
    import math

    pooled = (rate + reference_rate) / 2
    if num_batches < 1 or pooled <= 0 or pooled >= 1:
        return 1.0
    z = (rate - reference_rate) / math.sqrt(pooled * (1 - pooled) * 2 / num_batches)
    return 0.5 * math.erfc(z / math.sqrt(2))


def _memorisation(result: Any) -> list[Finding]:
    text = (
        f"{result.copy_fraction:.1%} of samples are near-copies of training samples "
        f"({result.quantile:.0%} expected by chance)"
    )
    if result.likely_memorising:
        return [Finding("memorisation", "memorisation", "likely memorising: " + text)]
    return [Finding("memorisation", "ok", text)]


def _vendi(result: Any) -> list[Finding]:
    text = f"Vendi score {result.generated:.2f} vs {result.reference:.2f} for the reference (n = {result.num_samples:,})"
    if result.ratio < VENDI_RATIO:
        return [Finding("vendi", "warning", "low diversity: " + text)]
    return [Finding("vendi", "ok", text)]


def _coverage(result: Result) -> list[Finding]:
    text = f"coverage {result.value:.3f} (about 0.97 for samples from the reference distribution)"
    if result.value < COVERAGE_LOW:
        return [Finding("coverage", "warning", "low coverage: " + text)]
    return [Finding("coverage", "ok", text)]


def _ms_ssim(generated: Result, reference: Result) -> list[Finding]:
    text = f"MS-SSIM {generated.value:.3f} vs {reference.value:.3f} for reference pairs"
    if generated.value - reference.value > MS_SSIM_EXCESS:
        return [Finding("ms_ssim", "warning", "samples more alike than the reference: " + text)]
    return [Finding("ms_ssim", "ok", text)]


def summarise(detectors: dict[str, Any], metrics: dict[str, Result]) -> list[Finding]:
    """Findings for every detector result in ``detectors`` and the coverage/MS-SSIM metrics."""
    findings: list[Finding] = []
    if "modes" in detectors:
        findings += _modes(detectors["modes"])
    if "stacked" in detectors:
        findings += _stacked(detectors["stacked"], detectors["stacked_reference"])
    if "classes" in detectors:
        findings += _classes(detectors["classes"])
    if "memorisation" in detectors:
        findings += _memorisation(detectors["memorisation"])
    if "birthday" in detectors:
        findings += _birthday(detectors["birthday"])
    if "ndb" in detectors:
        findings += _ndb(detectors["ndb"])
    if "vendi" in detectors:
        findings += _vendi(detectors["vendi"])
    if "coverage" in metrics:
        findings += _coverage(metrics["coverage"])
    if "ms_ssim" in metrics and "ms_ssim_reference" in metrics:
        findings += _ms_ssim(metrics["ms_ssim"], metrics["ms_ssim_reference"])
    return findings
