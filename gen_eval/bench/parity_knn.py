"""Parity rows for the k-NN metrics off the beaten path: translated and rotated features, ties.

Precision, recall, density and coverage are translation- and rotation-invariant by definition;
these rows hold gen-eval to prdc (float64 distances) on sets shifted far from the origin, and
show the tie convention on integer features against torch-fidelity (closed balls, as ours) and
prdc (open balls, ours with ``pr_ball``/``dc_ball="open"``).
"""

from __future__ import annotations

import contextlib
import io
from typing import Any

import numpy as np

OFFSETS = (0.0, 1e3, 3e3, 1e4)  # in standard deviations of the sets


def _ours(generated: np.ndarray, reference: np.ndarray, k: int, ball: str = "closed") -> dict[str, float]:
    import torch

    from gen_eval.metrics.base import MetricContext
    from gen_eval.metrics.density_coverage import density_coverage
    from gen_eval.metrics.precision_recall import precision_recall

    context = MetricContext(num_resamples=0, options={"pr_k": k, "dc_k": k, "pr_ball": ball, "dc_ball": ball})
    x, y = {"features": torch.from_numpy(generated)}, {"features": torch.from_numpy(reference)}
    return {
        n: r.value for n, r in {**precision_recall(x, y, context), **density_coverage(x, y, context)}.items()
    }


def _prdc(generated: np.ndarray, reference: np.ndarray, k: int) -> dict[str, float]:
    import prdc

    with contextlib.redirect_stdout(io.StringIO()):  # compute_prdc prints the sample sizes
        out = prdc.compute_prdc(real_features=reference, fake_features=generated, nearest_k=k)
    return {name: float(value) for name, value in out.items()}


def translated_rows(n: int = 1000, dim: int = 16, k: int = 5, seed: int = 0) -> list[dict[str, Any]]:
    """Rows (metric, case, ours, prdc) for two Gaussian sets moved by a common offset, then rotated.

    The audit's case: reference N(0, I), generated N(0.2, 1.21 I) in 16-d, k = 5, float64 inputs
    (float32 storage of features at 1e4 standard deviations would itself round them by ~6e-4).
    """
    rng = np.random.default_rng(seed)
    reference = rng.standard_normal((n, dim))
    generated = rng.standard_normal((n, dim)) * 1.1 + 0.2
    direction = rng.standard_normal(dim)
    direction /= np.linalg.norm(direction)
    rotation, _ = np.linalg.qr(rng.standard_normal((dim, dim)))
    cases = [
        (f"offset {offset:g} sd", generated + offset * direction, reference + offset * direction)
        for offset in OFFSETS
    ]
    cases.append(
        (
            "rotated, offset 1e4 sd",
            generated @ rotation + 1e4 * direction,
            reference @ rotation + 1e4 * direction,
        )
    )
    rows = []
    for case, gen, ref in cases:
        ours, theirs = _ours(gen, ref, k), _prdc(gen, ref, k)
        rows += [
            {"metric": name, "case": case, "ours": ours[name], "theirs": theirs[name], "tool": "prdc"}
            for name in ("precision", "recall", "density", "coverage")
        ]
    return rows


def tie_rows(seed: int = 1) -> list[dict[str, Any]]:
    """Rows on integer features (values 0..2 in 6-d, duplicates and exact ties everywhere).

    Closed balls (our default) against torch-fidelity's precision/recall (k = 3) and float64 brute
    force for density/coverage (k = 5); open balls (``*_ball="open"``) against prdc.
    """
    import torch
    from torch_fidelity.metric_prc import prc_features_to_metric

    rng = np.random.default_rng(seed)
    generated = rng.integers(0, 3, (300, 6)).astype(np.float64)
    reference = rng.integers(0, 3, (350, 6)).astype(np.float64)
    closed3, closed5 = _ours(generated, reference, 3), _ours(generated, reference, 5)
    open3, open5 = _ours(generated, reference, 3, "open"), _ours(generated, reference, 5, "open")
    tf = prc_features_to_metric(
        torch.from_numpy(generated).float(),
        torch.from_numpy(reference).float(),
        prc_neighborhood=3,
        prc_batch_size=10000,
        save_cpu_ram=False,
        verbose=False,
    )
    cross = np.linalg.norm(reference[:, None] - generated[None], axis=2)
    radii5 = np.sort(np.linalg.norm(reference[:, None] - reference[None], axis=2), axis=1)[:, 5]
    inside = cross <= radii5[:, None]
    brute = {"density": inside.sum() / (5 * len(generated)), "coverage": inside.any(axis=1).mean()}
    p3, p5 = _prdc(generated, reference, 3), _prdc(generated, reference, 5)
    case_closed, case_open = "integer features, closed balls (default)", "integer features, open balls"
    return [
        {"metric": "precision", "case": case_closed, "ours": closed3["precision"], "theirs": float(tf["precision"]), "tool": "torch-fidelity"},
        {"metric": "recall", "case": case_closed, "ours": closed3["recall"], "theirs": float(tf["recall"]), "tool": "torch-fidelity"},
        {"metric": "density", "case": case_closed, "ours": closed5["density"], "theirs": float(brute["density"]), "tool": "float64 brute force, d <= r"},
        {"metric": "coverage", "case": case_closed, "ours": closed5["coverage"], "theirs": float(brute["coverage"]), "tool": "float64 brute force, d <= r"},
        {"metric": "precision", "case": case_open, "ours": open3["precision"], "theirs": p3["precision"], "tool": "prdc"},
        {"metric": "recall", "case": case_open, "ours": open3["recall"], "theirs": p3["recall"], "tool": "prdc"},
        {"metric": "density", "case": case_open, "ours": open5["density"], "theirs": p5["density"], "tool": "prdc"},
        {"metric": "coverage", "case": case_open, "ours": open5["coverage"], "theirs": p5["coverage"], "tool": "prdc"},
    ]  # fmt: skip


def knn_section(tolerance: float) -> tuple[list[str], list[dict[str, Any]]]:
    """Markdown lines of the k-NN section of ``reports/parity.md``, and its rows (for the exit status)."""
    from gen_eval.bench.common import markdown_table

    rows = translated_rows() + tie_rows()
    for row in rows:
        row["difference"] = abs(row["ours"] - row["theirs"])
    table = markdown_table(
        ["metric", "case", "gen-eval", "reference", "reference tool", "absolute difference", "within"],
        [
            [
                r["metric"],
                r["case"],
                f"{r['ours']:.6g}",
                f"{r['theirs']:.6g}",
                r["tool"],
                f"{r['difference']:.1e}",
                "yes" if r["difference"] <= tolerance else "**no**",
            ]
            for r in rows
        ],
    )
    lines = [
        "## k-NN metrics on translated, rotated and integer features",
        "",
        "Precision, recall, density and coverage are invariant under a common translation or rotation of",
        "both sets. The audit's case: reference N(0, I) and generated N(0.2, 1.21 I), 1,000 each in 16-d, k = 5,",
        "moved by a common offset along a random direction (in standard deviations), float64 inputs. gen-eval",
        "centres both sets on one grid-rounded common point in float64 before its float32 distance products",
        "(see `gen_eval/metrics/knn.py` for the error bound); before that fix, density was 0.469 instead of",
        "0.596 at offset 1,000, and precision 1.0, density 0.002 at 3,000.",
        "",
        "Ties: a sample at exactly a ball's radius is inside (closed balls, d <= r), for all four metrics, as",
        "in Kynkäänniemi et al. and torch-fidelity; prdc uses open balls (d < r). They differ only on exact",
        "ties, which integer or quantised features with duplicates make common: an open ball of radius 0 holds",
        "nothing, not even a copy of its own centre. `-o pr_ball=open` / `-o dc_ball=open` reproduce prdc.",
        f"Counts are exact here, so the bound is {tolerance:g} (one sample in 1,000 would be 1e-3).",
        "",
        table,
        "",
    ]
    return lines, rows
