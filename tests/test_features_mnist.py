"""The mnist feature network: shipped weights, their stated accuracy, loading checks, auto choice."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from gen_eval.datasets.mnist import load_mnist_split
from gen_eval.errors import GenEvalError
from gen_eval.features import choose_extractor, create_extractor
from gen_eval.features.cache import tensors_checksum
from gen_eval.features.mnist import DEFAULT_WEIGHTS, MnistExtractor, load_mnist_net, retrain_mnist_weights
from gen_eval.nets.small_cnn import MNIST_SPEC, SmallCNN

RETRAIN = "gen-eval train-features mnist"


@pytest.fixture(scope="module")
def extractor() -> MnistExtractor:
    return MnistExtractor()


def test_shipped_accuracy_is_the_stated_one(extractor: MnistExtractor) -> None:
    images, labels = load_mnist_split("test")
    logits = extractor(torch.tensor(images))["logits"]
    accuracy = float(np.mean(logits.argmax(1).numpy() == labels))
    assert accuracy >= 0.97
    record = json.loads(DEFAULT_WEIGHTS.with_suffix(".json").read_text())
    with safe_open(str(DEFAULT_WEIGHTS), framework="pt") as handle:
        meta = handle.metadata()
    assert record["test_accuracy"] == pytest.approx(accuracy, abs=1e-12)
    assert float(meta["test_accuracy"]) == pytest.approx(accuracy, abs=1e-12)
    assert record["weights_sha256"] == meta["weights_sha256"] == extractor.weights_fingerprint
    assert DEFAULT_WEIGHTS.stat().st_size < 2_000_000
    assert f"{accuracy:.1%}" in MnistExtractor.description


def test_features_shapes_and_batch_independence(extractor: MnistExtractor) -> None:
    images = torch.tensor(load_mnist_split("test")[0][:40])
    out = extractor(images)
    assert out["features"].shape == (40, MNIST_SPEC.feature_dim) and out["logits"].shape == (40, 10)
    assert torch.allclose(extractor(images[5:6])["features"], out["features"][5:6], atol=1e-5)
    # RGB copies of a grey digit read as the grey digit (the luma weights sum to 1).
    assert torch.allclose(extractor(images.repeat(1, 3, 1, 1))["features"], out["features"], atol=1e-3)
    assert isinstance(create_extractor("mnist"), MnistExtractor)


@pytest.mark.parametrize("kind", ["wrong shapes", "altered tensor", "garbage"])
def test_loading_refuses_a_wrong_file(tmp_path: Path, kind: str) -> None:
    path = tmp_path / "mnist.safetensors"
    if kind == "wrong shapes":
        from gen_eval.nets.small_cnn import DIGITS_SPEC

        save_file(SmallCNN(DIGITS_SPEC).state_dict(), str(path))
    elif kind == "altered tensor":
        state = load_file(str(DEFAULT_WEIGHTS))
        with safe_open(str(DEFAULT_WEIGHTS), framework="pt") as handle:
            meta = handle.metadata()
        state["head.bias"] = state["head.bias"] + 0.01
        save_file(state, str(path), metadata=meta)
    else:
        path.write_bytes(b"\x00" * 40)
    with pytest.raises(GenEvalError, match=RETRAIN) as info:
        load_mnist_net(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)
    missing = tmp_path / "absent.safetensors"
    assert MnistExtractor.availability(weights_path=missing) == (False, f"missing: run {RETRAIN}")


def test_one_epoch_training_is_reproducible(tmp_path: Path) -> None:
    first = retrain_mnist_weights(tmp_path / "a.safetensors", epochs=1, seed=5)
    second = retrain_mnist_weights(tmp_path / "b.safetensors", epochs=1, seed=5)
    assert first["weights_sha256"] == second["weights_sha256"]
    assert (
        tensors_checksum(load_mnist_net(tmp_path / "a.safetensors").state_dict()) == first["weights_sha256"]
    )
    assert json.loads((tmp_path / "a.json").read_text())["test_accuracy"] == first["test_accuracy"]
    # One epoch already reads most digits: a net that learnt nothing would score about 0.1.
    assert first["test_accuracy"] > 0.8 and first["epochs"] == 1


def test_auto_features_pick_mnist_against_mnist_and_its_tasks() -> None:
    from gen_eval.sources import open_source

    reference = open_source("mnist:test")
    assert choose_extractor(reference, reference) == "mnist"
    digits = open_source("digits:test")
    assert choose_extractor(digits, digits) == "digits"
    task = pytest.importorskip("gen_eval.sources.task")
    paired = task.open_task_source("task:sr4", limit=8)
    assert choose_extractor(paired, paired) == "mnist"
