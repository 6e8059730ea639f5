"""What a metric function receives besides the two feature dicts."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np
    import torch

    from gen_eval.features.cache import FeatureCache
    from gen_eval.metrics.result import Result
    from gen_eval.sources import Source


@dataclass
class MetricContext:
    """Shared settings for one evaluation's metrics.

    Attributes
    ----------
    device : str
        Where the maths runs (``"cpu"``, ``"cuda"``).
    random_state : int
        Seed of every random choice (subsets, shuffles, bootstrap resamples).
    num_resamples : int
        Bootstrap resamples for intervals; 0 disables intervals.
    confidence : float
        Interval coverage (0.95 gives a 95% percentile interval).
    options : dict
        Per-metric overrides, named ``<metric>_<option>`` (``kid_subset_size``, ``is_splits``).
    generated_source, reference_source : Source, optional
        The sources themselves, for metrics that need images or a model rather than features
        (MS-SSIM, bits/dim).
    cache, reference_key : FeatureCache and str, optional
        Where the reference's features are cached and under which key, so that a metric can
        cache what it derives from the reference alone (FID's sqrt of the reference covariance).
    extractor : str, optional
        The feature extractor's registry name (CMMD warns unless it is the paper's CLIP).
    train_features : dict, optional
        The training set's feature dict, for metrics that declare the need ``"train"`` (AuthPct,
        C_T); ``evaluate`` extracts it only when such a metric runs.
    generated_labels, reference_labels : numpy int64 array, optional
        One label per row of the features when the source gives labels: for a conditional
        generator the class each sample was requested for, for a dataset the true class
        (conditional metrics, issue 23).
    """

    device: str = "cpu"
    random_state: int = 0
    num_resamples: int = 100
    confidence: float = 0.95
    options: dict[str, Any] = field(default_factory=dict)
    generated_source: Source | None = None
    reference_source: Source | None = None
    cache: FeatureCache | None = None
    reference_key: str | None = None
    extractor: str | None = None
    train_features: dict[str, torch.Tensor] | None = None
    generated_labels: np.ndarray | None = None
    reference_labels: np.ndarray | None = None

    def cached_reference_tensor(self, name: str, compute: Callable[[], torch.Tensor]) -> torch.Tensor:
        """``compute()`` once per reference: stored beside the reference's cached features."""
        if self.cache is None or self.cache.root is None or self.reference_key is None:
            return compute()
        import hashlib

        key = hashlib.sha256(f"{self.reference_key}:{name}".encode()).hexdigest()
        stored = self.cache.load(key)
        if stored is not None and name in stored:
            return stored[name].to(self.device)
        value = compute()
        self.cache.store(
            key, {name: value.detach().cpu()}, {"derived_from": self.reference_key, "name": name}
        )
        return value

    def option(self, name: str, default: Any) -> Any:
        """``options[name]`` if given, else ``default``."""
        return self.options.get(name, default)


# A metric: (generated features, reference features, context) -> {result name: Result}.
# One function may return several results (precision and recall come from the same radii).
MetricFunction = Callable[
    ["dict[str, torch.Tensor]", "dict[str, torch.Tensor]", MetricContext], "dict[str, Result]"
]
