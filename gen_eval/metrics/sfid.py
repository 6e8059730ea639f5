"""sFID (Nash et al. 2021): the Fréchet distance of Inception's spatial features, as the ADM evaluator computes it.

The features are the first 7 channels of ``mixed_6/conv`` (17 x 17 x 7 = 2023 values per image;
:mod:`gen_eval.features.inception_input`), which keep where things are in the image where the
pooled features that FID reads do not. The distance, its low-rank path for N <= 2023 and its
bootstrap interval are FID's (:func:`gen_eval.metrics.fid.fid`) applied to those features. Against
statistics the reference is ADM's ``mu_s`` and ``sigma_s`` (or a gen-eval file that holds them).
"""

from __future__ import annotations

from dataclasses import fields
from typing import TYPE_CHECKING

from gen_eval.errors import GenEvalError
from gen_eval.metrics.base import MetricContext
from gen_eval.metrics.fid import fid

if TYPE_CHECKING:
    from collections.abc import Callable

    import torch

    from gen_eval.metrics.result import Result


class _SpatialContext(MetricContext):
    """The run's context, but what FID caches beside the reference gets names of sFID's own."""

    def cached_reference_tensor(self, name: str, compute: Callable[[], torch.Tensor]) -> torch.Tensor:
        return super().cached_reference_tensor(f"sfid_{name}", compute)


def sfid(
    generated: dict[str, torch.Tensor],
    reference: dict[str, torch.Tensor],
    context: MetricContext | None = None,
) -> dict[str, Result]:
    """sFID between the ``"spatial"`` features of two feature dicts, with FID's bootstrap interval.

    Parameters
    ----------
    generated, reference : dict of str to torch.Tensor
        Feature dicts from ``InceptionExtractor(spatial=True)``; a statistics reference gives
        ``"spatial_mean"`` and ``"spatial_cov"`` instead.
    context : MetricContext, optional
        Device, seed and bootstrap resamples (0: no interval).

    Returns
    -------
    dict
        ``{"sfid": Result}``.
    """
    context = context or MetricContext(num_resamples=0)
    if "spatial" not in generated:
        raise GenEvalError("sfid needs Inception's spatial features: use --features inception")
    if "spatial" in reference:
        ref = {"features": reference["spatial"]}
    elif "spatial_mean" in reference:
        ref = {
            "mean": reference["spatial_mean"],
            "cov": reference["spatial_cov"],
            "count": reference["count"],
        }
    else:
        raise GenEvalError(
            "sfid: the reference statistics hold no spatial statistics (mu_s, sigma_s); use an ADM reference "
            "batch or write the statistics with gen-eval stats --format adm (or gen-eval) --features inception"
        )
    spatial_context = _SpatialContext(**{f.name: getattr(context, f.name) for f in fields(context)})
    result = fid({"features": generated["spatial"]}, ref, spatial_context)["fid"]
    result.name = "sfid"
    if result.interval_covers is not None:
        # FID's sentence, less its pointer to fd_inf (which extrapolates FID, not sFID).
        covers = result.interval_covers.split("; FID is biased")[0]
        result.interval_covers = covers.replace("FID", "sFID") + (
            "; sFID is biased upward by O(1/N) like FID: compare runs of equal N"
        )
    result.details["features"] = "Inception mixed_6/conv (Mixed_6d.branch1x1), first 7 channels: 2023-d"
    return {"sfid": result}
