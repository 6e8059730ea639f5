"""The demo's unpaired-translation section: the bundled digits -> mnist CycleGAN.

Its outputs (28x28, from ``digits:test``'s 8x8 inputs) are scored in the target domain against
``mnist:test``: FID and precision/recall on the mnist network's features, whether the digit's
class survives the translation (the digits classifier on the input vs the mnist classifier on the
output), and how far translating back lands from the input (cycle consistency).
"""

from __future__ import annotations

from gen_eval.demo.sections import Section

SECTION = Section(
    key="digits2mnist",
    title="digits -> mnist: unpaired translation vs mnist:test (mnist features)",
    reference="mnist:test",
    belongs=lambda entry: entry.family == "translation",
    metrics=("fid", "precision_recall", "label_preservation", "cycle_consistency"),
    columns=(
        ("FID", "fid", ".3g"),
        ("prec", "precision", ".2f"),
        ("recall", "recall", ".2f"),
        ("label kept", "label_preservation", ".0%"),
        ("cycle error", "cycle_consistency", ".3g"),
    ),
    features="mnist",
    train=None,
)
