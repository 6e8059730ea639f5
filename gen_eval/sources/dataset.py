"""An embedded dataset split as a source (``digits``, ``digits:test``, ``shapes``, ``ring8:test``...)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from gen_eval.datasets import DatasetInfo
from gen_eval.sources.base import Batch, Source


@dataclass
class DatasetSource(Source):
    """Items [0, limit) of one split of an embedded dataset, with labels."""

    kind = "dataset"
    dataset: DatasetInfo | None = None
    split: str = ""
    limit: int | None = None

    def __post_init__(self) -> None:
        assert self.dataset is not None
        size = self.dataset.size(self.split)
        self._count = size if self.limit is None else min(size, self.limit)
        first, _ = self.dataset.read(self.split, 0, 1)
        self.sample_shape = tuple(first.shape[1:])
        self.data_kind = self.dataset.data_kind
        # Content hash of a small prefix guards against a package changing the bundled data
        # (scikit-learn's digits) without a version bump here.
        prefix, _ = self.dataset.read(self.split, 0, min(self._count, 64))
        digest = hashlib.sha256(f"{self.dataset.version}:{self.split}:{self._count}".encode())
        digest.update(np.ascontiguousarray(prefix).tobytes())
        self._fingerprint = digest.hexdigest()

    def batches(self, batch_size: int) -> Iterator[Batch]:
        import torch

        assert self.dataset is not None
        for start in range(0, self._count, batch_size):
            data, labels = self.dataset.read(self.split, start, min(start + batch_size, self._count))
            yield Batch(torch.from_numpy(np.ascontiguousarray(data)), labels)

    def describe(self) -> dict:
        info = super().describe()
        assert self.dataset is not None
        info.update(dataset=self.dataset.name, split=self.split, version=self.dataset.version)
        return info


def dataset_name(source: Source) -> str | None:
    """``digits`` for ``digits:test`` (embedded datasets only)."""
    return source.spec.split(":")[0] if source.kind == "dataset" else None


def default_train_spec(reference: Source) -> str | None:
    """The training split belonging to an embedded reference (``digits:test`` -> ``digits:train``).

    A setting after the split is kept (``shapes3d:test:512`` -> ``shapes3d:train:512``), so the
    training clouds have the reference's point count.
    """
    from gen_eval.datasets import get_dataset

    name = dataset_name(reference)
    if name is None:
        return None
    setting = reference.spec.split(":", 2)[2:]
    return ":".join([name, "train", *setting]) if "train" in get_dataset(name).splits else None
