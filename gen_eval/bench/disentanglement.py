"""``gen-eval bench disentanglement``: the six metrics at their defaults on planted encoders.

Each planted encoder (:mod:`gen_eval.latent.disentangle.planted`) is scored by every metric at
disentanglement_lib's default sizes (10,000 training + 5,000 evaluation points), one metric at
a time so that each gets its own wall time; the numbers equal those of one
``evaluate_disentanglement`` call, because every metric draws from a seed of its own. Each
planted expectation is checked, and the report says which hold.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from gen_eval.datasets import shapes
from gen_eval.latent.disentangle import METRICS, evaluate_disentanglement
from gen_eval.latent.disentangle.planted import CASES, EXPECTED, planted_encoder
from gen_eval.latent.factors import HEADLINES


def measure(
    cases: tuple[str, ...] = CASES,
    num_train: int = 10_000,
    random_state: int = 0,
    options: dict[str, dict[str, Any]] | None = None,
    progress: bool = True,
) -> dict[str, dict[str, Any]]:
    """Score each planted encoder with each metric.

    Parameters
    ----------
    cases : names of planted encoders.
    num_train : training points (evaluation points are half as many), 10,000 by default.
    random_state : seed passed to ``evaluate_disentanglement``.
    options : per-metric overrides, e.g. ``{"dci": {"n_jobs": 2}}``.
    progress : show a progress bar on stderr.

    Returns
    -------
    dict
        ``{case: {metric: {"scores": dict, "seconds": float}}}``.
    """
    from gen_eval.progress import progress_task

    results: dict[str, dict[str, Any]] = {}
    with progress_task("disentanglement metrics", len(cases) * len(METRICS), enabled=progress) as bar:
        for case in cases:
            results[case] = {}
            for metric in METRICS:
                encoder = planted_encoder(case)  # a fresh noise stream per metric, as in a full run
                started = time.perf_counter()
                scores = evaluate_disentanglement(
                    encoder, shapes.FACTOR_SIZES, num_train, random_state, metrics=[metric], options=options
                )[metric]
                results[case][metric] = {"scores": scores, "seconds": time.perf_counter() - started}
                bar.advance(1)
    return results


def report_text(results: dict[str, dict[str, Any]], num_train: int, options: dict | None) -> tuple[str, int]:
    """The markdown report and the number of planted expectations that failed."""
    from gen_eval.bench.common import environment_lines, markdown_table

    summary = []
    for case, by_metric in results.items():
        cells = [f"{by_metric[m]['scores'][key]:.3f}" for m, (key, _) in HEADLINES.items()]
        times = [f"{by_metric[m]['seconds']:.1f}" for m in HEADLINES]
        total = sum(entry["seconds"] for entry in by_metric.values())
        summary.append([case, *cells, " / ".join(times), f"{total:.0f}"])
    checks, failed = [], 0
    for expectation in EXPECTED:
        if expectation.case not in results:
            continue
        value = results[expectation.case][expectation.metric]["scores"][expectation.key]
        holds = expectation.holds(value)
        failed += not holds
        checks.append(
            [
                expectation.case,
                f"{expectation.metric}.{expectation.key}",
                f"[{expectation.low:g}, {expectation.high:g}]",
                f"{value:.3f}",
                "yes" if holds else "**no**",
                expectation.why,
            ]
        )
    header = [
        "encoder",
        *(f"{m} ({key})" for m, (key, _) in HEADLINES.items()),
        "seconds per metric",
        "seconds",
    ]
    text = "\n".join(
        [
            "# Benchmarks: disentanglement metrics on planted encoders",
            "",
            "Regenerate with `gen-eval bench disentanglement` (this file is written by it).",
            "",
            *environment_lines(),
            f"- {num_train:,} training + {num_train // 2:,} evaluation points per metric "
            f"(disentanglement_lib's defaults are 10,000 + 5,000); overrides: {options or 'none'}",
            "",
            "Planted encoders act on factor indices (no rendering), so the seconds are the metrics' own "
            "cost. `perfect`: standardised ground-truth factors; `rotated`: the same under a random "
            "rotation; `duplicated`: [z, z]; `noise`: 10 normal codes ignoring the factors. Seconds per "
            "metric are in the column order. Encoding real images adds the model's time: BetaVAE and "
            "FactorVAE encode 2 x 64 and 64 images per point (see `reports/reference_models.md` for "
            "the shipped shapes models).",
            "",
            markdown_table(header, summary),
            "",
            f"## Planted expectations: {len(checks) - failed} of {len(checks)} hold",
            "",
            markdown_table(["encoder", "score", "expected", "measured", "holds", "why"], checks),
            "",
        ]
    )
    return text, failed


def run_disentanglement_benchmark(
    out: str | Path = "reports/disentanglement.md",
    num_train: int = 10_000,
    cases: tuple[str, ...] = CASES,
    options: dict[str, dict[str, Any]] | None = None,
    progress: bool = True,
) -> tuple[str, int]:
    """Measure, write the report to ``out``; returns its text and the count of failed expectations."""
    results = measure(cases, num_train, options=options, progress=progress)
    text, failed = report_text(results, num_train, options)
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    Path(out).write_text(text, encoding="utf-8")
    return text, failed
