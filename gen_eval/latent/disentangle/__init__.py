"""Supervised disentanglement metrics, as in disentanglement_lib (Locatello et al., ICML 2019).

Two kinds of function, as there:

* On a fixed set of (codes, factors): :func:`mig`, :func:`dci`, :func:`sap` and
  :func:`modularity_explicitness` take (N, L) float codes and (N, K) int factor indices.
* On an encoder: every metric has a ``*_score(representation_fn, factor_sizes, random_state,
  ...)`` form, where ``representation_fn`` maps (n, K) factor indices to (n, L) codes. The
  BetaVAE and FactorVAE scores exist only in this form, since they fix one factor and sample
  the rest; the other four sample their points with :func:`common.sample_codes`.

:data:`METRICS` maps each name to its encoder form and :func:`evaluate_disentanglement` runs
them all. For the embedded ``shapes`` data (a procedural dSprites) the encoder is "render the
factors with ``shapes.render_shapes`` and encode the images"; orientation is only partly
identifiable from those images (see :mod:`.common`).
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from gen_eval.latent.disentangle.beta_vae import beta_vae_score
from gen_eval.latent.disentangle.common import RandomState, RepresentationFn, as_rng
from gen_eval.latent.disentangle.dci import dci, dci_score
from gen_eval.latent.disentangle.factor_vae import factor_vae_score
from gen_eval.latent.disentangle.mig import mig, mig_score
from gen_eval.latent.disentangle.modularity import modularity_explicitness, modularity_score
from gen_eval.latent.disentangle.sap import sap, sap_score

__all__ = [
    "METRICS",
    "beta_vae_score",
    "dci",
    "dci_score",
    "evaluate_disentanglement",
    "factor_vae_score",
    "mig",
    "mig_score",
    "modularity_explicitness",
    "modularity_score",
    "sap",
    "sap_score",
]

METRICS: dict[str, Callable[..., dict[str, Any]]] = {
    "beta_vae": beta_vae_score,
    "factor_vae": factor_vae_score,
    "mig": mig_score,
    "dci": dci_score,
    "sap": sap_score,
    "modularity": modularity_score,
}

# How evaluate_disentanglement's num_train / num_test reach each metric's own parameters.
_SIZE_ARGS: dict[str, tuple[str, ...]] = {
    "beta_vae": ("num_train", "num_eval"),
    "factor_vae": ("num_train", "num_eval", "num_variance_estimate"),
    "mig": ("num_train",),
    "dci": ("num_train", "num_test"),
    "sap": ("num_train", "num_test"),
    "modularity": ("num_train", "num_test"),
}


def evaluate_disentanglement(
    representation_fn: RepresentationFn,
    factor_sizes: Sequence[int],
    num_train: int = 10_000,
    random_state: RandomState = 0,
    *,
    num_test: int | None = None,
    metrics: Sequence[str] | None = None,
    options: dict[str, dict[str, Any]] | None = None,
) -> dict[str, dict[str, Any]]:
    """Run the disentanglement metrics on one encoder.

    Every metric samples its own factors from a seed derived from ``random_state`` and the
    metric's name, so a metric gives the same numbers whether it runs alone or with the others
    (at the price of encoding a few fixed sets more than once).

    Cost at the defaults. Encodings: BetaVAE 2 x 64 x 15,000 = 1.92M, FactorVAE 64 x 15,000 +
    10,000 = 970k, MIG 10k, DCI, SAP and modularity 15k, 10k and 15k; with
    ``shapes.render_shapes`` at about 3,000 images/s per core, rendering alone is about 16 min,
    so pass ``metrics`` or smaller sizes for quick looks. Computation: DCI's boosted trees
    dominate (about 1 min for an axis-aligned 5-d code, 3 to 7 min for entangled or noisy
    ones, on one core of a shared 2-core machine; ``options={"dci": {"n_jobs": 2}}`` fits
    factors in parallel, 2 min for the rotated code); the other five together take seconds
    once the codes exist. All six on the perfect synthetic encoder (no rendering) at the
    defaults: 56 s.

    Sizes: ``num_train`` is BetaVAE's and FactorVAE's training points, FactorVAE's variance
    estimate, and the training points of MIG, DCI, SAP and modularity; ``num_test`` (default
    ``num_train // 2``) is their evaluation/test points. At the defaults this is
    disentanglement_lib's setting: 10,000 and 5,000.

    Parameters
    ----------
    representation_fn : maps (n, K) int factor indices to (n, L) codes, e.g.
        ``lambda f: model_encode(shapes.render_shapes(f))``.
    factor_sizes : number of values of each factor (``shapes.FACTOR_SIZES``).
    num_train : training points (10,000).
    random_state : int seed or ``numpy.random.Generator``.
    num_test : evaluation points (``num_train // 2``).
    metrics : names from :data:`METRICS` to run (all six by default).
    options : per-metric keyword overrides, e.g. ``{"dci": {"n_estimators": 20}}``.

    Returns
    -------
    dict from metric name to that metric's output dict (see each ``*_score`` function).
    """
    names = list(METRICS) if metrics is None else list(metrics)
    unknown = sorted(set(names) - set(METRICS)) + sorted(set(options or {}) - set(METRICS))
    if unknown:
        raise ValueError(f"unknown disentanglement metric(s) {unknown}; known: {sorted(METRICS)}")
    num_test = num_train // 2 if num_test is None else num_test
    sizes = {"num_train": num_train, "num_eval": num_test, "num_test": num_test}
    sizes["num_variance_estimate"] = num_train
    if isinstance(random_state, (int, np.integer)):
        base = int(random_state)
    else:
        base = int(as_rng(random_state).integers(0, 2**63 - 1))
    results = {}
    for name in names:
        kwargs = {arg: sizes[arg] for arg in _SIZE_ARGS[name]}
        kwargs.update((options or {}).get(name, {}))
        # crc32, not hash(): string hashes change between Python processes.
        rng = np.random.default_rng([base, zlib.crc32(name.encode())])
        results[name] = METRICS[name](representation_fn, factor_sizes, rng, **kwargs)
    return results
