"""The one interface every sample source implements."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    import numpy as np
    import torch

    from gen_eval.kinds import Samples


@dataclass
class Batch:
    """One chunk of samples: uint8 NCHW images or float32 (N, D) vectors, plus labels when known.

    Paired sources (image-to-image tasks, issue 23) also give, row for row, the ``inputs`` each
    output was made from and the ``targets`` it should match (same shape as ``data``).
    """

    data: torch.Tensor
    labels: np.ndarray | None = None
    inputs: torch.Tensor | None = None
    targets: torch.Tensor | None = None


@dataclass
class Source(ABC):
    """A finite, ordered stream of samples.

    Subclasses take their own options as dataclass fields and, when constructed, set
    ``data_kind``, ``sample_shape``, ``_count`` and ``_fingerprint`` (and append to ``notes``).

    Attributes
    ----------
    spec : str
        What the user typed (``digits:test``, ``samples/``, ``gen.py:make``).
    kind : str
        ``"dataset"``, ``"folder"``, ``"array"`` or ``"python"`` (a class attribute).
    data_kind : str
        The name of a declared :class:`gen_eval.kinds.DataKind`: images are uint8 NCHW at every
        boundary, vectors float32 (N, D); a kind's ``validate`` says what its batches are.
    sample_shape : tuple of int
        (C, H, W) for images, (D,) for vectors.
    num_classes : int or None
        Set by labelled submissions (an ``.npz`` with ``labels``, class folders ``0/ 1/ ...``, a
        conditional generator): their labels are the classes the samples were asked to be, and
        the metrics that need ``"labels"`` run. None for unlabelled sets and for datasets, whose
        labels are facts about real samples, not requests.
    notes : list of str
        Every conversion the source applied (recorded in the manifest).
    """

    kind: ClassVar[str]
    spec: str
    data_kind: str = field(default="image", init=False)
    sample_shape: tuple[int, ...] = field(default=(), init=False)
    num_classes: int | None = field(default=None, init=False)
    notes: list[str] = field(default_factory=list, init=False)
    _count: int = field(default=0, init=False, repr=False)
    _fingerprint: str | None = field(default=None, init=False, repr=False)

    def __len__(self) -> int:
        """Number of samples this source yields."""
        return self._count

    @property
    def fingerprint(self) -> str | None:
        """Content hash of exactly what this source yields, or None when it cannot be known in advance
        (code that samples), in which case its features are never cached."""
        return self._fingerprint

    @abstractmethod
    def batches(self, batch_size: int) -> Iterator[Batch]:
        """Yield the samples in order, ``batch_size`` at a time (the last batch may be smaller)."""

    def describe(self) -> dict[str, Any]:
        """What a run's manifest records about this source."""
        return {
            "spec": self.spec,
            "kind": self.kind,
            "data_kind": self.data_kind,
            "count": len(self),
            "sample_shape": list(self.sample_shape),
            "num_classes": self.num_classes,
            "fingerprint": self.fingerprint,
            "conversions": list(self.notes),
        }

    def head(self, n: int) -> Batch:
        """The first ``n`` samples (for sample grids)."""
        import torch

        parts, labels = [], []
        taken = 0
        for batch in self.batches(min(n, 256)):
            parts.append(batch.data[: n - taken])
            if batch.labels is not None:
                labels.append(batch.labels[: n - taken])
            taken += len(parts[-1])
            if taken >= n:
                break
        import numpy as np

        return Batch(torch.cat(parts), np.concatenate(labels) if labels else None)

    def samples(self, n: int) -> Samples:
        """The first ``n`` samples with their kind and labels, checked (:class:`gen_eval.kinds.Samples`)."""
        from gen_eval.kinds import Samples

        batch = self.head(min(n, len(self)))
        return Samples(batch.data, self.data_kind, labels=batch.labels, name=self.spec)

    def take(self, indices: list[int], batch_size: int = 256) -> np.ndarray:
        """The samples at ``indices`` (in that order, repeats allowed), in one streaming pass.

        Code sources sample again, so pass the batch size their features were extracted with:
        a seeded generator then yields the same samples.
        """
        import numpy as np

        wanted = np.asarray(indices, dtype=np.int64)
        if len(wanted) and (wanted.min() < 0 or wanted.max() >= len(self)):
            raise IndexError(f"{self.spec}: indices must lie in [0, {len(self)})")
        order = np.argsort(wanted, kind="stable")
        found: dict[int, np.ndarray] = {}
        start, cursor = 0, 0
        for batch in self.batches(batch_size):
            stop = start + len(batch.data)
            while cursor < len(order) and wanted[order[cursor]] < stop:
                index = int(wanted[order[cursor]])
                found[index] = batch.data[index - start].numpy()
                cursor += 1
            start = stop
            if cursor == len(order):
                break
        if not found:
            from gen_eval.kinds import get_kind

            return np.zeros((0, *self.sample_shape), dtype=get_kind(self.data_kind).dtype)
        return np.stack([found[int(i)] for i in wanted])
