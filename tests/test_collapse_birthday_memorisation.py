"""Birthday-paradox support test and memorisation check on digits features and ring8 points."""

import json
import math

import numpy as np
import pytest
import torch

from gen_eval.collapse import birthday, memorisation
from gen_eval.collapse.birthday import birthday_test
from gen_eval.collapse.memorisation import memorisation_check, nearest_neighbours
from gen_eval.datasets.digits import load_digits_split
from gen_eval.datasets.mixtures import load_mixture
from gen_eval.features import create_extractor


def collision_law(s: int, support: int) -> float:
    return 1 - math.exp(-s * (s - 1) / (2 * support))


@pytest.fixture(scope="module")
def digits():
    """Images and 64-d digits-classifier features of each split, computed once."""
    old = torch.get_num_threads()
    torch.set_num_threads(1)  # a tiny net: threads only spin-wait on a busy machine
    extractor = create_extractor("digits")
    out = {}
    for split in ("train", "test", "all"):
        images = load_digits_split(split)[0]
        with torch.no_grad():
            out[split] = (images, extractor(torch.as_tensor(images))["features"])
    out["extractor"] = extractor
    yield out
    torch.set_num_threads(old)


def sampler(features: torch.Tensor, num_distinct: int, num_draws: int, seed: int):
    """Draws with replacement from ``num_distinct`` of the images: a model with that support."""
    rng = np.random.default_rng(seed)
    pool = rng.choice(len(features), num_distinct, replace=False)
    source = pool[rng.integers(num_distinct, size=num_draws)]
    return features[source], source


def test_small_support_is_detected_and_sized(digits):
    gen, source = sampler(digits["all"][1], 50, 2000, seed=1)
    result = birthday_test(gen, digits["train"][1])
    assert result.batch_sizes == [8, 16, 24, 32] and result.batch_size == 32
    assert result.small_support and result.duplicate_rate == 1.0
    # At s = 8 the law gives 0.43: four standard errors of 200 batches either side.
    expected = collision_law(8, 50)
    assert abs(result.duplicate_rates[0] - expected) < 4 * math.sqrt(expected * (1 - expected) / 200)
    assert 25 <= result.support_estimate <= 100
    assert max(result.reference_duplicate_rates) <= 0.03
    # The closest pairs are repeats of one image: two indices, one source, distance 0.
    assert len(result.closest_pairs) == 8
    assert len({(i, j) for i, j, _ in result.closest_pairs}) == 8
    for i, j, d in result.closest_pairs:
        assert i < j and source[i] == source[j] and d == 0.0


def test_large_support_is_not_flagged_and_follows_the_law(digits):
    gen, _ = sampler(digits["all"][1], 1700, 10_000, seed=2)
    result = birthday_test(gen, digits["train"][1], num_batches=1000)
    assert not result.small_support
    # Near-duplicate distinct images add about the reference rate (< 1%) on top of the law.
    for s, rate, ref_rate in zip(
        result.batch_sizes, result.duplicate_rates, result.reference_duplicate_rates, strict=True
    ):
        expected = collision_law(s, 1700)
        assert abs(rate - expected) <= 4 * math.sqrt(expected * (1 - expected) / 1000) + ref_rate + 0.005
    assert 0.2 <= result.duplicate_rate <= 0.31  # the law: 0.253
    assert 1700 / 1.5 <= result.support_estimate <= 1700 * 1.5
    assert any("s^2" in w for w in result.warnings)


@pytest.mark.parametrize("split", ["test", "train"])
def test_real_data_rarely_has_duplicates(digits, split):
    result = birthday_test(digits[split][1], digits["train"][1])
    assert not result.small_support
    assert max(result.duplicate_rates) <= 0.03 and max(result.reference_duplicate_rates) <= 0.03
    assert all(d > 1.0 for _, _, d in result.closest_pairs)  # no repeats inside digits
    features = digits[split][1]
    for i, j, d in result.closest_pairs:  # the pairs' indices and distances agree
        assert d == pytest.approx(float((features[i] - features[j]).norm()), rel=1e-5)
    assert [d for _, _, d in result.closest_pairs] == sorted(d for _, _, d in result.closest_pairs)
    assert result.support_estimate is None or result.support_estimate > 10_000


def test_digits_has_no_exact_repeats(digits):
    images = digits["all"][0].reshape(len(digits["all"][0]), -1)
    assert len(np.unique(images, axis=0)) == len(images)


def test_repeats_in_the_reference_keep_the_threshold(digits):
    """13% exact repeats would put the 1% quantile at 0; they are left out of it and warned about."""
    train = digits["train"][1]
    tied = torch.cat([train, train[:100]])
    plain = birthday_test(digits["test"][1], train)
    result = birthday_test(digits["test"][1], tied)
    assert any("exact repeat" in w for w in result.warnings)
    assert result.threshold == pytest.approx(plain.threshold, rel=0.05)
    # Repeats in the generated set count as duplicates whatever the threshold.
    gen, _ = sampler(digits["all"][1], 50, 2000, seed=1)
    assert birthday_test(gen, tied).small_support


def test_birthday_chunking_and_clipping(digits, monkeypatch):
    gen, _ = sampler(digits["all"][1], 200, 1000, seed=3)
    reference = digits["train"][1]
    whole = birthday_test(gen, reference, num_batches=50)
    monkeypatch.setattr(birthday, "MEMORY_BUDGET", 20_000)  # a few batches per cdist call
    monkeypatch.setattr(memorisation, "MEMORY_BUDGET", 50_000)
    chunked = birthday_test(gen, reference, num_batches=50)
    assert chunked.duplicate_rates == whole.duplicate_rates
    assert chunked.closest_pairs == whole.closest_pairs
    assert chunked.threshold == pytest.approx(whole.threshold, rel=1e-6)

    small = birthday_test(gen[:40], reference, num_batches=20)
    assert small.batch_sizes == [8, 16, 20] and small.batch_size == 20
    assert any("clipped to 20" in w for w in small.warnings)


def test_birthday_to_dict_and_bad_input(digits):
    gen, _ = sampler(digits["all"][1], 50, 200, seed=4)
    result = birthday_test(gen.numpy(), digits["test"][1].numpy(), num_batches=20)
    data = json.loads(json.dumps(result.to_dict()))
    assert data["small_support"] is True and len(data["duplicate_rates"]) == 4
    assert data["closest_pairs"][0][2] == 0.0
    ref = digits["test"][1]
    with pytest.raises(ValueError, match="2-D"):
        birthday_test(gen[0], ref)
    with pytest.raises(ValueError, match="at least 4 samples"):
        birthday_test(gen[:3], ref)
    with pytest.raises(ValueError, match="differ in dimension"):
        birthday_test(gen[:, :10], ref)
    with pytest.raises(ValueError, match="batch sizes >= 2"):
        birthday_test(gen, ref, batch_sizes=(1, 8))
    with pytest.raises(ValueError, match="threshold_quantile"):
        birthday_test(gen, ref, threshold_quantile=0.0)


def noisy_copies(images: np.ndarray, amplitude: int, seed: int) -> np.ndarray:
    noise = np.random.default_rng(seed).integers(-amplitude, amplitude + 1, size=images.shape)
    return np.clip(images.astype(np.int64) + noise, 0, 255).astype(np.uint8)


def test_noisy_training_copies_are_flagged(digits):
    images, train = digits["train"]
    with torch.no_grad():
        gen = digits["extractor"](torch.as_tensor(noisy_copies(images, 2, seed=0)))["features"]
    result = memorisation_check(gen, train)
    assert result.likely_memorising and result.copy_fraction >= 0.95 and result.p_value < 1e-12
    # Each copy is matched to the training image it was made from, closest first.
    assert len(result.pairs) == 8
    assert all(i == j for i, j, _ in result.pairs)
    assert [d for _, _, d in result.pairs] == sorted(d for _, _, d in result.pairs)
    assert result.nearest_distances.shape == (len(images),)


def test_a_partial_copier_is_flagged(digits):
    """100 noisy copies among the 360 held-out images: 28% copies against a 1% null."""
    images, train = digits["train"]
    with torch.no_grad():
        copies = digits["extractor"](torch.as_tensor(noisy_copies(images[:100], 1, seed=1)))["features"]
    result = memorisation_check(torch.cat([digits["test"][1], copies]), train)
    assert result.likely_memorising and 0.2 <= result.copy_fraction <= 0.35


def test_held_out_digits_are_not_flagged(digits):
    result = memorisation_check(digits["test"][1], digits["train"][1])
    assert not result.likely_memorising
    assert result.null_rate == pytest.approx(0.01, abs=0.002)
    # 360 samples: the null share 0.0104 has a standard error of 0.0054.
    assert result.copy_fraction <= 0.035 and result.p_value > 0.01
    assert all(d > 1.0 for d in result.nearest_distances)


def test_crowding_a_dense_region_is_not_copying(digits):
    """Held-out 0s, 1s and 7s only (collapse without copying) sit close to dense training classes:
    a global distance threshold calls 3% of such samples copies, the local ratio does not."""
    labels = load_digits_split("test")[1]
    crowded = digits["test"][1][torch.as_tensor(np.isin(labels, [0, 1, 7]))]
    result = memorisation_check(crowded, digits["train"][1])
    assert not result.likely_memorising and result.copy_fraction <= 0.03


def test_held_out_ring8_points_are_not_flagged():
    train, _ = load_mixture("ring8", "train")
    test, _ = load_mixture("ring8", "test")
    result = memorisation_check(test, train)
    assert not result.likely_memorising
    # 10,000 samples: four standard errors of a 1% share are 0.004.
    assert abs(result.copy_fraction - 0.01) <= 0.004
    assert result.null_rate == pytest.approx(0.01, abs=0.001)


def test_repeats_in_the_training_set_raise_the_null_rate(digits):
    train = digits["train"][1]
    tied = torch.cat([train, train[:100]])
    result = memorisation_check(digits["test"][1], tied)
    assert any("exact repeat" in w for w in result.warnings)
    assert result.null_rate > 0.13  # the 200 tied samples count as their own copies
    assert not result.likely_memorising


def test_nearest_neighbours_match_brute_force(monkeypatch):
    rng = np.random.default_rng(5)
    keys = rng.normal(size=(300, 7)).astype(np.float32)
    keys[10] = keys[20]  # an exact repeat: each is the other's neighbour at distance 0
    queries = rng.normal(size=(90, 7)).astype(np.float32)
    monkeypatch.setattr(memorisation, "MEMORY_BUDGET", 40_000)  # 11 rows per block
    full = np.linalg.norm(queries[:, None].astype(np.float64) - keys[None], axis=2)
    dist, idx = nearest_neighbours(torch.as_tensor(queries), torch.as_tensor(keys))
    np.testing.assert_array_equal(idx, full.argmin(1))
    np.testing.assert_allclose(dist, full.min(1), rtol=1e-6)
    self_full = np.linalg.norm(keys[:, None].astype(np.float64) - keys[None], axis=2)
    np.fill_diagonal(self_full, np.inf)
    dist, idx = nearest_neighbours(torch.as_tensor(keys), torch.as_tensor(keys), exclude_self=True)
    np.testing.assert_array_equal(idx, self_full.argmin(1))
    assert dist[10] == dist[20] == 0.0 and idx[10] == 20


def test_memorisation_to_dict_and_bad_input(digits):
    result = memorisation_check(digits["test"][1].numpy()[:20], digits["train"][1].numpy())
    data = json.loads(json.dumps(result.to_dict()))
    assert "nearest_distances" not in data and data["num_generated"] == 20
    assert "nearest_distances" not in repr(result)
    assert any("too few" in w or "only a copy fraction" in w for w in result.warnings)
    train = digits["train"][1]
    with pytest.raises(ValueError, match="2-D"):
        memorisation_check(train[None], train)
    with pytest.raises(ValueError, match="at least 3 samples"):
        memorisation_check(train, train[:1])
    with pytest.raises(ValueError, match="differ in dimension"):
        memorisation_check(train[:, :3], train)
    with pytest.raises(ValueError, match="quantile"):
        memorisation_check(train, train, quantile=0.5)
    bad = train.clone()
    bad[0, 0] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        memorisation_check(bad, train)
