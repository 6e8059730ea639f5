"""FD_DINOv2 (EDM2, after dgm-eval): the Fréchet distance of DINOv2 ViT-L/14 embeddings.

EDM2's conventions (Karras et al. 2024, ``calculate_metrics.py``), which gen-eval follows:

- the network is DINOv2 ViT-L/14 (``--features dinov2-vit-l14``), the embedding its CLS token
  after the final LayerNorm (1024-d, not L2-normalised);
- images are grey -> RGB, resized to 224x224 with torch's bicubic, ``antialias=True``, on
  values in [0, 255], then ``x / 255`` and ImageNet's mean and std (the extractor's default
  ``bicubic`` resize mode; ``legacy-tf`` is torch-fidelity's convention and gives other numbers);
- the Fréchet distance of the two Gaussians, covariances with N - 1, the matrix square root's
  real part: the same formula as FID (:func:`gen_eval.metrics.fid.fid`), so the interval,
  the statistics-file reference and the cache work as for FID;
- EDM2 reports it for 50,000 generated images against the whole training set; like FID it is
  biased upward at smaller N, so compare only runs with the same N.

The metric refuses other extractors' features: its need ``dinov2-vit-l14`` is met only by that
extractor (:attr:`gen_eval.features.base.FeatureExtractor.provides`).
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from gen_eval.metrics.fid import fid

if TYPE_CHECKING:
    import torch

    from gen_eval.metrics.base import MetricContext
    from gen_eval.metrics.result import Result


def fd_dinov2(
    generated: dict[str, torch.Tensor],
    reference: dict[str, torch.Tensor],
    context: MetricContext | None = None,
) -> dict[str, Result]:
    """FD_DINOv2 between two feature dicts of ``dinov2-vit-l14`` features.

    Parameters
    ----------
    generated, reference : dict of str to torch.Tensor
        ``"features"`` (N, 1024) from the ``dinov2-vit-l14`` extractor (or its statistics).
    context : MetricContext, optional
        Device, seed and bootstrap resamples, as for FID.

    Returns
    -------
    dict
        ``{"fd_dinov2": Result}`` with FID's interval and warnings.
    """
    result = fid(generated, reference, context)["fid"]
    details = {**result.details, "convention": "EDM2: DINOv2 ViT-L/14 CLS token, bicubic 224x224"}
    return {"fd_dinov2": replace(result, name="fd_dinov2", details=details)}
