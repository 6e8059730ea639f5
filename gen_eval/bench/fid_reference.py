"""An independent FID for the parity reports: torch-fidelity's formula without its rounding-noise eigenvalues.

Its own module so that every parity section (``parity.py``, ``parity_inception.py``) can use it
without importing one another.
"""

from __future__ import annotations

import numpy as np


def fid_eigvals_rank_limited(generated: np.ndarray, reference: np.ndarray) -> float:
    """torch-fidelity's FID formula (numpy eigvals of S1 S2) keeping only the true rank's eigenvalues.

    With N <= D, S1 S2 has rank <= min(N1, N2) - 1; its remaining ~D eigenvalues are rounding
    noise (about 1e-16 of the largest), and torch-fidelity adds up their square roots, which
    lowers FID. Dropping them gives an independent check of the exact low-rank value.
    """
    mean1, mean2 = generated.mean(0), reference.mean(0)
    cov1, cov2 = np.cov(generated, rowvar=False), np.cov(reference, rowvar=False)
    eigenvalues = np.linalg.eigvals(cov1 @ cov2)
    rank = min(len(generated), len(reference), generated.shape[1] + 1) - 1
    kept = eigenvalues[np.argsort(-eigenvalues.real)][:rank]
    diff = mean1 - mean2
    trace_sqrt = np.sqrt(kept.astype(complex)).real.sum()
    return float(diff @ diff + np.trace(cov1) + np.trace(cov2) - 2 * trace_sqrt)
