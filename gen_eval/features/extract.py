"""Run an extractor over a source, batch by batch, through the feature cache."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from gen_eval.errors import GenEvalError
from gen_eval.progress import progress_task

if TYPE_CHECKING:
    import torch

    from gen_eval.features.base import FeatureExtractor
    from gen_eval.features.cache import FeatureCache
    from gen_eval.sources import Source


# Code sources (generators) keep their samples next to their features when they are this small,
# so the images behind a verdict can be shown without sampling the model again.
KEEP_SAMPLES_BYTES = 32 * 2**20


@dataclass
class Features:
    """Features of one source: named float32 tensors (N, D), labels if the source has them, and
    for small code sources the samples themselves (uint8 images or float vectors)."""

    tensors: dict[str, torch.Tensor]
    labels: torch.Tensor | None
    from_cache: bool
    cache_key: str | None
    samples: torch.Tensor | None = None

    def __len__(self) -> int:
        return len(self.tensors["features"])


def check_compatible(source: Source, extractor: FeatureExtractor) -> None:
    """Refuse pairings that cannot mean anything (2-D points through an image network)."""
    if extractor.input_kind == "image" and source.data_kind != "image":
        raise GenEvalError(
            f"{source.spec}: holds {source.data_kind}s of shape {source.sample_shape}, but --features "
            f"{extractor.name} needs images; use --features identity"
        )


def extract_features(
    source: Source,
    extractor: FeatureExtractor,
    *,
    batch_size: int,
    cache: FeatureCache,
    show_progress: bool = True,
    label: str = "features",
) -> Features:
    """Features of every sample of ``source``, from the cache when a verified entry exists.

    Parameters
    ----------
    source, extractor
        What to read and how to embed it.
    batch_size : int
        Samples per forward pass.
    cache : FeatureCache
        Where verified entries are looked up and stored (sources without a fingerprint skip it).
    show_progress : bool
        Show a progress bar on stderr.
    label : str
        Text in front of the progress bar.

    Returns
    -------
    Features
    """
    import math

    import torch

    check_compatible(source, extractor)
    key = cache.key(source.fingerprint, extractor.describe()) if source.fingerprint else None
    keep_samples = source.kind in ("python", "reference") and (
        len(source) * math.prod(source.sample_shape) * (1 if source.data_kind == "image" else 4)
        <= KEEP_SAMPLES_BYTES
    )
    if (
        key is not None
        and (cached := cache.load(key)) is not None
        and (not keep_samples or "samples" in cached)
    ):
        labels = cached.pop("labels", None)
        samples = cached.pop("samples", None)
        return Features(cached, labels, True, key, samples)

    parts: dict[str, list[torch.Tensor]] = {}
    labels: list[torch.Tensor] = []
    samples: list[torch.Tensor] = []
    with progress_task(f"{label} ({extractor.name})", len(source), show_progress) as bar:
        for batch in source.batches(batch_size):
            for name, value in extractor(batch.data).items():
                parts.setdefault(name, []).append(value)
            if batch.labels is not None:
                labels.append(torch.as_tensor(batch.labels))
            if keep_samples:
                samples.append(batch.data.cpu())
            bar.advance(len(batch.data))
    tensors = {name: torch.cat(values) for name, values in parts.items()}
    label_tensor = torch.cat(labels) if labels and sum(map(len, labels)) == len(source) else None
    sample_tensor = torch.cat(samples) if samples else None
    if key is not None:
        stored = dict(tensors)
        if label_tensor is not None:
            stored["labels"] = label_tensor
        if sample_tensor is not None:
            stored["samples"] = sample_tensor
        cache.store(key, stored, {"source": source.spec, "extractor": extractor.name})
    return Features(tensors, label_tensor, False, key, sample_tensor)
