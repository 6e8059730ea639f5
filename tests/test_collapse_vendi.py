"""Tests of the Vendi score: closed forms, invariances, and collapse on the digits features."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gen_eval.collapse.vendi import VendiResult, vendi_comparison, vendi_score
from gen_eval.datasets.digits import load_digits_split
from gen_eval.features import create_extractor


@pytest.fixture(scope="module")
def digits_features() -> dict[str, tuple[torch.Tensor, np.ndarray]]:
    extractor = create_extractor("digits")
    out = {}
    for split in ("train", "test"):
        images, labels = load_digits_split(split)
        out[split] = (extractor(torch.as_tensor(images))["features"], np.asarray(labels))
    return out


def test_identical_vectors_score_one() -> None:
    x = np.tile([0.3, -1.2, 5.0, 2.0], (7, 1))
    assert vendi_score(x, centre=np.zeros(4)) == pytest.approx(1.0, abs=1e-12)
    # Centred on their own mean they all sit at the centre: still one point, not seven directions.
    assert vendi_score(x) == pytest.approx(1.0, abs=1e-12)


@pytest.mark.parametrize("n", [1, 5, 40])
def test_orthogonal_unit_vectors_score_n(n: int) -> None:
    eye = np.eye(n)
    assert vendi_score(eye, centre=np.zeros(n)) == pytest.approx(n, rel=1e-10)
    # Own-mean centring makes the n vectors a simplex (cosine -1/(n-1)): K/n has n-1 eigenvalues 1/(n-1).
    if n > 1:
        assert vendi_score(eye) == pytest.approx(n - 1, rel=1e-10)


@pytest.mark.parametrize(("k", "size"), [(2, 3), (4, 10), (7, 5)])
def test_equal_orthogonal_clusters_score_k(k: int, size: int) -> None:
    rng = np.random.default_rng(0)
    directions = np.linalg.qr(rng.standard_normal((12, k)))[0].T  # k orthonormal rows in R^12
    scales = rng.uniform(0.5, 3.0, size=(k * size, 1))  # cosine ignores length within a cluster
    x = np.repeat(directions, size, axis=0) * scales
    assert vendi_score(x, centre=np.zeros(12)) == pytest.approx(k, rel=1e-10)


def test_gram_side_does_not_matter() -> None:
    rng = np.random.default_rng(1)
    wide = rng.standard_normal((20, 50))  # n < D: the n x n Gram
    tall = rng.standard_normal((50, 20))  # n > D: the D x D Gram
    for x in (wide, tall):
        unit = (x - x.mean(0)) / np.linalg.norm(x - x.mean(0), axis=1, keepdims=True)
        eig = np.clip(np.linalg.eigvalsh(unit @ unit.T / len(x)), 0, None)
        eig = eig[eig > 0]
        assert vendi_score(x) == pytest.approx(np.exp(-(eig * np.log(eig)).sum()), rel=1e-9)


def test_invariant_to_scaling() -> None:
    rng = np.random.default_rng(2)
    x = rng.standard_normal((200, 16)) + 3.0
    base = vendi_score(x)
    assert vendi_score(1e-3 * x) == pytest.approx(base, rel=1e-9)
    assert vendi_score(250.0 * x) == pytest.approx(base, rel=1e-9)
    ref = rng.standard_normal((300, 16))
    first = vendi_comparison(x, ref)
    scaled = vendi_comparison(7.0 * x, 7.0 * ref)
    assert scaled.generated == pytest.approx(first.generated, rel=1e-9)
    assert scaled.reference == pytest.approx(first.reference, rel=1e-9)


def test_accepts_tensors_and_uint8_images() -> None:
    images, _ = load_digits_split("test")
    flat = images.reshape(len(images), -1).astype(np.float64)
    assert vendi_score(images) == pytest.approx(vendi_score(flat), rel=1e-12)
    assert vendi_score(torch.as_tensor(images)) == pytest.approx(vendi_score(flat), rel=1e-12)


def test_comparison_uses_equal_n_and_reference_centre() -> None:
    rng = np.random.default_rng(3)
    gen, ref = rng.standard_normal((900, 8)), rng.standard_normal((500, 8)) + 1.0
    result = vendi_comparison(gen, ref, max_samples=400, random_state=5)
    assert isinstance(result, VendiResult)
    assert result.num_samples == 400
    assert result.ratio == pytest.approx(result.generated / result.reference)
    assert "reference" in result.centring
    assert result.to_dict()["num_samples"] == 400
    assert vendi_comparison(gen, ref, max_samples=400, random_state=5) == result  # deterministic
    assert vendi_comparison(gen, ref).num_samples == 500


def test_collapse_away_from_reference_mean_scores_low() -> None:
    # A tight blob far from the reference: centred on its own mean it would look as diverse as
    # the reference; in the reference's frame all its vectors point the same way.
    rng = np.random.default_rng(4)
    ref = rng.standard_normal((500, 10))
    blob = rng.standard_normal((500, 10)) * 0.1 + 5.0
    assert vendi_score(blob) == pytest.approx(vendi_score(ref), rel=0.1)
    result = vendi_comparison(blob, ref)
    assert result.generated < 1.5 and result.ratio < 0.2


def test_three_digit_classes_score_clearly_lower(digits_features: dict) -> None:
    train, labels = digits_features["train"]
    test, _ = digits_features["test"]
    result = vendi_comparison(train[np.isin(labels, (0, 1, 2))], test)
    # Measured: generated 5.34, reference 9.74, ratio 0.55 at n = 360.
    assert result.num_samples == 360
    assert result.ratio < 0.7
    assert result.reference - result.generated > 3.0


def test_held_out_split_ratio_near_one(digits_features: dict) -> None:
    train, _ = digits_features["train"]
    test, _ = digits_features["test"]
    result = vendi_comparison(test, train)
    # Measured: generated 9.77, reference 9.74, ratio 1.004 at n = 360.
    assert result.num_samples == 360
    assert result.ratio == pytest.approx(1.0, abs=0.1)
