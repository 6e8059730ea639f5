"""Metrics of sets of strings: n-gram and length distributions, novelty, and distance to a known truth.

All read the strings themselves (``requires="strings"``), not features. Intervals resample the
generated strings (the reference fixed), so they cover the sampling noise of the generated set.

* ``text_ngrams``: Jensen-Shannon divergence (base 2, in [0, 1]) between the character n-gram
  distributions of the two sets, n = 1..4, each string padded with n - 1 start marks and one
  end mark as an n-gram model reads it, so that first and last letters count; and the Wasserstein-1 distance between the length
  distributions (in characters). JSD has a finite-sample floor above 0 even for two samples of
  one distribution: ``details["floor"]`` is the JSD between the two halves of the reference,
  which is what two independent sets of that size score.
* ``text_novelty``: the share of generated strings found in the training set (copies), the
  share found in the reference (a held-out set: with a finite vocabulary, real held-out data
  overlaps too), and the share of distinct strings. The training set is ``text_train``
  (default ``auto``: the reference dataset's ``train`` split).
* ``text_truth``: against an embedded dataset whose true distribution is known
  (``census_names``, ``hmm_language``): the truth's mass on the distinct generated strings
  (mass coverage), total variation between the generated strings' empirical distribution and
  the truth, and the share of generated strings the truth never emits. Mass coverage has an
  exact expectation for a sample of the truth itself, sum_s p(s) (1 - (1 - p(s))^n), given in
  ``details["expected_for_truth"]``.

scipy computes the JSD and the Wasserstein distance; only the counting is written here.
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING

import numpy as np

from gen_eval.metrics.result import Result

if TYPE_CHECKING:
    from gen_eval.metrics.base import MetricContext
    from gen_eval.sources import Source

START, END = "\x02", "\x03"  # marks outside any text a source accepts (control characters)
ORDERS = (1, 2, 3, 4)


def source_strings(source: Source, batch_size: int = 1024) -> list[str]:
    """Every string ``source`` yields, in order."""
    from gen_eval.kinds.text import decode_rows

    return [s for batch in source.batches(batch_size) for s in decode_rows(batch.data)]


def ngram_counts(strings: list[str], n: int) -> list[Counter[str]]:
    """Per string, the counts of its character n-grams, padded as an n-gram model reads it.

    n - 1 start marks and one end mark, so every string (the empty one too) has len + 1 n-grams.
    """
    padded = (START * (n - 1) + s + END for s in strings)
    return [Counter(p[i : i + n] for i in range(len(p) - n + 1)) for p in padded]


def _count_matrix(
    per_string: list[Counter[str]], vocabulary: dict[str, int]
) -> tuple[list[int], list[int], list[int]]:
    """(rows, columns, counts) of a sparse strings x n-grams matrix; new n-grams join ``vocabulary``."""
    rows, cols, values = [], [], []
    for row, counts in enumerate(per_string):
        for gram, count in counts.items():
            rows.append(row)
            cols.append(vocabulary.setdefault(gram, len(vocabulary)))
            values.append(count)
    return rows, cols, values


def _jsd(p: np.ndarray, q: np.ndarray) -> float:
    from scipy.spatial.distance import jensenshannon

    # scipy returns the Jensen-Shannon *distance*, the square root of the divergence.
    return float(jensenshannon(p, q, base=2) ** 2)


def _weights(n: int, context: MetricContext) -> np.ndarray:
    """(R, n) bootstrap multiplicities of the generated strings (R = 0 without intervals)."""
    from gen_eval.metrics.bootstrap import resample_counts

    if context.num_resamples <= 0:
        return np.zeros((0, n))
    return resample_counts(n, context.num_resamples, context.random_state).double().numpy()


def _interval(
    replicates: np.ndarray, context: MetricContext, point: float | None = None, upper: float | None = 1.0
) -> tuple[float, float] | None:
    """Percentile interval of a mean; with ``point``, the basic interval of a plug-in statistic.

    JSD, coverage and TV of a resample are biased (a resample holds ~63% distinct strings), so
    their replicates sit off the point: the interval keeps their spread and removes that bias
    (:func:`gen_eval.metrics.bootstrap.recentred_interval`).
    """
    import torch

    from gen_eval.metrics.bootstrap import percentile_interval, recentred_interval

    if not len(replicates):
        return None
    values = torch.from_numpy(np.asarray(replicates, float))
    if point is None:
        return percentile_interval(values, context.confidence)
    return recentred_interval(values, point, context.confidence, 0.0, np.inf if upper is None else upper)


COVERS = "the generated strings resampled, the reference fixed"


def text_ngrams(generated: dict, reference: dict, context: MetricContext) -> dict[str, Result]:
    """n-gram JSD (n = 1..4) and the length distance between the generated and reference strings."""
    from scipy.sparse import csr_matrix
    from scipy.stats import wasserstein_distance

    assert context.generated_source is not None and context.reference_source is not None
    gen, ref = source_strings(context.generated_source), source_strings(context.reference_source)
    weights = _weights(len(gen), context)
    half = len(ref) // 2
    results: dict[str, Result] = {}
    for n in ORDERS:
        vocabulary: dict[str, int] = {}
        g_rows, g_cols, g_values = _count_matrix(ngram_counts(gen, n), vocabulary)
        r_rows, r_cols, r_values = _count_matrix(ngram_counts(ref, n), vocabulary)
        g = csr_matrix((g_values, (g_rows, g_cols)), shape=(len(gen), len(vocabulary)))
        r = csr_matrix((r_values, (r_rows, r_cols)), shape=(len(ref), len(vocabulary)))
        r_total = np.asarray(r.sum(axis=0)).ravel()
        value = _jsd(np.asarray(g.sum(axis=0)).ravel(), r_total)
        replicates = np.array([_jsd(np.asarray(w @ g).ravel(), r_total) for w in weights])
        floor = _jsd(np.asarray(r[:half].sum(axis=0)).ravel(), np.asarray(r[half:].sum(axis=0)).ravel())
        results[f"ngram_jsd_{n}"] = Result(
            f"ngram_jsd_{n}",
            value,
            "lower",
            len(gen),
            len(ref),
            interval=_interval(replicates, context, value),
            interval_covers=COVERS,
            details={
                "floor": floor,
                "floor_means": f"JSD between the two halves of the reference ({half:,} vs {len(ref) - half:,})",
                "vocabulary": len(vocabulary),
                "units": "bits (base-2 JSD, in [0, 1])",
            },
        )
    g_len = np.array([len(s) for s in gen], float)
    r_len = np.array([len(s) for s in ref], float)
    replicates = np.array([wasserstein_distance(g_len, r_len, u_weights=w) for w in weights])
    distance = float(wasserstein_distance(g_len, r_len))
    results["length_distance"] = Result(
        "length_distance",
        distance,
        "lower",
        len(gen),
        len(ref),
        interval=_interval(replicates, context, distance, upper=None),
        interval_covers=COVERS,
        details={
            "units": "characters (Wasserstein-1 between length distributions)",
            "generated_mean_length": float(g_len.mean()) if len(gen) else None,
            "reference_mean_length": float(r_len.mean()) if len(ref) else None,
        },
    )
    return results


def _train_strings(context: MetricContext) -> tuple[list[str] | None, str | None]:
    from gen_eval.sources import open_source
    from gen_eval.sources.dataset import default_train_spec

    spec = context.option("text_train", "auto")
    if spec == "none":
        return None, None
    if spec == "auto":
        assert context.reference_source is not None
        spec = default_train_spec(context.reference_source)
        if spec is None:
            return None, None
    return source_strings(open_source(spec, seed=context.random_state)), spec


def text_novelty(generated: dict, reference: dict, context: MetricContext) -> dict[str, Result]:
    """Shares of generated strings copied from the training set, found in the reference, and distinct."""
    assert context.generated_source is not None and context.reference_source is not None
    gen, ref = source_strings(context.generated_source), source_strings(context.reference_source)
    weights = _weights(len(gen), context)
    train, train_spec = _train_strings(context)

    def share(name: str, hits: np.ndarray, direction: str, means: str, **details) -> Result:
        replicates = weights @ hits / max(len(gen), 1)
        return Result(
            name,
            float(hits.mean()) if len(hits) else float("nan"),
            direction,  # type: ignore[arg-type]
            len(gen),
            len(ref),
            kind="exact",
            interval=_interval(replicates, context),
            interval_covers=COVERS,
            details={"means": means, **details},
        )

    results = {}
    if train is not None:
        seen = set(train)
        copied = np.array([s in seen for s in gen], float)
        results["train_copies"] = share(
            "train_copies",
            copied,
            "lower",
            "share of generated strings that occur in the training set",
            training_set=train_spec,
            examples=sorted({s for s in gen if s in seen}, key=gen.index)[:10],
        )
    in_reference = set(ref)
    results["reference_overlap"] = share(
        "reference_overlap",
        np.array([s in in_reference for s in gen], float),
        "higher",
        "share of generated strings that occur in the reference set (held-out data overlaps too)",
    )
    first = np.zeros(len(gen))
    first[np.unique(np.array(gen, dtype=object), return_index=True)[1]] = 1
    results["distinct"] = Result(
        "distinct",
        float(first.mean()) if len(gen) else float("nan"),
        "higher",
        len(gen),
        len(ref),
        kind="exact",
        details={
            "means": "share of generated strings that are distinct (first occurrences)",
            "reference_value": len(in_reference) / max(len(ref), 1),
        },
    )
    return results


def text_truth(generated: dict, reference: dict, context: MetricContext) -> dict[str, Result]:
    """Mass coverage, total variation and the out-of-support share against a known true distribution."""
    from gen_eval.datasets import true_distribution
    from gen_eval.sources.dataset import dataset_name

    assert context.generated_source is not None and context.reference_source is not None
    name = dataset_name(context.reference_source)
    truth = true_distribution(name) if name else None
    if truth is None:
        return {}
    gen = source_strings(context.generated_source)
    n = len(gen)
    counts = Counter(gen)
    distinct = list(counts)
    p = np.array([truth.get(s, 0.0) for s in distinct])
    q = np.array([counts[s] / n for s in distinct])
    # TV over the union of supports: generated strings, plus the truth's mass they miss.
    tv = 0.5 * (np.abs(q - p).sum() + (1.0 - p.sum()))
    everything = np.fromiter(truth.values(), float)
    expected = float((everything * -np.expm1(n * np.log1p(-everything))).sum())
    weights = _weights(n, context)
    index = {s: i for i, s in enumerate(distinct)}
    which = np.array([index[s] for s in gen])
    cover_reps, tv_reps = [], []
    for w in weights:
        q_w = np.bincount(which, weights=w, minlength=len(distinct)) / n
        cover_reps.append(p[q_w > 0].sum())
        tv_reps.append(0.5 * (np.abs(q_w - p).sum() + (1.0 - p.sum())))
    outside = np.array([truth.get(s, 0.0) == 0.0 for s in gen], float)
    common = {"truth": f"{name}: the exact distribution over {len(truth):,} strings"}
    return {
        "mass_coverage": Result(
            "mass_coverage",
            float(p.sum()),
            "higher",
            n,
            len(truth),
            interval=_interval(np.array(cover_reps), context, float(p.sum())),
            interval_covers=COVERS,
            details={
                **common,
                "expected_for_truth": expected,
                "means": "true mass of the distinct generated strings",
            },
        ),
        "tv_to_truth": Result(
            "tv_to_truth",
            float(tv),
            "lower",
            n,
            len(truth),
            interval=_interval(np.array(tv_reps), context, float(tv)),
            interval_covers=COVERS,
            details={
                **common,
                "means": "total variation between the generated strings' frequencies and the truth",
            },
        ),
        "outside_truth": Result(
            "outside_truth",
            float(outside.mean()) if n else float("nan"),
            "lower",
            n,
            len(truth),
            kind="exact",
            details={**common, "examples": sorted({s for s in gen if truth.get(s, 0.0) == 0.0})[:10]},
        ),
    }
