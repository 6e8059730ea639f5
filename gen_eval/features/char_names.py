"""A small character CNN trained on the bundled ``census_names``: the text kind's learned extractor.

Hashed n-gram counts (``char-ngrams``) need no training but know nothing of which differences
matter; this network is to names what the ``digits`` CNN is to 8x8 digits. It classifies a first
name's sex label (the census list it comes from, 0 = female, 1 = male), and its 64-d penultimate
layer is the embedding FD, KID, precision/recall, MAUVE and NDB read on text; its two class
scores are the logits of the label histogram, class coverage and conditional accuracy.

Architecture: each string becomes ``[start] + characters + [end]`` tokens (a-z have their own
token, any other character one shared "other" token), a 32-d embedding, two 1-d convolutions
(kernel 3, 64 channels, ReLU), then the max and the mean over the string's own positions (a mask
leaves the padding out, so a string's features do not depend on how wide its batch is padded),
a 64-d feature layer and two class scores. The end token lets it read final letters ("-a").

The best any classifier can do is known exactly: the Bayes rule, argmax_label p(label | name)
from the true census frequencies, is right 98.68% of the time (98.52% on the test split), since
some names are on both lists. The training record (``weights/char_names.json``) states the
network's accuracy on the 2,500 test names next to that bound. ``gen-eval train-features
char-names`` retrains it: about a minute on one CPU thread.
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

from gen_eval.errors import GenEvalError
from gen_eval.features.base import FeatureExtractor
from gen_eval.features.cache import tensors_checksum
from gen_eval.reproducible import reproducible

NAME = "char-names"
DEFAULT_WEIGHTS = Path(__file__).parent / "weights" / "char_names.safetensors"
RETRAIN_HINT = f"run `gen-eval train-features {NAME}`"
ALPHABET = "abcdefghijklmnopqrstuvwxyz"
PAD, START, END, OTHER = 0, 1, 2, 3  # tokens; letters follow from 4
VOCABULARY = 4 + len(ALPHABET)
FEATURE_DIM = 64
# Training configuration; recorded in the json beside the weights.
BATCH_SIZE = 128
LEARNING_RATE = 3e-3
WEIGHT_DECAY = 1e-4
DEFAULT_EPOCHS = 12


class CharNamesNet(nn.Module):
    """Embedding, two masked 1-d convolutions, max+mean pooling, a 64-d feature layer, 2 class scores."""

    def __init__(self, num_classes: int = 2) -> None:
        super().__init__()
        self.embed = nn.Embedding(VOCABULARY, 32, padding_idx=PAD)
        self.conv1 = nn.Conv1d(32, 64, 3, padding=1)
        self.conv2 = nn.Conv1d(64, 64, 3, padding=1)
        self.fc = nn.Linear(128, FEATURE_DIM)
        self.head = nn.Linear(FEATURE_DIM, num_classes)
        self.drop = nn.Dropout(0.2)

    def forward(self, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Features and logits of (N, T) token rows (:func:`tokenise`).

        Returns
        -------
        features, logits : torch.Tensor
            (N, 64) penultimate activations (after ReLU, before dropout) and (N, 2) class scores.
        """
        mask = (tokens != PAD)[:, None, :]  # (N, 1, T)
        x = self.embed(tokens).transpose(1, 2)
        # Zero the padded positions after each layer, so they read as the convolution's own zero
        # padding: a valid position's output is the same whatever the batch's width.
        x = F.relu(self.conv1(x)) * mask
        x = F.relu(self.conv2(x)) * mask
        largest = x.masked_fill(~mask, float("-inf")).amax(dim=2)
        mean = x.sum(dim=2) / mask.sum(dim=2).clamp(min=1)
        features = F.relu(self.fc(self.drop(torch.cat([largest, mean], dim=1))))
        return features, self.head(self.drop(features))


def tokenise(codes: torch.Tensor | np.ndarray) -> torch.Tensor:
    """int (N, L) code points, 0-padded -> int64 (N, L + 2) tokens: start, characters, end, padding.

    a-z map to tokens 4..29, any other character to :data:`OTHER` (case is kept: "A" is other).
    """
    codes = torch.as_tensor(np.asarray(codes.cpu() if hasattr(codes, "cpu") else codes), dtype=torch.int64)
    n = codes.shape[0]
    letters = (codes >= ord("a")) & (codes <= ord("z"))
    inner = torch.where(letters, codes - ord("a") + 4, torch.full_like(codes, OTHER))
    inner = torch.where(codes == 0, torch.zeros_like(codes), inner)
    lengths = (codes != 0).sum(dim=1)
    tokens = torch.cat([torch.full((n, 1), START), inner, torch.zeros(n, 1, dtype=torch.int64)], dim=1)
    tokens[torch.arange(n), lengths + 1] = END
    return tokens


def _split(split: str) -> tuple[torch.Tensor, torch.Tensor]:
    from gen_eval.datasets.census_names import load_names
    from gen_eval.kinds.text import encode_strings

    strings, labels = load_names(split)
    return tokenise(encode_strings(list(strings))), torch.from_numpy(labels)


def _accuracy(net: CharNamesNet, tokens: torch.Tensor, labels: torch.Tensor) -> float:
    net.eval()
    with torch.no_grad():
        return int((net(tokens)[1].argmax(1) == labels).sum()) / len(labels)


def bayes_accuracy(split: str | None = None) -> float:
    """Accuracy of the Bayes rule argmax_label p(label | name) from the true census frequencies.

    ``split`` None: its expectation under the truth; else its accuracy on that split's names.
    """
    from gen_eval.datasets.census_names import load_names, table

    strings, labels, mass = table()
    joint: dict[str, np.ndarray] = {}
    for text, label, p in zip(strings, labels, mass, strict=True):
        joint.setdefault(text, np.zeros(2))[label] += p
    if split is None:
        return float(sum(v.max() for v in joint.values()))
    names, truth = load_names(split)
    return float(np.mean([int(joint[s].argmax()) == y for s, y in zip(names, truth, strict=True)]))


def train_char_names(
    epochs: int = DEFAULT_EPOCHS, seed: int = 0, progress: Callable[[int, float], None] | None = None
) -> tuple[CharNamesNet, dict]:
    """Train :class:`CharNamesNet` on ``census_names:train``, reproducibly on one CPU thread.

    The epoch with the best ``validation`` accuracy (ties: lower loss) is kept; the test split is
    only scored.

    Returns
    -------
    net : CharNamesNet
        Eval mode, CPU.
    info : dict
        Accuracies (train, validation, test, and the Bayes bound), epochs, times, configuration.
    """
    if epochs < 1:
        raise GenEvalError(f"--epochs {epochs} is invalid: train for at least 1 epoch")
    start, cpu_start = time.perf_counter(), time.process_time()
    x, y = _split("train")
    x_val, y_val = _split("validation")
    x_test, y_test = _split("test")
    with reproducible(seed) as generator:
        net = CharNamesNet()
        optimiser = torch.optim.AdamW(net.parameters(), lr=LEARNING_RATE, weight_decay=WEIGHT_DECAY)
        schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, T_max=epochs)
        losses: list[float] = []
        best: tuple[float, float] = (-1.0, 0.0)
        best_state, best_epoch = net.state_dict(), 0
        for epoch in range(1, epochs + 1):
            net.train()
            total = 0.0
            for batch in torch.randperm(len(y), generator=generator).split(BATCH_SIZE):
                loss = F.cross_entropy(net(x[batch])[1], y[batch])
                optimiser.zero_grad()
                loss.backward()
                optimiser.step()
                total += loss.item() * len(batch)
            schedule.step()
            losses.append(total / len(y))
            net.eval()
            with torch.no_grad():
                logits = net(x_val)[1]
            score = (
                int((logits.argmax(1) == y_val).sum()) / len(y_val),
                -F.cross_entropy(logits, y_val).item(),
            )
            if score > best:
                best, best_epoch = score, epoch
                best_state = {k: v.clone() for k, v in net.state_dict().items()}
            if progress is not None:
                progress(epoch, losses[-1])
        net.load_state_dict(best_state)
        net.eval()
        info = {
            "name": NAME,
            "task": "census_names sex label (0 female, 1 male) from the lower-case first name",
            "train_accuracy": _accuracy(net, x, y),
            "validation_accuracy": _accuracy(net, x_val, y_val),
            "test_accuracy": _accuracy(net, x_test, y_test),
            "bayes_accuracy": bayes_accuracy(),
            "bayes_test_accuracy": bayes_accuracy("test"),
            "epochs": epochs,
            "best_epoch": best_epoch,
            "seed": seed,
            "wall_time_s": round(time.perf_counter() - start, 3),
            "cpu_time_s": round(time.process_time() - cpu_start, 3),
            "epoch_losses": [round(v, 6) for v in losses],
            "config": {
                "train": "census_names:train (20,000 draws)",
                "model_selection": "census_names:validation (2,500)",
                "batch_size": BATCH_SIZE,
                "optimiser": f"AdamW(lr={LEARNING_RATE}, weight_decay={WEIGHT_DECAY}), cosine schedule",
                "threads": 1,
                "torch": torch.__version__,
            },
        }
    return net, info


def save_char_names(net: CharNamesNet, path: str | Path, info: dict) -> None:
    """Write the weights as safetensors (``info`` as metadata) and ``info`` as json beside them."""
    from safetensors.torch import save_file

    from gen_eval.schemas import to_json

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    metadata = {key: value if isinstance(value, str) else json.dumps(value) for key, value in info.items()}
    state = {key: value.detach().cpu().contiguous() for key, value in net.state_dict().items()}
    save_file(state, str(path), metadata=metadata)
    path.with_suffix(".json").write_text(to_json(info) + "\n")


def load_char_names(path: str | Path = DEFAULT_WEIGHTS) -> CharNamesNet:
    """Load a :class:`CharNamesNet` (eval mode, CPU); a one-line GenEvalError if missing or unreadable."""
    from safetensors.torch import load_file

    path = Path(path)
    if not path.is_file():
        raise GenEvalError(f"{NAME} weights {path} are missing: {RETRAIN_HINT} to create them")
    net = CharNamesNet()
    try:
        net.load_state_dict(load_file(str(path)))
    except Exception as exc:  # safetensors raises its own error type for truncated or garbled files
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise GenEvalError(f"{NAME} weights {path} are unreadable ({reason}): {RETRAIN_HINT}") from exc
    return net.eval()


def retrain_char_names(
    out: Path = DEFAULT_WEIGHTS,
    epochs: int = DEFAULT_EPOCHS,
    seed: int = 0,
    progress: Callable[[int, float], None] | None = None,
) -> dict:
    """Train and save the network: what ``gen-eval train-features char-names`` runs."""
    net, info = train_char_names(epochs=epochs, seed=seed, progress=progress)
    save_char_names(net, out, info)
    return info


class CharNamesExtractor(FeatureExtractor):
    """64-d penultimate features and 2 class scores (female, male) of :class:`CharNamesNet`."""

    name = NAME
    input_kind = "text"
    feature_names = ("features", "logits")
    description = "small character CNN trained on census_names (sex label); 64-d penultimate features"
    preprocessing = (
        "code points -> tokens: start, a-z (one token each; any other character one shared token), "
        "end; masked max+mean pooling, so padding width does not matter"
    )

    @classmethod
    def availability(cls, weights_path: str | Path | None = None, **_: object) -> tuple[bool, str]:
        """``(True, path)`` if the weights file exists, else ``(False, how to create it)``."""
        path = Path(weights_path) if weights_path is not None else DEFAULT_WEIGHTS
        if path.is_file():
            return True, str(path)
        return False, f"missing: run gen-eval train-features {NAME}"

    def __init__(self, device: str | torch.device = "cpu", weights_path: str | Path | None = None) -> None:
        super().__init__(device)
        self.weights_path = Path(weights_path) if weights_path is not None else DEFAULT_WEIGHTS
        self.net = load_char_names(self.weights_path).to(self.device)
        # The tensors, not the file: the metadata holds wall times (see DigitsExtractor).
        self._fingerprint = tensors_checksum(self.net.state_dict())

    @property
    def weights_fingerprint(self) -> str:
        """SHA-256 of the weight tensors."""
        return self._fingerprint

    def extract(self, batch: torch.Tensor) -> dict[str, torch.Tensor]:
        """Features and logits of int32 (N, L) code points."""
        features, logits = self.net(tokenise(batch).to(self.device))
        return {"features": features, "logits": logits}
