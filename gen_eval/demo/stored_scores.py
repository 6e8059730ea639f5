"""Leaderboard cells from stored results: a bundled GAN's AIS bits/dim kept beside its checkpoint.

A GAN's AIS takes minutes, so it is computed once (``gen-eval likelihood ref:NAME ... --save``,
:mod:`gen_eval.likelihood.stored`) and read here after the models are scored.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from gen_eval.errors import GenEvalError

if TYPE_CHECKING:
    from gen_eval.demo.leaderboard import ModelScore

# How a bits/dim's kind shows in a table: no mark when exact.
BPD_MARKS = {"bound": "≤", "estimate": "≈"}
ASSUMED_NOISE = "AIS under Gaussian observation noise"  # how GAUSSIAN_LABEL (likelihood.observation) begins


def add_stored_likelihoods(scores: list[ModelScore]) -> list[ModelScore]:
    """Give each bundled model without a bits/dim its stored AIS result, if it has a current one.

    A stale file (computed for other weights) leaves the cell empty and a note saying so.
    """
    from gen_eval.likelihood.stored import load_stored, stored_metric
    from reference_models import MODELS

    for score in scores:
        if "bits_per_dim" in score.metrics or score.name not in MODELS:
            continue
        try:
            stored = load_stored(score.name)
        except GenEvalError as exc:
            score.notes.append(str(exc))
            continue
        if stored is not None:
            generated = score.metrics.get("fid", {}).get("num_generated")
            score.metrics["bits_per_dim"] = stored_metric(stored, generated)
    return scores


def bpd_cell(entry: dict[str, Any]) -> str:
    """A bits/dim as table text: its kind's mark (BPD_MARKS), the value, † under an assumed Gaussian noise."""
    assumed = any(w.startswith(ASSUMED_NOISE) for w in entry.get("warnings", []))
    return BPD_MARKS.get(entry["kind"], "") + f"{entry['value']:.3f}" + ("†" if assumed else "")
