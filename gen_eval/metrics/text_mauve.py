"""MAUVE (Pillutla et al. 2021; JMLR 2023) on the run's features, by the authors' ``mauve-text``.

``mauve.compute_mauve(p_features=reference, q_features=generated)`` does all of it: both sets
are L2-normalised, reduced by PCA to 90% of the variance, quantised together by faiss k-means
into ``mauve_buckets`` clusters (default: mauve's "auto", the smaller set's size / 10), by
``mauve_kmeans_restarts`` restarts of ``mauve_kmeans_iterations`` iterations (1 and 100, the
setting mauve's docs suggest for speed, not its defaults 5 and 500: faiss runs every iteration,
and at 10,000 vs 10,000 that took 579 s against 18 s for a MAUVE 0.002 apart; see
:data:`RESTARTS`), seeded by the run's seed, and MAUVE is the area under the
divergence frontier of the two cluster histograms with scaling constant c = ``mauve_scaling``
(5). It is in (0, 1], 1 for identical histograms. mauve-text's own GPT-2 featuriser (which
downloads weights) is never called: the features are the run's extractor's (``char-names`` on
names), so MAUVE applies to every kind, as FID does; it is most used on text.

Interval: resampling the generated set with replacement, with the clusters fixed, is the same
as drawing its histogram from Multinomial(n, q_hist); each replicate's frontier is mauve's own
``get_divergence_curve_for_multinomials``, and its area is taken as ``compute_mauve`` takes it
(two lines, mirrored here because the library has no function for them; a test checks that the
unresampled histogram gives the library's value exactly). So the interval covers the generated
set's sampling given the quantisation, not the k-means randomness (rerun with another ``--seed``
for that).

mauve-text is GPL-3.0 licensed, gen-eval MIT: it is an optional dependency (``pip install
mauve-text``, or the ``text`` extra), imported only when this metric runs, which is why the
metric is not among the defaults.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from gen_eval.errors import GenEvalError
from gen_eval.metrics.result import Result

if TYPE_CHECKING:
    from gen_eval.metrics.base import MetricContext

SCALING = 5.0
# k-means: mauve's docs advise 1 restart of 100 iterations for speed; its defaults are 5 of 500.
# On 10,000 vs 10,000 names: 18 s against 579 s (2 threads, busy machine) and MAUVE 0.951
# [0.943, 0.957] against 0.949 [0.941, 0.956] (reports/text.md). No published MAUVE uses these
# features, so nothing is lost in comparability; -o sets mauve's own values back.
RESTARTS, ITERATIONS = 1, 100
CURVE_POINTS = 25  # mauve's divergence_curve_discretization_size


def _mauve_module() -> Any:
    try:
        import mauve
    except ImportError as error:
        raise GenEvalError(
            "metric mauve needs the mauve-text package (GPL-3.0, not installed with gen-eval): "
            "pip install mauve-text"
        ) from error
    return mauve


def frontier_area(p_hist: np.ndarray, q_hist: np.ndarray, scaling: float = SCALING) -> float:
    """MAUVE of two histograms: the area under mauve's divergence curve, as ``compute_mauve`` takes it."""
    from mauve.compute_mauve import get_divergence_curve_for_multinomials
    from sklearn.metrics import auc

    weights = np.linspace(1e-6, 1 - 1e-6, CURVE_POINTS)
    x, y = get_divergence_curve_for_multinomials(p_hist, q_hist, weights, scaling).T
    by_x, by_y = np.argsort(x), np.argsort(y)
    return float(0.5 * (auc(x[by_x], y[by_x]) + auc(y[by_y], x[by_y])))


def mauve_score(generated: dict, reference: dict, context: MetricContext) -> dict[str, Result]:
    """MAUVE between the reference (P) and generated (Q) features, with a bootstrap over the generated set."""
    import torch

    from gen_eval.metrics.bootstrap import recentred_interval

    mauve = _mauve_module()
    gen = generated["features"].double().cpu().numpy()
    ref = reference["features"].double().cpu().numpy()
    buckets = context.option("mauve_buckets", None)
    scaling = float(context.option("mauve_scaling", SCALING))
    restarts = int(context.option("mauve_kmeans_restarts", RESTARTS))
    iterations = int(context.option("mauve_kmeans_iterations", ITERATIONS))
    if restarts < 1 or iterations < 1:
        raise GenEvalError("-o mauve_kmeans_restarts and mauve_kmeans_iterations must be at least 1")
    if buckets is not None and int(buckets) < 2:
        raise GenEvalError(f"-o mauve_buckets={buckets} is too small: use at least 2 clusters")
    if min(len(gen), len(ref)) < 20:
        raise GenEvalError(f"MAUVE needs at least 20 samples per set; got {len(gen)} and {len(ref)}")
    import faiss

    threads = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(torch.get_num_threads())  # --threads, not every core of a shared machine
    try:
        out = mauve.compute_mauve(
            p_features=ref,
            q_features=gen,
            num_buckets="auto" if buckets is None else int(buckets),
            mauve_scaling_factor=scaling,
            kmeans_num_redo=restarts,
            kmeans_max_iter=iterations,
            seed=context.random_state,
            verbose=False,
        )
    finally:
        faiss.omp_set_num_threads(threads)
    interval = None
    if context.num_resamples > 0:
        rng = np.random.default_rng(context.random_state)
        draws = rng.multinomial(len(gen), out.q_hist, size=context.num_resamples) / len(gen)
        replicates = torch.tensor([frontier_area(out.p_hist, q, scaling) for q in draws])
        interval = recentred_interval(replicates, float(out.mauve), context.confidence, 0.0, 1.0)
    return {
        "mauve": Result(
            "mauve",
            float(out.mauve),
            "higher",
            len(gen),
            len(ref),
            interval=interval,
            interval_covers="the generated set resampled (its cluster histogram), clusters and reference fixed",
            details={
                "clusters": int(out.num_buckets),
                "scaling": scaling,
                "settings": "mauve-text compute_mauve: L2 norm, PCA to 90% variance, faiss k-means "
                f"({int(out.num_buckets)} clusters, {restarts} restarts of {iterations} iterations, "
                f"seed {context.random_state}), "
                f"{CURVE_POINTS} frontier points",
                "frontier_integral": float(out.frontier_integral),
                "mauve_star": float(out.mauve_star),
                "features": context.extractor,
            },
        )
    }
