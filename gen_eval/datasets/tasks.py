"""Paired image-to-image tasks on the embedded ``mnist`` digits (issue 23): ``sr4``, ``inpaint``, ``edges``.

Each task turns a real 28x28 digit (the *target*) into the *input* a model sees, by a fixed,
documented degradation; a model's *output* should match the target. Inputs, targets and outputs
are uint8 NCHW at every boundary, like every image in gen-eval.

``sr4``
    4x super-resolution, 28x28 -> 7x7 by the **area mean** of each 4x4 block, rounded half up
    in integer arithmetic (``(sum + 8) // 16``: exact, no floating point). Why the area mean and
    not a bicubic kernel: it is what a sensor integrating light over a pixel does
    (``skimage.transform.downscale_local_mean``'s model), it makes consistency checkable exactly,
    and an up-sampler can be made exactly consistent with it (adding ``c`` to every pixel of a
    block adds ``c`` to the block's mean), which is what the ``bicubic_sr4`` baseline does.
``inpaint``
    The fixed centre 14x14 square (rows and columns 7 to 20, :data:`MASK_BOX`) set to 0; the rest
    of the image is kept. The mask is known to models and metrics (:meth:`Task.known`).
``edges``
    Edges -> digit, the analogue of pix2pix's edges2shoes: scikit-image's Canny edge detector
    (``skimage.feature.canny``, Gaussian sigma 1, its default hysteresis thresholds of 10% / 20%
    of the dtype's range) on each digit, edge pixels 255 and the rest 0.

Every split is the ``mnist`` split of the same name (test 1,000, train 4,000, all 5,000), in its
order: dealt class by class (:func:`gen_eval.datasets.mnist.interleaved_order`), so that the first
``n`` pairs are balanced.

``consistency(outputs, inputs)`` degrades each output as its task degrades a target and returns
the per-sample root mean squared error (grey levels, 0-255) against the input, over the pixels
the input knows: all of them for ``sr4`` and ``edges``, the pixels outside the mask for
``inpaint``. A real target gives exactly 0 by construction. For ``edges`` the error's square over
255² is the fraction of pixels whose edge/no-edge decision differs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch

SIZE = 28
SR_FACTOR = 4
MASK_BOX = (7, 21)  # [start, stop) of the masked rows and columns: the centre 14x14 square
CANNY_SIGMA = 1.0
DATASET = "mnist"


def _as_uint8(images: torch.Tensor, name: str) -> torch.Tensor:
    if not isinstance(images, torch.Tensor) or images.dtype != torch.uint8 or images.dim() != 4:
        got = getattr(images, "dtype", type(images).__name__)
        raise ValueError(f"{name} must be a uint8 NCHW tensor, got {got}")
    return images


def _area_mean_4(targets: torch.Tensor) -> torch.Tensor:
    targets = _as_uint8(targets, "sr4 targets")
    n, c, h, w = targets.shape
    if h % SR_FACTOR or w % SR_FACTOR:
        raise ValueError(f"sr4 needs a height and width divisible by {SR_FACTOR}, got {h}x{w}")
    blocks = targets.to(torch.int32).reshape(n, c, h // SR_FACTOR, SR_FACTOR, w // SR_FACTOR, SR_FACTOR)
    area = SR_FACTOR * SR_FACTOR
    # Integer rounding half up: exact, so consistency of an exactly consistent output is exactly 0.
    return ((blocks.sum(dim=(3, 5)) + area // 2) // area).to(torch.uint8)


def centre_mask(height: int = SIZE, width: int = SIZE) -> torch.Tensor:
    """Boolean (H, W) mask, True on the centre square ``inpaint`` hides (rows/columns 7-20 at 28x28)."""
    mask = torch.zeros(height, width, dtype=torch.bool)
    start, stop = MASK_BOX
    if (height, width) != (SIZE, SIZE):  # the same proportion: the centre half of each side
        start_h, start_w = height // 4, width // 4
        mask[start_h : start_h + height // 2, start_w : start_w + width // 2] = True
        return mask
    mask[start:stop, start:stop] = True
    return mask


def _mask_centre(targets: torch.Tensor) -> torch.Tensor:
    targets = _as_uint8(targets, "inpaint targets")
    masked = targets.clone()
    masked[:, :, centre_mask(*targets.shape[2:])] = 0
    return masked


def _canny_edges(targets: torch.Tensor) -> torch.Tensor:
    from skimage.feature import canny

    targets = _as_uint8(targets, "edges targets")
    array = targets.numpy()
    # canny reads one 2-D image at a time; 1,000 digits take ~0.2 s.
    edges = np.zeros(array.shape, dtype=bool)
    for index, image in enumerate(array):
        for channel, plane in enumerate(image):
            edges[index, channel] = canny(plane, sigma=CANNY_SIGMA)
    return torch.from_numpy(edges.astype(np.uint8) * 255)


@dataclass(frozen=True)
class Task:
    """A paired task: how a target becomes an input, and how an output is checked against it.

    Attributes
    ----------
    name : str
        ``sr4``, ``inpaint`` or ``edges``.
    dataset : str
        The embedded dataset whose digits are the targets (``mnist``).
    description : str
        One line for listings.
    input_shape, target_shape : tuple of int
        (C, H, W) of an input and of a target/output.
    """

    name: str
    dataset: str
    description: str
    input_shape: tuple[int, int, int]
    target_shape: tuple[int, int, int]
    _degrade: Callable[[torch.Tensor], torch.Tensor]

    def degrade(self, targets: torch.Tensor) -> torch.Tensor:
        """The inputs (uint8 NCHW tensor) a model sees for ``targets`` (uint8 NCHW tensor)."""
        return self._degrade(targets)

    def known(self, height: int, width: int) -> torch.Tensor:
        """Boolean (h, w) mask of the input pixels that carry information (False: masked out)."""
        if self.name == "inpaint":
            return ~centre_mask(height, width)
        return torch.ones(height, width, dtype=torch.bool)

    def consistency(self, outputs: torch.Tensor, inputs: torch.Tensor) -> np.ndarray:
        """Per-sample RMSE (float64, grey levels) between ``degrade(outputs)`` and ``inputs``.

        Only the pixels the input knows count (outside the mask for ``inpaint``).
        """
        outputs = _as_uint8(outputs, f"{self.name} outputs")
        inputs = _as_uint8(inputs, f"{self.name} inputs")
        if len(outputs) != len(inputs):
            raise ValueError(f"{len(outputs)} outputs but {len(inputs)} inputs")
        degraded = self.degrade(outputs)
        if degraded.shape != inputs.shape:
            raise ValueError(
                f"{self.name}: degraded outputs are {tuple(degraded.shape[1:])}, inputs {tuple(inputs.shape[1:])}"
            )
        known = self.known(*inputs.shape[2:]).numpy()
        diff = degraded.numpy().astype(np.float64) - inputs.numpy().astype(np.float64)
        squared = (diff**2)[:, :, known]
        return np.sqrt(squared.reshape(len(inputs), -1).mean(axis=1))

    def read(
        self, split: str, start: int = 0, stop: int | None = None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Inputs, targets (uint8 NCHW numpy arrays) and labels (int64) of items [start, stop) of ``split``."""
        inputs, targets, labels = _split_arrays(self.name, split)
        return inputs[start:stop].copy(), targets[start:stop].copy(), labels[start:stop].copy()

    def size(self, split: str) -> int:
        """Number of pairs in ``split`` (that of the dataset's split)."""
        from gen_eval.datasets.mnist import split_size

        return split_size(split)


_TASKS: dict[str, Task] = {
    "sr4": Task(
        name="sr4",
        dataset=DATASET,
        description="4x super-resolution of mnist digits: 7x7 (area mean of 4x4 blocks) -> 28x28",
        input_shape=(1, SIZE // SR_FACTOR, SIZE // SR_FACTOR),
        target_shape=(1, SIZE, SIZE),
        _degrade=_area_mean_4,
    ),
    "inpaint": Task(
        name="inpaint",
        dataset=DATASET,
        description="inpainting of mnist digits: the centre 14x14 square set to 0 -> the whole 28x28 digit",
        input_shape=(1, SIZE, SIZE),
        target_shape=(1, SIZE, SIZE),
        _degrade=_mask_centre,
    ),
    "edges": Task(
        name="edges",
        dataset=DATASET,
        description="edges -> digit (pix2pix's edges2shoes analogue): scikit-image Canny edges (sigma 1) -> 28x28 digit",
        input_shape=(1, SIZE, SIZE),
        target_shape=(1, SIZE, SIZE),
        _degrade=_canny_edges,
    ),
}


def task_names() -> list[str]:
    """Names of the paired tasks."""
    return list(_TASKS)


def get_task(name: str) -> Task:
    """The :class:`Task` called ``name``; KeyError for an unknown name (callers word the error)."""
    if name not in _TASKS:
        raise KeyError(name)
    return _TASKS[name]


@lru_cache(maxsize=12)
def _split_arrays(name: str, split: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    from gen_eval.datasets.mnist import load_mnist_split

    targets, labels = load_mnist_split(split)  # already dealt class by class
    inputs = get_task(name).degrade(torch.from_numpy(targets.copy())).numpy()
    for array in (inputs, targets, labels):
        array.setflags(write=False)
    return inputs, targets, labels
