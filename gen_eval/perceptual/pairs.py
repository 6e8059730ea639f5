"""Perceptual distance between each output and its target: LPIPS when it can run, else a named feature distance.

``lpips``: LPIPS-VGG (:mod:`gen_eval.features.lpips`, Zhang et al. 2018) when both weight files
are on disk (``$GEN_EVAL_VGG16_WEIGHTS``/``$GEN_EVAL_LPIPS_WEIGHTS`` or the torch hub cache);
nothing is downloaded. Without them the metric reports ``feature_distance`` instead, never under
LPIPS's name: the Euclidean distance between the output's and the target's features from the
``mnist`` network (trained here on the task's own digits) when its weights are there, else from
the run's extractor. The result's ``details`` name the network and why LPIPS did not run.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch

from gen_eval.errors import GenEvalError
from gen_eval.metrics.paired import CHUNK, mean_result, pairs_of, per_input
from gen_eval.metrics.result import Result

if TYPE_CHECKING:
    from gen_eval.metrics.base import MetricContext
    from gen_eval.sources.paired import Pairs

DOMAIN_EXTRACTOR = "mnist"


def _lpips_values(pairs: Pairs, context: MetricContext) -> np.ndarray:
    from gen_eval.features.lpips import LPIPS, resolve_lpips_weights

    network = LPIPS.from_files(*resolve_lpips_weights()).to(context.device)
    values = []
    with torch.no_grad():
        for start in range(0, len(pairs.outputs), CHUNK):
            outputs = torch.from_numpy(pairs.outputs[start : start + CHUNK].copy()).to(context.device)
            targets = torch.from_numpy(pairs.targets[start : start + CHUNK].copy()).to(context.device)
            values.append(network(outputs.float() / 255, targets.float() / 255).cpu().numpy())
    return np.concatenate(values).astype(np.float64)


def _feature_extractor(context: MetricContext) -> tuple[object, str]:
    """The ``mnist`` network when it can run, else the run's extractor; and why."""
    from gen_eval.features import create_extractor, extractor_class

    available, detail = extractor_class(DOMAIN_EXTRACTOR).availability()
    if available:
        return create_extractor(DOMAIN_EXTRACTOR, device=context.device), f"{DOMAIN_EXTRACTOR} network"
    if context.extractor is None:
        raise GenEvalError(
            f"feature_distance: no {DOMAIN_EXTRACTOR} weights ({detail}) and no extractor named"
        )
    return (
        create_extractor(context.extractor, device=context.device),
        f"the run's {context.extractor} features ({DOMAIN_EXTRACTOR} network unavailable: {detail})",
    )


def feature_distance_values(pairs: Pairs, context: MetricContext) -> tuple[np.ndarray, str]:
    """Per-pair Euclidean distance between output and target features, and which network gave them."""
    extractor, which = _feature_extractor(context)
    size = getattr(extractor, "input_size", None)
    if size is not None and tuple(pairs.outputs.shape[2:]) != tuple(size):
        raise GenEvalError(
            f"feature_distance: {which} reads {size[0]}x{size[1]} images, the outputs are "
            f"{pairs.outputs.shape[2]}x{pairs.outputs.shape[3]}"
        )
    values = []
    with torch.no_grad():
        for start in range(0, len(pairs.outputs), CHUNK):
            parts = [
                torch.from_numpy(array[start : start + CHUNK].copy()).to(extractor.device)  # type: ignore[attr-defined]
                for array in (pairs.outputs, pairs.targets)
            ]
            out, tgt = (extractor.extract(part)["features"].double() for part in parts)  # type: ignore[attr-defined]
            values.append(torch.linalg.vector_norm(out - tgt, dim=1).cpu().numpy())
    return np.concatenate(values), which


def lpips(generated: dict, reference: dict, context: MetricContext) -> dict[str, Result]:
    """LPIPS of each output against its target, or ``feature_distance`` when LPIPS's weights are absent."""
    pairs = pairs_of(context, "lpips")
    try:
        values = _lpips_values(pairs, context)
    except GenEvalError as exc:
        return _feature_distance(pairs, context, why=f"LPIPS not run: {exc}")
    result = mean_result(
        "lpips",
        per_input(values, pairs.outputs_per_input),
        "lower",
        pairs,
        context,
        network="LPIPS-VGG v0.1 (gen_eval.features.lpips)",
    )
    return {"lpips": result}


def feature_distance(generated: dict, reference: dict, context: MetricContext) -> dict[str, Result]:
    """Euclidean distance between each output's and its target's features (``mnist`` network)."""
    return _feature_distance(pairs_of(context, "feature_distance"), context, why=None)


def _feature_distance(pairs: Pairs, context: MetricContext, why: str | None) -> dict[str, Result]:
    values, which = feature_distance_values(pairs, context)
    warnings = (
        [f"{why}; feature_distance on {which} instead (not LPIPS, not comparable with it)"] if why else []
    )
    result = mean_result(
        "feature_distance",
        per_input(values, pairs.outputs_per_input),
        "lower",
        pairs,
        context,
        warnings=warnings,
        network=which,
        measure="Euclidean distance between output and target features",
    )
    return {"feature_distance": result}
