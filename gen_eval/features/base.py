"""The feature-extractor interface shared by every extractor in the registry."""

from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

if TYPE_CHECKING:
    import torch

# A declared data kind's name (gen_eval.kinds); the kinds an extractor accepts are its
# gen_eval.features.EXTRACTORS entry's.
InputKind = str


def file_sha256(path: str | Path, chunk_size: int = 1 << 20) -> str:
    """Hex SHA-256 of a file's bytes, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk_size):
            digest.update(block)
    return digest.hexdigest()


class FeatureExtractor(ABC):
    """Maps a batch of samples to named feature tensors.

    Subclasses set the class attributes and implement :meth:`extract`.

    Attributes
    ----------
    name : str
        Registry name (``"inception"``, ``"digits"``, ``"identity"``).
    input_kind : {"image", "vector"}
        ``"image"``: batches are uint8 NCHW tensors. ``"vector"``: float (N, D) tensors
        (an ``"identity"`` extractor also accepts images and flattens them).
    feature_names : tuple of str
        Keys of the dict returned by :meth:`__call__`. ``"features"`` is always present and
        is the embedding that FID and friends use; ``"logits"`` is present for classifiers.
    preprocessing : str
        Human-readable description of every conversion applied before the network
        (channel handling, resize method, value range). Recorded in each run's manifest,
        because FID values depend on it.
    input_size : tuple of int or None
        (height, width) the network reads, or None when it takes any size (Inception resizes
        to 299x299 itself; identity flattens). Sets of another size are resized before the
        extractor by the one rule of :mod:`gen_eval.sources.resize`.
    provides : tuple of str
        Metric needs this extractor meets besides its feature tensors (``dinov2-vit-l14``:
        ``fd_dinov2`` is FID on exactly these features).
    """

    name: ClassVar[str]
    input_kind: ClassVar[InputKind] = "image"
    feature_names: ClassVar[tuple[str, ...]] = ("features",)
    preprocessing: ClassVar[str] = ""
    input_size: ClassVar[tuple[int, int] | None] = None
    description: ClassVar[str] = ""
    provides: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def availability(cls, **options: object) -> tuple[bool, str]:
        """Whether this extractor can run here (its weights are found), and where from or why not."""
        return True, "no weights needed"

    def __init__(self, device: str | torch.device = "cpu") -> None:
        import torch

        self.device = torch.device(device)

    @property
    @abstractmethod
    def weights_fingerprint(self) -> str:
        """Hash that changes whenever the weights (or the maths) change; part of the cache key."""

    @abstractmethod
    def extract(self, batch: torch.Tensor) -> dict[str, torch.Tensor]:
        """Features of one batch already on ``self.device``; float32 tensors, one row per sample."""

    def __call__(self, batch: torch.Tensor) -> dict[str, torch.Tensor]:
        """Features of one batch (uint8 NCHW images or float vectors), returned on the CPU."""
        import torch

        with torch.inference_mode():
            out = self.extract(batch.to(self.device, non_blocking=True))
        return {key: value.detach().to("cpu", torch.float32) for key, value in out.items()}

    def describe(self) -> dict[str, object]:
        """What a run's manifest records about this extractor."""
        return {
            "name": self.name,
            "weights_sha256": self.weights_fingerprint,
            "preprocessing": self.preprocessing,
            "feature_names": list(self.feature_names),
        }
