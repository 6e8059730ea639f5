"""2-D Gaussian mixtures from the mode-collapse literature.

* ``ring8``: 8 isotropic Gaussians with std 0.02, centred on a circle of radius 2 at angles
  ``2*pi*k/8`` for k = 0..7 (Metz et al., 2017, "Unrolled Generative Adversarial Networks",
  ICLR). The angles are deliberately *not* ``linspace(0, 2*pi, 8)``, whose first and last
  values coincide and would give only 7 distinct modes.
* ``grid25``: 25 isotropic Gaussians with std 0.05, centred on ``{-4, -2, 0, 2, 4}^2``
  (Lin et al., 2018, "PacGAN: The power of two samples in generative adversarial networks",
  NeurIPS).

Modes are chosen uniformly. Splits are fixed: ``train`` is 10,000 points drawn with
``numpy.random.default_rng(0)`` and ``test`` is 10,000 points drawn with ``default_rng(1)``.
``num`` takes a prefix of a split, so smaller requests are subsets of larger ones.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, eq=False)  # eq=False: field-wise == on arrays would be ambiguous
class MixtureSpec:
    """An equal-weight mixture of isotropic 2-D Gaussians.

    Attributes
    ----------
    name : registry key.
    centres : (K, 2) float64 array of mode centres (read-only).
    std : per-coordinate standard deviation shared by all modes.
    citation : where the benchmark comes from.
    """

    name: str
    centres: np.ndarray
    std: float
    citation: str

    @property
    def num_modes(self) -> int:
        return len(self.centres)


def _readonly(a: np.ndarray) -> np.ndarray:
    a = np.ascontiguousarray(a, dtype=np.float64)
    a.setflags(write=False)
    return a


def _ring_centres(k: int = 8, radius: float = 2.0) -> np.ndarray:
    angles = 2.0 * np.pi * np.arange(k) / k  # endpoint excluded: k distinct angles
    return np.stack([radius * np.cos(angles), radius * np.sin(angles)], axis=1)


def _grid_centres(coords: tuple[float, ...] = (-4.0, -2.0, 0.0, 2.0, 4.0)) -> np.ndarray:
    xs, ys = np.meshgrid(coords, coords, indexing="ij")
    return np.stack([xs.ravel(), ys.ravel()], axis=1)


MIXTURES: dict[str, MixtureSpec] = {
    "ring8": MixtureSpec(
        name="ring8",
        centres=_readonly(_ring_centres()),
        std=0.02,
        citation="Metz, Poole, Pfau and Sohl-Dickstein, Unrolled Generative Adversarial Networks, ICLR 2017",
    ),
    "grid25": MixtureSpec(
        name="grid25",
        centres=_readonly(_grid_centres()),
        std=0.05,
        citation=(
            "Lin, Khetan, Fanti and Oh, PacGAN: The power of two samples in generative "
            "adversarial networks, NeurIPS 2018"
        ),
    ),
}

SPLITS = ("train", "test")
_SPLIT_SEEDS = {"train": 0, "test": 1}
SPLIT_SIZE = 10_000


def get_mixture(name: str) -> MixtureSpec:
    """The :class:`MixtureSpec` registered as ``name``; ``ValueError`` if there is none."""
    try:
        return MIXTURES[name]
    except KeyError:
        raise ValueError(f"unknown mixture {name!r}; expected one of {tuple(MIXTURES)}") from None


def sample_mixture(
    name: str, n: int, random_state: int | np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Draw ``n`` points from a registered mixture, choosing modes uniformly.

    Parameters
    ----------
    name : mixture name, a key of ``MIXTURES`` ("ring8" or "grid25").
    n : number of points.
    random_state : seed or ``numpy.random.Generator`` (passed to ``numpy.random.default_rng``).

    Returns
    -------
    points : (n, 2) float32 array.
    labels : (n,) int64 array, the index of the mode each point was drawn from.
    """
    spec = get_mixture(name)
    if n < 0:
        raise ValueError(f"n must be non-negative, got {n}")
    rng = np.random.default_rng(random_state)
    labels = rng.integers(0, spec.num_modes, size=n).astype(np.int64)
    # Noise is drawn in float64 and cast once, so the float32 output is the rounded exact sample.
    points = spec.centres[labels] + spec.std * rng.standard_normal((n, 2))
    return points.astype(np.float32), labels


def mixture_split_size(name: str, split: str) -> int:
    """Number of points in ``split`` of mixture ``name`` (10,000 for both splits)."""
    get_mixture(name)
    _split_seed(split)
    return SPLIT_SIZE


def _split_seed(split: str) -> int:
    if split not in _SPLIT_SEEDS:
        raise ValueError(f"unknown mixture split {split!r}; expected one of {SPLITS}")
    return _SPLIT_SEEDS[split]


def load_mixture(name: str, split: str = "train", num: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Points and mode labels of a fixed split.

    Parameters
    ----------
    name : mixture name ("ring8" or "grid25").
    split : {"train", "test"}; drawn with ``default_rng(0)`` and ``default_rng(1)`` respectively.
    num : number of leading points to return (default: the whole split of 10,000).

    Returns
    -------
    points : (N, 2) float32 array.
    labels : (N,) int64 array.
    """
    size = mixture_split_size(name, split)
    if num is None:
        num = size
    if not 0 <= num <= size:
        raise ValueError(f"num must lie in [0, {size}] for mixture split {split!r}, got {num}")
    # Always draw the full split, then cut: a prefix must not depend on how much was asked for.
    points, labels = sample_mixture(name, size, _split_seed(split))
    return points[:num], labels[:num]
