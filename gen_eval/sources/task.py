"""A paired task's real pairs (``task:sr4``, ``task:edges:train``) and a paired model's answers (``ref:unet_sr4``).

``task:NAME[:SPLIT]`` (split ``test`` unless named) yields the task's targets, the real digits,
as its samples, each beside its input and label: the reference of a paired run, so FID/KID of
the outputs are measured against exactly the digits the outputs should match.

A paired model (issue 23) has a str attribute ``task`` naming a task and
``translate(inputs, generator=None)``: uint8 (N, C, h, w) inputs in, uint8 (N, C, H, W) outputs
out. ``ref:NAME`` of such a model answers the first ``count`` inputs of the task's test split
(at most the split). Its outputs are computed once, 256 inputs at a time with one seeded
generator, so they do not depend on the batch size a caller reads them with.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from gen_eval.errors import GenEvalError
from gen_eval.sources.paired import PairedSource, Pairs, translate_all

DEFAULT_SPLIT = "test"


@dataclass
class TaskSource(PairedSource):
    """Items [0, limit) of a task's split: targets as the samples, with inputs and labels."""

    kind = "task"
    task: str = ""
    split: str = DEFAULT_SPLIT
    limit: int | None = None

    def __post_init__(self) -> None:
        from gen_eval.datasets.mnist import VERSION
        from gen_eval.datasets.tasks import get_task

        task = get_task(self.task)
        inputs, targets, labels = task.read(self.split, 0, self.limit)
        pairs = Pairs(targets, inputs, targets, labels, 1, self.task)
        self._set_pairs(pairs)
        # The content hash of a dataset: its version, split and count, not every byte.
        key = f"task-v1:{self.task}:{VERSION}:{self.split}:{len(targets)}"
        self._fingerprint = hashlib.sha256(key.encode() + targets[:64].tobytes()).hexdigest()

    def describe(self) -> dict:
        info = super().describe()
        info.update(split=self.split)
        return info


def open_task_source(spec: str, limit: int | None) -> TaskSource:
    """``task:NAME[:SPLIT]`` as a :class:`TaskSource`; a one-line error for an unknown task or split."""
    from gen_eval.datasets.mnist import SPLITS
    from gen_eval.datasets.tasks import task_names

    name, _, split = spec.removeprefix("task:").partition(":")
    if name not in task_names():
        raise GenEvalError(f"{spec}: no task {name!r}; tasks: {', '.join(task_names())} (task:NAME[:SPLIT])")
    split = split or DEFAULT_SPLIT
    if split not in SPLITS:
        raise GenEvalError(f"{spec}: task {name} has splits {', '.join(SPLITS)}, not {split!r}")
    return TaskSource(spec=spec, task=name, split=split, limit=limit)


def is_paired_model(model: Any) -> bool:
    """Whether ``model`` answers a paired task: a str ``task`` attribute and a ``translate`` method."""
    return isinstance(getattr(model, "task", None), str) and callable(getattr(model, "translate", None))


@dataclass
class PairedModelSource(PairedSource):
    """A paired model's outputs for the first ``count`` test inputs of its task."""

    kind = "reference"
    model: Any = None
    count: int = 1000
    seed: int = 0
    content_hash: str | None = None
    name: str = ""
    inputs: np.ndarray | None = field(default=None, repr=False)
    targets: np.ndarray | None = field(default=None, repr=False)
    labels: np.ndarray | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        from gen_eval.datasets.tasks import get_task, task_names

        task_name = self.model.task
        if task_name not in task_names():
            raise GenEvalError(
                f"{self.spec}: the model's task {task_name!r} is not a paired task ({', '.join(task_names())})"
            )
        task = get_task(task_name)
        self.inputs, self.targets, self.labels = task.read(DEFAULT_SPLIT, 0, self.count)
        self.task_name = task_name
        self._count = len(self.inputs)
        self.sample_shape = task.target_shape
        self._fingerprint = self.content_hash
        if self._count < self.count:
            self.notes.append(
                f"task {task_name}'s test split has {self._count:,} inputs: {self._count:,} outputs, not {self.count:,}"
            )

    def _load_pairs(self) -> Pairs:
        assert self.inputs is not None and self.targets is not None
        outputs = translate_all(self.model, self.inputs, self.seed, self.spec, self.sample_shape)
        return Pairs(outputs, self.inputs, self.targets, self.labels, 1, self.task_name)


def open_paired_model(spec: str, model: Any, count: int, seed: int, key: str, name: str) -> PairedModelSource:
    """``ref:NAME`` of a paired model as a source; ``key`` identifies the checkpoint and code."""
    digest = hashlib.sha256(f"{key}:paired-v1".encode()).hexdigest()
    return PairedModelSource(spec=spec, model=model, count=count, seed=seed, content_hash=digest, name=name)
