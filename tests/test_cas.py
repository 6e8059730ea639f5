"""Classification accuracy score: real data scores like real data, broken labels score chance.

Every classifier here trains on 1,334 images (every third of ``mnist:train``: all ten classes,
whether the split is in class order or dealt class by class) for a budget of 3,000 images seen
(``cas_images``), a few CPU seconds each; the budget is the same in the test that must reach high
accuracy and in those that must not, so the chance-level results are not a budget too small to
learn anything.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from gen_eval.datasets.mnist import load_mnist_split
from gen_eval.metrics.base import MetricContext
from gen_eval.metrics.cas import cas
from gen_eval.sources import open_source

BUDGET = 3000


def _npz(path: Path, images: np.ndarray, labels: np.ndarray | None) -> str:
    arrays = {"samples": images} if labels is None else {"samples": images, "labels": labels}
    np.savez(path, **arrays)
    return str(path)


def _run(generated: str, reference: str, resamples: int = 0) -> dict:
    context = MetricContext(
        generated_source=open_source(generated),
        reference_source=open_source(reference),
        num_resamples=resamples,
        options={"cas_images": BUDGET},
    )
    return cas({}, {}, context)


def _wilson(successes: int, n: int, z: float = 1.959963984540054) -> tuple[float, float]:
    """Wilson's score interval from its closed form (Wilson 1927), independent of scipy."""
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return centre - half, centre + half


@pytest.fixture(scope="module")
def train_part() -> tuple[np.ndarray, np.ndarray]:
    images, labels = load_mnist_split("train")
    return images[::3], labels[::3]


def test_real_training_digits_score_like_the_real_classifier(tmp_path: Path, train_part: tuple) -> None:
    results = _run(_npz(tmp_path / "real.npz", *train_part), "mnist:test", resamples=200)
    score, real = results["cas"], results["cas_real"]
    assert score.details["real_train"] == "mnist:train" and score.num_reference == 1000
    assert real.value > 0.85 and score.value > 0.85
    assert abs(score.value - real.value) < 0.05
    assert score.details["gap"] == pytest.approx(real.value - score.value)
    low, high = score.details["gap_interval"]
    assert low <= score.details["gap"] <= high
    # The interval is Wilson's, over the 1,000 test images.
    assert score.interval == pytest.approx(_wilson(round(score.value * 1000), 1000), abs=1e-9)
    assert sum(row["test_images"] for row in score.details["per_class"]) == 1000
    assert "not training randomness" in score.interval_covers


def test_shuffled_labels_give_chance(tmp_path: Path, train_part: tuple) -> None:
    images, labels = train_part
    shuffled = np.random.default_rng(0).permutation(labels)
    test_images, test_labels = load_mnist_split("test")
    # A reference that is no embedded dataset: no training split, so no cas_real (one classifier).
    results = _run(
        _npz(tmp_path / "gen.npz", images, shuffled), _npz(tmp_path / "ref.npz", test_images, test_labels)
    )
    assert set(results) == {"cas"} and results["cas"].details["cas_real"] is None
    assert results["cas"].value < 0.2
    assert results["cas"].details["chance"] == pytest.approx(0.1)


def test_one_class_with_every_label_gives_chance(tmp_path: Path) -> None:
    images, labels = load_mnist_split("train")
    sevens = images[labels == 7]
    one_class = np.concatenate([sevens] * 4)
    requested = np.arange(len(one_class)) % 10  # what a label-ignoring model is asked for
    # Through evaluate: the "labels" need, the registry row and its option.
    from gen_eval.evaluation import evaluate

    run = evaluate(
        _npz(tmp_path / "sevens.npz", one_class, requested),
        "mnist:test",
        metrics=["cas"],
        metric_options={"cas_images": BUDGET},
        num_resamples=0,
        collapse=False,
        cache_dir=False,
        device="cpu",
    )
    assert run.metrics["cas"].value < 0.2 < run.metrics["cas_real"].value
    assert run.metrics["cas"].details["budget_images_seen"] == BUDGET


def test_no_labels_no_result(tmp_path: Path, train_part: tuple) -> None:
    assert _run(_npz(tmp_path / "plain.npz", train_part[0], None), "mnist:test") == {}


class _DigitPicker:
    """A class-conditional "generator" that returns real training digits of the requested classes.

    With ``ignore_label`` it returns digits of random classes: the faulty model CAS must expose.
    """

    num_classes = 10

    def __init__(self, ignore_label: bool) -> None:
        images, labels = load_mnist_split("train")
        self.images, self.labels, self.ignore_label = images, labels, ignore_label

    def sample(self, n: int, generator=None, labels=None):
        import torch

        wanted = torch.randint(0, 10, (n,), generator=generator) if self.ignore_label else labels
        rows = []
        for label in wanted.tolist():
            members = np.flatnonzero(self.labels == label)
            rows.append(members[int(torch.randint(0, len(members), (1,), generator=generator))])
        return torch.from_numpy(self.images[rows])


@pytest.mark.parametrize("ignore_label", [False, True], ids=["obeys", "ignores label"])
def test_conditional_generator(tmp_path: Path, ignore_label: bool) -> None:
    from gen_eval.sources.python import GeneratorSource

    generated = GeneratorSource(spec="picker", model=_DigitPicker(ignore_label), count=1334, seed=0)
    test_images, test_labels = load_mnist_split("test")
    context = MetricContext(
        generated_source=generated,
        reference_source=open_source(_npz(tmp_path / "ref.npz", test_images, test_labels)),
        num_resamples=0,
        options={"cas_images": BUDGET},
    )
    value = cas({}, {}, context)["cas"].value
    assert value < 0.2 if ignore_label else value > 0.85
