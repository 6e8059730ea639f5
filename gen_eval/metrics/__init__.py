"""Metrics: a registry mapping names to plain functions over feature dicts."""

from __future__ import annotations

from collections.abc import Callable
from importlib import import_module
from typing import Any

from gen_eval.errors import GenEvalError
from gen_eval.metrics.result import Result

__all__ = ["Result", "get_metric", "metric_names"]

_REGISTRY: dict[str, str] = {
    "fid": "gen_eval.metrics.fid:fid",
}


def metric_names() -> list[str]:
    """Names accepted by ``--metrics``."""
    return list(_REGISTRY)


def get_metric(name: str) -> Callable[..., Result]:
    """The function computing metric ``name``: ``(generated, reference, *, device) -> Result``."""
    if name not in _REGISTRY:
        raise GenEvalError(f"unknown metric {name!r}: choose from {', '.join(_REGISTRY)}")
    module_name, function_name = _REGISTRY[name].split(":")
    function: Any = getattr(import_module(module_name), function_name)
    return function
