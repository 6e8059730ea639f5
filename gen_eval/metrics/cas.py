"""Classification accuracy score (CAS; Ravuri & Vinyals 2019): train on generated, test on real.

A classifier is trained from scratch on the generated images, each labelled with the class it
was requested for, and tested on the labelled real reference set (the test split). If the model
draws every class well, this classifier does about as well as one trained on real data; a model
that ignores its label gives a classifier at chance, and one that misses part of a class's
variety (collapse within a class) gives a lower score even when its samples look sharp.

Beside it, ``cas_real`` trains the same classifier, for the same budget of images seen, on the
reference dataset's own training split (``mnist:test`` -> ``mnist:train``: the split
``default_train_spec`` finds; none for references that are not embedded datasets), and tests it
on the same images: the ceiling to read CAS against. ``details["gap"]`` is ``cas_real - cas``.

The classifier is the bundled small CNN of that image size (:mod:`gen_eval.nets.small_cnn`:
the ``digits`` architecture for 8x8 images, the ``mnist`` one otherwise, images mixed to grey and
resized to its side as the feature networks do). Its budget is fixed in advance and the same for
both classifiers: ``cas_images`` images seen (default 20,000; epochs = ceil(budget / set size)),
batch 32, AdamW at 3e-3 with a cosine schedule, random shifts, no early stopping and no real image
seen by the generated-data classifier (:func:`~gen_eval.nets.small_cnn.train_classifier`). Trained
on the 4,000 ``mnist:train`` digits it scores 98.0% on ``mnist:test`` (seed 0), within a point of
the ``mnist`` feature network's 98.3%. Seeded by the run's ``--seed``; on CUDA when the run is.

Intervals. ``cas`` and ``cas_real`` carry the Wilson score interval of a binomial share over the
test images (scipy's ``binomtest``): they cover the sampling of the test set only, the trained
classifier fixed, not the randomness of training (seed, data order), which a rerun with another
seed shows. The gap's interval is the percentile bootstrap over test images of the paired
difference of the two classifiers' hits (both are tested on the same images).

The real-data classifier's hits are cached beside the reference's features, so a second run
against the same reference trains one classifier, not two. The images are read from the sources
(features hold none): a generator is asked again with the run's seed, as MS-SSIM asks it, so its
images are those it gives for that seed, each with the class it was asked for.

Measured (one CPU thread, seed 0): trained on ``mnist:train`` the classifier scores 98.0% on
``mnist:test`` and on ``digits:train`` 99.4% on ``digits:test`` (the feature networks: 98.3%,
99.4%); 5,000 labelled 28x28 images take about 40 CPU seconds for both classifiers
(``gen-eval bench paired``).
"""

from __future__ import annotations

import sys
import time
from typing import TYPE_CHECKING

import numpy as np
import torch

from gen_eval.metrics.result import Result
from gen_eval.progress import progress_task

if TYPE_CHECKING:
    from gen_eval.metrics.base import MetricContext
    from gen_eval.nets.small_cnn import CNNSpec
    from gen_eval.sources import Source

DEFAULT_IMAGES_SEEN = 20_000
COVERS = "the real test images resampled (Wilson binomial interval), the trained classifier fixed; not training randomness"


def labelled_images(
    source: Source, fallback: np.ndarray | None = None
) -> tuple[torch.Tensor, np.ndarray] | None:
    """Every image of ``source`` (uint8 NCHW) and its label, or None without labels for all of them.

    ``fallback`` (the labels ``evaluate`` collected) is used when the batches carry none but
    their count matches.
    """
    images, labels = [], []
    for batch in source.batches(512):
        images.append(batch.data)
        labels.append(None if batch.labels is None else np.asarray(batch.labels, dtype=np.int64).reshape(-1))
    if not images:
        return None
    data = torch.cat(images)
    if all(part is not None for part in labels):
        return data, np.concatenate(labels)
    if fallback is not None and len(fallback) == len(data):
        return data, np.asarray(fallback, dtype=np.int64)
    return None


def _hits(net: torch.nn.Module, images: torch.Tensor, labels: np.ndarray) -> np.ndarray:
    from gen_eval.nets.small_cnn import net_input, predict

    x = torch.cat([net_input(chunk, net.spec.size) for chunk in images.split(4096)])
    return (predict(net, x).numpy() == labels).astype(np.float64)


def _wilson(hits: np.ndarray, confidence: float) -> tuple[float, float]:
    from scipy.stats import binomtest

    interval = binomtest(int(hits.sum()), len(hits)).proportion_ci(
        confidence_level=confidence, method="wilson"
    )
    return float(interval.low), float(interval.high)


def _real_hits(
    context: MetricContext,
    ref_images: torch.Tensor,
    ref_labels: np.ndarray,
    num_classes: int,
    budget: int,
) -> tuple[np.ndarray | None, str | None, dict]:
    """Hits of the classifier trained on the reference's train split, its spec and training facts."""
    from gen_eval.nets.small_cnn import epochs_for_budget, train_classifier
    from gen_eval.sources import open_source
    from gen_eval.sources.dataset import default_train_spec

    assert context.reference_source is not None
    train_spec = default_train_spec(context.reference_source)
    if train_spec is None:
        return None, None, {}
    train_source = open_source(train_spec, seed=context.random_state)
    facts: dict = {"real_train_count": len(train_source)}

    def compute() -> torch.Tensor:
        train = labelled_images(train_source)
        if train is None:
            return torch.full((len(ref_labels),), -1.0, dtype=torch.float64)
        epochs = epochs_for_budget(len(train[1]), budget)
        started = time.perf_counter()
        with progress_task(f"cas: classifier on {train_spec}", epochs, sys.stderr.isatty()) as bar:
            net = train_classifier(
                train[0],
                train[1],
                epochs=epochs,
                random_state=context.random_state,
                num_classes=num_classes,
                spec=_spec(ref_images),
                device=context.device,
                progress=lambda *_: bar.advance(1),
            )
        facts.update(real_epochs=epochs, real_seconds=time.perf_counter() - started)
        return torch.from_numpy(_hits(net, ref_images, ref_labels))

    # The training set's fingerprint (its dataset version) is part of the key: new data, new classifier.
    key = f"cas-real-v1:{train_spec}:{train_source.fingerprint}:{budget}:{num_classes}:{context.random_state}:{torch.device(context.device).type}"
    hits = context.cached_reference_tensor(key, compute).cpu().double().numpy()
    if len(hits) != len(ref_labels) or (hits < 0).any():
        return None, train_spec, facts
    return hits, train_spec, facts


def _spec(ref_images: torch.Tensor) -> CNNSpec:
    from gen_eval.nets.small_cnn import classifier_spec

    return classifier_spec(int(ref_images.shape[-2]))


def cas(generated: dict, reference: dict, context: MetricContext) -> dict[str, Result]:
    """Accuracy on the labelled reference of a classifier trained on the labelled generated images.

    Parameters
    ----------
    generated, reference : dict
        Unused: the images and labels are read from ``context.generated_source`` and
        ``context.reference_source``.
    context : MetricContext
        ``cas_images`` (budget of images seen per classifier), seed, device, confidence,
        bootstrap resamples (for the gap's interval).

    Returns
    -------
    dict
        ``{"cas": Result, "cas_real": Result}`` (``cas_real`` only when the reference's training
        split is known); empty when either set has no labels.
    """
    from gen_eval.metrics.bootstrap import percentile_interval, resample_counts
    from gen_eval.nets.small_cnn import epochs_for_budget, train_classifier

    assert context.generated_source is not None and context.reference_source is not None
    gen = labelled_images(context.generated_source, context.generated_labels)
    ref = labelled_images(context.reference_source, context.reference_labels)
    if gen is None or ref is None:
        return {}
    (gen_images, gen_labels), (ref_images, ref_labels) = gen, ref
    declared = getattr(context.generated_source, "num_classes", None) or 0
    num_classes = max(int(gen_labels.max()) + 1, int(ref_labels.max()) + 1, int(declared), 2)
    budget = int(context.option("cas_images", DEFAULT_IMAGES_SEEN))
    spec = _spec(ref_images)
    warnings = []
    if (
        tuple(ref_images.shape[-2:]) != (spec.size, spec.size)
        or tuple(gen_images.shape[-2:]) != (spec.size,) * 2
    ):
        warnings.append(
            f"the classifier is the {spec.size}x{spec.size} grey-digit CNN: images were mixed to grey and "
            f"resized from {tuple(gen_images.shape[-2:])} (generated) and {tuple(ref_images.shape[-2:])} (reference)"
        )

    started = time.perf_counter()
    epochs = epochs_for_budget(len(gen_labels), budget)
    with progress_task("cas: classifier on the generated images", epochs, sys.stderr.isatty()) as bar:
        net = train_classifier(
            gen_images,
            gen_labels,
            epochs=epochs,
            random_state=context.random_state,
            num_classes=num_classes,
            spec=spec,
            device=context.device,
            progress=lambda *_: bar.advance(1),
        )
    gen_seconds = time.perf_counter() - started
    hits = _hits(net, ref_images, ref_labels)
    real_hits, train_spec, facts = _real_hits(context, ref_images, ref_labels, num_classes, budget)
    if train_spec is not None and train_spec == context.reference_source.spec:
        warnings.append(
            f"the reference {train_spec} is the real classifier's training split: cas_real is optimistic"
        )

    per_class = []
    for label in np.unique(ref_labels):
        mask = ref_labels == label
        row = {"class": int(label), "test_images": int(mask.sum()), "cas": float(hits[mask].mean())}
        if real_hits is not None:
            row["cas_real"] = float(real_hits[mask].mean())
        per_class.append(row)
    counts = np.bincount(ref_labels, minlength=num_classes)
    details = {
        "means": "accuracy on the labelled reference of a classifier trained only on the generated images and "
        "the classes they were requested for",
        "classifier": f"SmallCNN {spec.name} architecture ({spec.size}x{spec.size} grey), trained from scratch",
        "budget_images_seen": budget,
        "epochs": epochs,
        "train_count": len(gen_labels),
        "train_seconds": round(gen_seconds, 3),
        "seed": context.random_state,
        "num_classes": num_classes,
        "chance": float(counts.max() / counts.sum()),
        "chance_means": "share of the most frequent reference class (what always answering it scores)",
        "real_train": train_spec,
        "cas_real": None if real_hits is None else float(real_hits.mean()),
        "gap": None if real_hits is None else float(real_hits.mean() - hits.mean()),
        "gap_interval": None,
        "gap_means": "cas_real - cas: accuracy lost by training on generated instead of real images",
        "per_class": per_class,
        **facts,
    }
    if real_hits is not None and context.num_resamples > 0:
        weights = resample_counts(len(hits), context.num_resamples, context.random_state)
        difference = torch.from_numpy(real_hits - hits)
        details["gap_interval"] = list(
            percentile_interval(weights @ difference / len(hits), context.confidence)
        )
        details["gap_interval_covers"] = (
            "the test images resampled (paired bootstrap), both classifiers fixed"
        )
    results = {
        "cas": Result(
            "cas",
            float(hits.mean()),
            "higher",
            len(gen_labels),
            len(ref_labels),
            interval=_wilson(hits, context.confidence),
            interval_covers=COVERS,
            warnings=warnings,
            details=details,
        )
    }
    if real_hits is not None:
        results["cas_real"] = Result(
            "cas_real",
            float(real_hits.mean()),
            "higher",
            details["real_train_count"],  # the real images this classifier was trained on
            len(ref_labels),
            interval=_wilson(real_hits, context.confidence),
            interval_covers=COVERS,
            details={
                "means": f"the same classifier and budget trained on the real {train_spec}: the ceiling for cas",
                "real_train": train_spec,
            },
        )
    return results
