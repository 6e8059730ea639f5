"""Metrics: a registry mapping names to plain functions over feature dicts.

Every metric function has the signature ``(generated, reference, context) -> {name: Result}``
(see :mod:`gen_eval.metrics.base`); one function may give several results (precision and
recall). ``requires`` says what a metric needs beyond the ``"features"`` embedding.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import import_module
from typing import TYPE_CHECKING

from gen_eval.errors import GenEvalError
from gen_eval.metrics.base import MetricContext
from gen_eval.metrics.result import Result

if TYPE_CHECKING:
    from gen_eval.metrics.base import MetricFunction

__all__ = ["MetricContext", "Result", "default_metrics", "get_metric", "metric_names", "resolve_metric_name"]


@dataclass(frozen=True)
class MetricEntry:
    target: str  # "module:function"
    requires: str  # "features", "logits", "images" or "log_prob"
    default: bool  # part of the default set when its requirement is met
    summary: str


_REGISTRY: dict[str, MetricEntry] = {
    "fid": MetricEntry("gen_eval.metrics.fid:fid", "features", True, "Fréchet distance of feature Gaussians"),
    "fd_inf": MetricEntry(
        "gen_eval.metrics.fd_infinity:fd_infinity",
        "features",
        False,
        "FID extrapolated to infinite N (dgm-eval's subset sizes; interval from a bootstrap)",
    ),
    "kid": MetricEntry(
        "gen_eval.metrics.kid:kid", "features", True, "unbiased MMD^2, cubic polynomial kernel"
    ),
    "is": MetricEntry("gen_eval.metrics.inception_score:inception_score", "logits", True, "Inception Score"),
    "precision_recall": MetricEntry(
        "gen_eval.metrics.precision_recall:precision_recall", "features", True, "k-NN precision/recall (k=3)"
    ),
    "density_coverage": MetricEntry(
        "gen_eval.metrics.density_coverage:density_coverage", "features", True, "density/coverage (k=5)"
    ),
    "ms_ssim": MetricEntry(
        "gen_eval.metrics.ms_ssim:ms_ssim", "images", False, "MS-SSIM diversity of image pairs"
    ),
    "bpd": MetricEntry(
        "gen_eval.metrics.likelihood:bits_per_dim", "log_prob", True, "log-likelihood in bits/dim"
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


def metric_table() -> list[dict[str, object]]:
    """One row per metric: name, what it needs, whether it is a default, a one-line summary."""
    return [
        {"name": name, "requires": e.requires, "default": e.default, "summary": e.summary}
        for name, e in _REGISTRY.items()
    ]
