"""The digits net read channel by channel, for stacked digits (three digits as the RGB channels).

Mixing the channels to grey, as the plain ``digits`` extractor does, would blend three digits into
one smudge; here each channel is a grey digit image of its own and goes through the bundled
:class:`~gen_eval.features.digits.DigitsNet` separately.
"""

from __future__ import annotations

from pathlib import Path

import torch

from gen_eval.errors import GenEvalError
from gen_eval.features.base import FeatureExtractor
from gen_eval.features.cache import tensors_checksum
from gen_eval.features.digits import DEFAULT_WEIGHTS, DigitsExtractor, digits_net_input, load_digits_net

NUM_CHANNELS = 3


class StackedDigitsExtractor(FeatureExtractor):
    """The digits net's 64-d features and 10 logits of each of the 3 channels, side by side.

    Outputs (2-D float tensors, as the feature cache and the metrics need):

    * ``"features"``: (N, 192), channel 0's 64 features, then channel 1's, then channel 2's;
      ``reshape(N, 3, 64)`` recovers them per channel.
    * ``"channel_logits"``: (N, 30), channel 0's 10 class scores, then channel 1's, then channel 2's;
      ``reshape(N, 3, 10)`` recovers them (see :func:`gen_eval.collapse.stacked.triple_labels`).

    There is deliberately no ``"logits"`` key: the 30 scores are three 10-way classifiers, not one
    30-way classifier, so the Inception Score must not read them as one.
    """

    name = "stacked_digits"
    input_kind = "image"
    input_size = (8, 8)
    feature_names = ("features", "channel_logits")
    description = "digits CNN on each channel of 3-digit stacked images; 3 x 64-d features"
    preprocessing = (
        "uint8 (N, 3, H, W); each channel taken as its own grey image (no channel mixing); "
        "channels not 8x8 resized to 8x8 with "
        "torch.nn.functional.interpolate(mode='bilinear', align_corners=False, antialias=True); "
        "then divided by 255 to [0, 1]; outputs concatenated in channel order"
    )

    @classmethod
    def availability(cls, weights_path: str | Path | None = None, **_: object) -> tuple[bool, str]:
        """``(True, path)`` if the digits weights exist, else ``(False, how to create them)``."""
        return DigitsExtractor.availability(weights_path=weights_path)

    def __init__(self, device: str | torch.device = "cpu", weights_path: str | Path | None = None) -> None:
        super().__init__(device)
        self.weights_path = Path(weights_path) if weights_path is not None else DEFAULT_WEIGHTS
        self.net = load_digits_net(self.weights_path).to(self.device)
        # The cache key also holds the extractor name and preprocessing, so sharing the digits
        # extractor's tensor hash cannot mix up their cached features.
        self._fingerprint = tensors_checksum(self.net.state_dict())

    @property
    def weights_fingerprint(self) -> str:
        """SHA-256 of the digits net's weight tensors (names, shapes, dtypes and bytes)."""
        return self._fingerprint

    def extract(self, batch: torch.Tensor) -> dict[str, torch.Tensor]:
        """Per-channel features and logits of uint8 (N, 3, H, W) images; see :attr:`preprocessing`."""
        if batch.ndim != 4 or batch.shape[1] != NUM_CHANNELS or batch.dtype != torch.uint8:
            raise GenEvalError(
                f"stacked_digits extractor got a {batch.dtype} batch of shape {tuple(batch.shape)}: "
                "pass uint8 images shaped (N, 3, H, W), one digit per channel"
            )
        n, _, height, width = batch.shape
        # One pass over all 3N single-channel images; rows stay grouped by image, channel-major.
        features, logits = self.net(digits_net_input(batch.reshape(n * NUM_CHANNELS, 1, height, width)))
        return {"features": features.reshape(n, -1), "channel_logits": logits.reshape(n, -1)}
