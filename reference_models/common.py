"""What every reference model's training shares: data splits, seeding, logging, checkpoints.

Kept apart from the model files so that each of those reads top to bottom as the model itself.
"""

from __future__ import annotations

import contextlib
import json
import math
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

CHECKPOINT_DIR = Path(__file__).resolve().parent / "checkpoints"
VAL_FRACTION = 0.1


# ---------------------------------------------------------------------------------------------- data
@dataclass
class TrainingData:
    """Train and validation splits of one embedded dataset, as tensors.

    ``train``/``val`` are uint8 (N, C, H, W) images, float32 (N, D) vectors or int32 (N, L)
    code points of strings, 0-padded (text: ``gen_eval.kinds.text.decode_rows`` reads them);
    labels are class indices (digits, a name's sex), mode indices (mixtures) or factor
    indices (shapes, (N, 5)).
    ``levels`` is the number of grey levels of image data (17 for digits, 2 for shapes).
    The test split is never loaded here: it is for scoring only.
    """

    dataset: str
    train: torch.Tensor
    train_labels: torch.Tensor
    val: torch.Tensor
    val_labels: torch.Tensor
    levels: int | None

    @property
    def is_image(self) -> bool:
        return self.train.dtype == torch.uint8

    @property
    def sample_shape(self) -> tuple[int, ...]:
        return tuple(self.train.shape[1:])


def load_training_data(
    dataset: str, keep_labels: list[int] | None = None, max_items: int | None = None
) -> TrainingData:
    """The train split of ``dataset`` with a fixed 10% held out for validation / early stopping.

    Parameters
    ----------
    dataset : str
        An embedded dataset: digits, shapes, ring8, grid25, shapes3d, census_names, hmm_language.
    keep_labels : list of int, optional
        Keep only items whose (class or mode) label is listed: how the deliberately faulty
        models are made to miss modes.
    max_items : int, optional
        Use only the first ``max_items`` items of the train split (shapes has 10,000).
    """
    from gen_eval.datasets import get_dataset

    info = get_dataset(dataset)
    size = info.size("train") if max_items is None else min(max_items, info.size("train"))
    data, labels = info.read("train", 0, size)
    if keep_labels is not None:
        keep = np.isin(labels if labels.ndim == 1 else labels[:, 0], keep_labels)
        data, labels = data[keep], labels[keep]
    order = np.random.RandomState(1234).permutation(len(data))
    num_val = max(1, round(VAL_FRACTION * len(data)))
    val_idx, train_idx = np.sort(order[:num_val]), np.sort(order[num_val:])
    levels = {"digits": 17, "shapes": 2}.get(dataset)
    as_tensor = torch.from_numpy
    return TrainingData(
        dataset=dataset,
        train=as_tensor(np.ascontiguousarray(data[train_idx])),
        train_labels=as_tensor(np.ascontiguousarray(labels[train_idx])),
        val=as_tensor(np.ascontiguousarray(data[val_idx])),
        val_labels=as_tensor(np.ascontiguousarray(labels[val_idx])),
        levels=levels,
    )


def to_unit(x: torch.Tensor) -> torch.Tensor:
    """uint8 images -> float32 in [0, 1]."""
    return x.to(torch.float32) / 255.0


def to_level_indices(x: torch.Tensor, levels: int) -> torch.Tensor:
    """uint8 images stored as round(k * 255 / (levels - 1)) -> int64 level indices k."""
    return torch.round(x.to(torch.float32) * (levels - 1) / 255.0).to(torch.int64)


def from_level_indices(k: torch.Tensor, levels: int) -> torch.Tensor:
    """Level indices -> uint8 images on the same grid as the data."""
    return torch.round(k.to(torch.float32) * 255.0 / (levels - 1)).to(torch.uint8)


def minibatches(
    n: int, batch_size: int, generator: torch.Generator, drop_last: bool = True
) -> Iterator[torch.Tensor]:
    """Index tensors of one shuffled epoch."""
    order = torch.randperm(n, generator=generator)
    stop = n - n % batch_size if drop_last and n >= batch_size else n
    for start in range(0, stop, batch_size):
        yield order[start : start + batch_size]


# -------------------------------------------------------------------------------------------- logging
@dataclass
class TrainLog:
    """Loss log of one training run, plus a progress bar.

    A model's ``fit`` calls ``begin(total)`` once it knows how many steps (or epochs) it will
    run, ``step(i)`` as it goes and ``record(step, loss=..., val=...)`` for the log, whose rows
    are written next to the checkpoint as ``NAME.log.jsonl``.
    """

    description: str = "training"
    show_progress: bool = True
    rows: list[dict[str, float]] = field(default_factory=list)
    _bar: Any = field(default=None, init=False, repr=False)
    _stack: contextlib.ExitStack = field(default_factory=contextlib.ExitStack, init=False, repr=False)
    _last_step: int = field(default=0, init=False, repr=False)

    def begin(self, total: int) -> None:
        from gen_eval.progress import progress_task

        self._stack.close()
        self._last_step = 0
        self._bar = self._stack.enter_context(progress_task(self.description, total, self.show_progress))

    def close(self) -> None:
        self._stack.close()
        self._bar = None

    def step(self, step: int) -> None:
        """Move the progress bar to ``step`` finished steps."""
        if self._bar is not None and step > self._last_step:
            self._bar.advance(step - self._last_step)
            self._last_step = step

    def record(self, step: int, **values: float) -> None:
        row = {"step": int(step)}
        row.update({k: float(v) for k, v in values.items()})
        self.rows.append(row)


class EarlyStopping:
    """Keep the weights with the best (lowest) validation score; stop after ``patience`` checks
    without improvement."""

    def __init__(self, model: nn.Module, patience: int = 5):
        self.model, self.patience = model, patience
        self.best = math.inf
        self.best_step = 0
        self.best_state: dict[str, torch.Tensor] | None = None
        self.bad_checks = 0

    def check(self, score: float, step: int) -> bool:
        """Record a validation score; returns True when training should stop."""
        if score < self.best:
            self.best, self.best_step, self.bad_checks = score, step, 0
            self.best_state = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
        else:
            self.bad_checks += 1
        return self.bad_checks >= self.patience

    def restore(self) -> None:
        if self.best_state is not None:
            self.model.load_state_dict(self.best_state)


# ----------------------------------------------------------------------------------------- checkpoints
def save_checkpoint(
    model: nn.Module,
    name: str,
    config: dict[str, Any],
    log: TrainLog | None,
    directory: Path = CHECKPOINT_DIR,
) -> Path:
    """Write ``NAME.safetensors`` (weights, no pickle), ``NAME.json`` (config) and the loss log."""
    from safetensors.torch import save_file

    directory.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    weights = directory / f"{name}.safetensors"
    tmp = weights.with_suffix(".tmp")
    save_file(state, str(tmp), metadata={"name": name})
    tmp.chmod(0o644)
    tmp.replace(weights)
    from gen_eval.schemas import to_json

    # Standard JSON: a diverged loss (NaN) is null, not Python's NaN that other readers refuse.
    (directory / f"{name}.json").write_text(to_json(config, sort_keys=True) + "\n")
    if log is not None:
        lines = "".join(to_json(row, indent=None) + "\n" for row in log.rows)
        (directory / f"{name}.log.jsonl").write_text(lines)
    return weights


def read_config(name: str, directory: Path = CHECKPOINT_DIR) -> dict[str, Any]:
    path = directory / f"{name}.json"
    return json.loads(path.read_text())


def load_state(name: str, directory: Path = CHECKPOINT_DIR) -> dict[str, torch.Tensor]:
    """The saved tensors of ``NAME.safetensors`` (safetensors never runs code)."""
    from safetensors.torch import load_file

    return load_file(str(directory / f"{name}.safetensors"))


class Timer:
    """Wall time of a block, in seconds (``with Timer() as t: ...; t.seconds``)."""

    def __enter__(self) -> Timer:
        self.start = time.perf_counter()
        self.seconds = 0.0
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.perf_counter() - self.start
