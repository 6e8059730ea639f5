"""Random but informative stand-ins for the InceptionV3 weights, so tests never need the real file.

Default random init with identity BatchNorm lets activations drift in scale layer by layer, and
the 8x8 average pool then maps all images to nearly the same 2048-d vector, which would let
parity tests pass trivially. Instead: He-normal conv weights, then BatchNorm running statistics
fitted on varied images, so every layer's pre-activations are roughly N(0, 1) per channel and
the features keep image-dependent spread.
"""

from __future__ import annotations

import io
import math
from pathlib import Path

import torch
from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3


def varied_images(n: int, size: int = 32, seed: int = 0) -> torch.Tensor:
    """Images that differ in colour, orientation, frequency and noise level.

    Parameters
    ----------
    n : int
        Number of images.
    size : int
        Height and width.
    seed : int
        Seed; the same seed gives the same images.

    Returns
    -------
    torch.Tensor
        uint8, shape (n, 3, size, size).
    """
    gen = torch.Generator().manual_seed(seed)
    yy, xx = torch.meshgrid(torch.linspace(0, 1, size), torch.linspace(0, 1, size), indexing="ij")
    images = []
    for _ in range(n):
        base = torch.rand(3, 1, 1, generator=gen)
        freq_x, freq_y = (torch.rand(2, generator=gen) * 8).tolist()
        phase = torch.rand(3, 1, 1, generator=gen) * 2 * math.pi
        amplitude = torch.rand(3, 1, 1, generator=gen)
        wave = torch.sin(2 * math.pi * (freq_x * xx + freq_y * yy) + phase)
        noise = torch.rand(1, generator=gen) * 0.3 * torch.randn(3, size, size, generator=gen)
        images.append(base + 0.5 * amplitude * wave + noise)
    return (torch.stack(images).clamp(0, 1) * 255).round().to(torch.uint8)


class _Unloaded(FeatureExtractorInceptionV3):
    """torch-fidelity's network, built from an empty state dict instead of a download."""

    def load_state_dict(self, state_dict, strict=True, assign=False):  # type: ignore[override]
        return super().load_state_dict(state_dict, strict=False, assign=assign)


def make_informative_inception_weights(path: str | Path, seed: int = 0, fit_images: int = 8) -> Path:
    """Write a random InceptionV3 state dict with torch-fidelity's exact keys and shapes.

    Parameters
    ----------
    path : str or Path
        Output file (about 91 MB; put it in a pytest tmp dir, never in the repo).
    seed : int
        Seed for weights and fitting images; the same seed gives the same file contents.
    fit_images : int
        Number of varied 32x32 images whose activations set the BatchNorm running statistics.

    Returns
    -------
    Path
        ``path``, saved with :func:`torch.save` as a plain dict of tensors.
    """
    gen = torch.Generator().manual_seed(seed)
    empty = io.BytesIO()
    torch.save({}, empty)
    empty.seek(0)
    model = _Unloaded("informative", ["2048"], feature_extractor_weights_path=empty)
    batchnorms = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.Conv2d):
                torch.nn.init.kaiming_normal_(module.weight, nonlinearity="relu", generator=gen)
        for bn in batchnorms:
            bn.reset_parameters()  # weight 1, bias 0, mean 0, var 1
            bn.momentum = None  # cumulative average: after one batch, running stats = that batch's stats
        torch.nn.init.normal_(model.fc.weight, std=1 / math.sqrt(2048), generator=gen)
        torch.nn.init.normal_(model.fc.bias, std=0.1, generator=gen)  # non-zero: logits != logits_unbiased
        # One train-mode pass normalises each layer with batch statistics (so later layers see
        # well-scaled inputs) and records those statistics as the running mean/var used in eval.
        model.train()
        model(varied_images(fit_images, 32, seed=seed + 10_000))
        model.eval()
    for bn in batchnorms:
        bn.momentum = 0.1
    state_dict = {key: value.detach().clone() for key, value in model.state_dict().items()}
    path = Path(path)
    torch.save(state_dict, path)
    return path
