"""Stacked digits: three independent 8x8 digits as the channels of one image, 1,000 modes.

The CPU-sized analogue of Stacked MNIST (Metz et al., 2017, "Unrolled Generative Adversarial
Networks", ICLR; Srivastava et al., 2017, "VEEGAN", NeurIPS), built from the bundled digits of
:mod:`gen_eval.datasets.digits`. Each image is uint8 (3, 8, 8); channel c holds one digit image,
and the label is the triple of the three digits' classes, ``100*a + 10*b + c`` (a in channel 0).

Construction: for every image and channel independently, a class is drawn uniformly from 0..9,
then an image of that class uniformly from the digits split. Drawing the class first makes the
1,000 triples exactly equally likely; drawing images uniformly would inherit the split's class
imbalance (the digits test split has 27 to 44 images per class), which alone puts the triple
histogram about 0.09 nats from uniform, above the ~0.05 nats that sampling noise gives at n=10,000.

Splits are fixed: ``train`` stacks digits-train images with ``numpy.random.default_rng(0)`` and
``test`` stacks digits-test images with ``default_rng(1)``; 10,000 images each. Both are generated
in full on first use and cached, so any slice is a slice of the same arrays.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from gen_eval.datasets.digits import load_digits_split

SPLITS = ("train", "test")
_SPLIT_SEEDS = {"train": 0, "test": 1}
SPLIT_SIZE = 10_000
NUM_CLASSES = 10
NUM_MODES = NUM_CLASSES**3


def stack_digits(
    images: np.ndarray, labels: np.ndarray, n: int, random_state: int | np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Stack ``n`` triples of digit images drawn class-first from a pool.

    Parameters
    ----------
    images : (M, 1, 8, 8) uint8 array of digit images.
    labels : (M,) int array of their classes (0..9).
    n : number of stacked images to draw.
    random_state : seed or ``numpy.random.Generator`` (passed to ``numpy.random.default_rng``).

    Returns
    -------
    stacked : (n, 3, 8, 8) uint8 array; channel c is one digit image.
    triples : (n,) int64 array, ``100*a + 10*b + c`` of the three channels' classes.

    Notes
    -----
    Each channel's class is drawn uniformly from the classes present in ``labels``, then an image
    uniformly among the pool's images of that class; a pool holding only some classes therefore
    gives a planted collapse onto those classes.
    """
    images, labels = np.asarray(images), np.asarray(labels, dtype=np.int64)
    if images.ndim != 4 or images.shape[1] != 1 or len(images) != len(labels) or len(labels) == 0:
        raise ValueError(
            f"expected (M, 1, H, W) images with M >= 1 labels, got {images.shape} and {labels.shape}"
        )
    if n < 0:
        raise ValueError(f"n must be non-negative, got {n}")
    rng = np.random.default_rng(random_state)
    present = np.unique(labels)
    members = [np.flatnonzero(labels == k) for k in present]
    sizes = np.array([len(m) for m in members])
    which = rng.integers(0, len(present), size=(n, 3))  # index into ``present`` per channel
    within = rng.integers(0, sizes[which])  # image index inside that class, same shape
    offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    source = np.concatenate(members)[offsets[which] + within]  # (n, 3) indices into the pool
    classes = present[which]
    stacked = images[source, 0]  # (n, 3, H, W): the channel axis is the stacking axis
    return np.ascontiguousarray(stacked), classes @ np.array([100, 10, 1], dtype=np.int64)


def _split_seed(split: str) -> int:
    if split not in _SPLIT_SEEDS:
        raise ValueError(f"unknown stacked_digits split {split!r}; expected one of {SPLITS}")
    return _SPLIT_SEEDS[split]


def stacked_split_size(split: str) -> int:
    """Number of images in ``split`` (10,000 for both)."""
    _split_seed(split)
    return SPLIT_SIZE


@lru_cache(maxsize=len(SPLITS))
def load_stacked_digits(split: str = "train") -> tuple[np.ndarray, np.ndarray]:
    """Images and triple labels of a fixed split.

    Parameters
    ----------
    split : {"train", "test"}
        Stacks digits-train images with ``default_rng(0)`` or digits-test images with ``default_rng(1)``.

    Returns
    -------
    images : (10000, 3, 8, 8) uint8 array (read-only).
    labels : (10000,) int64 array of ``100*a + 10*b + c`` (read-only).
    """
    seed = _split_seed(split)
    images, labels = stack_digits(*load_digits_split(split), SPLIT_SIZE, seed)
    images.setflags(write=False)
    labels.setflags(write=False)
    return images, labels
