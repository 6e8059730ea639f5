"""A procedural re-creation of dSprites (Matthey et al., 2017): 64x64 binary 2-D shapes.

This is **not** the original ``dsprites_ndarray_*.npz`` file. The images are rendered here
from the published factor definitions, so the factor grid, its ordering and the meaning of
each factor match dSprites, but pixel-level values differ (sprite outlines, base size and the
exact heart curve are our own choices).

Factors, in dSprites order (737,280 combinations, row-major, ``pos_y`` varying fastest):

* ``shape`` (3): 0 = square, 1 = ellipse, 2 = heart.
* ``scale`` (6): ``linspace(0.5, 1, 6)``.
* ``orientation`` (40): ``linspace(0, 2*pi, 40)`` *inclusive*, as in dSprites, so the first and
  last values (0 and 2*pi) render the same image. The square's 90-degree and the ellipse's
  180-degree symmetries further mean orientation is only partly identifiable from the image;
  only the heart shows its full orientation.
* ``pos_x``, ``pos_y`` (32 each): ``linspace(0, 1, 32)``.

Geometry. Pixel ``(row, col)`` has its centre at ``(x, y) = (col + 0.5, row + 0.5)``, with x to
the right and y downward. The sprite centre is ``(0.25 + 0.5 * pos) * 64`` on each axis, i.e. it
moves between 16 and 48 px. At scale 1 the base half-extent is ``BASE_HALF_EXTENT = 0.15 * 64 =
9.6`` px: the square is 19.2 px wide, the ellipse has semi-axes 9.6 and 4.8 px, and the heart
(area ~0.9x the square's) reaches at most 1.29 * 9.6 = 12.4 px from its centre. The farthest
point of any sprite (the rotated square's corner, sqrt(2) * 9.6 = 13.6 px) therefore stays
more than 2 px inside the image at every position and rotation.

Rendering evaluates an implicit inside-test at each pixel centre after undoing translation,
rotation and scale (no anti-aliasing): square ``|u|, |v| <= 1``; ellipse ``u^2 + (v/0.5)^2 <= 1``
(long axis horizontal at orientation 0); heart ``(u^2 + w^2 - 1)^3 - u^2 w^3 <= 0`` with ``w`` the
up-pointing coordinate shifted so that the heart's centroid sits on the sprite centre. At
orientation 0 the heart is upright (lobes up, point down); positive orientation turns sprites
counter-clockwise as seen on screen. Images are uint8 0/255 of shape ``(N, 1, 64, 64)``.

Splits index a fixed permutation of the full grid (``shuffled_order(0)``): ``train`` is items
[0, 10000), ``test`` is [10000, 20000) and ``all`` is every combination, in that shuffled order.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

FACTOR_NAMES = ("shape", "scale", "orientation", "pos_x", "pos_y")
FACTOR_SIZES = (3, 6, 40, 32, 32)
FACTOR_VALUES: dict[str, np.ndarray] = {
    "shape": np.arange(3, dtype=np.int64),
    "scale": np.linspace(0.5, 1.0, 6),
    "orientation": np.linspace(0.0, 2.0 * np.pi, 40),
    "pos_x": np.linspace(0.0, 1.0, 32),
    "pos_y": np.linspace(0.0, 1.0, 32),
}
for _values in FACTOR_VALUES.values():
    _values.setflags(write=False)
SHAPE_NAMES = ("square", "ellipse", "heart")
NUM_COMBINATIONS = int(np.prod(FACTOR_SIZES))  # 737,280

IMAGE_SIZE = 64
BASE_HALF_EXTENT = 0.15 * IMAGE_SIZE  # px at scale 1
ELLIPSE_MINOR = 0.5  # minor/major axis ratio, as dSprites' elongated ellipse
# Centroid of the region (x^2+y^2-1)^3 <= x^2 y^3 (computed numerically on a fine grid); shifting
# by it makes "position" mean the centre of mass for the heart as for the other two shapes.
HEART_CENTROID_Y = 0.2935

SPLITS = ("train", "test", "all")
_SPLIT_RANGES = {"train": (0, 10_000), "test": (10_000, 20_000), "all": (0, NUM_COMBINATIONS)}
_CHUNK = 256  # images per vectorised step: 8 MiB per float64 (chunk, 64, 64) temporary, cache-friendly

# Pixel-centre coordinates, shared by every render call.
_PIX = np.arange(IMAGE_SIZE, dtype=np.float64) + 0.5


def render_from_values(
    shape: np.ndarray, scale: np.ndarray, orientation: np.ndarray, pos_x: np.ndarray, pos_y: np.ndarray
) -> np.ndarray:
    """Render sprites from continuous factor values (not restricted to the dSprites grid).

    Parameters
    ----------
    shape : (N,) int array with values in {0, 1, 2} (square, ellipse, heart).
    scale : (N,) float array; 1 gives a half-extent of ``BASE_HALF_EXTENT`` px.
    orientation : (N,) float array, radians, counter-clockwise on screen.
    pos_x, pos_y : (N,) float arrays in [0, 1]; the centre is at ``(0.25 + 0.5 * pos) * 64`` px.

    Returns
    -------
    images : (N, 1, 64, 64) uint8 array with values 0 (background) and 255 (sprite).
    """
    shape = np.asarray(shape, dtype=np.int64).reshape(-1)
    params = [np.asarray(a, dtype=np.float64).reshape(-1) for a in (scale, orientation, pos_x, pos_y)]
    n = len(shape)
    if any(len(p) != n for p in params):
        raise ValueError("shape, scale, orientation, pos_x and pos_y must have the same length")
    if n and (shape.min() < 0 or shape.max() > 2):
        raise ValueError("shape values must be 0 (square), 1 (ellipse) or 2 (heart)")
    out = np.zeros((n, 1, IMAGE_SIZE, IMAGE_SIZE), dtype=np.uint8)
    for start in range(0, n, _CHUNK):
        sl = slice(start, start + _CHUNK)
        out[sl, 0] = _render_chunk(shape[sl], *(p[sl] for p in params))
    return out


def _render_chunk(shape, scale, angle, pos_x, pos_y) -> np.ndarray:
    half = (BASE_HALF_EXTENT * scale)[:, None, None]
    cx = ((0.25 + 0.5 * pos_x) * IMAGE_SIZE)[:, None, None]
    cy = ((0.25 + 0.5 * pos_y) * IMAGE_SIZE)[:, None, None]
    # Offsets in a y-up frame, so that a positive angle is counter-clockwise on screen and the
    # textbook heart equation comes out upright without flipping.
    dx = _PIX[None, None, :] - cx
    dy = cy - _PIX[None, :, None]
    c, s = np.cos(angle)[:, None, None], np.sin(angle)[:, None, None]
    # Inverse rotation then inverse scale maps each pixel centre into the sprite's own frame.
    u = (c * dx + s * dy) / half
    v = (-s * dx + c * dy) / half

    inside = np.zeros(u.shape, dtype=bool)
    for k, test in enumerate((_inside_square, _inside_ellipse, _inside_heart)):
        rows = shape == k
        if rows.any():
            inside[rows] = test(u[rows], v[rows])
    return inside.astype(np.uint8) * np.uint8(255)


def _inside_square(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    return (np.abs(u) <= 1.0) & (np.abs(v) <= 1.0)


def _inside_ellipse(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    return u * u + (v / ELLIPSE_MINOR) ** 2 <= 1.0


def _inside_heart(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    w = v + HEART_CENTROID_Y
    return (u * u + w * w - 1.0) ** 3 - u * u * w**3 <= 0.0


def render_shapes(factor_indices: np.ndarray) -> np.ndarray:
    """Render sprites for integer factor indices.

    Parameters
    ----------
    factor_indices : (N, 5) integer array; column j indexes ``FACTOR_VALUES[FACTOR_NAMES[j]]``.

    Returns
    -------
    images : (N, 1, 64, 64) uint8 array with values 0 and 255.
    """
    idx = _check_indices(factor_indices)
    values = [FACTOR_VALUES[name][idx[:, j]] for j, name in enumerate(FACTOR_NAMES)]
    return render_from_values(*values)


def _check_indices(factor_indices: np.ndarray) -> np.ndarray:
    idx = np.asarray(factor_indices)
    if idx.ndim != 2 or idx.shape[1] != len(FACTOR_SIZES) or not np.issubdtype(idx.dtype, np.integer):
        raise ValueError(
            f"factor indices must be an integer array of shape (N, 5), got {idx.dtype} {idx.shape}"
        )
    if len(idx) and ((idx < 0).any() or (idx >= np.array(FACTOR_SIZES)).any()):
        raise ValueError(f"factor indices out of range for factor sizes {FACTOR_SIZES}")
    return idx.astype(np.int64, copy=False)


def flat_to_factor_indices(flat: np.ndarray) -> np.ndarray:
    """Map flat dSprites indices (row-major over ``FACTOR_SIZES``) to (N, 5) factor indices.

    Parameters
    ----------
    flat : (N,) integer array with values in [0, 737280).

    Returns
    -------
    factor_indices : (N, 5) int64 array.
    """
    flat = np.asarray(flat, dtype=np.int64).reshape(-1)
    if len(flat) and (flat.min() < 0 or flat.max() >= NUM_COMBINATIONS):
        raise ValueError(f"flat indices must lie in [0, {NUM_COMBINATIONS})")
    return np.stack(np.unravel_index(flat, FACTOR_SIZES), axis=1).astype(np.int64)


def factor_indices_to_flat(idx: np.ndarray) -> np.ndarray:
    """Inverse of :func:`flat_to_factor_indices`.

    Parameters
    ----------
    idx : (N, 5) integer array of factor indices.

    Returns
    -------
    flat : (N,) int64 array of positions in dSprites' row-major ordering.
    """
    idx = _check_indices(idx)
    return np.ravel_multi_index(tuple(idx.T), FACTOR_SIZES).astype(np.int64)


def sample_factor_indices(n: int, random_state: int | np.random.Generator) -> np.ndarray:
    """Draw ``n`` factor combinations uniformly (with replacement) from the full grid.

    Parameters
    ----------
    n : number of combinations.
    random_state : seed or ``numpy.random.Generator``.

    Returns
    -------
    factor_indices : (n, 5) int64 array.
    """
    rng = np.random.default_rng(random_state)
    # Uniform over flat indices is uniform over combinations, i.e. independent uniform factors.
    return flat_to_factor_indices(rng.integers(0, NUM_COMBINATIONS, size=n))


@lru_cache(maxsize=4)
def _shuffled_order(seed: int) -> np.ndarray:
    order = np.random.RandomState(seed).permutation(NUM_COMBINATIONS).astype(np.int64)
    order.setflags(write=False)
    return order


def shuffled_order(seed: int = 0) -> np.ndarray:
    """A fixed permutation of all 737,280 flat indices.

    ``RandomState`` is covered by NumPy's stream-compatibility guarantee, so the permutation
    (and hence every split) is the same across NumPy versions.

    Parameters
    ----------
    seed : seed for ``numpy.random.RandomState``.

    Returns
    -------
    order : (737280,) read-only int64 array.
    """
    return _shuffled_order(int(seed))


def shapes_split_size(split: str) -> int:
    """Number of items in ``split`` ("train": 10,000, "test": 10,000, "all": 737,280)."""
    lo, hi = _split_range(split)
    return hi - lo


def _split_range(split: str) -> tuple[int, int]:
    if split not in _SPLIT_RANGES:
        raise ValueError(f"unknown shapes split {split!r}; expected one of {SPLITS}")
    return _SPLIT_RANGES[split]


def shapes_batch(split: str, start: int, stop: int) -> tuple[np.ndarray, np.ndarray]:
    """Render items [start, stop) of a split; what a streaming data source calls.

    Parameters
    ----------
    split : {"train", "test", "all"}
    start, stop : item range within the split, ``0 <= start <= stop <= shapes_split_size(split)``.

    Returns
    -------
    images : (stop - start, 1, 64, 64) uint8 array.
    factor_indices : (stop - start, 5) int64 array.
    """
    lo, hi = _split_range(split)
    if not 0 <= start <= stop <= hi - lo:
        raise ValueError(f"invalid range [{start}, {stop}) for shapes split {split!r} of size {hi - lo}")
    factors = flat_to_factor_indices(shuffled_order(0)[lo + start : lo + stop])
    return render_shapes(factors), factors


def load_shapes(split: str = "train", num: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Images and factor indices of the first ``num`` items (default: all) of a split.

    Parameters
    ----------
    split : {"train", "test", "all"}
    num : number of leading items to render. Required for "all": its 737,280 images would take
        about 3 GB, so stream it with :func:`shapes_batch` instead.

    Returns
    -------
    images : (N, 1, 64, 64) uint8 array.
    factor_indices : (N, 5) int64 array.
    """
    size = shapes_split_size(split)
    if num is None:
        if split == "all":
            raise ValueError("load_shapes('all') needs num; stream the full grid with shapes_batch()")
        num = size
    if not 0 <= num <= size:
        raise ValueError(f"num must lie in [0, {size}] for shapes split {split!r}, got {num}")
    return shapes_batch(split, 0, num)
