"""The demo's class-conditional section: the bundled ``mnist`` generators asked for each class.

``cvae``, ``cgan`` and the faulty ``cgan_ignores_label`` are asked for balanced classes (sample i:
class i % 10) and scored against ``mnist:test`` on the bundled ``mnist`` network's features: FID
and precision/recall as for any model, then what only a conditional model has: whether the
classifier reads the class asked for (conditional accuracy), the mean per-class FID and the
diversity within each class relative to the real digits of that class; the scorecard adds the
classification accuracy score (a classifier trained on the samples, tested on real digits). The floor is the training
split against the test split (data has no requested classes: its conditional columns stay "-").
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from gen_eval.demo.sections import Section

if TYPE_CHECKING:
    from reference_models import ModelEntry

DATASET = "mnist"
REFERENCE = "mnist:test"


def _conditional(entry: ModelEntry) -> bool:
    return (
        entry.dataset == DATASET
        and "task" not in entry.config
        and entry.family not in ("paired", "translation", "baseline")
    )


SECTION = Section(
    key=DATASET,
    title=f"{DATASET}: class-conditional models vs {REFERENCE} (mnist features)",
    reference=REFERENCE,
    belongs=_conditional,
    metrics=(
        "fid",
        "precision_recall",
        "conditional_accuracy",
        "fid_per_class",
        "intra_class_diversity",
    ),
    columns=(
        ("FID", "fid", ".3g"),
        ("prec", "precision", ".2f"),
        ("recall", "recall", ".2f"),
        ("class read", "conditional_accuracy", ".0%"),
        ("FID/class", "fid_per_class", ".3g"),
        ("diversity/class", "intra_class_diversity", ".2f"),
        ("CAS", "cas", ".0%"),
    ),
    floor_spec="mnist:train",
    floor_label="train split",
    features="mnist",
)
# The scorecard adds CAS (a classifier trained per model: about 40 CPU seconds each), which the
# demo leaves out to stay quick.
SCORECARD_SECTION = replace(SECTION, metrics=(*SECTION.metrics, "cas"))
