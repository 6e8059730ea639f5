"""Conditional metrics (issue 23): per-class FID/KID/precision/recall/coverage, conditional accuracy,
intra-class diversity and the per-class collapse findings, each against an independent reference
(brute force on the class rows, scipy, statsmodels) or a planted fault that must be found.

Data: the digits-net features of the real digits, digits:test (360, true labels) as the generated
set and digits:train (1,437) as the reference.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import scipy.linalg
import torch
from scipy.spatial.distance import pdist

from gen_eval.metrics.base import MetricContext


@pytest.fixture(scope="module")
def digits():
    from gen_eval.features import create_extractor
    from gen_eval.features.cache import FeatureCache
    from gen_eval.features.extract import extract_features
    from gen_eval.sources import open_source

    extractor = create_extractor("digits", device="cpu")
    sets = {}
    for spec in ("digits:test", "digits:train"):
        features = extract_features(
            open_source(spec), extractor, batch_size=512, cache=FeatureCache(None), show_progress=False
        )
        sets[spec] = (features.tensors, features.labels.numpy())
    return sets["digits:test"], sets["digits:train"]


def _context(generated_labels, reference_labels, resamples=100, **options):
    return MetricContext(
        num_resamples=resamples,
        generated_labels=np.asarray(generated_labels),
        reference_labels=np.asarray(reference_labels),
        options=options,
        extractor="digits",
    )


def _brute_fid(x: np.ndarray, y: np.ndarray) -> float:
    """FID by the textbook formula with scipy's sqrtm (not gen-eval's eigen or low-rank paths)."""
    mu1, mu2 = x.mean(0), y.mean(0)
    s1, s2 = np.cov(x, rowvar=False), np.cov(y, rowvar=False)
    with warnings.catch_warnings():  # classes of fewer samples than dimensions: singular, still exact enough
        warnings.simplefilter("ignore", scipy.linalg.LinAlgWarning)
        root = scipy.linalg.sqrtm(s1 @ s2).real
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1 + s2 - 2 * root))


def test_real_data_split_by_class_scores_per_class_fid_at_the_floor(digits):
    from gen_eval.metrics.conditional import fid_per_class

    (gen, gen_labels), (ref, ref_labels) = digits
    real = fid_per_class(gen, ref, _context(gen_labels, ref_labels))["fid_per_class"]
    x, y = gen["features"].double().numpy(), ref["features"].double().numpy()
    for c in range(10):  # every class's value is FID on that class's rows, by the textbook formula
        brute = _brute_fid(x[gen_labels == c], y[ref_labels == c])
        assert real.details["per_class"][str(c)] == pytest.approx(brute, rel=1e-6)
    assert real.value == pytest.approx(np.mean(list(real.details["per_class"].values())))
    # The floor: the same class sizes drawn from the reference's own split against the rest of it.
    rng = np.random.default_rng(1)
    picked = np.concatenate(
        [
            rng.choice(np.flatnonzero(ref_labels == c), (gen_labels == c).sum(), replace=False)
            for c in range(10)
        ]
    )
    rest = np.setdiff1d(np.arange(len(ref_labels)), picked)
    floor = fid_per_class(
        {"features": ref["features"][picked]},
        {"features": ref["features"][rest]},
        _context(ref_labels[picked], ref_labels[rest]),
    )["fid_per_class"]
    assert floor.interval[0] <= real.value <= floor.interval[1]  # 14.8 vs the floor's 14.2 (11.0-19.6)
    assert real.interval[0] <= real.value <= real.interval[1]
    # Labels that say nothing (a label-ignoring model) are far above the floor.
    shuffled = np.random.default_rng(0).permutation(gen_labels)
    ignoring = fid_per_class(gen, ref, _context(shuffled, ref_labels))["fid_per_class"]
    assert ignoring.value > 20 * real.value and ignoring.interval[0] > real.interval[1]
    assert "per class" in real.interval_covers or "each class" in real.interval_covers


def test_per_class_values_equal_the_plain_metric_on_the_class_rows(digits):
    from gen_eval.metrics.conditional import (
        coverage_per_class,
        kid_per_class,
        precision_recall_per_class,
    )
    from gen_eval.metrics.density_coverage import density_coverage
    from gen_eval.metrics.kid import kid
    from gen_eval.metrics.precision_recall import precision_recall

    (gen, gen_labels), (ref, ref_labels) = digits
    context = _context(gen_labels, ref_labels, resamples=0, kid_subsets=20)
    got = {
        **kid_per_class(gen, ref, context),
        **precision_recall_per_class(gen, ref, context),
        **coverage_per_class(gen, ref, context),
    }
    assert set(got) == {"kid_per_class", "precision_per_class", "recall_per_class", "coverage_per_class"}
    for c in (0, 4, 9):
        rows_x, rows_y = (
            {"features": gen["features"][gen_labels == c]},
            {"features": ref["features"][ref_labels == c]},
        )
        plain_context = MetricContext(num_resamples=0, random_state=c, options={"kid_subsets": 20})
        plain = {
            **kid(rows_x, rows_y, plain_context),
            **precision_recall(rows_x, rows_y, plain_context),
            **density_coverage(rows_x, rows_y, plain_context),
        }
        for name in ("kid", "precision", "recall", "coverage"):
            assert got[f"{name}_per_class"].details["per_class"][str(c)] == plain[name].value
    assert got["precision_per_class"].num_generated == len(gen_labels)


def test_the_mean_interval_matches_the_brute_force_stratified_bootstrap(digits):
    from gen_eval.metrics.conditional import precision_recall_per_class

    (gen, gen_labels), (ref, ref_labels) = digits
    result = precision_recall_per_class(gen, ref, _context(gen_labels, ref_labels, resamples=200))
    precision = result["precision_per_class"]
    # Brute force: per class, which generated samples fall in a reference k-NN ball (k = 3, closed),
    # then resample each class's samples on their own and average the classes' precisions.
    rng = np.random.default_rng(0)
    indicators = []
    for c in range(10):
        x = gen["features"][gen_labels == c].double()
        y = ref["features"][ref_labels == c].double()
        radii = torch.cdist(y, y).kthvalue(4, dim=1).values  # the 3rd neighbour; the 1st is itself
        indicators.append((torch.cdist(x, y) <= radii).any(dim=1).double().numpy())
    assert precision.value == pytest.approx(np.mean([i.mean() for i in indicators]))
    replicates = [
        np.mean([i[rng.integers(0, len(i), len(i))].mean() for i in indicators]) for _ in range(4000)
    ]
    low, high = np.quantile(replicates, [0.025, 0.975])
    assert precision.interval[0] == pytest.approx(low, abs=0.012)
    assert precision.interval[1] == pytest.approx(high, abs=0.012)


def test_classes_missing_from_a_set_or_too_small_are_skipped_and_named(digits):
    from gen_eval.metrics.conditional import fid_per_class, kid_per_class, precision_recall_per_class

    (gen, gen_labels), (ref, ref_labels) = digits
    keep = (gen_labels != 7) & ~((gen_labels == 2) & (np.cumsum(gen_labels == 2) > 3))
    sub = {"features": gen["features"][keep]}
    context = _context(gen_labels[keep], ref_labels, resamples=0)
    fid = fid_per_class(sub, ref, context)["fid_per_class"]
    assert "7" not in fid.details["per_class"] and fid.details["reference_only_classes"] == [7]
    assert any("classes 7 are in the reference only" in w for w in fid.warnings)
    assert "2" in fid.details["per_class"]  # 3 samples: FID is defined (rank-deficient, warned)
    ranks = [w.split(":")[0] for w in fid.warnings if "rank-deficient" in w]  # one line for all such classes
    assert len(ranks) == 1 and "2" in ranks[0].removeprefix("classes ").split(", ")
    recall = precision_recall_per_class(sub, ref, context)["recall_per_class"]
    assert recall.details["skipped_classes"] == [2]  # k = 3 needs more than 3 samples
    assert any("classes 2 skipped" in w and "pr_k=3" in w for w in recall.warnings)
    kid = kid_per_class(sub, ref, _context(gen_labels[keep], ref_labels, resamples=5, kid_subsets=5))
    assert "classes 2 have no interval of their own" in " ".join(kid["kid_per_class"].warnings)  # KID: < 10
    unlabelled = MetricContext(num_resamples=0, reference_labels=ref_labels)
    assert fid_per_class(gen, ref, unlabelled) == {}


def test_a_label_ignoring_model_is_at_chance_and_flagged(digits):
    from statsmodels.stats.proportion import proportion_confint

    from gen_eval.collapse.per_class import per_class_findings
    from gen_eval.metrics.conditional_accuracy import conditional_accuracy

    (gen, gen_labels), (ref, ref_labels) = digits
    real = conditional_accuracy(gen, ref, _context(gen_labels, ref_labels))["conditional_accuracy"]
    shuffled = np.random.default_rng(0).permutation(gen_labels)
    ignoring = conditional_accuracy(gen, ref, _context(shuffled, ref_labels))["conditional_accuracy"]
    hits = round(real.value * len(gen_labels))
    assert real.interval == pytest.approx(proportion_confint(hits, len(gen_labels), method="wilson"))
    assert real.value > 0.97 and not real.details["labels_ignored"] and not real.warnings
    assert real.details["reference_value"] > 0.97  # the classifier's own accuracy: the ceiling
    counts = np.bincount(gen_labels) / len(gen_labels)
    predicted = np.bincount(gen["logits"].argmax(1).numpy(), minlength=10) / len(gen_labels)
    assert ignoring.details["chance"] == pytest.approx(float(counts @ predicted))
    assert abs(ignoring.value - 0.1) < 0.04 and ignoring.interval[0] < ignoring.details["chance"]
    assert ignoring.details["labels_ignored"] and "labels ignored" in ignoring.warnings[0]
    found = per_class_findings(None, {"conditional_accuracy": ignoring})
    assert [(f.severity, f.message.split(":")[0]) for f in found] == [("collapse", "labels ignored")]
    assert per_class_findings(None, {"conditional_accuracy": real})[0].severity == "ok"
    # Without a classifier: every class's precision far below the whole set's says the same.
    from gen_eval.metrics.conditional import precision_recall_per_class
    from gen_eval.metrics.precision_recall import precision_recall

    plain = precision_recall(gen, ref, MetricContext(num_resamples=0))
    for labels, expected in ((shuffled, [("collapse", "labels ignored")]), (gen_labels, [])):
        within = precision_recall_per_class(gen, ref, _context(labels, ref_labels, resamples=0))
        found = per_class_findings(None, {**plain, **within})
        assert [(f.severity, f.message.split(":")[0]) for f in found] == expected


def test_one_class_of_copies_is_flagged_as_collapsed_within_its_class(digits):
    from gen_eval.collapse.check import check_collapse
    from gen_eval.metrics.conditional import precision_recall_per_class
    from gen_eval.metrics.intra_class import intra_class_diversity

    (gen, gen_labels), (ref, ref_labels) = digits
    real = intra_class_diversity(gen, ref, _context(gen_labels, ref_labels))["intra_class_diversity"]
    x, y = gen["features"].double().numpy(), ref["features"].double().numpy()
    for c in (0, 5):  # each class's ratio by scipy's pairwise distances
        brute = pdist(x[gen_labels == c]).mean() / pdist(y[ref_labels == c]).mean()
        assert real.details["per_class"][str(c)] == pytest.approx(brute, rel=1e-9)
    assert 0.85 < real.value < 1.15 and real.details["collapsed_classes"] == [] and not real.warnings
    assert real.interval[0] <= real.value <= real.interval[1]

    features = gen["features"].clone()
    threes = np.flatnonzero(gen_labels == 3)
    features[threes] = features[int(threes[0])].clone()  # class 3: copies of one image
    planted = {**gen, "features": features}
    context = _context(gen_labels, ref_labels)
    metrics = {
        **intra_class_diversity(planted, ref, context),
        **precision_recall_per_class(planted, ref, context),
    }
    diversity = metrics["intra_class_diversity"]
    assert diversity.details["collapsed_classes"] == [3] and diversity.details["per_class"]["3"] < 0.01
    assert "class 3 0.00" in diversity.warnings[0]
    report = check_collapse(
        planted,
        ref,
        metrics=metrics,
        class_labels=(gen_labels, ref_labels),
        options={"birthday_batches": 20, "ndb_bins": 10},
    )
    assert report.detectors["per_class"].collapsed == [3]  # the per-class Vendi score agrees
    per_class = [f for f in report.findings if f.detector == "per_class"]
    assert [f.severity for f in per_class] == ["collapse"]
    assert (
        per_class[0].message.startswith("class 3: recall 0.")
        and "collapsed within class" in per_class[0].message
    )
    assert report.status == "collapse" and "class 3" in report.verdict
    assert "per_class" in report.to_dict()["detectors"]


def test_evaluate_scores_a_labelled_npz_and_its_collapse_report_says_labels_ignored(tmp_path):
    import json

    from gen_eval import evaluate
    from gen_eval.datasets.digits import load_digits_split
    from gen_eval.errors import GenEvalError

    images, labels = load_digits_split("test")
    path = tmp_path / "ignoring.npz"
    np.savez(path, arr_0=images.transpose(0, 2, 3, 1), labels=np.random.default_rng(0).permutation(labels))
    out = tmp_path / "run"
    evaluate(str(path), "digits:train", cache_dir=False, out=out, num_resamples=20, show_progress=False)
    written = json.loads((out / "metrics.json").read_text())
    metrics, collapse = written["metrics"], written["collapse"]
    per_class = metrics["fid_per_class"]["details"]["per_class"]
    assert sorted(per_class) == [str(c) for c in range(10)] and all(
        isinstance(v, float) for v in per_class.values()
    )
    assert metrics["fid_per_class"]["value"] > 20 * metrics["fid"]["value"]  # 962 vs 6.8: same images
    assert metrics["conditional_accuracy"]["details"]["labels_ignored"] is True
    assert collapse["status"] == "collapse" and collapse["verdict"].startswith("labels ignored")
    assert "per_class" in collapse["detectors"]
    with pytest.raises(GenEvalError, match="metric fid_per_class needs labelled samples"):
        evaluate(
            "digits:test", "digits:train", metrics=["fid_per_class"], cache_dir=False, show_progress=False
        )
