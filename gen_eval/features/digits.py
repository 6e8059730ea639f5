"""A small CNN trained on the bundled 8x8 digits, used as the feature extractor for them.

Inception features are meaningless on 8x8 grey digits, so FID and friends on the digits
data use the 64-d penultimate layer of this net instead. Its weights ship with the package
(``weights/digits.safetensors``) and ``gen-eval train-features digits`` rebuilds them.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from gen_eval.datasets.digits import load_digits_split
from gen_eval.errors import GenEvalError
from gen_eval.features.base import FeatureExtractor
from gen_eval.features.cache import tensors_checksum
from gen_eval.reproducible import reproducible

DEFAULT_WEIGHTS = Path(__file__).parent / "weights" / "digits.safetensors"
RETRAIN_HINT = "run `gen-eval train-features digits`"
LUMA_WEIGHTS = (0.299, 0.587, 0.114)  # ITU-R BT.601
# Training configuration; recorded in the weights' metadata.
NUM_VAL = 200  # images of the train split held out for choosing the epoch
VAL_SPLIT_SEED = 0  # fixed apart from the training seed, so every run validates on the same images
BATCH_SIZE = 64
LEARNING_RATE = 2e-3
WEIGHT_DECAY = 1e-4
DEFAULT_EPOCHS = 30


class DigitsNet(nn.Module):
    """CNN for 8x8 grey digits: three 3x3 convs, one 2x2 max-pool, a 64-d feature layer, 10 logits."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Sequential(
            nn.Conv2d(1, 32, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(32, 64, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(64, 64, 3, padding=1),
            nn.ReLU(),
        )
        self.drop = nn.Dropout(0.25)
        self.fc = nn.Linear(64 * 4 * 4, 64)
        self.head = nn.Linear(64, 10)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Features and logits of float images.

        Parameters
        ----------
        x : torch.Tensor
            Float (N, 1, 8, 8) images with values in [0, 1].

        Returns
        -------
        features, logits : torch.Tensor
            (N, 64) penultimate activations (after ReLU, before dropout) and (N, 10) class scores.
        """
        features = F.relu(self.fc(self.drop(self.conv(x).flatten(1))))
        return features, self.head(self.drop(features))


def _random_shift(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Shift each (N, 1, 8, 8) image by -1, 0 or +1 pixel along each axis, filling with zeros."""
    n = images.shape[0]
    padded = F.pad(images, (1, 1, 1, 1))
    dy, dx = torch.randint(0, 3, (2, n), generator=generator)
    rows = (dy[:, None] + torch.arange(8))[:, :, None]
    cols = (dx[:, None] + torch.arange(8))[:, None, :]
    return padded[torch.arange(n)[:, None, None], 0, rows, cols][:, None]


def _accuracy(net: DigitsNet, images: torch.Tensor, labels: torch.Tensor) -> float:
    net.eval()
    with torch.no_grad():
        # An exact fraction of correct images, not a float32 mean, so metadata reads e.g. 0.99444...
        return int((net(images)[1].argmax(1) == labels).sum()) / len(labels)


def _as_float(images: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.asarray(images, dtype=np.float32) / 255.0)


def train_digits_net(
    epochs: int = DEFAULT_EPOCHS, seed: int = 0, progress: Callable[[int, float], None] | None = None
) -> tuple[DigitsNet, dict]:
    """Train :class:`DigitsNet` on the digits train split, reproducibly on the CPU.

    ``NUM_VAL`` train images are held out; the weights of the epoch with the best validation
    accuracy (ties: lower validation loss) are kept. The test split is only scored, never used
    for a decision.

    Parameters
    ----------
    epochs : int
        Number of passes over the training images.
    seed : int
        Seeds weight initialisation, dropout, data order and augmentation.
    progress : callable, optional
        Called as ``progress(epoch, mean_training_loss)`` after each epoch (1-based).

    Returns
    -------
    net : DigitsNet
        The trained net on the CPU, in eval mode.
    info : dict
        Accuracies (train, val, test), epochs, chosen epoch, seed, wall and CPU time, loss per
        epoch and the training configuration.
    """
    if epochs < 1:
        raise GenEvalError(f"--epochs {epochs} is invalid: train for at least 1 epoch")
    start, cpu_start = time.perf_counter(), time.process_time()
    images, labels = load_digits_split("train")
    x, y = _as_float(images), torch.tensor(labels)
    order = torch.randperm(len(y), generator=torch.Generator().manual_seed(VAL_SPLIT_SEED))
    val_idx, fit_idx = order[:NUM_VAL], order[NUM_VAL:]
    test_images, test_labels = load_digits_split("test")
    with reproducible(seed):
        generator = torch.Generator().manual_seed(seed)
        net = DigitsNet()
        optimiser = torch.optim.AdamW(net.parameters(), lr=LEARNING_RATE, weight_decay=WEIGHT_DECAY)
        schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, T_max=epochs)
        losses: list[float] = []
        best: tuple[float, float] = (-1.0, 0.0)  # (val accuracy, -val loss), larger is better
        best_state, best_epoch = net.state_dict(), 0
        for epoch in range(1, epochs + 1):
            net.train()
            total = 0.0
            for batch in fit_idx[torch.randperm(len(fit_idx), generator=generator)].split(BATCH_SIZE):
                loss = F.cross_entropy(net(_random_shift(x[batch], generator))[1], y[batch])
                optimiser.zero_grad()
                loss.backward()
                optimiser.step()
                total += loss.item() * len(batch)
            schedule.step()
            losses.append(total / len(fit_idx))
            net.eval()
            with torch.no_grad():
                val_logits = net(x[val_idx])[1]
            correct = int((val_logits.argmax(1) == y[val_idx]).sum())
            score = (correct / NUM_VAL, -F.cross_entropy(val_logits, y[val_idx]).item())
            if score > best:
                best, best_epoch = score, epoch
                best_state = {k: v.clone() for k, v in net.state_dict().items()}
            if progress is not None:
                progress(epoch, losses[-1])
        net.load_state_dict(best_state)
        net.eval()
        info = {
            "train_accuracy": _accuracy(net, x[fit_idx], y[fit_idx]),
            "val_accuracy": _accuracy(net, x[val_idx], y[val_idx]),
            "test_accuracy": _accuracy(net, _as_float(test_images), torch.tensor(test_labels)),
            "epochs": epochs,
            "best_epoch": best_epoch,
            "seed": seed,
            "wall_time_s": round(time.perf_counter() - start, 3),
            "cpu_time_s": round(time.process_time() - cpu_start, 3),  # less sensitive to a busy machine
            "epoch_losses": [round(v, 6) for v in losses],
            "config": {
                "num_fit": len(fit_idx),
                "num_val": NUM_VAL,
                "val_split_seed": VAL_SPLIT_SEED,
                "batch_size": BATCH_SIZE,
                "optimiser": f"AdamW(lr={LEARNING_RATE}, weight_decay={WEIGHT_DECAY}), cosine schedule",
                "augmentation": "random shift by -1/0/+1 pixel per axis, zero fill",
                "threads": 1,
                "torch": torch.__version__,
            },
        }
    return net, info


def save_digits_weights(net: DigitsNet, path: str | Path, info: dict) -> None:
    """Write the net's weights as safetensors, with ``info`` as metadata.

    Parameters
    ----------
    net : DigitsNet
    path : str or Path
        Destination file; its folder is created if needed.
    info : dict
        Stored as string metadata: strings as they are, anything else as JSON.
    """
    from safetensors.torch import save_file

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    metadata = {key: value if isinstance(value, str) else json.dumps(value) for key, value in info.items()}
    state = {key: value.detach().cpu().contiguous() for key, value in net.state_dict().items()}
    save_file(state, str(path), metadata=metadata)


def load_digits_net(path: str | Path = DEFAULT_WEIGHTS) -> DigitsNet:
    """Load a :class:`DigitsNet` (eval mode, CPU) from a safetensors file.

    Parameters
    ----------
    path : str or Path
        The weights file written by :func:`save_digits_weights`.

    Returns
    -------
    DigitsNet
        Raises GenEvalError if the file is missing, unreadable or not DigitsNet weights.
    """
    from safetensors.torch import load_file

    path = Path(path)
    if not path.is_file():
        raise GenEvalError(f"digits weights {path} are missing: {RETRAIN_HINT} to create them")
    net = DigitsNet()
    try:
        net.load_state_dict(load_file(str(path)))
    except Exception as exc:  # safetensors raises its own error type for truncated or garbled files
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise GenEvalError(f"digits weights {path} are unreadable ({reason}): {RETRAIN_HINT}") from exc
    return net.eval()


def retrain_digits_weights(
    out: Path = DEFAULT_WEIGHTS,
    epochs: int = DEFAULT_EPOCHS,
    seed: int = 0,
    progress: Callable[[int, float], None] | None = None,
) -> dict:
    """Train the digits net and save it to ``out``; what ``gen-eval train-features digits`` runs.

    Parameters
    ----------
    out : Path
        Destination safetensors file.
    epochs, seed, progress
        As for :func:`train_digits_net`.

    Returns
    -------
    dict
        The training info, also stored as the file's metadata.
    """
    net, info = train_digits_net(epochs=epochs, seed=seed, progress=progress)
    save_digits_weights(net, out, info)
    return info


def digits_net_input(batch: torch.Tensor) -> torch.Tensor:
    """The float input :class:`DigitsNet` expects, from already validated uint8 images.

    Parameters
    ----------
    batch : torch.Tensor
        uint8 (N, 1 or 3, H, W) images; 3 channels are mixed to grey as ITU-R 601 luma.

    Returns
    -------
    torch.Tensor
        Float32 (N, 1, 8, 8) with values in [0, 1]; see :attr:`DigitsExtractor.preprocessing`.
    """
    x = batch.float()
    if x.shape[1] == 3:
        luma = torch.tensor(LUMA_WEIGHTS, dtype=x.dtype, device=x.device)
        x = (x * luma[:, None, None]).sum(1, keepdim=True)
    if x.shape[-2:] != (8, 8):
        x = F.interpolate(x, size=(8, 8), mode="bilinear", align_corners=False, antialias=True)
    return x / 255.0


class DigitsExtractor(FeatureExtractor):
    """64-d penultimate features and 10 logits of :class:`DigitsNet`."""

    name = "digits"
    input_kind = "image"
    input_size = (8, 8)
    feature_names = ("features", "logits")
    description = "small CNN trained on the bundled 8x8 digits; 64-d penultimate features"
    preprocessing = (
        "uint8 NCHW; 3-channel images -> 1 grey channel as 0.299*R + 0.587*G + 0.114*B (ITU-R 601 luma), "
        "in float32 on the 0..255 scale; images not 8x8 resized to 8x8 with "
        "torch.nn.functional.interpolate(mode='bilinear', align_corners=False, antialias=True); "
        "then divided by 255 to [0, 1]"
    )

    @classmethod
    def availability(cls, weights_path: str | Path | None = None, **_: object) -> tuple[bool, str]:
        """``(True, path)`` if the weights file exists, else ``(False, how to create it)``."""
        path = Path(weights_path) if weights_path is not None else DEFAULT_WEIGHTS
        if path.is_file():
            return True, str(path)
        return False, "missing: run gen-eval train-features digits"

    def __init__(self, device: str | torch.device = "cpu", weights_path: str | Path | None = None) -> None:
        super().__init__(device)
        self.weights_path = Path(weights_path) if weights_path is not None else DEFAULT_WEIGHTS
        self.net = load_digits_net(self.weights_path).to(self.device)
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
                f"digits extractor got a {batch.dtype} batch of shape {tuple(batch.shape)}: "
                "pass uint8 images shaped (N, 1 or 3, H, W)"
            )
        features, logits = self.net(digits_net_input(batch))
        return {"features": features, "logits": logits}
