"""What the disentanglement metrics share: random states, factor sampling, encoding, binning, MI.

Conventions follow disentanglement_lib (Locatello et al., "Challenging Common Assumptions in the
Unsupervised Learning of Disentangled Representations", ICML 2019) except that arrays are
row-major: ``codes`` is (N, L) float, ``factors`` is (N, K) int factor *indices*, and a
``representation_fn`` maps an (n, K) int array of factor indices to (n, L) codes. For the
embedded ``shapes`` data (a procedural dSprites) that function is typically
``lambda f: encode(shapes.render_shapes(f))``.

A caveat for ``shapes``: orientation is ``linspace(0, 2*pi, 40)`` *inclusive*, so its first and
last values render the same image, and the square's 90-degree and the ellipse's 180-degree
symmetries leave orientation only partly identifiable from pixels. An encoder of images can
therefore not reach the maximum of any metric on the orientation factor; the synthetic encoders
in the tests work on factor values and do not have this limit.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from sklearn.metrics import mutual_info_score

RandomState = int | np.random.Generator | None
RepresentationFn = Callable[[np.ndarray], np.ndarray]

# Rows per representation_fn call: large enough to amortise a model's per-call overhead, small
# enough that rendering 64x64 images for one call stays around 16 MiB.
ENCODE_BATCH = 4096


def as_rng(random_state: RandomState) -> np.random.Generator:
    """A ``numpy.random.Generator`` from a seed, a Generator (used as is) or None (fresh entropy)."""
    return np.random.default_rng(random_state)


def sklearn_seed(rng: np.random.Generator) -> int:
    """An int seed for a scikit-learn estimator, drawn from ``rng`` so runs stay reproducible."""
    return int(rng.integers(0, 2**31 - 1))


def check_codes_factors(codes: np.ndarray, factors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Validate and convert to (N, L) float64 codes and (N, K) int64 factor indices."""
    codes = np.asarray(codes, dtype=np.float64)
    factors = np.asarray(factors)
    if codes.ndim != 2 or factors.ndim != 2 or len(codes) != len(factors) or len(codes) < 2:
        raise ValueError(
            f"expected codes (N, L) and factors (N, K) with the same N >= 2, got {codes.shape} and {factors.shape}"
        )
    if not np.issubdtype(factors.dtype, np.integer):
        raise ValueError(f"factors must be integer factor indices, got dtype {factors.dtype}")
    if not np.isfinite(codes).all():
        raise ValueError("codes contain NaN or infinity")
    return codes, factors.astype(np.int64, copy=False)


def sample_factors(n: int, factor_sizes: Sequence[int], rng: np.random.Generator) -> np.ndarray:
    """Draw ``n`` factor combinations, each factor independent and uniform over its indices.

    This is the distribution of ``shapes.sample_factor_indices`` (uniform over the full grid).

    Parameters
    ----------
    n : number of combinations.
    factor_sizes : number of values of each of the K factors.
    rng : random generator.

    Returns
    -------
    factors : (n, K) int64 array of factor indices.
    """
    sizes = np.asarray(factor_sizes, dtype=np.int64)
    if sizes.ndim != 1 or len(sizes) < 1 or (sizes < 1).any():
        raise ValueError(f"factor_sizes must be a non-empty sequence of positive ints, got {factor_sizes}")
    return rng.integers(0, sizes, size=(int(n), len(sizes)), dtype=np.int64)


def encode(
    representation_fn: RepresentationFn, factors: np.ndarray, batch_size: int = ENCODE_BATCH
) -> np.ndarray:
    """Apply ``representation_fn`` to ``factors`` in batches of ``batch_size`` rows.

    Returns
    -------
    codes : (n, L) float64 array.
    """
    parts = []
    for start in range(0, len(factors), batch_size):
        chunk = factors[start : start + batch_size]
        out = np.asarray(representation_fn(chunk), dtype=np.float64)
        if out.ndim != 2 or len(out) != len(chunk):
            raise ValueError(
                f"representation_fn must map ({len(chunk)}, K) factors to ({len(chunk)}, L) codes, got {out.shape}"
            )
        parts.append(out)
    return np.concatenate(parts, axis=0)


def sample_codes(
    representation_fn: RepresentationFn, factor_sizes: Sequence[int], num: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Sample ``num`` factor combinations and encode them: the fixed data MIG, DCI, SAP and
    modularity are computed on (disentanglement_lib's ``generate_batch_factor_code``).

    Returns
    -------
    codes : (num, L) float64 array.
    factors : (num, K) int64 array of factor indices.
    """
    factors = sample_factors(num, factor_sizes, rng)
    return encode(representation_fn, factors), factors


def train_test(
    codes: np.ndarray,
    factors: np.ndarray,
    codes_test: np.ndarray | None,
    factors_test: np.ndarray | None,
    train_fraction: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Checked (codes, factors, codes_test, factors_test); without a test set, the first
    ``train_fraction`` of the points train and the rest test (disentanglement_lib's
    ``split_train_test``)."""
    codes, factors = check_codes_factors(codes, factors)
    if (codes_test is None) != (factors_test is None):
        raise ValueError("give both codes_test and factors_test, or neither")
    if codes_test is None:
        n_train = int(np.ceil(len(codes) * train_fraction))
        if not 2 <= n_train <= len(codes) - 2:
            raise ValueError(f"train_fraction={train_fraction} leaves too few train or test points")
        return codes[:n_train], factors[:n_train], codes[n_train:], factors[n_train:]
    codes_test, factors_test = check_codes_factors(codes_test, factors_test)
    if codes_test.shape[1] != codes.shape[1] or factors_test.shape[1] != factors.shape[1]:
        raise ValueError("test codes/factors must have as many columns as the train ones")
    return codes, factors, codes_test, factors_test


def histogram_discretize(codes: np.ndarray, num_bins: int = 20) -> np.ndarray:
    """Bin each code dimension into ``num_bins`` equal-width bins over its own range.

    As disentanglement_lib's ``histogram_discretizer``: bin edges from ``np.histogram``, labels
    1..num_bins. A factor with more values than bins (shapes' 32 positions, 40 orientations at 20
    bins) loses information here, which caps MI-based scores below 1 even for a perfect code.

    Returns
    -------
    binned : (N, L) int64 array.
    """
    codes = np.asarray(codes, dtype=np.float64)
    binned = np.empty(codes.shape, dtype=np.int64)
    for j in range(codes.shape[1]):
        edges = np.histogram(codes[:, j], bins=num_bins)[1]
        binned[:, j] = np.digitize(codes[:, j], edges[:-1])
    return binned


def discrete_mutual_info(binned_codes: np.ndarray, factors: np.ndarray) -> np.ndarray:
    """Mutual information (nats) between each binned code and each factor.

    Returns
    -------
    mi : (L, K) array.
    """
    mi = np.empty((binned_codes.shape[1], factors.shape[1]))
    for i in range(binned_codes.shape[1]):
        for k in range(factors.shape[1]):
            mi[i, k] = mutual_info_score(factors[:, k], binned_codes[:, i])
    return mi


def discrete_entropy(factors: np.ndarray) -> np.ndarray:
    """Empirical entropy (nats) of each factor, as H(y) = I(y; y).

    Returns
    -------
    entropy : (K,) array.
    """
    return np.array([mutual_info_score(factors[:, k], factors[:, k]) for k in range(factors.shape[1])])
