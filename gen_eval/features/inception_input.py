"""What Inception reads: each peer's resize and value scaling (``--resize-mode``), and its spatial features.

FID depends on how images reach 299x299. The three conventions papers report in:

- ``legacy-tf`` (torch-fidelity's default, TensorFlow 1.x's FID code): bilinear resize of the uint8
  values in float32 with TensorFlow 1.x's sampling grid (torch-fidelity's
  ``interpolate_bilinear_2d_like_tensorflow1x``, ``align_corners=False``), then ``(x - 128) / 128``;
- ``clean`` (clean-fid's ``mode="clean"``, Parmar et al. 2022): each channel resized on its own by
  PIL's bicubic filter in float (mode ``"F"``, no rounding to uint8), clipped to [0, 255], then
  ``(x - 128) / 128`` as clean-fid's ``InceptionV3W(resize_inside=False)`` does;
- ``legacy-pytorch`` (pytorch-fid): ``x / 255``, ``F.interpolate(..., mode="bilinear",
  align_corners=False)``, then ``2 x - 1`` (so 255 maps to 1, not to 0.9921875 as above).

The clean mode calls PIL itself, the same call clean-fid makes, rather than a bicubic of our own:
PIL's float bicubic (its support scaled with the downsampling factor) is what defines the mode.

The spatial features are the guided-diffusion (ADM) evaluator's ``mixed_6/conv:0``: the ReLU
output of the 1x1 branch of TensorFlow's ``mixed_6`` block, which torch-fidelity's weight
conversion names ``Mixed_6d.branch1x1``; ADM keeps its first 7 channels of the NHWC map and
flattens them in NHWC order (17 x 17 x 7 = 2023 values), and sFID is the Fréchet distance of those.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from gen_eval.errors import GenEvalError

if TYPE_CHECKING:
    import torch

RESIZE_MODES: tuple[str, ...] = ("legacy-tf", "clean", "legacy-pytorch")
DEFAULT_RESIZE_MODE = "legacy-tf"
RESIZE_MODE_HELP = (
    "How Inception's input reaches 299x299: legacy-tf (torch-fidelity's default, TF 1.x bilinear), "
    "clean (clean-fid: PIL bicubic in float) or legacy-pytorch (pytorch-fid: bilinear, 2x-1 scaling)."
)
INPUT_SIZE = 299
SPATIAL_CHANNELS = 7
SPATIAL_DIM = 17 * 17 * SPATIAL_CHANNELS  # 2023

PREPROCESSING = {
    "legacy-tf": (
        "resized inside torch-fidelity to 299x299 with its TensorFlow-1.x-compatible bilinear "
        "interpolation (align_corners=False) in float32; then (x - 128) / 128"
    ),
    "clean": (
        "resize mode clean (clean-fid): each channel resized to 299x299 by PIL's bicubic filter in "
        "float32 (mode F), clipped to [0, 255]; then (x - 128) / 128"
    ),
    "legacy-pytorch": (
        "resize mode legacy-pytorch (pytorch-fid): x / 255, resized to 299x299 by torch's bilinear "
        "F.interpolate (align_corners=False); then 2 x - 1"
    ),
}
SPATIAL_NOTE = (
    "also spatial features: Mixed_6d.branch1x1 (ADM's mixed_6/conv), first 7 channels of the "
    "17x17 map flattened in NHWC order (2023-d)"
)


def check_resize_mode(mode: str) -> str:
    """``mode`` if it is one of :data:`RESIZE_MODES`, else a one-line error naming them."""
    if mode not in RESIZE_MODES:
        raise GenEvalError(f"--resize-mode {mode!r}: choose from {', '.join(RESIZE_MODES)}")
    return mode


def network_input(batch: torch.Tensor, mode: str) -> torch.Tensor:
    """uint8 (N, 3, H, W) images -> the float32 (N, 3, 299, 299) tensor Inception's first conv reads.

    Parameters
    ----------
    batch : torch.Tensor
        uint8 RGB images, on the network's device.
    mode : str
        One of :data:`RESIZE_MODES` (see the module docstring).

    Returns
    -------
    torch.Tensor
        float32, on ``batch``'s device.
    """
    import torch
    import torch.nn.functional as F

    size = (INPUT_SIZE, INPUT_SIZE)
    if mode == "legacy-tf":
        from torch_fidelity.interpolate_compat_tensorflow import interpolate_bilinear_2d_like_tensorflow1x

        x = interpolate_bilinear_2d_like_tensorflow1x(batch.to(torch.float32), size=size, align_corners=False)
        return (x - 128) / 128
    if mode == "legacy-pytorch":
        x = batch.to(torch.float32) / 255  # torchvision's ToTensor, as pytorch-fid's loader applies it
        x = F.interpolate(x, size=size, mode="bilinear", align_corners=False)
        return 2 * x - 1
    if mode == "clean":
        return (_pil_bicubic(batch) - 128) / 128
    raise GenEvalError(f"--resize-mode {mode!r}: choose from {', '.join(RESIZE_MODES)}")


def _pil_bicubic(batch: torch.Tensor) -> torch.Tensor:
    """Each channel of each image resized to 299x299 by PIL's float bicubic, clipped to [0, 255]."""
    import numpy as np
    import torch
    from PIL import Image

    images = batch.cpu().numpy()
    out = np.empty((len(images), 3, INPUT_SIZE, INPUT_SIZE), dtype=np.float32)
    for i, image in enumerate(images):
        for c, channel in enumerate(image):
            resized = Image.fromarray(channel.astype(np.float32), mode="F").resize(
                (INPUT_SIZE, INPUT_SIZE), resample=Image.BICUBIC
            )
            out[i, c] = np.asarray(resized).clip(0, 255)
    return torch.from_numpy(out).to(batch.device)


def spatial_features(feature_map: torch.Tensor) -> torch.Tensor:
    """ADM's spatial features from the (N, 192, 17, 17) ``Mixed_6d.branch1x1`` output: (N, 2023)."""
    first = feature_map[:, :SPATIAL_CHANNELS]
    return first.permute(0, 2, 3, 1).reshape(len(first), -1)


def run_network(model: torch.nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """torch-fidelity's InceptionV3 forward from its first conv on: (pool 2048, logits, logits_unbiased).

    The same layers and arithmetic as ``FeatureExtractorInceptionV3.forward`` after its resize and
    scaling (asking for both logits there gives ``x @ W.T`` and then ``+ b``), for inputs that
    another convention has resized and scaled; torch-fidelity's forward accepts uint8 only.
    """
    import torch

    for name in (
        "Conv2d_1a_3x3",
        "Conv2d_2a_3x3",
        "Conv2d_2b_3x3",
        "MaxPool_1",
        "Conv2d_3b_1x1",
        "Conv2d_4a_3x3",
        "MaxPool_2",
        "Mixed_5b",
        "Mixed_5c",
        "Mixed_5d",
        "Mixed_6a",
        "Mixed_6b",
        "Mixed_6c",
        "Mixed_6d",
        "Mixed_6e",
        "Mixed_7a",
        "Mixed_7b",
        "Mixed_7c",
        "AvgPool",
    ):
        x = getattr(model, name)(x)
    pool = torch.flatten(x, 1)
    fc = model.fc  # type: ignore[union-attr]
    unbiased = pool.mm(fc.weight.T)
    return pool, unbiased + fc.bias.unsqueeze(0), unbiased
