"""Paired image-to-image tasks (issue 23): the tasks, paired sources, metrics and baselines."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gen_eval.datasets.tasks import MASK_BOX, get_task, task_names


def test_task_names_and_shapes():
    assert task_names() == ["sr4", "inpaint", "edges"]
    for name in task_names():
        task = get_task(name)
        inputs, targets, labels = task.read("test", 0, 20)
        assert inputs.dtype == np.uint8 and targets.dtype == np.uint8 and labels.dtype == np.int64
        assert inputs.shape[1:] == task.input_shape and targets.shape[1:] == task.target_shape
        assert len(inputs) == len(targets) == len(labels) == 20
        assert task.size("test") == 1000
    with pytest.raises(KeyError):
        get_task("sr8")


def test_split_order_is_balanced_and_real():
    from gen_eval.datasets.mnist import load_mnist_split

    _, targets, labels = get_task("sr4").read("test")
    assert list(labels[:10]) == list(range(10))
    assert np.bincount(labels[:50]).tolist() == [5] * 10
    images, real_labels = load_mnist_split("test")
    # The same images, only reordered.
    assert sorted(map(bytes, targets)) == sorted(map(bytes, images))
    assert np.bincount(labels).tolist() == np.bincount(real_labels).tolist()


def test_sr4_area_mean_against_skimage():
    from skimage.transform import downscale_local_mean

    task = get_task("sr4")
    constant = torch.full((3, 1, 28, 28), 77, dtype=torch.uint8)
    assert torch.equal(task.degrade(constant), torch.full((3, 1, 7, 7), 77, dtype=torch.uint8))
    _, targets, _ = task.read("test", 0, 50)
    expected = downscale_local_mean(targets.astype(np.float64), (1, 1, 4, 4))
    got = task.degrade(torch.from_numpy(targets)).numpy().astype(np.float64)
    # Rounded half up: within half a grey level of scikit-image's exact mean, never further.
    assert np.abs(got - expected).max() <= 0.5
    assert np.array_equal(got, np.floor(expected + 0.5))


def test_inpaint_masks_exactly_the_centre():
    task = get_task("inpaint")
    ones = torch.full((2, 1, 28, 28), 200, dtype=torch.uint8)
    masked = task.degrade(ones)
    start, stop = MASK_BOX
    assert (masked[:, :, start:stop, start:stop] == 0).all()
    assert masked.sum().item() == 200 * 2 * (28 * 28 - 14 * 14)
    assert (~task.known(28, 28)).sum().item() == 14 * 14


def test_edges_are_canny():
    from skimage.feature import canny

    task = get_task("edges")
    inputs, targets, _ = task.read("test", 0, 5)
    for edge, target in zip(inputs, targets, strict=True):
        assert np.array_equal(edge[0] == 255, canny(target[0], sigma=1.0))
        assert set(np.unique(edge)) <= {0, 255}
    blank = torch.zeros((1, 1, 28, 28), dtype=torch.uint8)
    assert task.degrade(blank).sum().item() == 0


@pytest.mark.parametrize("name", ["sr4", "inpaint", "edges"])
def test_consistency_of_targets_is_zero_and_of_noise_is_not(name):
    task = get_task(name)
    inputs, targets, _ = task.read("test", 0, 30)
    inputs_t, targets_t = torch.from_numpy(inputs), torch.from_numpy(targets)
    assert np.array_equal(task.consistency(targets_t, inputs_t), np.zeros(30))
    noise = torch.randint(
        0, 256, targets_t.shape, dtype=torch.uint8, generator=torch.Generator().manual_seed(0)
    )
    assert (task.consistency(noise, inputs_t) > 1).all()


def test_consistency_rmse_by_hand():
    task = get_task("inpaint")
    target = torch.zeros((1, 1, 28, 28), dtype=torch.uint8)
    output = target.clone()
    output[0, 0, 0, 0] = 30  # outside the mask: counts
    output[0, 0, 14, 14] = 250  # inside the mask: does not
    known = 28 * 28 - 14 * 14
    assert task.consistency(output, task.degrade(target))[0] == pytest.approx(
        np.sqrt(30**2 / known), rel=1e-12
    )
