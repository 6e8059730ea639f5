"""Planted encoders on the ``shapes`` factor grid, whose disentanglement scores are known.

They act on factor *indices* (no rendering), so every metric runs at disentanglement_lib's
default sizes in seconds to minutes:

- ``perfect``: the standardised ground-truth factor values (5 codes);
- ``rotated``: the same under a fixed random orthogonal matrix (a linear mix of all factors);
- ``duplicated``: ``[z, z]`` with ``z`` the perfect code (10 codes);
- ``noise``: standard normal codes independent of the factors (10 codes).

:data:`EXPECTED` lists what each one must score (the validation asked of the metrics: near the
maximum for ``perfect``, rotations fool only BetaVAE, a duplicated code has no gap, noise sits
at chance). ``gen-eval bench disentanglement`` times the six metrics on them and checks these at
the default sizes; ``tests/test_disentangle.py`` asserts the same bounds with a smaller DCI.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy.stats import ortho_group

from gen_eval.datasets import shapes

_MEAN = np.array([shapes.FACTOR_VALUES[n].mean() for n in shapes.FACTOR_NAMES])
_STD = np.array([shapes.FACTOR_VALUES[n].std() for n in shapes.FACTOR_NAMES])
_ROTATION = ortho_group.rvs(len(shapes.FACTOR_NAMES), random_state=0)


def perfect(factors: np.ndarray) -> np.ndarray:
    """The standardised ground-truth values of (n, 5) factor indices: (n, 5) codes."""
    columns = [shapes.FACTOR_VALUES[name][factors[:, j]] for j, name in enumerate(shapes.FACTOR_NAMES)]
    return (np.stack(columns, axis=1) - _MEAN) / _STD


def rotated(factors: np.ndarray) -> np.ndarray:
    """The perfect code under a fixed random rotation: (n, 5) codes, each a mix of all factors."""
    return perfect(factors) @ _ROTATION


def duplicated(factors: np.ndarray) -> np.ndarray:
    """The perfect code twice, ``[z, z]``: (n, 10) codes."""
    z = perfect(factors)
    return np.hstack([z, z])


def make_noise(random_state: int = 123) -> Callable[[np.ndarray], np.ndarray]:
    """An encoder of (n, 10) standard normal codes that ignore the factors."""
    rng = np.random.default_rng(random_state)
    return lambda factors: rng.normal(size=(len(factors), 10))


def planted_encoder(case: str, random_state: int = 123) -> Callable[[np.ndarray], np.ndarray]:
    """The encoder named ``case`` (one of :data:`CASES`); ``random_state`` seeds ``noise``."""
    if case == "noise":
        return make_noise(random_state)
    encoders = {"perfect": perfect, "rotated": rotated, "duplicated": duplicated}
    if case not in encoders:
        raise ValueError(f"unknown planted encoder {case!r}; known: {CASES}")
    return encoders[case]


CASES = ("perfect", "rotated", "duplicated", "noise")


@dataclass(frozen=True)
class Expectation:
    """A planted encoder's score on one metric must lie in [low, high]."""

    case: str
    metric: str  # evaluate_disentanglement's metric name
    key: str  # the entry of that metric's output dict
    low: float
    high: float
    why: str

    def holds(self, value: float) -> bool:
        return self.low <= value <= self.high


EXPECTED: tuple[Expectation, ...] = (
    Expectation("perfect", "beta_vae", "eval_accuracy", 0.95, 1.0, "near the maximum"),
    Expectation("perfect", "factor_vae", "eval_accuracy", 0.95, 1.0, "near the maximum"),
    Expectation("perfect", "dci", "disentanglement", 0.95, 1.0, "near the maximum"),
    Expectation("perfect", "dci", "completeness", 0.95, 1.0, "near the maximum"),
    Expectation(
        "perfect", "mig", "mig", 0.85, 0.93, "about 0.9: 20 bins merge the 32 positions and 40 angles"
    ),
    Expectation("perfect", "sap", "sap", 0.95, 1.0, "high in the continuous mode"),
    Expectation("rotated", "mig", "mig", 0.0, 0.1, "a rotation mixes the factors"),
    Expectation("rotated", "dci", "disentanglement", 0.0, 0.2, "a rotation mixes the factors"),
    Expectation("rotated", "beta_vae", "eval_accuracy", 0.85, 1.0, "fooled: a linear classifier undoes it"),
    Expectation("duplicated", "mig", "mig", 0.0, 0.02, "the top two codes tie"),
    Expectation("duplicated", "dci", "disentanglement", 0.95, 1.0, "each code still serves one factor"),
    Expectation("noise", "beta_vae", "eval_accuracy", 0.16, 0.24, "chance, 1/5"),
    Expectation("noise", "factor_vae", "eval_accuracy", 0.16, 0.24, "chance, 1/5"),
    Expectation("noise", "mig", "mig", 0.0, 0.02, "about 0"),
    Expectation("noise", "dci", "disentanglement", 0.0, 0.1, "about 0"),
    Expectation("noise", "modularity", "modularity", 0.55, 0.8, "biased up, about 0.67"),
)
