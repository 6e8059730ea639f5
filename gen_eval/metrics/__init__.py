"""Metrics: a registry mapping names to plain functions over feature dicts.

Every metric function has the signature ``(generated, reference, context) -> {name: Result}``
(see :mod:`gen_eval.metrics.base`); one function may give several results (precision and
recall). ``requires`` says what a metric needs beyond the ``"features"`` embedding; ``options``
declares every ``context.option`` the metric reads (``-o KEY=VALUE``), which is what
:mod:`gen_eval.options` checks user options against (``tests/test_options.py`` checks that each
option read in the code is declared here).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import import_module
from typing import TYPE_CHECKING

from gen_eval.errors import GenEvalError
from gen_eval.metrics.base import MetricContext
from gen_eval.metrics.result import Result
from gen_eval.option_types import Option

if TYPE_CHECKING:
    from gen_eval.metrics.base import MetricFunction

__all__ = ["MetricContext", "Result", "default_metrics", "get_metric", "metric_names", "resolve_metric_name"]


@dataclass(frozen=True)
class MetricEntry:
    target: str  # "module:function"
    requires: str  # "features", "logits", "images" or "log_prob"
    default: bool  # part of the default set when its requirement is met
    summary: str
    options: Mapping[str, Option] = field(default_factory=dict)  # what ``context.option`` reads


def _knn_options(prefix: str, k: int) -> dict[str, Option]:
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


_KID_OPTIONS = {
    "kid_subsets": Option(int, 100, "random subsets averaged"),
    "kid_subset_size": Option(int, 1000, "samples per subset (clipped to the smaller set)"),
    "kid_degree": Option(int, 3, "degree of the polynomial kernel"),
    "kid_gamma": Option(float, None, "kernel scale (default 1 / feature dimension)"),
    "kid_coef0": Option(float, 1, "kernel offset"),
    "kid_max_kernel_elements": Option(int, 3 * 8192**2, "kernel entries held in memory at once"),
    "kid_bootstrap_subsets": Option(int, 10, "subsets per bootstrap replicate"),
}
_FD_INF_OPTIONS = {
    "fd_inf_points": Option(int, 15, "subset sizes in the 1/N fit"),
    "fd_inf_min": Option(int, None, "smallest subset size (default min(5000, N // 10))"),
    "fd_inf_convention": Option(
        str,
        "dgm-eval",
        "subset sizes as dgm-eval, or gen-eval's legacy ones",
        "gen_eval.metrics.fd_infinity:_CONVENTIONS",
    ),
    "fd_inf_interval": Option(
        str, "bootstrap+ols", "how the interval is computed", "gen_eval.metrics.fd_infinity:_INTERVALS"
    ),
}
_MS_SSIM_OPTIONS = {
    "ms_ssim_pairs": Option(int, 1000, "random image pairs per set"),
    "ms_ssim_convention": Option(
        str, "torchmetrics", "whose MS-SSIM arithmetic to follow", "gen_eval.metrics.ms_ssim:CONVENTIONS"
    ),
    "ms_ssim_per_class": Option(bool, False, "also a mean per class label"),
    "ms_ssim_class_pairs": Option(int, 100, "pairs per class with ms_ssim_per_class"),
}

_REGISTRY: dict[str, MetricEntry] = {
    "fid": MetricEntry(
        "gen_eval.metrics.fid:fid", "features", True, "Fréchet distance of feature Gaussians", {}
    ),
    "fd_inf": MetricEntry(
        "gen_eval.metrics.fd_infinity:fd_infinity",
        "features",
        False,
        "FID extrapolated to infinite N (dgm-eval's subset sizes; interval from a bootstrap)",
        _FD_INF_OPTIONS,
    ),
    "kid": MetricEntry(
        "gen_eval.metrics.kid:kid", "features", True, "unbiased MMD^2, cubic polynomial kernel", _KID_OPTIONS
    ),
    "is": MetricEntry(
        "gen_eval.metrics.inception_score:inception_score",
        "logits",
        True,
        "Inception Score",
        {
            "is_splits": Option(int, 10, "splits of the generated set"),
            "is_shuffle": Option(bool, True, "shuffle the logits before splitting (torch-fidelity)"),
        },
    ),
    "precision_recall": MetricEntry(
        "gen_eval.metrics.precision_recall:precision_recall",
        "features",
        True,
        "k-NN precision/recall (k=3)",
        _knn_options("pr", 3),
    ),
    "density_coverage": MetricEntry(
        "gen_eval.metrics.density_coverage:density_coverage",
        "features",
        True,
        "density/coverage (k=5)",
        _knn_options("dc", 5),
    ),
    "ms_ssim": MetricEntry(
        "gen_eval.metrics.ms_ssim:ms_ssim",
        "images",
        False,
        "MS-SSIM diversity of image pairs",
        _MS_SSIM_OPTIONS,
    ),
    "bpd": MetricEntry(
        "gen_eval.metrics.likelihood:bits_per_dim",
        "log_prob",
        True,
        "log-likelihood in bits/dim",
        {
            "bpd_levels": Option(int, None, "levels per pixel value (default: the model's, else 256)"),
            "bpd_batch_size": Option(int, 256, "images per log_prob call"),
        },
    ),
}
_ALIASES = {
    "pr": "precision_recall",
    "prc": "precision_recall",
    "dc": "density_coverage",
    "inception_score": "is",
    "isc": "is",
    "bits_per_dim": "bpd",
    "fid_inf": "fd_inf",
    "msssim": "ms_ssim",
}


def metric_names() -> list[str]:
    """Names accepted by ``--metrics`` (aliases aside)."""
    return list(_REGISTRY)


def resolve_metric_name(name: str) -> str:
    """Canonical registry name for ``name`` or an alias."""
    canonical = _ALIASES.get(name.lower(), name.lower())
    if canonical not in _REGISTRY:
        raise GenEvalError(f"unknown metric {name!r}: choose from {', '.join(_REGISTRY)}")
    return canonical


def metric_requirement(name: str) -> str:
    """What metric ``name`` needs: "features", "logits", "images" or "log_prob"."""
    return _REGISTRY[resolve_metric_name(name)].requires


def get_metric(name: str) -> MetricFunction:
    """The function computing metric ``name``: ``(generated, reference, context) -> {name: Result}``."""
    module_name, function_name = _REGISTRY[resolve_metric_name(name)].target.split(":")
    return getattr(import_module(module_name), function_name)


def default_metrics(available: set[str]) -> list[str]:
    """The default metric set given what is ``available`` ({"features", "logits", "images", "log_prob"})."""
    return [name for name, entry in _REGISTRY.items() if entry.default and entry.requires in available]


def metric_options() -> dict[str, Mapping[str, Option]]:
    """Metric name -> the options it reads (``{"kid": {"kid_subset_size": Option, ...}, ...}``)."""
    return {name: entry.options for name, entry in _REGISTRY.items()}


def metric_table() -> list[dict[str, object]]:
    """One row per metric: name, what it needs, whether it is a default, a summary, its options."""
    return [
        {
            "name": name,
            "requires": e.requires,
            "default": e.default,
            "summary": e.summary,
            "options": {key: option.describe() for key, option in e.options.items()},
        }
        for name, e in _REGISTRY.items()
    ]
