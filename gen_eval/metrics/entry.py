"""``MetricEntry``: one metric registry row (its own module so entry lists in other files can import it)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from gen_eval.option_types import Option


@dataclass(frozen=True)
class MetricEntry:
    """A metric: where its function lives, what it needs, and which data kinds it applies to."""

    target: str | Callable[..., Any]  # "module:function", or the function itself
    requires: str  # "features", "logits", "images" or "log_prob" (or a need a new kind provides)
    default: bool  # part of the default set when its requirement is met
    summary: str
    options: Mapping[str, Option] = field(default_factory=dict)  # what ``context.option`` reads
    kinds: tuple[str, ...] | None = None  # the data kinds it applies to; None: every kind
    # Whether a reference's mean and covariance suffice (a statistics file as the reference).
    from_statistics: bool = False


def knn_options(prefix: str, k: int) -> dict[str, Option]:
    """The options precision/recall (``pr``) and density/coverage (``dc``) share, by prefix."""
    return {
        f"{prefix}_k": Option(int, k, "neighbours: the k-th nearest one sets each ball's radius"),
        f"{prefix}_ball": Option(
            str,
            "closed",
            "closed balls (d <= radius, torch-fidelity) or open (d < radius, prdc)",
            "gen_eval.metrics.precision_recall:BALLS",
        ),
        f"{prefix}_chunk_size": Option(
            int, None, "rows per distance block (default: from the memory budget)"
        ),
        f"{prefix}_memory_mb": Option(
            float, None, "memory for one distance block in MB (default 32; 1024 on CUDA)"
        ),
    }


KID_OPTIONS = {
    "kid_subsets": Option(int, 100, "random subsets averaged"),
    "kid_subset_size": Option(int, 1000, "samples per subset (clipped to the smaller set)"),
    "kid_degree": Option(int, 3, "degree of the polynomial kernel"),
    "kid_gamma": Option(float, None, "kernel scale (default 1 / feature dimension)"),
    "kid_coef0": Option(float, 1, "kernel offset"),
    "kid_max_kernel_elements": Option(int, 3 * 8192**2, "kernel entries held in memory at once"),
    "kid_bootstrap_subsets": Option(int, 10, "subsets per bootstrap replicate"),
}
