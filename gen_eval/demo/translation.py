"""The demo's unpaired-translation sections: the bundled CycleGAN, each way.

``cyclegan_digits2mnist`` turns ``digits:test``'s 8x8 inputs into 28x28 digits, scored in the
target domain against ``mnist:test``; ``cyclegan_mnist2digits`` (the same weights, the other way)
turns ``mnist:test`` into 8x8 digits against ``digits:test``. Each gets FID and precision/recall
on the target domain's network, whether the digit's class survives the translation (the source
classifier on the input vs the target classifier on the output), and how far translating back
lands from the input (cycle consistency).
"""

from __future__ import annotations

from gen_eval.demo.sections import Section

# direction -> (target-domain reference, its extractor)
DIRECTIONS = {"digits2mnist": ("mnist:test", "mnist"), "mnist2digits": ("digits:test", "digits")}


def _section(direction: str) -> Section:
    reference, features = DIRECTIONS[direction]
    source, target = direction.split("2")
    return Section(
        key=direction,
        title=f"{source} -> {target}: unpaired translation vs {reference} ({features} features)",
        reference=reference,
        belongs=lambda entry: (
            entry.family == "translation" and entry.config.get("direction", "digits2mnist") == direction
        ),
        metrics=("fid", "precision_recall", "label_preservation", "cycle_consistency"),
        columns=(
            ("FID", "fid", ".3g"),
            ("prec", "precision", ".2f"),
            ("recall", "recall", ".2f"),
            ("label kept", "label_preservation", ".0%"),
            ("cycle error", "cycle_consistency", ".3g"),
        ),
        features=features,
        train=None,
    )


SECTIONS = {direction: _section(direction) for direction in DIRECTIONS}
SECTION = SECTIONS["digits2mnist"]
