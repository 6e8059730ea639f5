"""Registry rows of the conditional metrics: labelled generated sets against a labelled reference (issue 23)."""

from __future__ import annotations

from gen_eval.metrics.entry import KID_OPTIONS, MetricEntry, knn_options
from gen_eval.option_types import Option

# metrics/conditional.py (per-class FID/KID/precision/recall/coverage), conditional_accuracy.py and
# intra_class.py say what each measures, which classes they skip and what their intervals cover.
# The per-class ones read features and labels only, but are declared for images, whose extractors
# (digits, mnist) are small enough for one pass per class; conditional accuracy serves text too.
CONDITIONAL_METRICS: dict[str, MetricEntry] = {
    "fid_per_class": MetricEntry(
        "gen_eval.metrics.conditional:fid_per_class",
        "labels",
        True,
        "FID of each requested class's samples vs the real samples of that class, and its mean over classes",
        {},
        ("image",),
    ),
    "kid_per_class": MetricEntry(
        "gen_eval.metrics.conditional:kid_per_class",
        "labels",
        True,
        "KID per class (the kid options apply to each class), and its mean over classes",
        KID_OPTIONS,
        ("image",),
    ),
    "precision_recall_per_class": MetricEntry(
        "gen_eval.metrics.conditional:precision_recall_per_class",
        "labels",
        True,
        "k-NN precision and recall per class (the pr options apply), and their means over classes",
        knn_options("pr", 3),
        ("image",),
    ),
    "coverage_per_class": MetricEntry(
        "gen_eval.metrics.conditional:coverage_per_class",
        "labels",
        True,
        "coverage (density/coverage's) per class (the dc options apply), and its mean over classes",
        knn_options("dc", 5),
        ("image",),
    ),
    "intra_class_diversity": MetricEntry(
        "gen_eval.metrics.intra_class:intra_class_diversity",
        "labels",
        True,
        "per class, mean pairwise feature distance of generated / real samples (near 0: collapsed within "
        "the class), and its mean over classes",
        {"intra_class_samples": Option(int, 1000, "samples per class and set in the pairwise distances")},
        ("image",),
    ),
    # Images and strings alike: labelled samples and a classifier's logits.
    "conditional_accuracy": MetricEntry(
        "gen_eval.metrics.conditional_accuracy:conditional_accuracy",
        "labelled logits",
        True,
        "share of labelled generated samples the classifier reads as their requested class (Wilson "
        "interval), beside chance and the reference's own accuracy",
        kinds=("image", "text"),
    ),
    # metrics/cas.py: trains two small CNNs (about 40 CPU seconds for 5,000 28x28 images), so not a default.
    "cas": MetricEntry(
        "gen_eval.metrics.cas:cas",
        "labels",
        False,
        "classification accuracy score: a CNN trained on the labelled generated images, tested on the "
        "real labelled reference (Wilson interval), beside the same CNN trained on the real train split",
        {"cas_images": Option(int, 20_000, "training budget of each classifier, in images seen")},
        kinds=("image",),
    ),
}
