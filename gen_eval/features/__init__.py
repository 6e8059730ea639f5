"""Feature extractors: a registry mapping names to one module each."""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from gen_eval.errors import GenEvalError

if TYPE_CHECKING:
    from gen_eval.features.base import FeatureExtractor

_REGISTRY: dict[str, str] = {
    "inception": "gen_eval.features.inception:InceptionExtractor",
    "digits": "gen_eval.features.digits:DigitsExtractor",
    "stacked_digits": "gen_eval.features.stacked_digits:StackedDigitsExtractor",
    "identity": "gen_eval.features.identity:IdentityExtractor",
}


def extractor_names() -> list[str]:
    """Names accepted by ``--features``."""
    return list(_REGISTRY)


def extractor_class(name: str) -> type[FeatureExtractor]:
    """The extractor class registered under ``name``."""
    if name not in _REGISTRY:
        raise GenEvalError(f"unknown feature extractor {name!r}: choose one of {', '.join(_REGISTRY)}")
    module_name, class_name = _REGISTRY[name].split(":")
    return getattr(import_module(module_name), class_name)


def create_extractor(name: str, device: Any = "cpu", **options: Any) -> FeatureExtractor:
    """Instantiate extractor ``name`` on ``device``; ``options`` go to its constructor."""
    return extractor_class(name)(device=device, **options)


def extractor_status(**options: Any) -> list[dict[str, Any]]:
    """One row per extractor: name, description, input kind, and whether its weights are available."""
    rows = []
    for name in _REGISTRY:
        cls = extractor_class(name)
        available, detail = cls.availability(**options)
        rows.append(
            {
                "name": name,
                "input": cls.input_kind,
                "description": cls.description,
                "available": available,
                "detail": detail,
            }
        )
    return rows
