"""Mode count on stacked digits, following the Stacked MNIST protocol (1,000 modes).

Each sample's three channels are classified by the digits net (the ``stacked_digits`` extractor's
``"channel_logits"``); the triple of argmax classes ``100*a + 10*b + c`` is its mode. As in Metz
et al. (2017, "Unrolled Generative Adversarial Networks") and Srivastava et al. (2017, "VEEGAN"),
the score is the number of distinct triples read and KL(triple histogram || uniform over 1,000).

Both numbers depend on n, so each comes with what a perfect uniform sampler would get on the
same n: ``expected_modes`` = 1000 (1 - (1 - 1/1000)^n), and ``kl_floor`` ~ 999 / (2n), the
leading term of the expected KL of an empirical histogram from its true (here uniform)
distribution. A model matching the data lands near both, not at 1000 modes and KL 0.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

NUM_CHANNELS = 3
NUM_CLASSES = 10
NUM_MODES = NUM_CLASSES**NUM_CHANNELS


@dataclass
class StackedModes:
    """Triple histogram of a stacked-digits sample set and what it says.

    Attributes
    ----------
    modes : int
        Distinct (class, class, class) triples read.
    num_modes : int
        1000.
    kl_to_uniform : float
        KL(empirical triple histogram || uniform over 1000), in nats.
    kl_floor : float
        999 / (2 n): what a perfect model gets on n samples (finite-sample bias), in nats.
    expected_modes : float
        1000 (1 - (1 - 1/1000)^n): distinct triples a perfect uniform model shows at n.
    num_samples : int
        n.
    counts : list of int
        Samples per triple, length 1000, index ``100*a + 10*b + c``.
    """

    modes: int
    num_modes: int
    kl_to_uniform: float
    kl_floor: float
    expected_modes: float
    num_samples: int
    counts: list[int]

    def to_dict(self) -> dict[str, Any]:
        """The fields as a JSON-ready dict."""
        return asdict(self)


def triple_labels(channel_logits: Any) -> np.ndarray:
    """The triple ``100*a + 10*b + c`` of each sample's per-channel argmax class.

    Parameters
    ----------
    channel_logits : array or tensor
        (N, 30), channel 0's 10 scores then channel 1's then channel 2's (the ``stacked_digits``
        extractor's layout), or (N, 3, 10).

    Returns
    -------
    (N,) int64 array with values in 0..999.
    """
    if hasattr(channel_logits, "detach"):  # torch tensor, possibly on a GPU
        channel_logits = channel_logits.detach().cpu().numpy()
    logits = np.asarray(channel_logits)
    if logits.ndim == 2 and logits.shape[1] == NUM_CHANNELS * NUM_CLASSES:
        logits = logits.reshape(len(logits), NUM_CHANNELS, NUM_CLASSES)
    if logits.ndim != 3 or logits.shape[1:] != (NUM_CHANNELS, NUM_CLASSES):
        raise ValueError(f"expected (N, 30) or (N, 3, 10) channel logits, got shape {logits.shape}")
    classes = logits.argmax(2).astype(np.int64)
    return classes @ (NUM_CLASSES ** np.arange(NUM_CHANNELS - 1, -1, -1, dtype=np.int64))


def stacked_mode_count(channel_logits: Any) -> StackedModes:
    """Distinct triples and KL to uniform of the triples read from ``channel_logits``.

    Parameters
    ----------
    channel_logits : array or tensor
        (N, 30) or (N, 3, 10) per-channel class scores; see :func:`triple_labels`.

    Returns
    -------
    StackedModes
    """
    labels = triple_labels(channel_logits)
    n = len(labels)
    if n == 0:
        raise ValueError("no samples to count modes in")
    counts = np.bincount(labels, minlength=NUM_MODES)
    share = counts[counts > 0] / n
    return StackedModes(
        modes=int((counts > 0).sum()),
        num_modes=NUM_MODES,
        kl_to_uniform=float((share * np.log(share * NUM_MODES)).sum()),
        kl_floor=(NUM_MODES - 1) / (2 * n),
        expected_modes=float(NUM_MODES * (1 - (1 - 1 / NUM_MODES) ** n)),
        num_samples=n,
        counts=[int(c) for c in counts],
    )
