"""Training, weight files and the extractor of the bundled small CNNs (``digits``, ``mnist``).

A feature network is trained on its dataset's train split with :data:`CNNSpec.num_val` images
held out to choose the epoch; the test split is only scored. Weights are safetensors with the
training record as metadata, including ``weights_sha256`` (:func:`tensors_checksum` of the
tensors), which :func:`load_net` checks, so a file whose tensors were altered or swapped is
refused rather than silently giving other features; files written before the checksum was
recorded (the shipped ``digits`` weights) are checked for names and shapes only.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch

from gen_eval.errors import GenEvalError
from gen_eval.features.base import FeatureExtractor
from gen_eval.features.cache import tensors_checksum
from gen_eval.nets.small_cnn import CNNSpec, SmallCNN, accuracy, fit, net_input, preprocessing_text
from gen_eval.reproducible import reproducible

VAL_SPLIT_SEED = 0  # fixed apart from the training seed, so every run validates on the same images
Loader = Callable[[str], tuple[np.ndarray, np.ndarray]]


def retrain_hint(spec: CNNSpec) -> str:
    """The command that rebuilds ``spec``'s weights, as error messages quote it."""
    return f"run `gen-eval train-features {spec.name}`"


def as_float(images: np.ndarray) -> torch.Tensor:
    """uint8 (N, 1, S, S) images as float32 in [0, 1] (the training sets are already grey, S x S)."""
    return torch.from_numpy(np.asarray(images, dtype=np.float32) / 255.0)


def train_feature_net(
    spec: CNNSpec,
    load_split: Loader,
    epochs: int | None = None,
    seed: int = 0,
    progress: Callable[[int, float], None] | None = None,
) -> tuple[SmallCNN, dict]:
    """Train ``spec``'s network on ``load_split("train")``, reproducibly on one CPU thread.

    Parameters
    ----------
    spec : CNNSpec
    load_split : callable
        ``load_split(split) -> (uint8 images (N, 1, S, S), int64 labels)`` for "train" and "test".
    epochs : int, optional
        Passes over the training images (default: ``spec.default_epochs``).
    seed : int
        Seeds weight initialisation, dropout, data order and augmentation.
    progress : callable, optional
        Called as ``progress(epoch, mean_training_loss)`` after each epoch (1-based).

    Returns
    -------
    net : SmallCNN
        The net of the best validation epoch, on the CPU, in eval mode.
    info : dict
        Accuracies (train, val, test), epochs, chosen epoch, seed, wall and CPU time, loss per
        epoch and the training configuration.
    """
    epochs = spec.default_epochs if epochs is None else epochs
    if epochs < 1:
        raise GenEvalError(f"--epochs {epochs} is invalid: train for at least 1 epoch")
    start, cpu_start = time.perf_counter(), time.process_time()
    images, labels = load_split("train")
    x, y = as_float(images), torch.tensor(labels)
    order = torch.randperm(len(y), generator=torch.Generator().manual_seed(VAL_SPLIT_SEED))
    val_idx, fit_idx = order[: spec.num_val], order[spec.num_val :]
    test_images, test_labels = load_split("test")
    with reproducible(seed):
        generator = torch.Generator().manual_seed(seed)
        net = SmallCNN(spec)
        losses, best_epoch = fit(
            net,
            x[fit_idx],
            y[fit_idx],
            epochs=epochs,
            generator=generator,
            validation=(x[val_idx], y[val_idx]),
            progress=progress,
        )
        info = {
            "train_accuracy": accuracy(net, x[fit_idx], y[fit_idx]),
            "val_accuracy": accuracy(net, x[val_idx], y[val_idx]),
            "test_accuracy": accuracy(net, as_float(test_images), torch.tensor(test_labels)),
            "epochs": epochs,
            "best_epoch": best_epoch,
            "seed": seed,
            "wall_time_s": round(time.perf_counter() - start, 3),
            "cpu_time_s": round(time.process_time() - cpu_start, 3),  # less sensitive to a busy machine
            "epoch_losses": [round(v, 6) for v in losses],
            "config": {
                "num_fit": len(fit_idx),
                "num_val": spec.num_val,
                "val_split_seed": VAL_SPLIT_SEED,
                "batch_size": spec.batch_size,
                "optimiser": f"AdamW(lr={spec.learning_rate}, weight_decay={spec.weight_decay}), cosine schedule",
                "augmentation": f"random shift by -{spec.max_shift}..+{spec.max_shift} pixels per axis, zero fill",
                "threads": 1,
                "torch": torch.__version__,
            },
        }
    return net, info


def save_net(net: SmallCNN, path: str | Path, info: dict, sidecar: bool = False) -> dict:
    """Write the net's weights as safetensors with ``info`` and the tensors' checksum as metadata.

    Parameters
    ----------
    net : SmallCNN
    path : str or Path
        Destination file; its folder is created if needed.
    info : dict
        Stored as string metadata: strings as they are, anything else as JSON.
    sidecar : bool
        Also write ``info`` (with the checksum) as ``<path>.json`` beside the weights.

    Returns
    -------
    dict
        ``info`` with ``weights_sha256`` added.
    """
    from safetensors.torch import save_file

    from gen_eval.schemas import to_json

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {key: value.detach().cpu().contiguous() for key, value in net.state_dict().items()}
    info = {**info, "weights_sha256": tensors_checksum(state)}
    metadata = {key: value if isinstance(value, str) else json.dumps(value) for key, value in info.items()}
    save_file(state, str(path), metadata=metadata)
    if sidecar:
        path.with_suffix(".json").write_text(to_json(info) + "\n")
    return info


def load_net(spec: CNNSpec, path: str | Path) -> SmallCNN:
    """Load ``spec``'s network (eval mode, CPU) from a safetensors file, checking its checksum.

    Raises
    ------
    GenEvalError
        One line naming the file and the retrain command when it is missing, unreadable, holds
        other tensors or shapes, or its tensors do not match the ``weights_sha256`` it records.
    """
    from safetensors import safe_open
    from safetensors.torch import load_file

    path, hint = Path(path), retrain_hint(spec)
    if not path.is_file():
        raise GenEvalError(f"{spec.name} weights {path} are missing: {hint} to create them")
    net = SmallCNN(spec)
    try:
        state = load_file(str(path))
        with safe_open(str(path), framework="pt") as handle:
            recorded = (handle.metadata() or {}).get("weights_sha256")
        net.load_state_dict(state)
    except Exception as exc:  # safetensors and torch raise their own types for garbled or wrong files
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise GenEvalError(f"{spec.name} weights {path} are unreadable ({reason[:200]}): {hint}") from exc
    if recorded is not None and recorded != tensors_checksum(state):
        raise GenEvalError(
            f"{spec.name} weights {path} do not match the checksum they record (altered tensors): {hint}"
        )
    return net.eval()


class SmallCNNExtractor(FeatureExtractor):
    """Penultimate features and class logits of a bundled :class:`SmallCNN`; subclasses set the spec."""

    spec: ClassVar[CNNSpec]
    default_weights: ClassVar[Path]
    input_kind = "image"
    feature_names = ("features", "logits")

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        # The input size and the preprocessing text follow from the spec: they cannot disagree.
        cls.input_size = (cls.spec.size, cls.spec.size)
        cls.preprocessing = preprocessing_text(cls.spec.size)

    @classmethod
    def availability(cls, weights_path: str | Path | None = None, **_: object) -> tuple[bool, str]:
        """``(True, path)`` if the weights file exists, else ``(False, how to create it)``."""
        path = Path(weights_path) if weights_path is not None else cls.default_weights
        if path.is_file():
            return True, str(path)
        return False, f"missing: run gen-eval train-features {cls.spec.name}"

    def __init__(self, device: str | torch.device = "cpu", weights_path: str | Path | None = None) -> None:
        super().__init__(device)
        self.weights_path = Path(weights_path) if weights_path is not None else self.default_weights
        self.net = load_net(self.spec, self.weights_path).to(self.device)
        # Hash the tensors, not the file: the metadata records wall time, so a bit-identical
        # retrain would otherwise change the fingerprint and invalidate every cached feature.
        self._fingerprint = tensors_checksum(self.net.state_dict())

    @property
    def weights_fingerprint(self) -> str:
        """SHA-256 of the weight tensors (names, shapes, dtypes and bytes)."""
        return self._fingerprint

    def extract(self, batch: torch.Tensor) -> dict[str, torch.Tensor]:
        """Features and logits of uint8 (N, 1 or 3, H, W) images; see :attr:`preprocessing`."""
        if batch.ndim != 4 or batch.shape[1] not in (1, 3) or batch.dtype != torch.uint8:
            raise GenEvalError(
                f"{self.name} extractor got a {batch.dtype} batch of shape {tuple(batch.shape)}: "
                "pass uint8 images shaped (N, 1 or 3, H, W)"
            )
        features, logits = self.net(net_input(batch, self.spec.size))
        return {"features": features, "logits": logits}
