"""shapes3d: points on the analytic surfaces, uniform over them, fixed disjoint splits; the kind and its specs.

The surface checks are written here from the geometry in the module docstring, not from the
sampler: a convex shape's surface is where the largest of its face constraints is 0, the torus's
where the distance to the centre circle equals the tube radius.
"""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from scipy import stats

from gen_eval.datasets import shapes3d
from gen_eval.errors import GenEvalError
from gen_eval.kinds import get_kind, infer_kind
from gen_eval.sources import open_source


def _canonical(clouds, factors, labels):
    """Undo rotation and scaling: points in each shape's canonical frame."""
    rotations = shapes3d.rotation_matrices(factors["rotation"])
    out = np.einsum("npj,nji->npi", clouds.astype(np.float64), rotations)  # p @ R (R orthogonal: R^T p)
    for index, (label, scale, aspect) in enumerate(
        zip(labels, factors["scale"], factors["aspect"], strict=True)
    ):
        out[index] *= shapes3d.bounding_radius(int(label), float(aspect)) / scale
    return out


def _surface_gap(name: str, q: np.ndarray, a: float) -> np.ndarray:
    x, y, z = np.abs(q[:, 0]), np.abs(q[:, 1]), q[:, 2]
    rho = np.hypot(q[:, 0], q[:, 1])
    if name == "sphere":
        return np.linalg.norm(q, axis=1) - 1
    if name == "cube":
        return np.maximum.reduce([x - 1, y - 1, np.abs(z) - a])
    if name == "cylinder":
        return np.maximum(rho - 1, np.abs(z) - a)
    if name == "cone":  # side: 2a rho + z = a; base: z = -a
        return np.maximum((2 * a * rho + z - a) / np.sqrt(4 * a * a + 1), -z - a)
    if name == "pyramid":
        side = (2 * a * np.maximum(x, y) + z - a) / np.sqrt(4 * a * a + 1)
        return np.maximum(side, -z - a)
    if name == "octahedron":
        return (x + y + np.abs(z) / a - 1) / np.sqrt(2 + 1 / a**2)
    if name == "torus":
        return np.hypot(rho - 1, z) - shapes3d.TORUS_TUBE * a
    raise AssertionError(name)


def test_points_lie_on_the_analytic_surfaces():
    clouds, labels, factors = shapes3d.read("validation", 0, 28, points=256)
    canonical = _canonical(clouds, factors, labels)
    assert sorted(set(labels.tolist())) == list(range(len(shapes3d.CLASSES)))
    for cloud, label, aspect in zip(canonical, labels, factors["aspect"], strict=True):
        gap = _surface_gap(shapes3d.CLASSES[label], cloud, float(aspect))
        assert np.abs(gap).max() < 1e-5, shapes3d.CLASSES[label]  # float32 storage: ~1e-7 relative
    # The documented normalisation: the farthest point at distance `scale` (to the sampling's resolution).
    radii = np.linalg.norm(clouds, axis=2).max(axis=1)
    assert np.all(radii <= factors["scale"] + 1e-6) and np.all(radii >= 0.9 * factors["scale"])
    assert np.all((factors["scale"] >= 0.5) & (factors["scale"] <= 1.0))


def test_points_are_uniform_on_the_surface():
    rng = np.random.default_rng(0)
    # Archimedes: on the unit sphere the height along any axis is uniform on [-1, 1].
    z = shapes3d.canonical_surface(0, 1.0, 20_000, rng)[:, 2]
    assert stats.kstest(z, "uniform", args=(-1, 2)).pvalue > 0.01
    # Cone side: the area within fraction t of the slant from the apex grows as t^2 (rho = t).
    a = 1.3
    cone = shapes3d.canonical_surface(3, a, 20_000, rng)
    side = cone[cone[:, 2] > -a + 1e-9]
    assert stats.kstest(np.hypot(side[:, 0], side[:, 1]) ** 2, "uniform").pvalue > 0.01
    # Area weighting: the caps of a cylinder get 2 pi / (2 pi + 4 pi a) of the points.
    cylinder = shapes3d.canonical_surface(2, a, 20_000, rng)
    on_caps = np.mean(np.abs(np.abs(cylinder[:, 2]) - a) < 1e-9)
    expected = 2 / (2 + 4 * a)
    assert abs(on_caps - expected) < 4 * np.sqrt(expected * (1 - expected) / 20_000)
    # Torus: the tube angle's density is proportional to 1 + r cos(phi) (more outside than inside).
    tube = shapes3d.TORUS_TUBE * 2.0
    torus = shapes3d.canonical_surface(4, 2.0, 20_000, rng)
    phi = np.arctan2(torus[:, 2], np.hypot(torus[:, 0], torus[:, 1]) - 1)
    grid = np.linspace(-np.pi, np.pi, 2001)
    cdf = np.cumsum(1 + tube * np.cos(grid))
    cdf = (cdf - cdf[0]) / (cdf[-1] - cdf[0])
    assert stats.kstest(phi, lambda v: np.interp(v, grid, cdf)).pvalue > 0.01
    # Faces of a box in proportion to their area: the two square ends get 8 / (8 + 16 a).
    box = shapes3d.canonical_surface(1, a, 20_000, rng)
    ends = np.mean(np.abs(np.abs(box[:, 2]) - a) < 1e-9)
    assert abs(ends - 8 / (8 + 16 * a)) < 0.02


def test_splits_are_fixed_and_disjoint_and_slices_agree():
    clouds, labels, _ = shapes3d.read("test", 0, 3, points=64)
    # Pinned: the generated content must not change without a version bump (cache keys use it).
    assert float(np.abs(clouds).astype(np.float64).sum()) == pytest.approx(147.1642999, rel=1e-6)
    again, _, _ = shapes3d.read("test", 2, 3, points=64)
    assert np.array_equal(again[0], clouds[2])  # a slice is generated alone, identically
    scales = {split: shapes3d.read(split, 0, 200, points=8)[2]["scale"] for split in shapes3d.SPLITS}
    for first in shapes3d.SPLITS:
        for second in shapes3d.SPLITS:
            if first < second:
                assert not set(scales[first]) & set(scales[second])
    other = shapes3d.read("test", 0, 3, points=64, random_state=1)
    assert not np.allclose(other[0], clouds) and np.array_equal(other[1], labels)
    assert shapes3d.load("validation", points=4)[0].shape == (1000, 4, 3)
    assert labels.dtype == np.int64 and clouds.dtype == np.float32


def test_the_kind_and_the_dataset_specs():
    source = open_source("shapes3d:test:128", num_samples=10)
    assert source.data_kind == "pointcloud" and source.sample_shape == (128, 3) and len(source) == 10
    assert open_source("shapes3d:validation").sample_shape == (2048, 3)
    assert source.fingerprint != open_source("shapes3d:test:64", num_samples=10).fingerprint
    with pytest.raises(GenEvalError, match=r"^shapes3d:SPLIT:POINTS takes a number of points .*'many'$"):
        open_source("shapes3d:test:many")
    with pytest.raises(GenEvalError, match=r"^digits:test:5: dataset digits takes no setting"):
        open_source("digits:test:5")
    kind = get_kind("pointcloud")
    assert infer_kind((4, 100, 3), "float64") is kind and infer_kind((4, 100, 3), "uint8").name == "image"
    assert infer_kind((4, 3, 8, 8), "uint8").name == "image"
    with pytest.raises(GenEvalError, match=r"point clouds must be float \(N, P, 3\)"):
        kind.validate(np.zeros((2, 5, 2), np.float32), "x")
    converted, note = kind.from_code(np.zeros((2, 5, 3)), "m")
    assert converted.dtype == np.float32 and note is None
    with pytest.raises(GenEvalError, match="NaN or inf"):
        kind.from_code(np.full((2, 5, 3), np.nan), "m")
    png = kind.draw(source.head(5).data.numpy(), None, ("g", "r"))
    assert png.startswith(b"\x89PNG")
    from PIL import Image

    picture = np.asarray(Image.open(io.BytesIO(png)).convert("L"))
    assert (picture[:34] < 128).any() and picture.shape[
        0
    ] == 34 + 2 * 160 + 3 * 2  # a title over 2 rows of views


def test_datasets_command_lists_shapes3d():
    from typer.testing import CliRunner

    from gen_eval.cli.main import app

    rows = json.loads(CliRunner().invoke(app, ["datasets", "--json"]).output)
    row = next(r for r in rows if r["name"] == "shapes3d")
    assert row["kind"] == "pointcloud" and row["splits"] == {"train": 4000, "validation": 1000, "test": 1000}


def test_the_training_split_keeps_the_point_count():
    from gen_eval.sources.dataset import default_train_spec

    assert default_train_spec(open_source("shapes3d:test:64", num_samples=2)) == "shapes3d:train:64"
    assert default_train_spec(open_source("shapes3d:test", num_samples=2)) == "shapes3d:train"
