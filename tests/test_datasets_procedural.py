"""Tests for the procedural dSprites re-creation and the 2-D Gaussian mixtures."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from gen_eval.datasets import mixtures, shapes
from gen_eval.datasets.mixtures import MIXTURES, load_mixture, mixture_split_size, sample_mixture
from gen_eval.datasets.shapes import (
    FACTOR_SIZES,
    FACTOR_VALUES,
    factor_indices_to_flat,
    flat_to_factor_indices,
    load_shapes,
    render_from_values,
    render_shapes,
    sample_factor_indices,
    shapes_batch,
    shapes_split_size,
    shuffled_order,
)

SQUARE, ELLIPSE, HEART = 0, 1, 2


def _centre_px(pos: float) -> float:
    return (0.25 + 0.5 * pos) * 64


def _centre_of_mass(img: np.ndarray) -> tuple[float, float]:
    """(x, y) of the foreground in the pixel-centre convention used by shapes (centre = index + 0.5)."""
    rows, cols = np.nonzero(img.reshape(64, 64))
    return cols.mean() + 0.5, rows.mean() + 0.5


def _one(shape: int, angle: float, scale: float = 1.0, pos_x: float = 0.5, pos_y: float = 0.5) -> np.ndarray:
    return render_from_values([shape], [scale], [angle], [pos_x], [pos_y])[0, 0]


# ----------------------------------------------------------------------------------------- shapes


def test_factor_definitions() -> None:
    assert int(np.prod(FACTOR_SIZES)) == 737_280
    assert [len(v) for v in FACTOR_VALUES.values()] == list(FACTOR_SIZES)
    np.testing.assert_allclose(FACTOR_VALUES["scale"], [0.5, 0.6, 0.7, 0.8, 0.9, 1.0])
    assert FACTOR_VALUES["orientation"][0] == 0.0
    assert FACTOR_VALUES["orientation"][-1] == pytest.approx(2 * np.pi)


def test_render_dtype_shape_and_values() -> None:
    images = render_shapes(sample_factor_indices(200, 0))
    assert images.shape == (200, 1, 64, 64)
    assert images.dtype == np.uint8
    assert set(np.unique(images)) == {0, 255}
    assert (images.reshape(200, -1) > 0).any(axis=1).all(), "every image has a sprite"


def test_flat_round_trip_and_dsprites_ordering() -> None:
    flat = np.random.default_rng(0).integers(0, 737_280, 5000)
    np.testing.assert_array_equal(factor_indices_to_flat(flat_to_factor_indices(flat)), flat)
    idx = flat_to_factor_indices(np.array([0, 1, 32, 1024, 40 * 1024, 6 * 40 * 1024, 737_279]))
    np.testing.assert_array_equal(
        idx,
        [
            [0, 0, 0, 0, 0],
            [0, 0, 0, 0, 1],  # pos_y varies fastest
            [0, 0, 0, 1, 0],  # then pos_x
            [0, 0, 1, 0, 0],
            [0, 1, 0, 0, 0],
            [1, 0, 0, 0, 0],
            [2, 5, 39, 31, 31],
        ],
    )
    assert idx.dtype == np.int64
    with pytest.raises(ValueError):
        flat_to_factor_indices(np.array([737_280]))
    with pytest.raises(ValueError):
        render_shapes(np.array([[3, 0, 0, 0, 0]]))


def test_sample_factor_indices_uniform_and_seeded() -> None:
    a = sample_factor_indices(30_000, 1)
    np.testing.assert_array_equal(a, sample_factor_indices(30_000, np.random.default_rng(1)))
    assert a.shape == (30_000, 5)
    for j, size in enumerate(FACTOR_SIZES):
        counts = np.bincount(a[:, j], minlength=size)
        assert len(counts) == size
        assert np.abs(counts / len(a) - 1 / size).max() < 0.25 / size


def test_sprites_stay_inside_image() -> None:
    # Extreme corners, largest scale, every orientation, every shape.
    grid = itertools.product(range(3), [5], range(40), [0, 31], [0, 31])
    images = render_shapes(np.array(list(grid)))
    border = np.concatenate(
        [images[:, 0, 0, :], images[:, 0, -1, :], images[:, 0, :, 0], images[:, 0, :, -1]], axis=1
    )
    assert not border.any()
    # And a margin of two pixels more, as the base size promises.
    assert not images[:, 0, :2].any() and not images[:, 0, -2:].any()
    assert not images[:, 0, :, :2].any() and not images[:, 0, :, -2:].any()


@pytest.mark.parametrize("shape", [SQUARE, ELLIPSE, HEART])
def test_area_scales_quadratically(shape: int) -> None:
    rng = np.random.default_rng(shape)
    base = np.column_stack(
        [np.full(300, shape), np.zeros(300, int), rng.integers(0, 40, 300), rng.integers(0, 32, (300, 2))]
    )
    big = base.copy()
    big[:, 1] = 5
    small_area = (render_shapes(base) > 0).sum(axis=(1, 2, 3)).mean()
    big_area = (render_shapes(big) > 0).sum(axis=(1, 2, 3)).mean()
    assert big_area / small_area == pytest.approx(4.0, rel=0.1)
    if shape == SQUARE:  # a 19.2 px wide square at scale 1
        assert big_area == pytest.approx(19.2**2, rel=0.05)


def test_centre_of_mass_tracks_position() -> None:
    for shape_, (ix, iy), orient in itertools.product(
        [SQUARE, HEART], [(0, 0), (0, 31), (31, 0), (7, 20), (16, 16), (31, 31)], [0, 7, 23]
    ):
        img = render_shapes(np.array([[shape_, 5, orient, ix, iy]]))
        cx, cy = _centre_of_mass(img)
        # Position is the centre of mass for the heart too (its centroid offset is built in).
        assert abs(cx - _centre_px(FACTOR_VALUES["pos_x"][ix])) < 1.0
        assert abs(cy - _centre_px(FACTOR_VALUES["pos_y"][iy])) < 1.0


def test_position_moves_the_right_axis() -> None:
    a, b = render_shapes(np.array([[SQUARE, 3, 0, 0, 10], [SQUARE, 3, 0, 20, 10]]))
    (ax, ay), (bx, by) = _centre_of_mass(a), _centre_of_mass(b)
    assert bx - ax == pytest.approx(20 * 32 / 31, abs=1.0) and by == pytest.approx(ay, abs=0.5)


def test_rotation_symmetries() -> None:
    for angle in [0.0, 0.3, 1.1, 2.0]:
        sq_a, sq_b = _one(SQUARE, angle), _one(SQUARE, angle + np.pi / 2)
        assert np.count_nonzero(sq_a != sq_b) <= 2
        el_a, el_b = _one(ELLIPSE, angle), _one(ELLIPSE, angle + np.pi)
        assert np.count_nonzero(el_a != el_b) <= 2
        assert np.count_nonzero(el_a != _one(ELLIPSE, angle + np.pi / 2)) > 40
        he_a, he_b = _one(HEART, angle), _one(HEART, angle + np.pi / 2)
        assert np.count_nonzero(he_a != he_b) > 40
        assert np.count_nonzero(he_a != _one(HEART, angle + np.pi)) > 40
    # Orientation 0 and 2*pi are the same pose, as in dSprites.
    for shape_ in range(3):
        first, last = render_shapes(np.array([[shape_, 5, 0, 9, 9], [shape_, 5, 39, 9, 9]]))
        assert np.count_nonzero(first != last) <= 2


def test_heart_upright_and_ellipse_horizontal_at_orientation_zero() -> None:
    heart = _one(HEART, 0.0) > 0
    np.testing.assert_array_equal(heart, heart[:, ::-1])  # mirror-symmetric about the vertical axis
    rows = np.flatnonzero(heart.any(axis=1))
    widths = heart[rows].sum(axis=1)
    top, bottom = widths[: len(widths) // 3], widths[-len(widths) // 3 :]
    assert top.mean() > 1.5 * bottom.mean(), "lobes up, point down"
    assert widths[-1] <= 3, "the point is at the bottom"
    # The notch between the lobes: the top row has a gap in the middle.
    assert not heart[rows[0], 31] and not heart[rows[0], 32]
    ellipse = _one(ELLIPSE, 0.0) > 0
    assert ellipse.any(axis=0).sum() == pytest.approx(2 * ellipse.any(axis=1).sum(), abs=2)


def test_three_shapes_differ_at_same_pose() -> None:
    for pose in [(5, 0, 16, 16), (2, 13, 3, 28)]:
        imgs = render_shapes(np.array([[s, *pose] for s in range(3)]))
        for i, j in itertools.combinations(range(3), 2):
            assert np.count_nonzero(imgs[i] != imgs[j]) > 20


def test_shuffled_order_is_a_fixed_permutation() -> None:
    order = shuffled_order(0)
    assert order.shape == (737_280,)
    np.testing.assert_array_equal(np.sort(order), np.arange(737_280))
    np.testing.assert_array_equal(order[:1000], np.random.RandomState(0).permutation(737_280)[:1000])
    assert not np.array_equal(order[:1000], shuffled_order(1)[:1000])


def test_splits_deterministic_disjoint_and_consistent() -> None:
    assert shapes_split_size("train") == shapes_split_size("test") == 10_000
    assert shapes_split_size("all") == 737_280
    train_images, train_factors = load_shapes("train")
    assert train_images.shape == (10_000, 1, 64, 64) and train_factors.shape == (10_000, 5)
    assert train_factors.dtype == np.int64
    np.testing.assert_array_equal(factor_indices_to_flat(train_factors), shuffled_order(0)[:10_000])
    again_images, again_factors = load_shapes("train", num=500)
    np.testing.assert_array_equal(again_images, train_images[:500])
    np.testing.assert_array_equal(again_factors, train_factors[:500])
    # Images really are the rendering of the reported factors.
    np.testing.assert_array_equal(render_shapes(train_factors[-300:]), train_images[-300:])

    test_flat = shuffled_order(0)[10_000:20_000]
    assert not np.intersect1d(factor_indices_to_flat(train_factors), test_flat).size

    batch_images, batch_factors = shapes_batch("test", 250, 400)
    test_images, test_factors = load_shapes("test", num=400)
    np.testing.assert_array_equal(batch_images, test_images[250:])
    np.testing.assert_array_equal(batch_factors, test_factors[250:])
    np.testing.assert_array_equal(factor_indices_to_flat(test_factors), test_flat[:400])
    all_images, all_factors = shapes_batch("all", 0, 100)
    np.testing.assert_array_equal(all_factors, train_factors[:100])  # "all" starts with train
    np.testing.assert_array_equal(load_shapes("all", num=100)[0], all_images)


def test_shapes_bad_arguments() -> None:
    with pytest.raises(ValueError, match="split"):
        load_shapes("valid")
    with pytest.raises(ValueError):
        load_shapes("train", num=10_001)
    with pytest.raises(ValueError, match="shapes_batch"):
        load_shapes("all")
    with pytest.raises(ValueError):
        shapes_batch("test", 5, 10_001)


# --------------------------------------------------------------------------------------- mixtures


def test_ring8_centres() -> None:
    centres = MIXTURES["ring8"].centres
    assert centres.shape == (8, 2) and MIXTURES["ring8"].std == 0.02
    np.testing.assert_allclose(np.linalg.norm(centres, axis=1), 2.0)
    angles = np.sort(np.mod(np.arctan2(centres[:, 1], centres[:, 0]), 2 * np.pi))
    np.testing.assert_allclose(np.diff(angles), 2 * np.pi / 8)  # 8 distinct, evenly spaced
    np.testing.assert_allclose(angles[0], 0.0, atol=1e-12)
    assert len(np.unique(np.round(centres, 6), axis=0)) == 8


def test_grid25_centres() -> None:
    spec = MIXTURES["grid25"]
    assert spec.std == 0.05
    expected = {(x, y) for x in (-4, -2, 0, 2, 4) for y in (-4, -2, 0, 2, 4)}
    assert spec.centres.shape == (25, 2)
    assert {tuple(c) for c in spec.centres.tolist()} == expected
    assert "PacGAN" in spec.citation and "Unrolled" in MIXTURES["ring8"].citation


@pytest.mark.parametrize("name", ["ring8", "grid25"])
def test_mixture_sample_statistics(name: str) -> None:
    spec = MIXTURES[name]
    n, k = 20_000, len(spec.centres)
    points, labels = sample_mixture(name, n, 123)
    assert points.shape == (n, 2) and points.dtype == np.float32
    assert labels.shape == (n,) and labels.dtype == np.int64
    counts = np.bincount(labels, minlength=k)
    assert len(counts) == k
    # Multinomial sd is sqrt(n/k) ~ 28-50; 5 sd is a loose but wrong-weighting-catching bound.
    assert np.abs(counts - n / k).max() < 5 * np.sqrt(n / k)
    for m in range(k):
        mine = points[labels == m].astype(np.float64)
        np.testing.assert_allclose(mine.mean(axis=0), spec.centres[m], atol=0.01)
        np.testing.assert_allclose(mine.std(axis=0, ddof=1), spec.std, rtol=0.1)
    mahalanobis = np.linalg.norm(points - spec.centres[labels], axis=1) / spec.std
    assert np.mean(mahalanobis <= 3.0) == pytest.approx(1 - np.exp(-4.5), abs=0.01)
    # Each point is nearest its own centre: the modes are well separated.
    nearest = np.argmin(np.linalg.norm(points[:, None] - spec.centres[None], axis=2), axis=1)
    np.testing.assert_array_equal(nearest, labels)


@pytest.mark.parametrize("name", ["ring8", "grid25"])
def test_mixture_splits(name: str) -> None:
    assert mixture_split_size(name, "train") == mixture_split_size(name, "test") == 10_000
    train, train_labels = load_mixture(name, "train")
    again, _ = load_mixture(name, "train")
    test, _ = load_mixture(name, "test")
    assert train.shape == test.shape == (10_000, 2)
    np.testing.assert_array_equal(train, again)
    assert not np.array_equal(train, test)
    np.testing.assert_array_equal(train, sample_mixture(name, 10_000, 0)[0])
    np.testing.assert_array_equal(test, sample_mixture(name, 10_000, np.random.default_rng(1))[0])
    head, head_labels = load_mixture(name, "train", num=100)
    np.testing.assert_array_equal(head, train[:100])
    np.testing.assert_array_equal(head_labels, train_labels[:100])


def test_mixture_bad_arguments() -> None:
    with pytest.raises(ValueError, match="unknown mixture"):
        sample_mixture("ring9", 10, 0)
    with pytest.raises(ValueError, match="unknown mixture"):
        load_mixture("nope")
    with pytest.raises(ValueError, match="split"):
        load_mixture("ring8", "val")
    with pytest.raises(ValueError, match="split"):
        mixture_split_size("grid25", "all")
    with pytest.raises(ValueError):
        load_mixture("ring8", "train", num=10_001)
    assert mixtures.get_mixture("ring8") is MIXTURES["ring8"]
    assert shapes.SHAPE_NAMES == ("square", "ellipse", "heart")
