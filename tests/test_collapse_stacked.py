"""Tests of stacked digits: the dataset, its per-channel extractor, and the 1,000-mode count."""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np
import pytest
import torch

from gen_eval.collapse.stacked import StackedModes, stacked_mode_count, triple_labels
from gen_eval.datasets import get_dataset
from gen_eval.datasets.digits import load_digits_split
from gen_eval.datasets.stacked_digits import load_stacked_digits, stack_digits
from gen_eval.errors import GenEvalError
from gen_eval.features import create_extractor
from gen_eval.features.digits import DigitsExtractor
from gen_eval.features.stacked_digits import StackedDigitsExtractor


@pytest.fixture(scope="module")
def extractor() -> Iterator[StackedDigitsExtractor]:
    # One thread: the net is tiny, and spin-waiting threads only slow it on a shared machine.
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield create_extractor("stacked_digits")
    torch.set_num_threads(old)


@pytest.fixture(scope="module")
def test_split_logits(extractor: StackedDigitsExtractor) -> tuple[torch.Tensor, np.ndarray]:
    images, labels = load_stacked_digits("test")
    return extractor(torch.tensor(images))["channel_logits"], np.asarray(labels)


def test_dataset_deterministic_shapes_and_labels() -> None:
    for split, pool in (("train", "train"), ("test", "test")):
        images, labels = load_stacked_digits(split)
        assert images.shape == (10_000, 3, 8, 8) and images.dtype == np.uint8
        assert labels.shape == (10_000,) and labels.dtype == np.int64
        assert labels.min() >= 0 and labels.max() <= 999
        # Regenerating from the seed (not the lru_cache) gives the same arrays.
        again = stack_digits(*load_digits_split(pool), 10_000, {"train": 0, "test": 1}[split])
        np.testing.assert_array_equal(again[0], images)
        np.testing.assert_array_equal(again[1], labels)
        # Every channel is a digit image of that split, of the class the label says.
        digits, classes = load_digits_split(pool)
        flat = digits.reshape(len(digits), -1)
        for c, place in enumerate((100, 10, 1)):
            matches = (images[:200, c].reshape(200, 1, -1) == flat[None]).all(-1)  # (200, M)
            assert matches.any(1).all()
            found = [set(classes[row]) for row in matches]
            assert all((labels[i] // place) % 10 in found[i] for i in range(200))
    train, _ = load_stacked_digits("train")
    test, _ = load_stacked_digits("test")
    assert not np.array_equal(train[:100], test[:100])


def test_dataset_registered_and_class_balanced() -> None:
    info = get_dataset("stacked_digits")
    assert info.version == "stacked_digits-v1" and info.label_name == "triple"
    assert info.size("test") == 10_000
    data, labels = info.read("test", 10, 20)
    np.testing.assert_array_equal(data, load_stacked_digits("test")[0][10:20])
    assert data.flags.writeable
    _, labels = load_stacked_digits("test")
    for place in (100, 10, 1):
        # Classes are drawn first, so each channel's class counts are binomial(10000, 0.1): 1000 +- 30.
        counts = np.bincount((labels // place) % 10, minlength=10)
        assert np.all(np.abs(counts - 1000) < 120)


def test_open_source_and_auto_features() -> None:
    from gen_eval.evaluation import choose_features
    from gen_eval.sources import open_source

    source = open_source("stacked_digits:test", num_samples=7)
    assert len(source) == 7 and source.sample_shape == (3, 8, 8) and source.data_kind == "image"
    assert choose_features(source, source) == "stacked_digits"
    assert choose_features(source, open_source("digits:test")) == "digits"


def test_extractor_layout_matches_digits_net_per_channel(extractor: StackedDigitsExtractor) -> None:
    images = torch.tensor(load_stacked_digits("test")[0][:64])
    out = extractor(images)
    assert out["features"].shape == (64, 192) and out["channel_logits"].shape == (64, 30)
    assert extractor.describe()["feature_names"] == ["features", "channel_logits"]
    plain = DigitsExtractor()
    for c in range(3):
        single = plain(images[:, c : c + 1])
        torch.testing.assert_close(out["features"][:, 64 * c : 64 * (c + 1)], single["features"])
        torch.testing.assert_close(out["channel_logits"][:, 10 * c : 10 * (c + 1)], single["logits"])


def test_extractor_refuses_other_channel_counts(extractor: StackedDigitsExtractor) -> None:
    one_channel = torch.tensor(load_digits_split("test")[0][:4])
    with pytest.raises(GenEvalError, match=r"\(N, 3, H, W\)"):
        extractor(one_channel)
    with pytest.raises(GenEvalError, match="uint8"):
        extractor(torch.zeros(2, 3, 8, 8))


def test_triple_labels_layouts() -> None:
    rng = np.random.default_rng(0)
    logits = rng.standard_normal((50, 3, 10))
    expected = logits.argmax(2) @ np.array([100, 10, 1])
    np.testing.assert_array_equal(triple_labels(logits), expected)
    np.testing.assert_array_equal(triple_labels(torch.as_tensor(logits.reshape(50, 30))), expected)
    with pytest.raises(ValueError, match="channel logits"):
        triple_labels(np.zeros((5, 10)))


def test_extractor_reads_true_triples(test_split_logits: tuple[torch.Tensor, np.ndarray]) -> None:
    logits, labels = test_split_logits
    predicted = triple_labels(logits)
    per_digit = np.mean(
        logits.reshape(-1, 3, 10).argmax(2).numpy()
        == np.stack([labels // 100, labels // 10 % 10, labels % 10], 1)
    )
    # Measured: 98.78% of triples and 99.59% of digits read right on the stacked test split.
    assert np.mean(predicted == labels) > 0.97
    assert per_digit > 0.99


def test_true_split_shows_all_modes_near_kl_floor(test_split_logits: tuple[torch.Tensor, np.ndarray]) -> None:
    logits, _ = test_split_logits
    result = stacked_mode_count(logits)
    assert isinstance(result, StackedModes)
    assert result.num_samples == 10_000 and result.num_modes == 1000 and len(result.counts) == 1000
    assert result.kl_floor == pytest.approx(999 / 20_000)
    assert result.expected_modes == pytest.approx(1000 * (1 - 0.999**10_000))
    # Measured: 999 modes read (999 drawn), KL 0.0515 vs floor 0.0500; a simulated uniform
    # multinomial at this n gives KL 0.0511 +- 0.0023.
    assert result.modes >= 995
    assert result.kl_floor * 0.9 < result.kl_to_uniform < result.kl_floor * 1.2
    assert result.to_dict()["modes"] == result.modes


def test_planted_collapse_onto_five_classes(extractor: StackedDigitsExtractor) -> None:
    images, labels = load_digits_split("test")
    low = labels < 5
    stacked, triples = stack_digits(images[low], labels[low], 1500, random_state=0)
    assert len(np.unique(triples)) == 125
    result = stacked_mode_count(extractor(torch.tensor(stacked))["channel_logits"])
    # Measured at n = 1500: exactly the 125 planted triples read; KL 2.12 = log(1000/125) + ~124/(2n).
    assert result.modes <= 125 + 3
    assert result.modes >= 120
    assert result.kl_to_uniform == pytest.approx(math.log(8), abs=0.1)


def test_planted_sampler_repeating_fifty_triples(test_split_logits: tuple[torch.Tensor, np.ndarray]) -> None:
    logits, labels = test_split_logits
    _, first = np.unique(labels, return_index=True)
    chosen = np.sort(first)[:50]  # 50 stacked images with 50 distinct true triples
    repeated = logits[np.tile(chosen, 200)]  # a sampler that only ever emits these 50
    result = stacked_mode_count(repeated)
    read = np.unique(triple_labels(logits[chosen]))
    assert result.modes == len(read) and 48 <= result.modes <= 50
    if result.modes == 50:
        assert result.kl_to_uniform == pytest.approx(math.log(20), abs=1e-9)


def test_evaluate_end_to_end_uses_stacked_extractor() -> None:
    from gen_eval.evaluation import evaluate

    evaluation = evaluate(
        "stacked_digits:train",
        "stacked_digits:test",
        num_samples=500,
        num_reference=500,
        num_resamples=0,
        cache_dir=None,
    )
    assert evaluation.manifest["extractor"]["name"] == "stacked_digits"
    assert {"fid", "kid", "precision", "recall"} <= set(evaluation.metrics)
    assert "is" not in evaluation.metrics  # three 10-way classifiers are not one 30-way one
    assert np.isfinite(evaluation.metrics["fid"].value)
    modes = stacked_mode_count(evaluation.features["generated"]["channel_logits"])
    assert modes.num_samples == 500 and modes.modes > 350  # 1000 (1 - 0.999^500) = 393.6 expected
