"""A synthetic language with a known generating process: the ``ring8`` of text.

Strings over the alphabet ``abcd`` are emitted by a fixed 3-state hidden Markov model with an
end-of-string probability per state: start in state s with probability START[s]; in state s
emit a letter from EMIT[s], then stop with probability STOP[s], or else move to a state drawn
from MOVE[s]. The language keeps strings of 1 to MAX_LENGTH = 8 letters (longer draws are
rejected, so probabilities are renormalised by P(length <= 8)).

Every string's exact probability comes from the forward algorithm, and there are only
87,380 possible strings, so the whole distribution can be listed: KL(truth || model), the
mass a model reaches and its modes are exact, not estimated.

Splits are seeded draws: ``train`` 20,000 (``default_rng(0)``), ``validation`` and ``test``
2,500 each (seeds 1 and 2).
"""

from __future__ import annotations

from functools import lru_cache
from itertools import product

import numpy as np

ALPHABET = "abcd"
MAX_LENGTH = 8
START = np.array([0.6, 0.3, 0.1])
EMIT = np.array(
    [
        [0.70, 0.10, 0.10, 0.10],  # state 0: mostly 'a'
        [0.05, 0.60, 0.30, 0.05],  # state 1: 'b', sometimes 'c'
        [0.05, 0.05, 0.10, 0.80],  # state 2: mostly 'd'
    ]
)
MOVE = np.array([[0.1, 0.7, 0.2], [0.5, 0.2, 0.3], [0.6, 0.3, 0.1]])
STOP = np.array([0.05, 0.15, 0.40])
SIZES = {"train": 20_000, "validation": 2_500, "test": 2_500}
SPLITS = ("train", "validation", "test", "all")
VERSION = "hmm_language-v1"


def _forward(codes: np.ndarray) -> np.ndarray:
    """(n,) untruncated probabilities of n strings of one length, given as (n, L) letter indices."""
    alpha = START[None, :] * EMIT[:, codes[:, 0]].T
    for t in range(1, codes.shape[1]):
        alpha = ((alpha * (1 - STOP)) @ MOVE) * EMIT[:, codes[:, t]].T
    return alpha @ STOP


@lru_cache(maxsize=1)
def all_strings() -> tuple[tuple[str, ...], np.ndarray]:
    """Every string of the language and its exact probability (float64, summing to 1)."""
    strings: list[str] = []
    probs: list[np.ndarray] = []
    for length in range(1, MAX_LENGTH + 1):
        codes = np.array(list(product(range(len(ALPHABET)), repeat=length)), dtype=np.int64)
        strings += ["".join(ALPHABET[c] for c in row) for row in codes]
        probs.append(_forward(codes))
    p = np.concatenate(probs)
    return tuple(strings), p / p.sum()


@lru_cache(maxsize=1)
def _truncation_mass() -> float:
    """P(length <= MAX_LENGTH) under the untruncated process."""
    return float(
        sum(
            _forward(np.array(list(product(range(len(ALPHABET)), repeat=n)))).sum()
            for n in range(1, MAX_LENGTH + 1)
        )
    )


def log_prob(strings: list[str] | tuple[str, ...]) -> np.ndarray:
    """(n,) exact log-probabilities in nats (-inf for strings outside the language)."""
    out = np.full(len(strings), -np.inf)
    lookup = {c: i for i, c in enumerate(ALPHABET)}
    by_length: dict[int, list[int]] = {}
    for index, text in enumerate(strings):
        if 1 <= len(text) <= MAX_LENGTH and all(c in lookup for c in text):
            by_length.setdefault(len(text), []).append(index)
    for rows in by_length.values():
        codes = np.array([[lookup[c] for c in strings[i]] for i in rows], dtype=np.int64)
        out[rows] = np.log(_forward(codes)) - np.log(_truncation_mass())
    return out


def sample(n: int, rng: np.random.Generator) -> list[str]:
    """``n`` strings from the language (the process run forward; over-long strings are redrawn)."""
    out: list[str] = []
    while len(out) < n:
        state, letters = rng.choice(3, p=START), []
        while True:
            letters.append(ALPHABET[rng.choice(4, p=EMIT[state])])
            if rng.random() < STOP[state] or len(letters) > MAX_LENGTH:
                break
            state = rng.choice(3, p=MOVE[state])
        if len(letters) <= MAX_LENGTH:
            out.append("".join(letters))
    return out


def true_distribution() -> dict[str, float]:
    """The exact probability of every string of the language."""
    strings, p = all_strings()
    return dict(zip(strings, p.tolist(), strict=True))


@lru_cache(maxsize=4)
def load_split(split: str) -> tuple[str, ...]:
    """The seeded draws of ``split`` (``all``: train, validation and test in that order)."""
    if split == "all":
        return sum((load_split(s) for s in ("train", "validation", "test")), ())
    # Draws through the table rather than the loop above: the same distribution, 100x faster.
    strings, p = all_strings()
    rng = np.random.default_rng({"train": 0, "validation": 1, "test": 2}[split])
    return tuple(strings[i] for i in rng.choice(len(strings), size=SIZES[split], p=p))


def split_size(split: str) -> int:
    """Number of samples in ``split``."""
    return sum(SIZES.values()) if split == "all" else SIZES[split]
