"""Bootstrap replicates of the text metrics for ``compare``, from the strings a text run keeps.

The text metrics read strings, not features, so the feature path of
:mod:`gen_eval.comparison.bootstrap` cannot recompute them. A text run keeps every generated
string (``text/generated.json``, :mod:`gen_eval.runs.text_files`); here each run's strings are
resampled with replacement (multiplicities from :func:`gen_eval.metrics.bootstrap.resample_counts`,
the run's own seeded stream) while the reference, the training set and the true distribution stay
fixed, and every replicate is computed as :mod:`gen_eval.metrics.text` computes its own interval.
The difference B - A is then tested as for FID: the two runs resampled independently, so the
interval covers the sampling noise of both generated sets, not that of the reference.

Covered: ``ngram_jsd_1..4``, ``length_distance``, ``train_copies``, ``reference_overlap``,
``mass_coverage`` and ``tv_to_truth``. Other text results (``distinct``, ``outside_truth``,
diversity, bits/char) fall back on compare's normal approximation from stored intervals.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from gen_eval.errors import GenEvalError

if TYPE_CHECKING:
    import torch

    from gen_eval.runs.run import Run

TEXT_RESULTS = {
    *(f"ngram_jsd_{n}" for n in (1, 2, 3, 4)),
    "length_distance",
    "train_copies",
    "reference_overlap",
    "mass_coverage",
    "tv_to_truth",
}


def _reference_strings(run: Run, memo: dict) -> list[str]:
    """The run's whole reference: the kept copy when complete, else the spec read again (checked)."""
    from gen_eval.metrics.text import source_strings
    from gen_eval.runs.text_files import REFERENCE, read_run_strings
    from gen_eval.sources import open_source

    info = run.manifest["reference"]
    key = ("reference", info.get("fingerprint"), info.get("spec"))
    if key not in memo:
        kept = read_run_strings(run.path, "reference")
        if kept is not None and len(kept) == info.get("count"):
            memo[key] = kept
        else:
            source = open_source(info["spec"], num_samples=info.get("count"))
            if source.fingerprint != info.get("fingerprint"):
                raise GenEvalError(
                    f"{run.path}: {REFERENCE} holds part of the reference and {info['spec']} changed since the run"
                )
            memo[key] = source_strings(source)
    return memo[key]


def _train_strings(run: Run, memo: dict) -> set[str] | None:
    from gen_eval.metrics.text import source_strings
    from gen_eval.sources import open_source

    result = run.metrics.get("train_copies")
    spec = (result.details or {}).get("training_set") if result is not None else None
    if spec is None:
        return None
    if ("train", spec) not in memo:
        memo[("train", spec)] = set(source_strings(open_source(spec)))
    return memo[("train", spec)]


def _jsd(p: np.ndarray, q: np.ndarray) -> float:
    from scipy.spatial.distance import jensenshannon

    return float(jensenshannon(p, q, base=2) ** 2)  # scipy's distance is the divergence's square root


def _ngram_jsd(gen: list[str], ref: list[str], n: int, weights: np.ndarray) -> tuple[float, np.ndarray]:
    """JSD of the n-gram distributions, the point and one value per row of ``weights``."""
    from scipy.sparse import csr_matrix

    from gen_eval.metrics.text import ngram_counts

    vocabulary: dict[str, int] = {}
    matrices = []
    for strings in (gen, ref):
        rows, cols, values = [], [], []
        for row, counts in enumerate(ngram_counts(strings, n)):
            for gram, count in counts.items():
                rows.append(row)
                cols.append(vocabulary.setdefault(gram, len(vocabulary)))
                values.append(count)
        matrices.append((rows, cols, values, len(strings)))
    g, r = (csr_matrix((v, (a, b)), shape=(size, len(vocabulary))) for a, b, v, size in matrices)
    r_total = np.asarray(r.sum(axis=0)).ravel()
    point = _jsd(np.asarray(g.sum(axis=0)).ravel(), r_total)
    return point, np.array([_jsd(np.asarray(w @ g).ravel(), r_total) for w in weights])


def text_replicates(
    run: Run, wanted: set[str], num_resamples: int, seed: int, memo: dict
) -> tuple[dict[str, float], dict[str, torch.Tensor], dict[str, str]]:
    """Point values and bootstrap replicates of the text results of ``run`` named in ``wanted``.

    Parameters
    ----------
    run : Run
        A text run (one that kept ``text/generated.json``).
    wanted : set of str
        Result names to recompute; only those in ``TEXT_RESULTS`` are.
    num_resamples : int
        Replicates per result.
    seed : int
        Seed of this run's resamples.
    memo : dict
        Reference and training strings already read (runs sharing them read them once).

    Returns
    -------
    points, replicates, failed : dict, dict, dict
        As :func:`gen_eval.comparison.bootstrap.run_replicates`.
    """
    import torch
    from scipy.stats import wasserstein_distance

    from gen_eval.metrics.bootstrap import resample_counts
    from gen_eval.runs.text_files import GENERATED, read_run_strings

    names = sorted(n for n in wanted & TEXT_RESULTS if n in run.metrics)
    points: dict[str, float] = {}
    found: dict[str, torch.Tensor] = {}
    if not names:
        return points, found, {}
    gen = read_run_strings(run.path, "generated")
    if gen is None:
        return points, found, dict.fromkeys(names, f"the run kept no {GENERATED} (written before it existed)")
    failed: dict[str, str] = {}
    weights = resample_counts(len(gen), num_resamples, seed).double().numpy()
    try:
        ref = _reference_strings(run, memo)
    except GenEvalError as exc:
        return points, found, dict.fromkeys(names, str(exc))
    for name in names:
        try:
            point, values = _one(name, run, gen, ref, weights, memo, wasserstein_distance)
        except GenEvalError as exc:
            failed[name] = str(exc)
            continue
        points[name], found[name] = point, torch.from_numpy(np.asarray(values, float))
    return points, found, failed


def _one(name: str, run: Run, gen: list[str], ref: list[str], weights: np.ndarray, memo: dict, w1) -> tuple:
    n = len(gen)
    if name.startswith("ngram_jsd_"):
        return _ngram_jsd(gen, ref, int(name.rsplit("_", 1)[1]), weights)
    if name == "length_distance":
        g_len, r_len = np.array([len(s) for s in gen], float), np.array([len(s) for s in ref], float)
        return float(w1(g_len, r_len)), np.array([w1(g_len, r_len, u_weights=w) for w in weights])
    if name in ("train_copies", "reference_overlap"):
        pool = _train_strings(run, memo) if name == "train_copies" else set(ref)
        if pool is None:
            raise GenEvalError("the run names no training set")
        hits = np.array([s in pool for s in gen], float)
        return float(hits.mean()), weights @ hits / n
    from gen_eval.datasets import true_distribution

    spec = str(run.manifest["reference"].get("spec", ""))
    truth = true_distribution(spec.split(":")[0]) if ":" in spec else None
    if truth is None:
        raise GenEvalError(f"no true distribution is known for {spec}")
    distinct = list(dict.fromkeys(gen))
    index = {s: i for i, s in enumerate(distinct)}
    which = np.array([index[s] for s in gen])
    p = np.array([truth.get(s, 0.0) for s in distinct])
    frequencies = np.stack([np.bincount(which, weights=w, minlength=len(distinct)) / n for w in weights])
    point_q = np.bincount(which, minlength=len(distinct)) / n
    if name == "mass_coverage":
        return float(p.sum()), np.array([p[q > 0].sum() for q in frequencies])
    missed = 1.0 - p.sum()  # the truth's mass on strings never generated
    return float(0.5 * (np.abs(point_q - p).sum() + missed)), 0.5 * (np.abs(frequencies - p).sum(1) + missed)
