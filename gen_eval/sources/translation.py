"""An unpaired translation model's answers (``ref:cyclegan_digits2mnist``): outputs beside their inputs.

An unpaired translation model (issue 23) has a str attribute ``task`` naming a translation
between two embedded datasets (:data:`TRANSLATIONS`: ``digits2mnist``), ``translate(inputs,
generator=None)`` (uint8 source-domain images in, uint8 target-domain images out) and
``translate_back(outputs, generator=None)`` (the way back, for cycle consistency). ``ref:NAME``
of such a model answers ``count`` images of the source dataset's test split: each row
is an output (28x28 for ``digits2mnist``) beside its input (8x8) and the input's true class
(fewer than the split: evenly spaced images, since a split may be stored class by class). There
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

from gen_eval.errors import GenEvalError
from gen_eval.sources.paired import PairedSource, Pairs

# task -> (source dataset, target dataset), both embedded.
TRANSLATIONS = {"digits2mnist": ("digits", "mnist"), "mnist2digits": ("mnist", "digits")}
TRANSLATE_CHUNK = 256
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
        # Evenly spaced rows when asked for fewer than the split holds: mnist's split is stored
        # class by class, so its first rows would all be zeros.
        rows = np.unique(np.linspace(0, available - 1, min(self.count, available)).round().astype(np.int64))
        self.inputs, self.labels = images[rows], labels[rows]
        if len(rows) < available:
            self.notes.append(
                f"{len(rows):,} evenly spaced images of {source_dataset}:{SPLIT}'s {available:,}"
            )
        self.target_dataset = target_dataset
        self._count = len(self.inputs)
        self.sample_shape = tuple(get_dataset(target_dataset).read(SPLIT, 0, 1)[0].shape[1:])
        self._fingerprint = self.content_hash
        if self._count < self.count:
            self.notes.append(
                f"{source_dataset}:{SPLIT} has {self._count:,} images: {self._count:,} translations, not {self.count:,}"
            )

    def _load_pairs(self) -> Pairs:
        import torch

        assert self.inputs is not None
        generator = torch.Generator().manual_seed(self.seed)
        parts = []
        for start in range(0, len(self.inputs), TRANSLATE_CHUNK):
            chunk = torch.from_numpy(self.inputs[start : start + TRANSLATE_CHUNK].copy())
            try:
                out = self.model.translate(chunk, generator=generator)
            except GenEvalError:
                raise
            except Exception as exc:
                raise GenEvalError(f"{self.spec}: translate() raised {type(exc).__name__}: {exc}") from exc
            if not isinstance(out, torch.Tensor) or out.dtype != torch.uint8:
                raise GenEvalError(
                    f"{self.spec}: translate() returned {getattr(out, 'dtype', type(out))}; return a uint8 tensor"
                )
            if tuple(out.shape) != (len(chunk), *self.sample_shape):
                raise GenEvalError(
                    f"{self.spec}: translate() of {len(chunk)} inputs returned shape {tuple(out.shape)}; "
                    f"expected {(len(chunk), *self.sample_shape)}"
                )
            parts.append(out.detach().cpu().numpy())
        return Pairs(np.concatenate(parts), self.inputs, None, self.labels, 1, self.task_name)

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
