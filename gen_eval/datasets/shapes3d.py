"""Procedural 3-D shapes as point clouds, with known classes and factors (``shapes3d``).

Seven primitives (:data:`CLASSES`), each varied in scale, aspect and rotation, with points drawn
**uniformly on the surface** (area-weighted: every surface part gets points in proportion to its
area, and within a part the density is uniform). 2,048 points per cloud by default, as in
PointFlow (Yang et al., 2019); any other count can be asked for.

Canonical shapes, before scaling and rotation (``a`` is the ``aspect`` factor, log-uniform in
[0.5, 2], height over width; the sphere ignores it and records 1):

* ``sphere``: the unit sphere.
* ``cube``: the box ``|x|, |y| <= 1, |z| <= a`` (a square cuboid unless ``a`` = 1).
* ``cylinder``: radius 1, ``|z| <= a``, with both caps.
* ``cone``: base disc of radius 1 at ``z = -a``, apex at ``(0, 0, a)``, with the base.
* ``torus``: around the z axis, centre-line radius 1, tube radius ``0.25 * a`` (0.125 to 0.5).
* ``pyramid``: square base ``|x|, |y| <= 1`` at ``z = -a``, apex at ``(0, 0, a)``, with the base.
* ``octahedron``: vertices ``(±1, 0, 0)``, ``(0, ±1, 0)``, ``(0, 0, ±a)``.

Normalisation (per cloud, exact rather than estimated from the points): each shape is centred
on its centre of symmetry (mid-height for the cone and the pyramid), scaled so that its farthest
surface point lies at distance ``scale`` from the origin (``scale`` uniform in [0.5, 1]: every
cloud lies inside the unit ball and the scale stays a recoverable factor), then rotated by a
rotation drawn uniformly from SO(3). Metrics that compare shapes regardless of size normalise
again on their own (see :mod:`gen_eval.metrics.pointclouds`).

Splits are fixed: item ``i`` of split ``s`` is drawn from its own generator seeded with
``(random_state, s, i)``, so any slice is generated alone and identically every time, and the
splits (train 4,000, validation 1,000, test 1,000) never share a shape. Classes cycle (item ``i``
has class ``i % 7``), so every prefix is balanced. Another ``random_state`` is an independent draw
of the same distribution (new shapes and points); ``random_state=0`` is the dataset.
"""

from __future__ import annotations

import numpy as np

CLASSES: tuple[str, ...] = ("sphere", "cube", "cylinder", "cone", "torus", "pyramid", "octahedron")
SPLITS: tuple[str, ...] = ("train", "validation", "test")
SPLIT_SIZES: dict[str, int] = {"train": 4000, "validation": 1000, "test": 1000}
DEFAULT_POINTS = 2048
FACTOR_NAMES: tuple[str, ...] = ("scale", "aspect", "rotation")
SCALE_RANGE = (0.5, 1.0)
ASPECT_RANGE = (0.5, 2.0)
TORUS_TUBE = 0.25  # tube radius per unit aspect, centre-line radius 1
_SPLIT_CODES = {"train": 0, "validation": 1, "test": 2}


def _triangles(corners: np.ndarray, faces: list[tuple[int, ...]]) -> np.ndarray:
    """(T, 3, 3) triangles of a polyhedron whose faces are convex polygons of ``corners``."""
    return np.array(
        [
            [corners[face[0]], corners[face[k]], corners[face[k + 1]]]
            for face in faces
            for k in range(1, len(face) - 1)
        ]
    )


def polyhedron(label: int, aspect: float) -> np.ndarray:
    """The canonical triangles (T, 3, 3) of the cube, pyramid or octahedron of ``aspect``."""
    a = aspect
    name = CLASSES[label]
    if name == "cube":
        corners = np.array([[x, y, z] for x in (-1, 1) for y in (-1, 1) for z in (-a, a)], dtype=np.float64)
        faces = [(0, 1, 3, 2), (4, 5, 7, 6), (0, 1, 5, 4), (2, 3, 7, 6), (0, 2, 6, 4), (1, 3, 7, 5)]
    elif name == "pyramid":
        corners = np.array([[-1, -1, -a], [1, -1, -a], [1, 1, -a], [-1, 1, -a], [0, 0, a]], dtype=np.float64)
        faces = [(0, 1, 2, 3), (0, 1, 4), (1, 2, 4), (2, 3, 4), (3, 0, 4)]
    elif name == "octahedron":
        corners = np.array(
            [[1, 0, 0], [0, 1, 0], [-1, 0, 0], [0, -1, 0], [0, 0, a], [0, 0, -a]], dtype=np.float64
        )
        faces = [(k, (k + 1) % 4, tip) for tip in (4, 5) for k in range(4)]
    else:
        raise ValueError(f"{name} is not a polyhedron")
    return _triangles(corners, faces)


def bounding_radius(label: int, aspect: float) -> float:
    """Distance from the centre to the farthest surface point of the canonical shape."""
    name, a = CLASSES[label], aspect
    if name == "sphere":
        return 1.0
    if name == "torus":
        return 1.0 + TORUS_TUBE * a
    if name == "octahedron":
        return max(1.0, a)
    if name in ("cube", "pyramid"):
        return float(np.sqrt(2.0 + a * a))  # a corner at (1, 1, a) (the pyramid's apex, at a, is nearer)
    return float(np.sqrt(1.0 + a * a))  # cylinder rim, cone base rim (the apex, at a, is nearer)


def _on_triangles(triangles: np.ndarray, count: int, rng: np.random.Generator) -> np.ndarray:
    edges1, edges2 = triangles[:, 1] - triangles[:, 0], triangles[:, 2] - triangles[:, 0]
    areas = 0.5 * np.linalg.norm(np.cross(edges1, edges2), axis=1)
    which = rng.choice(len(triangles), size=count, p=areas / areas.sum())
    u, v = rng.random(count), rng.random(count)
    flip = u + v > 1  # reflect the far half of the parallelogram back: uniform on the triangle
    u[flip], v[flip] = 1 - u[flip], 1 - v[flip]
    return triangles[which, 0] + u[:, None] * edges1[which] + v[:, None] * edges2[which]


def _disc(count: int, z: float, rng: np.random.Generator) -> np.ndarray:
    radius, angle = np.sqrt(rng.random(count)), rng.uniform(0, 2 * np.pi, count)  # sqrt: uniform area
    return np.stack([radius * np.cos(angle), radius * np.sin(angle), np.full(count, z)], axis=1)


def _split_counts(areas: list[float], count: int, rng: np.random.Generator) -> np.ndarray:
    return rng.multinomial(count, np.asarray(areas) / sum(areas))


def canonical_surface(label: int, aspect: float, count: int, rng: np.random.Generator) -> np.ndarray:
    """``count`` points uniform on the canonical (unscaled, unrotated) shape, float64 (count, 3)."""
    name, a = CLASSES[label], aspect
    if name == "sphere":
        points = rng.normal(size=(count, 3))
        return points / np.linalg.norm(points, axis=1, keepdims=True)
    if name in ("cube", "pyramid", "octahedron"):
        return _on_triangles(polyhedron(label, a), count, rng)
    if name == "cylinder":
        side, top, bottom = _split_counts([4 * np.pi * a, np.pi, np.pi], count, rng)
        angle = rng.uniform(0, 2 * np.pi, side)
        wall = np.stack([np.cos(angle), np.sin(angle), rng.uniform(-a, a, side)], axis=1)
        points = np.concatenate([wall, _disc(top, a, rng), _disc(bottom, -a, rng)])
    elif name == "cone":
        slant = np.sqrt(1 + 4 * a * a)
        side, base = _split_counts([np.pi * slant, np.pi], count, rng)
        # The lateral area within distance t (as a fraction of the slant) of the apex grows as t^2.
        t, angle = np.sqrt(rng.random(side)), rng.uniform(0, 2 * np.pi, side)
        wall = np.stack([t * np.cos(angle), t * np.sin(angle), a - 2 * a * t], axis=1)
        points = np.concatenate([wall, _disc(base, -a, rng)])
    elif name == "torus":
        tube = TORUS_TUBE * a
        kept: list[np.ndarray] = []
        while sum(len(k) for k in kept) < count:
            # Rejection: the area element is proportional to 1 + tube * cos(phi).
            theta, phi = rng.uniform(0, 2 * np.pi, (2, 2 * count))
            keep = rng.random(2 * count) * (1 + tube) < 1 + tube * np.cos(phi)
            ring = 1 + tube * np.cos(phi[keep])
            kept.append(
                np.stack(
                    [ring * np.cos(theta[keep]), ring * np.sin(theta[keep]), tube * np.sin(phi[keep])], 1
                )
            )
        points = np.concatenate(kept)[:count]
    else:
        raise ValueError(f"unknown class index {label}")
    return points[rng.permutation(len(points))]  # parts interleaved: any prefix of points is uniform too


def _quaternion_to_matrix(q: np.ndarray) -> np.ndarray:
    x, y, z, w = q
    return np.array(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
            [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
            [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
        ]
    )


def rotation_matrices(quaternions: np.ndarray) -> np.ndarray:
    """(N, 3, 3) rotation matrices of unit quaternions (N, 4) in (x, y, z, w) order."""
    return np.stack([_quaternion_to_matrix(q) for q in np.asarray(quaternions, dtype=np.float64)])


def _item(
    split: str, index: int, points: int, random_state: int
) -> tuple[np.ndarray, int, float, float, np.ndarray]:
    rng = np.random.default_rng([random_state, _SPLIT_CODES[split], index])
    label = index % len(CLASSES)
    scale = rng.uniform(*SCALE_RANGE)
    aspect = 1.0 if CLASSES[label] == "sphere" else float(np.exp(rng.uniform(*np.log(ASPECT_RANGE))))
    quaternion = rng.normal(size=4)  # a normalised Gaussian 4-vector: a uniform rotation (Shoemake)
    quaternion /= np.linalg.norm(quaternion)
    surface = canonical_surface(label, aspect, points, rng) * (scale / bounding_radius(label, aspect))
    cloud = surface @ _quaternion_to_matrix(quaternion).T
    return cloud.astype(np.float32), label, scale, aspect, quaternion


def read(
    split: str, start: int, stop: int, points: int = DEFAULT_POINTS, random_state: int = 0
) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """Items [start, stop) of ``split``: clouds float32 (n, points, 3), labels int64 (n,), factors.

    Parameters
    ----------
    split : {"train", "validation", "test"}
    start, stop : int
        The slice (clipped to the split's size).
    points : int
        Points per cloud (at least 1).
    random_state : int
        0 for the dataset; another value for an independent draw of the same distribution.

    Returns
    -------
    tuple
        ``(clouds, labels, factors)`` with factors ``scale`` (n,), ``aspect`` (n,) and
        ``rotation`` (n, 4) unit quaternions in (x, y, z, w) order (the rotation applied last).
    """
    if split not in SPLIT_SIZES:
        raise ValueError(f"shapes3d has splits {', '.join(SPLITS)}, not {split!r}")
    if points < 1:
        raise ValueError(f"points must be at least 1, got {points}")
    stop = min(stop, SPLIT_SIZES[split])
    items = [_item(split, index, points, random_state) for index in range(start, max(start, stop))]
    clouds = np.stack([item[0] for item in items]) if items else np.zeros((0, points, 3), np.float32)
    factors = {
        "scale": np.array([item[2] for item in items], dtype=np.float64),
        "aspect": np.array([item[3] for item in items], dtype=np.float64),
        "rotation": np.array([item[4] for item in items], dtype=np.float64).reshape(-1, 4),
    }
    return clouds, np.array([item[1] for item in items], dtype=np.int64), factors


def load(
    split: str = "train", points: int = DEFAULT_POINTS, random_state: int = 0
) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """The whole of ``split``: clouds float32 (N, points, 3), int64 class labels (N,), factors.

    See :func:`read` for the parameters and the factors; the module docstring for the shapes,
    the normalisation and the splits.
    """
    return read(split, 0, SPLIT_SIZES.get(split, 0), points, random_state)
