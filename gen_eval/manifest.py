"""What a run's manifest records about one evaluation besides its options: versions and the sets read."""

from __future__ import annotations

import platform
from datetime import datetime, timezone
from importlib import metadata
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from gen_eval.features.extract import Features
    from gen_eval.sources import Source


def versions() -> dict[str, str]:
    """Python's and each numerically relevant package's version ("not installed" when absent)."""
    from gen_eval import __version__

    # gen-eval's own version from the package: its distribution is gen-eval-toolkit, and "gen-eval"
    # on the package index is an unrelated project. The key stays "gen-eval" (the run format).
    found = {"python": platform.python_version(), "gen-eval": __version__}
    for package in ("torch", "torch-fidelity", "numpy", "scikit-learn", "pillow", "safetensors"):
        try:
            found[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            found[package] = "not installed"
    return found


def set_entries(
    gen: Source,
    ref: Source,
    gen_features: Features,
    ref_features: Features,
    train: Source | None,
    resizes: dict[str, dict[str, Any]],
) -> dict[str, Any]:
    """The manifest's ``created``, ``versions``, ``generated``, ``reference`` and ``training_set`` entries.

    Parameters
    ----------
    gen, ref : Source
        The generated and the reference set.
    gen_features, ref_features : Features
        Their features (whether they came from the cache, under which key).
    train : Source, optional
        The training set of the memorisation check.
    resizes : dict
        Role (``"generated"``, ``"reference"``, ``"training set"``) -> what the size rule did.

    Returns
    -------
    dict
    """

    def entry(source: Source, features: Features, role: str) -> dict[str, Any]:
        return {
            **source.describe(),
            "features_from_cache": features.from_cache,
            "cache_key": features.cache_key,
            "resized": resizes.get(role),
        }

    return {
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "versions": versions(),
        "generated": entry(gen, gen_features, "generated"),
        "reference": entry(ref, ref_features, "reference"),
        "training_set": (
            {**train.describe(), "resized": resizes.get("training set")} if train is not None else None
        ),
    }
