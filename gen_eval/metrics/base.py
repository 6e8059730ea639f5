"""What a metric function receives besides the two feature dicts."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

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
    """

    device: str = "cpu"
    random_state: int = 0
    num_resamples: int = 100
    confidence: float = 0.95
    options: dict[str, Any] = field(default_factory=dict)
    generated_source: Source | None = None
    reference_source: Source | None = None

    def option(self, name: str, default: Any) -> Any:
        """``options[name]`` if given, else ``default``."""
        return self.options.get(name, default)


# A metric: (generated features, reference features, context) -> {result name: Result}.
# One function may return several results (precision and recall come from the same radii).
MetricFunction = Callable[
    ["dict[str, torch.Tensor]", "dict[str, torch.Tensor]", MetricContext], "dict[str, Result]"
]
