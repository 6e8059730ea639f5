"""The unpaired translation metrics' registry entries (issue 23): gen_eval/metrics/translation.py."""

from __future__ import annotations

from gen_eval.metrics.entry import MetricEntry

# Both need "translation": a generated source whose model has translate_back
# (``ref:cyclegan_digits2mnist``); FID/KID in the target domain are the usual feature metrics.
TRANSLATION_METRICS: dict[str, MetricEntry] = {
    "label_preservation": MetricEntry(
        "gen_eval.metrics.translation:label_preservation",
        "translation",
        True,
        "share of inputs whose class (source-domain classifier) the output keeps (target-domain classifier)",
        kinds=("image",),
    ),
    "cycle_consistency": MetricEntry(
        "gen_eval.metrics.translation:cycle_consistency",
        "translation",
        True,
        "mean |translate_back(translate(x)) - x| over the inputs, in grey levels (0-255)",
        kinds=("image",),
    ),
}
