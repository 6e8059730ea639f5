"""The text metrics' registry entries that read features (issue 22)."""

from __future__ import annotations

from gen_eval.metrics.entry import MetricEntry
from gen_eval.option_types import Option

# Text diversity and MAUVE (issue 22): metrics/text_diversity.py and text_mauve.py say what each
# measures and what its interval covers. Conditional accuracy serves images too: entries_conditional.py.
TEXT_FEATURE_METRICS: dict[str, MetricEntry] = {
    "distinct_n": MetricEntry(
        "gen_eval.metrics.text_diversity:distinct_n",
        "strings",
        True,
        "distinct-n (n=1..4): distinct character n-grams over all of them (scikit-learn's counts)",
        kinds=("text",),
    ),
    "self_bleu": MetricEntry(
        "gen_eval.metrics.text_diversity:self_bleu",
        "strings",
        True,
        "self-BLEU (sacrebleu, character tokens): each string of a seeded subset against the rest",
        {"self_bleu_samples": Option(int, 200, "strings in the seeded subset (quadratic cost)")},
        kinds=("text",),
    ),
    "mauve": MetricEntry(
        "gen_eval.metrics.text_mauve:mauve_score",
        "features",
        False,
        "MAUVE (mauve-text, GPL-3.0, optional) on the run's features: k-means histograms' frontier area",
        {
            "mauve_buckets": Option(int, None, "k-means clusters (default: mauve's auto, smaller set / 10)"),
            "mauve_scaling": Option(float, 5.0, "scaling constant c of the divergence frontier"),
            "mauve_kmeans_restarts": Option(int, 1, "k-means restarts (mauve's own default: 5)"),
            "mauve_kmeans_iterations": Option(
                int, 100, "k-means iterations per restart (mauve's own default: 500)"
            ),
        },
    ),
}
