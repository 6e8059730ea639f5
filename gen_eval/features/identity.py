"""The identity extractor: features are the samples themselves."""

from __future__ import annotations

from typing import TYPE_CHECKING

from gen_eval.features.base import FeatureExtractor

if TYPE_CHECKING:
    import torch


class IdentityExtractor(FeatureExtractor):
    """Vectors pass through as float32; images are flattened to their pixel values in [0, 255]."""

    name = "identity"
    input_kind = "vector"
    feature_names = ("features",)
    description = "the samples themselves: 2-D points and vectors as given, images as flattened pixels"
    preprocessing = "vectors: float32 as given; images: uint8 pixels flattened (C*H*W) and cast to float32"

    @property
    def weights_fingerprint(self) -> str:
        return "identity-v1"

    def extract(self, batch: torch.Tensor) -> dict[str, torch.Tensor]:
        import torch

        return {"features": batch.reshape(len(batch), -1).to(torch.float32)}
