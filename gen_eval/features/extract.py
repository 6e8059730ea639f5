"""Run an extractor over a source, batch by batch, through the feature cache."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from gen_eval.errors import GenEvalError
from gen_eval.progress import progress_task
from gen_eval.sources.resize import DEFAULT_RESIZE_METHOD

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
    # What the size rule did before extraction (ResizePlan.to_dict()), None when nothing was resized.
    resized: dict[str, Any] | None = None

    def __len__(self) -> int:
        return len(self.tensors["features"])


def check_compatible(source: Source, extractor: FeatureExtractor) -> None:
    """Refuse pairings that cannot mean anything (2-D points through an image network)."""
    from gen_eval.features import EXTRACTORS
    from gen_eval.kinds import get_kind, kinds

    entry = EXTRACTORS.find(extractor.name)
    if entry is not None:
        accepted = entry.kinds
    else:  # an unregistered extractor: an image network reads images, anything else any kind
        accepted = ("image",) if extractor.input_kind == "image" else tuple(k.name for k in kinds())
    if source.data_kind not in accepted:
        needs = " or ".join(get_kind(name).plural for name in accepted)
        raise GenEvalError(
            f"{source.spec}: holds {source.data_kind}s of shape {source.sample_shape}, but --features "
            f"{extractor.name} needs {needs}; use --features {get_kind(source.data_kind).default_extractor}"
        )


def extract_features(
    source: Source,
    extractor: FeatureExtractor,
    *,
    batch_size: int,
    cache: FeatureCache,
    show_progress: bool = True,
    label: str = "features",
    size: tuple[int, int] | None = None,
    resize_method: str = DEFAULT_RESIZE_METHOD,
    reason: str | None = None,
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
    size : tuple of int, optional
        (height, width) images are brought to first (:func:`gen_eval.sources.resize.target_size`);
        default: the extractor's ``input_size``. Every extraction applies this one rule.
    resize_method : str
        How images of another size are resized, or ``"refuse"`` (a one-line error).
    reason : str, optional
        Why ``size`` (for the warning); default: the extractor's input size.

    Returns
    -------
    Features
        ``resized`` says what was resized, also when the features came from the cache.
    """
    import math

    import torch

    from gen_eval.kinds import get_kind
    from gen_eval.sources.resize import fit_source, plan_resize

    check_compatible(source, extractor)
    plan = plan_resize(source, extractor, size or extractor.input_size, resize_method, reason)
    source = fit_source(source, plan)
    resized = plan.to_dict() if plan is not None else None
    key = cache.key(source.fingerprint, extractor.describe()) if source.fingerprint else None
    kind = get_kind(source.data_kind)
    keep_samples = source.kind in ("python", "reference") and (
        len(source) * math.prod(source.sample_shape) * kind.itemsize <= KEEP_SAMPLES_BYTES
    )
    from gen_eval import distributed

    cached = cache.load(key) if key is not None else None
    usable = cached is not None and (not keep_samples or "samples" in cached)
    if distributed.active():  # use the cache only if every rank can (no shared disk: all extract)
        usable = all(distributed.gather_in_order([(distributed.rank(), usable)]))
    if usable:
        labels = cached.pop("labels", None)
        samples = cached.pop("samples", None)
        return Features(cached, labels, True, key, samples, resized)

    # Each rank extracts its own batches (all of them in a single process); then they are
    # gathered in batch order, so every rank holds what one process would have computed.
    own: list[tuple[int, dict[str, Any]]] = []
    with progress_task(
        f"{label} ({extractor.name})", len(source), show_progress and distributed.is_main()
    ) as bar:
        for index, batch in distributed.own_batches(source.batches(batch_size)):
            kind.validate(batch.data, source.spec)  # every reader's output, checked against its kind
            part: dict[str, Any] = {"features": extractor(batch.data)}
            if batch.labels is not None:
                part["labels"] = torch.as_tensor(batch.labels)
            if keep_samples:
                part["samples"] = batch.data.cpu()
            own.append((index, part))
            bar.advance(len(batch.data) * distributed.world_size())
    ordered = distributed.gather_in_order(own)
    tensors = {name: torch.cat([p["features"][name] for p in ordered]) for name in ordered[0]["features"]}
    labels = [p["labels"] for p in ordered if "labels" in p]
    label_tensor = torch.cat(labels) if labels and sum(map(len, labels)) == len(source) else None
    sample_tensor = torch.cat([p["samples"] for p in ordered]) if keep_samples else None
    if key is not None and distributed.is_main():
        stored = dict(tensors)
        if label_tensor is not None:
            stored["labels"] = label_tensor
        if sample_tensor is not None:
            stored["samples"] = sample_tensor
        cache.store(key, stored, {"source": source.spec, "extractor": extractor.name})
    return Features(tensors, label_tensor, False, key, sample_tensor, resized)
