"""Tests of the digits CNN feature extractor and its shipped weights."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from gen_eval.datasets.digits import load_digits_split
from gen_eval.errors import GenEvalError
from gen_eval.features import create_extractor
from gen_eval.features.cache import tensors_checksum
from gen_eval.features.digits import (
    DEFAULT_WEIGHTS,
    DigitsExtractor,
    load_digits_net,
    retrain_digits_weights,
    train_digits_net,
)

RETRAIN = "gen-eval train-features digits"


@pytest.fixture(scope="module")
def extractor() -> DigitsExtractor:
    return DigitsExtractor()


def _split(name: str) -> tuple[torch.Tensor, np.ndarray]:
    images, labels = load_digits_split(name)
    # torch.tensor copies: the split arrays are read-only and torch.from_numpy would warn.
    return torch.tensor(images), np.asarray(labels)


def _predict(extractor: DigitsExtractor, images: torch.Tensor) -> np.ndarray:
    return extractor(images)["logits"].argmax(1).numpy()


def test_shipped_weights_small_and_registered() -> None:
    assert DEFAULT_WEIGHTS.is_file()
    assert DEFAULT_WEIGHTS.stat().st_size < 1_000_000
    ok, detail = DigitsExtractor.availability()
    assert ok and detail == str(DEFAULT_WEIGHTS)
    assert isinstance(create_extractor("digits"), DigitsExtractor)


def test_shipped_net_accuracy_matches_metadata(extractor: DigitsExtractor) -> None:
    images, labels = _split("test")
    accuracy = float(np.mean(_predict(extractor, images) == labels))
    assert accuracy >= 0.97
    with safe_open(str(DEFAULT_WEIGHTS), framework="pt") as handle:
        meta = handle.metadata()
    assert float(meta["test_accuracy"]) == pytest.approx(accuracy, abs=1e-9)
    assert int(meta["seed"]) == 0 and int(meta["epochs"]) >= 1
    assert json.loads(meta["config"])["num_val"] > 0
    assert len(json.loads(meta["epoch_losses"])) == int(meta["epochs"])


def test_features_separate_classes(extractor: DigitsExtractor) -> None:
    from sklearn.linear_model import LogisticRegression
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    train_images, train_labels = _split("train")
    test_images, test_labels = _split("test")
    train_features = extractor(train_images)["features"].numpy()
    test_features = extractor(test_images)["features"].numpy()
    nearest = KNeighborsClassifier(n_neighbors=1).fit(train_features, train_labels)
    assert nearest.score(test_features, test_labels) >= 0.97
    linear = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    assert linear.fit(train_features, train_labels).score(test_features, test_labels) >= 0.97


def test_extract_shapes_dtypes_and_determinism(extractor: DigitsExtractor) -> None:
    images, _ = _split("test")
    first, second = extractor(images[:50]), extractor(images[:50])
    assert set(first) == {"features", "logits"} == set(extractor.feature_names)
    assert first["features"].shape == (50, 64) and first["logits"].shape == (50, 10)
    assert first["features"].dtype == first["logits"].dtype == torch.float32
    assert torch.equal(first["features"], second["features"])
    assert torch.equal(first["logits"], second["logits"])
    # Rows do not depend on what else is in the batch (no batch statistics in eval mode).
    assert torch.allclose(extractor(images[10:11])["features"], first["features"][10:11], atol=1e-5)
    assert extractor.weights_fingerprint == tensors_checksum(load_digits_net(DEFAULT_WEIGHTS).state_dict())
    assert extractor.describe()["preprocessing"] == DigitsExtractor.preprocessing


def test_three_channel_and_larger_images(extractor: DigitsExtractor) -> None:
    images, _ = _split("test")
    grey = extractor(images)
    # Equal channels give back the grey image: the luma weights sum to 1.
    rgb = extractor(images.repeat(1, 3, 1, 1))
    assert torch.allclose(rgb["features"], grey["features"], atol=1e-4)
    big = images.repeat_interleave(2, dim=2).repeat_interleave(2, dim=3).repeat(1, 3, 1, 1)
    assert big.shape[1:] == (3, 16, 16)
    agreement = np.mean(_predict(extractor, big) == grey["logits"].argmax(1).numpy())
    assert agreement >= 0.95


def test_preprocessing_is_luma_then_antialiased_bilinear(extractor: DigitsExtractor) -> None:
    # Pins the documented maths: BT.601 luma on 0..255, antialiased bilinear resize, then /255.
    rgb = torch.randint(0, 256, (4, 3, 12, 12), generator=torch.Generator().manual_seed(0), dtype=torch.uint8)
    weights = torch.tensor([0.299, 0.587, 0.114])[None, :, None, None]
    grey = (rgb.float() * weights).sum(1, keepdim=True)
    small = torch.nn.functional.interpolate(grey, size=(8, 8), mode="bilinear", antialias=True)
    with torch.no_grad():
        expected = extractor.net(small / 255.0)[0]
    assert torch.allclose(extractor(rgb)["features"], expected, atol=1e-5)


@pytest.mark.parametrize(
    "bad",
    [
        torch.zeros(2, 2, 8, 8, dtype=torch.uint8),
        torch.zeros(2, 4, 8, 8, dtype=torch.uint8),
        torch.zeros(2, 8, 8, dtype=torch.uint8),
        torch.zeros(2, 1, 8, 8, dtype=torch.float32),
    ],
    ids=["2-channel", "4-channel", "3-d", "float"],
)
def test_rejects_bad_batches(extractor: DigitsExtractor, bad: torch.Tensor) -> None:
    with pytest.raises(GenEvalError, match="uint8 images shaped"):
        extractor(bad)


def test_missing_weights(tmp_path: Path) -> None:
    missing = tmp_path / "nope.safetensors"
    assert DigitsExtractor.availability(weights_path=missing) == (
        False,
        "missing: run gen-eval train-features digits",
    )
    with pytest.raises(GenEvalError, match=RETRAIN) as info:
        DigitsExtractor(weights_path=missing)
    assert str(missing) in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize("kind", ["truncated", "garbage", "wrong tensors"])
def test_corrupt_weights(tmp_path: Path, kind: str) -> None:
    path = tmp_path / "digits.safetensors"
    if kind == "truncated":
        data = DEFAULT_WEIGHTS.read_bytes()
        path.write_bytes(data[: len(data) // 2])
    elif kind == "garbage":
        path.write_bytes(b"not a safetensors file")
    else:
        save_file({"weight": torch.zeros(3)}, str(path))
    with pytest.raises(GenEvalError, match=RETRAIN) as info:
        load_digits_net(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)
    with pytest.raises(GenEvalError, match=RETRAIN):
        DigitsExtractor(weights_path=path)


def test_one_epoch_training_smoke_and_reproducible(tmp_path: Path) -> None:
    out = tmp_path / "weights" / "digits.safetensors"
    calls: list[tuple[int, float]] = []
    rng_before = torch.get_rng_state()
    info = retrain_digits_weights(out, epochs=1, seed=3, progress=lambda e, loss: calls.append((e, loss)))
    # Training restores the caller's global state.
    assert torch.equal(torch.get_rng_state(), rng_before)
    assert not torch.are_deterministic_algorithms_enabled()
    assert len(calls) == 1 and calls[0][0] == 1 and calls[0][1] > 0
    for key in ("train_accuracy", "val_accuracy", "test_accuracy"):
        assert 0.0 <= info[key] <= 1.0
    assert info["epochs"] == 1 and info["seed"] == 3 and info["wall_time_s"] > 0
    assert info["epoch_losses"] == [pytest.approx(calls[0][1], abs=1e-6)]
    with safe_open(str(out), framework="pt") as handle:
        assert float(handle.metadata()["test_accuracy"]) == info["test_accuracy"]
    loaded = DigitsExtractor(weights_path=out)
    assert loaded.weights_fingerprint != DigitsExtractor().weights_fingerprint
    # Same seed, same weights, bit for bit; the fingerprint ignores the metadata (wall time).
    again_path = tmp_path / "again.safetensors"
    retrain_digits_weights(again_path, epochs=1, seed=3)
    again = DigitsExtractor(weights_path=again_path)
    for key, value in again.net.state_dict().items():
        assert torch.equal(value, loaded.net.state_dict()[key]), key
    assert again.weights_fingerprint == loaded.weights_fingerprint


def test_training_rejects_zero_epochs() -> None:
    with pytest.raises(GenEvalError, match="epochs"):
        train_digits_net(epochs=0)
