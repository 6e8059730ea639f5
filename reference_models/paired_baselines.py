"""Non-learned baselines of the paired tasks (issue 23): what a trained image-to-image model must beat.

Each is a paired model (``task`` + ``translate``, see :mod:`gen_eval.sources.task`) registered
like every reference model, so ``ref:bicubic_sr4`` works; ``gen-eval train NAME`` writes its
checkpoint in a second (``mean_inpaint``'s holds the mean training digit; the others hold no
tensors at all).

``nearest_sr4``
    Each 7x7 pixel repeated over its 4x4 block: exactly consistent with ``sr4``'s area mean.
``bicubic_sr4``
    PIL's bicubic resampling (Keys' cubic convolution, a = -0.5, the kernel of MATLAB's
    ``imresize`` that super-resolution papers' "bicubic" rows use) from 7x7 to 28x28, then one
    exact back-projection onto ``sr4``'s degradation: each 4x4 block is shifted by the difference
    between its input pixel and its mean (adding c to a block adds c to its mean), rounded and
    clipped to uint8, and any sum left over from rounding or clipping is settled one grey level
    at a time on pixels with room. The area mean of the output is then exactly the input
    (consistency 0, which ``tests/test_paired.py`` checks), as the issue asks of the bicubic
    baseline under its own degradation; without the projection, bicubic up-sampling followed by
    the area mean moves pixels by a few grey levels.
``mean_inpaint``
    The masked centre filled with the mean training digit's centre (per-pixel mean of the 4,000
    ``mnist`` training digits); the known pixels are kept, so consistency is exactly 0.
``dilate_edges``
    The edge map's grey dilation with a disk of radius 1 (scikit-image): thick strokes where the
    edges are, i.e. "the edges are the digit".
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

DEFAULTS: dict[str, Any] = {"method": "nearest", "task": "sr4"}
FACTOR = 4


def _nearest_up(x: torch.Tensor, factor: int = FACTOR) -> torch.Tensor:
    return x.repeat_interleave(factor, dim=2).repeat_interleave(factor, dim=3)


def _pil_bicubic(inputs: torch.Tensor, size: tuple[int, int]) -> np.ndarray:
    from PIL import Image

    array = inputs.numpy().astype(np.float32)
    out = np.empty((*array.shape[:2], size[1], size[0]), dtype=np.float64)
    for index in np.ndindex(*array.shape[:2]):
        # Mode "F": 32-bit float planes, so overshoot and fractions survive until the projection.
        out[index] = np.asarray(
            Image.fromarray(array[index], mode="F").resize(size, Image.Resampling.BICUBIC)
        )
    return out


def _settle_block_sums(blocks: np.ndarray, wanted: np.ndarray) -> np.ndarray:
    """Move int pixels of (..., 16) blocks by one grey level at a time until each block sums to ``wanted``.

    Always possible: ``wanted`` lies in [0, 16 * 255], so a block whose sum is short has a pixel
    below 255 (and one above 0 when it is over).
    """
    blocks = blocks.copy()
    for _ in range(16 * 255):
        residual = wanted - blocks.sum(axis=-1)
        if not residual.any():
            return blocks
        up = residual > 0
        room = np.where(up[..., None], blocks < 255, blocks > 0)
        rank = np.cumsum(room, axis=-1)
        move = room & (rank <= np.abs(residual)[..., None])
        blocks += np.where(up[..., None], 1, -1) * move
    raise AssertionError("block sums did not settle")


def back_project_sr4(upsampled: np.ndarray, inputs: np.ndarray) -> np.ndarray:
    """uint8 (N, C, 4h, 4w) whose 4x4 block sums are exactly 16 x ``inputs`` (N, C, h, w), near ``upsampled``."""
    n, c, h, w = inputs.shape
    area = FACTOR * FACTOR
    target = inputs.astype(np.float64)
    blocks = (
        upsampled.reshape(n, c, h, FACTOR, w, FACTOR).transpose(0, 1, 2, 4, 3, 5).reshape(n, c, h, w, area)
    )
    shifted = blocks + (target - blocks.mean(axis=-1))[..., None]
    rounded = np.clip(np.rint(shifted), 0, 255).astype(np.int64)
    settled = _settle_block_sums(rounded, inputs.astype(np.int64) * area)
    out = (
        settled.reshape(n, c, h, w, FACTOR, FACTOR)
        .transpose(0, 1, 2, 4, 3, 5)
        .reshape(n, c, h * FACTOR, w * FACTOR)
    )
    return out.astype(np.uint8)


class PairedBaseline(nn.Module):
    """One of the baselines in the module docstring; ``translate`` is deterministic."""

    def __init__(self, method: str, task: str) -> None:
        super().__init__()
        from gen_eval.datasets.tasks import get_task

        if method not in METHODS:
            raise ValueError(f"unknown paired baseline {method!r}; known: {', '.join(METHODS)}")
        self.method, self.task = method, task
        self.shape = get_task(task).target_shape
        if method == "mean_fill":
            self.register_buffer("mean_image", torch.zeros(self.shape))
        self.family, self.dataset = "baseline", "mnist"

    def translate(self, inputs: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """uint8 (N, C, h, w) inputs of the task -> uint8 (N, C, H, W) outputs (``generator`` unused)."""
        return METHODS[self.method](self, inputs)


def _nearest(model: PairedBaseline, inputs: torch.Tensor) -> torch.Tensor:
    return _nearest_up(inputs)


def _bicubic(model: PairedBaseline, inputs: torch.Tensor) -> torch.Tensor:
    height, width = model.shape[1:]
    upsampled = _pil_bicubic(inputs, (width, height))
    return torch.from_numpy(back_project_sr4(upsampled, inputs.numpy()))


def _mean_fill(model: PairedBaseline, inputs: torch.Tensor) -> torch.Tensor:
    from gen_eval.datasets.tasks import centre_mask

    mask = centre_mask(*inputs.shape[2:])
    out = inputs.clone()
    fill = model.mean_image.round().clamp(0, 255).to(torch.uint8)
    out[:, :, mask] = fill[:, mask].unsqueeze(0).expand(len(inputs), -1, -1)
    return out


def _dilate(model: PairedBaseline, inputs: torch.Tensor) -> torch.Tensor:
    from skimage.morphology import dilation, disk

    array = inputs.numpy()
    out = np.empty_like(array)
    for index in np.ndindex(*array.shape[:2]):
        out[index] = dilation(array[index], disk(1))
    return torch.from_numpy(out)


METHODS = {"nearest": _nearest, "bicubic": _bicubic, "mean_fill": _mean_fill, "dilate": _dilate}


def build(hparams: dict[str, Any], dataset: str) -> PairedBaseline:
    """The baseline ``hparams["method"]`` for task ``hparams["task"]``."""
    return PairedBaseline(hparams["method"], hparams["task"])


def fit(
    hparams: dict[str, Any], data: Any, *, generator: torch.Generator, log: Any
) -> tuple[PairedBaseline, dict]:
    """Nothing to learn but ``mean_fill``'s mean training digit (of the train split less validation)."""
    model = build(hparams, data.dataset)
    if hparams["method"] == "mean_fill":
        model.mean_image.copy_(data.train.to(torch.float64).mean(dim=0).to(torch.float32))
    return model, {"learned": "mean training digit" if hparams["method"] == "mean_fill" else "nothing"}
