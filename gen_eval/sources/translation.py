"""An unpaired translation model's answers (``ref:cyclegan_digits2mnist``): outputs beside their inputs.

An unpaired translation model (issue 23) has a str attribute ``task`` naming a translation
between two embedded datasets (:data:`TRANSLATIONS`: ``digits2mnist``), ``translate(inputs,
generator=None)`` (uint8 source-domain images in, uint8 target-domain images out) and
``translate_back(outputs, generator=None)`` (the way back, for cycle consistency). ``ref:NAME``
of such a model answers ``count`` images of the source dataset's test split: each row
is an output (28x28 for ``digits2mnist``) beside its input (8x8) and the input's true class
(fewer than the split: its first images, every class among them). There
are no targets: nothing says what the translation of a given input should be, which is why the
translation metrics (:mod:`gen_eval.metrics.translation`) measure label preservation and cycle
consistency instead, and FID is measured against the target domain's test split.

This is the case :mod:`gen_eval.sources.task` leaves out (its inputs come from the task's own
dataset); ``paired`` is False so the paired metrics, which need targets, do not apply.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from gen_eval.sources.paired import PairedSource, Pairs, translate_all

# task -> (source dataset, target dataset), both embedded.
TRANSLATIONS = {"digits2mnist": ("digits", "mnist"), "mnist2digits": ("mnist", "digits")}
SPLIT = "test"


def is_translation_model(model: Any) -> bool:
    """Whether ``model`` is an unpaired translator: a ``task`` in :data:`TRANSLATIONS`, ``translate`` and ``translate_back``."""
    return (
        getattr(model, "task", None) in TRANSLATIONS
        and callable(getattr(model, "translate", None))
        and callable(getattr(model, "translate_back", None))
    )


@dataclass
class TranslationModelSource(PairedSource):
    """A translation model's outputs for the first ``count`` test images of its source dataset."""

    kind = "reference"
    paired: ClassVar[bool] = False  # no targets: the paired metrics do not apply
    model: Any = None
    count: int = 1000
    seed: int = 0
    content_hash: str | None = None
    name: str = ""
    inputs: np.ndarray | None = field(default=None, repr=False)
    labels: np.ndarray | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        from gen_eval.datasets import get_dataset

        self.task_name = str(self.model.task)
        source_dataset, target_dataset = TRANSLATIONS[self.task_name]
        info = get_dataset(source_dataset)
        available = info.size(SPLIT)
        images, labels = info.read(SPLIT, 0, available)
        # The first rows: embedded splits hold their classes spread (mnist's are dealt class by class).
        rows = np.arange(min(self.count, available))
        self.inputs, self.labels = images[rows], labels[rows]
        if len(rows) < available:
            self.notes.append(f"the first {len(rows):,} images of {source_dataset}:{SPLIT}'s {available:,}")
        self.target_dataset = target_dataset
        self._count = len(self.inputs)
        self.sample_shape = tuple(get_dataset(target_dataset).read(SPLIT, 0, 1)[0].shape[1:])
        self._fingerprint = self.content_hash
        if self._count < self.count:
            self.notes.append(
                f"{source_dataset}:{SPLIT} has {self._count:,} images: {self._count:,} translations, not {self.count:,}"
            )

    def _load_pairs(self) -> Pairs:
        assert self.inputs is not None
        outputs = translate_all(self.model, self.inputs, self.seed, self.spec, self.sample_shape)
        return Pairs(outputs, self.inputs, None, self.labels, 1, self.task_name)

    def describe(self) -> dict:
        info = super().describe()
        info.update(translation=True, target_dataset=self.target_dataset)
        return info


def open_translation_model(
    spec: str, model: Any, count: int, seed: int, key: str, name: str
) -> TranslationModelSource:
    """``ref:NAME`` of a translation model as a source; ``key`` identifies the checkpoint and code."""
    digest = hashlib.sha256(f"{key}:translation-v1".encode()).hexdigest()
    return TranslationModelSource(
        spec=spec, model=model, count=count, seed=seed, content_hash=digest, name=name
    )
