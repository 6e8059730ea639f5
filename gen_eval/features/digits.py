"""A small CNN trained on the bundled 8x8 digits, used as the feature extractor for them.

Inception features are meaningless on 8x8 grey digits, so FID and friends on the digits
data use the 64-d penultimate layer of this net instead. Its weights ship with the package
(``weights/digits.safetensors``) and ``gen-eval train-features digits`` rebuilds them. The
network, training loop and weight files are the shared ones of :mod:`gen_eval.nets.small_cnn`
and :mod:`gen_eval.features.small_cnn_io` (:data:`~gen_eval.nets.small_cnn.DIGITS_SPEC`).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch

from gen_eval.datasets.digits import load_digits_split
from gen_eval.features.small_cnn_io import (
    SmallCNNExtractor,
    load_net,
    retrain_hint,
    save_net,
    train_feature_net,
)
from gen_eval.nets.small_cnn import DIGITS_SPEC, SmallCNN, net_input

DEFAULT_WEIGHTS = Path(__file__).parent / "weights" / "digits.safetensors"
RETRAIN_HINT = retrain_hint(DIGITS_SPEC)
DEFAULT_EPOCHS = DIGITS_SPEC.default_epochs
NUM_VAL = DIGITS_SPEC.num_val


class DigitsNet(SmallCNN):
    """CNN for 8x8 grey digits: three 3x3 convs, one 2x2 max-pool, a 64-d feature layer, 10 logits."""

    def __init__(self) -> None:
        super().__init__(DIGITS_SPEC)


def train_digits_net(
    epochs: int = DEFAULT_EPOCHS, seed: int = 0, progress: Callable[[int, float], None] | None = None
) -> tuple[SmallCNN, dict]:
    """Train the digits net on the digits train split, reproducibly on the CPU.

    ``NUM_VAL`` train images are held out; the weights of the epoch with the best validation
    accuracy (ties: lower validation loss) are kept. The test split is only scored, never used
    for a decision. See :func:`gen_eval.features.small_cnn_io.train_feature_net`.
    """
    return train_feature_net(DIGITS_SPEC, load_digits_split, epochs, seed, progress)


def save_digits_weights(net: SmallCNN, path: str | Path, info: dict) -> None:
    """Write the net's weights as safetensors, with ``info`` and the tensors' checksum as metadata."""
    save_net(net, path, info)  # the returned record (with the checksum) is retrain's


def load_digits_net(path: str | Path = DEFAULT_WEIGHTS) -> SmallCNN:
    """Load the digits net (eval mode, CPU); a one-line GenEvalError if the file is missing or wrong."""
    return load_net(DIGITS_SPEC, path)


def retrain_digits_weights(
    out: Path = DEFAULT_WEIGHTS,
    epochs: int = DEFAULT_EPOCHS,
    seed: int = 0,
    progress: Callable[[int, float], None] | None = None,
) -> dict:
    """Train the digits net and save it to ``out``; what ``gen-eval train-features digits`` runs.

    Returns
    -------
    dict
        The training info, also stored as the file's metadata.
    """
    net, info = train_digits_net(epochs=epochs, seed=seed, progress=progress)
    return save_net(net, out, info)


def digits_net_input(batch: torch.Tensor) -> torch.Tensor:
    """Float32 (N, 1, 8, 8) in [0, 1] from validated uint8 (N, 1 or 3, H, W) images (luma, resize)."""
    return net_input(batch, DIGITS_SPEC.size)


class DigitsExtractor(SmallCNNExtractor):
    """64-d penultimate features and 10 logits of the digits net."""

    name = "digits"
    spec = DIGITS_SPEC
    default_weights = DEFAULT_WEIGHTS
    description = "small CNN trained on the bundled 8x8 digits; 64-d penultimate features"
