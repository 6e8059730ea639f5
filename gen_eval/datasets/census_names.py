"""US first names with their true frequencies: a real text corpus with an exact reference distribution.

Source: the ``names`` package (MIT licence), which bundles the US Census Bureau's 1990 name
files ``dist.male.first`` (1,219 names) and ``dist.female.first`` (4,275 names); the data are
public domain. Each row gives a name and its share of the male or female population; the
lists stop where they cover 90% of each population, so shares are renormalised here.

Choices, stated once:
* Strings are lower-case (``"james"``), as in makemore; the label is the list a name comes
  from (0 = female, 1 = male), so a name on both lists is two (name, label) pairs.
* The true distribution over (name, label) is p(name, label) = 1/2 * share / total share of
  that list: the two sexes weigh equally.
* Splits are independent seeded draws (with repetition) from the true distribution: 20,000
  for ``train`` (``default_rng(0)``), 2,500 each for ``validation`` and ``test`` (seeds 1, 2).
  So every split is a sample of one distribution, and held-out data overlaps the training set
  as real data does (common names recur): copying is measured as an excess over that overlap.
  (Splitting by name instead, as makemore does, would give each split a different distribution,
  and a perfect model would then score badly against the test split.)
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np

LABELS = ("female", "male")
SPLITS = ("train", "validation", "test", "all")
SIZES = {"train": 20_000, "validation": 2_500, "test": 2_500}
MAX_LENGTH = 11  # the longest name in the lists
VERSION = "census_names-v1"


def _names_dir() -> Path:
    from gen_eval.errors import GenEvalError

    try:
        import names
    except ImportError as error:
        raise GenEvalError(
            "the census_names dataset needs the 'names' package (US Census 1990 lists): pip install names"
        ) from error
    return Path(names.__file__).parent


@lru_cache(maxsize=1)
def table() -> tuple[tuple[str, ...], np.ndarray, np.ndarray]:
    """(names, labels, probabilities): every (name, label) pair of the true distribution.

    Probabilities are float64 and sum to 1; pairs are in file order, female list first.
    """
    strings: list[str] = []
    labels: list[int] = []
    mass: list[float] = []
    for label, file in enumerate(("dist.female.first", "dist.male.first")):
        rows = [line.split() for line in (_names_dir() / file).read_text().splitlines() if line.strip()]
        shares = np.array([float(row[1]) for row in rows])
        strings += [row[0].lower() for row in rows]
        labels += [label] * len(rows)
        mass += list(0.5 * shares / shares.sum())
    return tuple(strings), np.array(labels, np.int64), np.array(mass, np.float64)


def true_distribution(label: int | None = None) -> dict[str, float]:
    """The exact probability of each string.

    ``label`` None: the marginal over both labels; 0 or 1: the distribution given the label.
    """
    strings, labels, mass = table()
    keep = np.ones(len(strings), bool) if label is None else labels == label
    total = float(mass[keep].sum())
    out: dict[str, float] = {}
    for text, p in zip(np.array(strings, dtype=object)[keep], mass[keep], strict=True):
        out[text] = out.get(text, 0.0) + float(p) / total
    return out


@lru_cache(maxsize=4)
def load_names(split: str) -> tuple[tuple[str, ...], np.ndarray]:
    """(strings, labels) of ``split``: seeded draws from the true distribution."""
    if split == "all":
        parts = [load_names(s) for s in ("train", "validation", "test")]
        return sum((p[0] for p in parts), ()), np.concatenate([p[1] for p in parts])
    strings, labels, mass = table()
    rng = np.random.default_rng({"train": 0, "validation": 1, "test": 2}[split])
    draws = rng.choice(len(strings), size=SIZES[split], p=mass)
    return tuple(strings[i] for i in draws), labels[draws]


def split_size(split: str) -> int:
    """Number of samples in ``split``."""
    return sum(SIZES.values()) if split == "all" else SIZES[split]
