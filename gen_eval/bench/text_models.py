"""``gen-eval bench text-models``: the likelihood ladder of the bundled text models, as a table.

Written to ``reports/text_models.md``. For every shipped text model it runs the same metric
functions ``evaluate`` runs (``text_bpc`` and ``text_kl`` from :mod:`gen_eval.metrics.text_likelihood`)
with its dataset's test split as the reference: bits per character on the test strings (characters
plus one end-of-string token per string; marginal over the sex label, and given it), its
bootstrap interval over test strings, and the exact KL(truth || model) summed over the truth's
whole support. The truth itself is the first row of each table (its bits per character on the
test strings, and KL 0), the floor every model is measured against.
"""

from __future__ import annotations

import math
import os
import platform
import time
from pathlib import Path
from typing import Any

import numpy as np

DATASETS = ("census_names", "hmm_language")


def _truth_row(dataset: str) -> dict[str, Any]:
    """Bits per character of the test strings under the true distribution (KL 0 by definition)."""
    from gen_eval.datasets import true_distribution
    from gen_eval.kinds.text import decode_rows
    from gen_eval.sources import open_source

    truth = true_distribution(dataset)
    assert truth is not None
    strings = [s for batch in open_source(f"{dataset}:test").batches(4096) for s in decode_rows(batch.data)]
    bits = -np.log2([truth[s] for s in strings])
    entropy = -sum(p * math.log2(p) for p in truth.values() if p > 0)
    return {
        "name": "truth",
        "family": "the true distribution",
        "bits_per_char": float(bits.sum() / sum(len(s) + 1 for s in strings)),
        "interval": None,
        "given_label": None,
        "kl": 0.0,
        "cross_entropy": entropy,
        "faulty": None,
        "seconds": None,
    }


def score_model(name: str, num_resamples: int = 200) -> dict[str, Any]:
    """One model's row: bits/char (interval, given label), KL and cross-entropy to the truth, seconds."""
    from gen_eval.metrics.base import MetricContext
    from gen_eval.metrics.text_likelihood import text_bpc, text_kl
    from gen_eval.sources import open_source
    from reference_models import get_entry

    entry = get_entry(name)
    start = time.perf_counter()
    context = MetricContext(
        generated_source=open_source(f"ref:{name}", num_samples=100, seed=0),
        reference_source=open_source(f"{entry.dataset}:test"),
        num_resamples=num_resamples,
    )
    bpc = text_bpc({}, {}, context)["bits_per_char"]
    kl = text_kl({}, {}, context)
    return {
        "name": name,
        "family": entry.family,
        "bits_per_char": bpc.value,
        "interval": bpc.interval,
        "given_label": bpc.details.get("bits_per_char_given_label"),
        "kl": kl["kl_to_truth"].value,
        "cross_entropy": kl["cross_entropy_to_truth"].value,
        "faulty": entry.faulty,
        "seconds": time.perf_counter() - start,
    }


def _table(rows: list[dict[str, Any]]) -> list[str]:
    lines = [
        "| model | family | bits/char (95% interval) | given label | perplexity | KL(truth ‖ model) bits/string | cross-entropy bits/string |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        interval = row["interval"]
        shown = f"{row['bits_per_char']:.3f}" + (
            f" ({interval[0]:.3f}–{interval[1]:.3f})" if interval else ""
        )
        given = "" if row["given_label"] is None else f"{row['given_label']:.3f}"
        name = row["name"] + (" (FAULTY)" if row["faulty"] else "")
        lines.append(
            f"| {name} | {row['family']} | {shown} | {given} | {2 ** row['bits_per_char']:.2f} "
            f"| {row['kl']:.3f} | {row['cross_entropy']:.3f} |"
        )
    return lines


def _hmm_settings(name: str) -> str:
    """``12 states, 15 EM iterations`` from a shipped HMM's checkpoint record."""
    import json

    from reference_models import MODELS

    record = json.loads(MODELS[name].checkpoint.with_suffix(".json").read_text(encoding="utf-8"))
    hparams = record.get("hyperparameters", {})
    return f"{hparams.get('chosen_states', '?')} states, {hparams.get('iterations', '?')} EM iterations"


def _reading(results: dict[str, list[dict[str, Any]]]) -> list[str]:
    """What the tables say, written from the measured rows (so it never contradicts them)."""
    sentences = []
    for dataset, rows in results.items():
        models = rows[1:]  # rows[0] is the truth; the rest sorted best first
        honest = [r for r in models if not r["faulty"]]
        if not honest:
            continue
        best, truth = honest[0], rows[0]
        sentences.append(
            f"On {dataset} the best model is {best['name']} at {best['bits_per_char']:.3f} bits/char, "
            f"{best['bits_per_char'] - truth['bits_per_char']:.3f} above the truth."
        )
        for row in models:
            if row["family"] == "classic" and row["name"].startswith("hmm_"):
                below = [r["name"] for r in honest if r["bits_per_char"] < row["bits_per_char"]]
                sentences.append(
                    f"{row['name']} ({_hmm_settings(row['name'])}; hmmlearn's EM runs one sequence at a "
                    f"time, so longer searches cost tens of CPU minutes) ranks {len(below) + 1} of "
                    f"{len(honest)} honest models" + (f", behind {', '.join(below)}." if below else ".")
                )
        for row in models:
            if row["faulty"] and row["family"] == "memoriser":
                beaten = [r["name"] for r in honest if r["bits_per_char"] > row["bits_per_char"]]
                if beaten:
                    sentences.append(
                        f"The faulty {row['name']} beats {len(beaten)} honest model(s) on likelihood "
                        f"({', '.join(beaten)}): likelihood alone does not flag it; text_novelty's "
                        "train_copies and the collapse check do."
                    )
    return ["Reading (written from the rows below): " + " ".join(sentences)] if sentences else []


def run_text_models_benchmark(out: Path, num_resamples: int = 200) -> dict[str, list[dict[str, Any]]]:
    """Score every shipped text model; write the Markdown report to ``out``; return the rows per dataset."""
    import torch

    from gen_eval.progress import progress_task
    from reference_models import MODELS

    names = {d: [n for n, e in MODELS.items() if e.dataset == d and e.checkpoint.is_file()] for d in DATASETS}
    load_before = os.getloadavg()[0]
    results: dict[str, list[dict[str, Any]]] = {}
    with progress_task("text models", sum(map(len, names.values()))) as bar:
        for dataset in DATASETS:
            rows = [_truth_row(dataset)]
            for name in names[dataset]:
                rows.append(score_model(name, num_resamples))
                bar.advance(1)
            # The truth first, then the models from best to worst bits per character.
            rows[1:] = sorted(rows[1:], key=lambda r: r["bits_per_char"])
            results[dataset] = rows
    lines = [
        "# Text models: the likelihood ladder",
        "",
        "Regenerate with `gen-eval bench text-models` (writes this file). Tokenisation: the characters",
        "of each string plus one end-of-string token, so bits/char = -sum log2 p(s) / sum (len(s) + 1)",
        "over the test split (2,500 strings), marginal over the sex label (the `given label` column",
        "conditions on each string's label). The interval resamples the test strings (the model fixed):",
        "it covers the choice of test set, not the training run. KL(truth ‖ model) and the cross-entropy",
        "are exact sums over the truth's whole support (census_names: 5,163 name/sex pairs pooled into",
        "names; hmm_language: all 87,380 strings), in bits per string; they equal the truth's entropy",
        "plus KL. The `truth` row is the true distribution scored the same way.",
        "",
        *_reading(results),
        "",
    ]
    for dataset, rows in results.items():
        lines += [f"## {dataset}", "", *_table(rows), ""]
    lines += [
        f"Measured on {platform.machine()}, torch threads {torch.get_num_threads()}, load average "
        f"{load_before:.1f} before and {os.getloadavg()[0]:.1f} after (the machine is shared).",
        "",
    ]
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    tmp.write_text("\n".join(lines))
    tmp.replace(out)
    return results
