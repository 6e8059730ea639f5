"""The demo's text section: the bundled ``census_names`` ladder scored against ``census_names:test``.

``gen-eval demo`` scores the digits models with :mod:`gen_eval.demo.leaderboard`; the text models
(naive Bayes, bigram, trigram, HMM, char-RNN, tiny transformer and the faulty collapsed and copier
models, whatever is registered with a shipped checkpoint) need other metrics, so they get this
section of their own: bits per character on the test split (exact for every shipped model), the
n-gram JSDs and the length distance to the test split, the share of training copies, and the
true mass covered and the total variation to the Census frequencies, with the collapse verdict.
The floor is the validation split (an independent draw of the same names) against the test split.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from gen_eval.demo.sections import (
    metric_rows,
    model_score,
    print_section_table,
    registered_metrics,
    split_by_dataset,
)
from gen_eval.errors import GenEvalError
from gen_eval.progress import progress_group, progress_stage, sampling_progress

if TYPE_CHECKING:
    from gen_eval.demo.leaderboard import ModelScore
    from gen_eval.evaluation import Evaluation

DATASET = "census_names"
REFERENCE = "census_names:test"
FLOOR_SPEC = "census_names:validation"
FLOOR = "validation split"
# Wanted in this order; those another part of gen-eval has not registered are left out.
WANTED_METRICS = ("text_bpc", "text_ngrams", "text_novelty", "text_truth")


def split_names(names: list[str] | None) -> tuple[list[str] | None, list[str]]:
    """``(other models, text models)`` of a ``--models`` list (see ``split_by_dataset``)."""
    return split_by_dataset(names, DATASET)


def text_metrics() -> list[str]:
    """The section's metrics that are registered here."""
    return registered_metrics(WANTED_METRICS)


def score_text_models(
    names: list[str],
    *,
    out_dir: str | Path | None,
    num_samples: int = 1000,
    num_resamples: int = 100,
    seed: int = 0,
    show_progress: bool = True,
    overwrite: bool = True,
) -> list[ModelScore]:
    """Evaluate the text models ``names`` (and the validation-split floor) against ``census_names:test``.

    Parameters
    ----------
    names : list of str
        Bundled ``census_names`` models (an empty list scores nothing, not even the floor).
    out_dir : path, optional
        One run per model, ``out_dir/NAME`` (the floor: ``out_dir/census_names-validation-floor``).
    num_samples : int
        Strings drawn from each model (the floor reads that many validation names).
    num_resamples, seed, show_progress : as for :func:`gen_eval.demo.leaderboard.score_models`.
    overwrite : bool
        False refuses to replace files the demo did not write (:mod:`gen_eval.demo.files`).

    Returns
    -------
    list of ModelScore, the floor first.
    """
    from reference_models import MODELS

    if not names:
        return []
    wrong = [name for name in names if MODELS[name].dataset != DATASET]
    if wrong:
        raise GenEvalError(f"{', '.join(wrong)}: not text models; the text section scores {DATASET} models")
    jobs = [(FLOOR, "data", None, FLOOR_SPEC)] + [
        (n, MODELS[n].family, MODELS[n].faulty, f"ref:{n}") for n in names
    ]
    if out_dir is not None:
        from gen_eval.demo.files import check_replaceable

        check_replaceable(out_dir, [_run_name(name) for name, *_ in jobs], overwrite)
    metrics = text_metrics()
    scores = []
    with progress_group("text models", len(jobs), show_progress) as group:
        for name, family, faulty, spec in jobs:
            with group.item(name):
                evaluation = _evaluate(
                    name, spec, metrics, out_dir, num_samples, num_resamples, seed, show_progress
                )
                scores.append(_score(name, family, faulty, evaluation))
    return scores


def _run_name(name: str) -> str:
    return f"{DATASET}-validation-floor" if name == FLOOR else name


def _evaluate(
    name: str,
    spec: str,
    metrics: list[str],
    out_dir: str | Path | None,
    num_samples: int,
    num_resamples: int,
    seed: int,
    show_progress: bool,
) -> Evaluation:
    from gen_eval.evaluation import evaluate
    from gen_eval.sources import open_source

    if name == FLOOR:  # data has no log_prob: bits/char is the models' own
        metrics = [m for m in metrics if m != "text_bpc"]
    with progress_stage("loading", show_progress):
        source = open_source(spec, num_samples=num_samples, seed=seed)
    target = None if out_dir is None else Path(out_dir) / _run_name(name)
    with sampling_progress(source, show_progress):
        evaluation = evaluate(
            source,
            REFERENCE,
            metrics=metrics,
            num_samples=num_samples,
            num_resamples=num_resamples,
            seed=seed,
            out=target,
            overwrite=True,
            show_progress=show_progress,
        )
    if target is not None and evaluation.run_dir:
        from gen_eval.demo.files import record_files

        record_files(out_dir, [target.name])
    return evaluation


def _score(name: str, family: str, faulty: str | None, evaluation: Evaluation) -> ModelScore:
    return model_score(name, family, faulty, evaluation, DATASET)


def text_rows(scores: list[ModelScore]) -> tuple[list[str], list[list[str]]]:
    """Column names and text rows of the section's table (the terminal's and the tests')."""
    keys = [
        ("bits/char", "bits_per_char", ".3f"),
        ("JSD-2", "ngram_jsd_2", ".4f"),
        ("JSD-4", "ngram_jsd_4", ".4f"),
        ("length W1", "length_distance", ".3f"),
        ("train copies", "train_copies", ".0%"),
        ("mass cov.", "mass_coverage", ".0%"),
        ("TV truth", "tv_to_truth", ".3f"),
    ]
    columns, rows = metric_rows(scores, keys)
    for score, cells in zip(scores, rows, strict=True):
        cells.append(score.collapse.get("status", "-"))
    return [*columns, "collapse"], rows


def print_text_table(scores: list[ModelScore]) -> None:
    """The section's table on the terminal (nothing when no text model was scored)."""
    if scores:
        title = f"{DATASET}: text models vs {REFERENCE} (char-names features)"
        print_section_table(title, *text_rows(scores), left=("model", "family"))
