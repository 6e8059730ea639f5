"""scikit-learn's bundled 8x8 handwritten digits, as uint8 images with a fixed split.

The 1,797 images have 17 grey levels (0..16). They are scaled to uint8 by
``round(v * 255 / 16)``, so the 17 levels stay distinct and exactly invertible.

The train/test split is fixed and documented: ``numpy.random.RandomState(0)``
permutes the 1,797 indices; the first 360 (20%) form ``test``, the remaining
1,437 form ``train`` (each kept in ascending index order). ``RandomState`` is
covered by NumPy's stream-compatibility guarantee, so the split never changes.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

NUM_TEST = 360
GREY_LEVELS = 17
SPLITS = ("all", "train", "test")


@lru_cache(maxsize=1)
def _load_all() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    levels = bunch.images.astype(np.float64)  # (1797, 8, 8), values 0..16
    images = np.rint(levels * 255.0 / (GREY_LEVELS - 1)).astype(np.uint8)[:, None]
    labels = bunch.target.astype(np.int64)
    images.setflags(write=False)
    labels.setflags(write=False)
    return images, labels


def split_indices(split: str) -> np.ndarray:
    """Indices into the full 1,797-image array for ``split`` ("all", "train" or "test")."""
    if split not in SPLITS:
        raise ValueError(f"unknown digits split {split!r}; expected one of {SPLITS}")
    n = len(_load_all()[1])
    if split == "all":
        return np.arange(n)
    perm = np.random.RandomState(0).permutation(n)
    chosen = perm[:NUM_TEST] if split == "test" else perm[NUM_TEST:]
    return np.sort(chosen)


def load_digits_split(split: str = "all") -> tuple[np.ndarray, np.ndarray]:
    """Images (N, 1, 8, 8) uint8 and labels (N,) int64 of one split.

    Parameters
    ----------
    split : {"all", "train", "test"}

    Returns
    -------
    images, labels
    """
    images, labels = _load_all()
    idx = split_indices(split)
    return images[idx], labels[idx]


def to_grey_levels(images: np.ndarray) -> np.ndarray:
    """Map uint8 digits images back to their 17 integer grey levels (0..16)."""
    return np.rint(images.astype(np.float64) * (GREY_LEVELS - 1) / 255.0).astype(np.int64)
