"""The demo's text section: the bundled ``census_names`` ladder scored against ``census_names:test``.

``gen-eval demo`` scores the digits models with :mod:`gen_eval.demo.leaderboard`; the text models
(naive Bayes, bigram, trigram, HMM, char-RNN, tiny transformer and the faulty collapsed and copier
models, whatever is registered with a shipped checkpoint) need other metrics, so they get this
section of their own: bits per character on the test split (exact for every shipped model), the
n-gram JSDs and the length distance to the test split, the share of training copies, the true
mass covered and the total variation to the Census frequencies, and whether the char-names
classifier reads the sex each name was asked for, with the collapse verdict. The floor is the
validation split (an independent draw of the same names) against the test split.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from gen_eval.demo.sections import (
    Section,
    print_section,
    registered_metrics,
    score_section,
    section_rows,
    split_for_section,
)

if TYPE_CHECKING:
    from gen_eval.demo.leaderboard import ModelScore

DATASET = "census_names"
REFERENCE = "census_names:test"
SECTION = Section(
    key=DATASET,
    title=f"{DATASET}: text models vs {REFERENCE} (char-names features)",
    reference=REFERENCE,
    belongs=lambda entry: entry.dataset == DATASET,
    metrics=("text_bpc", "text_ngrams", "text_novelty", "text_truth", "conditional_accuracy"),
    columns=(
        ("bits/char", "bits_per_char", ".3f"),
        ("JSD-2", "ngram_jsd_2", ".4f"),
        ("JSD-4", "ngram_jsd_4", ".4f"),
        ("length W1", "length_distance", ".3f"),
        ("train copies", "train_copies", ".0%"),
        ("mass cov.", "mass_coverage", ".0%"),
        ("TV truth", "tv_to_truth", ".3f"),
        ("label read", "conditional_accuracy", ".0%"),
    ),
    floor_spec="census_names:validation",
    floor_drops=("text_bpc",),  # data has no log_prob: bits/char is the models' own
)


def split_names(names: list[str] | None) -> tuple[list[str] | None, list[str]]:
    """``(other models, text models)`` of a ``--models`` list."""
    return split_for_section(names, SECTION)


def text_metrics() -> list[str]:
    """The section's metrics that are registered here."""
    return registered_metrics(SECTION.metrics)


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
    """Evaluate the text models ``names`` (and the validation-split floor); see :func:`score_section`."""
    return score_section(
        SECTION,
        names,
        out_dir=out_dir,
        num_samples=num_samples,
        num_resamples=num_resamples,
        seed=seed,
        show_progress=show_progress,
        overwrite=overwrite,
    )


def text_rows(scores: list[ModelScore]) -> tuple[list[str], list[list[str]]]:
    """Column names and text rows of the section's table (the terminal's and the tests')."""
    return section_rows(SECTION, scores)


def print_text_table(scores: list[ModelScore]) -> None:
    """The section's table on the terminal (nothing when no text model was scored)."""
    print_section(SECTION, scores)
