"""Diversity of a set of strings: distinct-n (n = 1..4) and self-BLEU, from well-kept libraries.

* ``distinct_n`` (Li et al. 2016, "A diversity-promoting objective function"): the number of
  distinct character n-grams over the total number of character n-grams in the generated set.
  scikit-learn's ``CountVectorizer(analyzer="char", ngram_range=(n, n), lowercase=False)``
  counts them (it folds runs of white space into one space first). Characters, not words,
  because the embedded corpora are single words (first names); the value falls as the set
  grows, so ``details["reference_value"]`` is the reference's own distinct-n on as many strings.
* ``self_bleu`` (Zhu et al. 2018, Texygen): each string of a seeded subset is scored with
  sacrebleu's sentence BLEU against the other strings of the subset as references (character
  tokens, ``tokenize="char"``, n-grams up to 4, ``effective_order=True`` so that strings shorter
  than 4 characters are scored on the orders they have, exponential smoothing), and the scores
  are averaged: 0 to 100, higher means more alike, so lower is more diverse. It is quadratic in
  the subset (each of k strings against k - 1 references), so the subset size ``self_bleu_samples``
  (default 200) is stated in ``details``; the reference's value on a subset of the same size is
  given beside it.

Intervals: distinct-n resamples the generated strings (the reference fixed) with the basic
bootstrap (a resample repeats strings, so its raw value is biased low; the interval keeps the
spread and removes that bias). Self-BLEU resamples the subset's per-string scores, the
reference pool fixed: it covers which strings were scored, not the choice of the pool.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from gen_eval.metrics.result import Result
from gen_eval.metrics.text import COVERS, _interval, _weights, source_strings

if TYPE_CHECKING:
    from gen_eval.metrics.base import MetricContext

ORDERS = (1, 2, 3, 4)
SELF_BLEU_SAMPLES = 200


def ngram_matrix(strings: list[str], n: int) -> Any:
    """Sparse (strings x distinct character n-grams) counts, by scikit-learn's ``CountVectorizer``.

    Strings shorter than n give empty rows. Returns None when no string has an n-gram.
    """
    from sklearn.feature_extraction.text import CountVectorizer

    vectorizer = CountVectorizer(analyzer="char", ngram_range=(n, n), lowercase=False)
    try:
        return vectorizer.fit_transform(strings)
    except ValueError:  # "empty vocabulary": no string reaches n characters
        return None


def distinct_value(strings: list[str], n: int) -> float:
    """Distinct character n-grams / all character n-grams (nan when there are none)."""
    counts = ngram_matrix(strings, n)
    if counts is None or counts.sum() == 0:
        return float("nan")
    return float(counts.getnnz(axis=0).astype(bool).sum() / counts.sum())


def distinct_n(generated: dict, reference: dict, context: MetricContext) -> dict[str, Result]:
    """distinct-1 .. distinct-4 of the generated strings, with the reference's on as many strings."""
    assert context.generated_source is not None and context.reference_source is not None
    gen, ref = source_strings(context.generated_source), source_strings(context.reference_source)
    weights = _weights(len(gen), context)
    results: dict[str, Result] = {}
    for n in ORDERS:
        counts = ngram_matrix(gen, n)
        if counts is None:
            value, replicates = float("nan"), np.zeros(0)
        else:
            totals = np.asarray(counts.sum(axis=0)).ravel()
            value = float((totals > 0).sum() / max(totals.sum(), 1))
            resampled = weights @ counts  # (R, V) n-gram counts of each resample
            replicates = (resampled > 0).sum(axis=1) / np.maximum(resampled.sum(axis=1), 1)
        results[f"distinct_{n}"] = Result(
            f"distinct_{n}",
            value,
            "higher",
            len(gen),
            len(ref),
            interval=_interval(np.asarray(replicates, float), context, value) if counts is not None else None,
            interval_covers=COVERS,
            details={
                "means": f"distinct character {n}-grams over all character {n}-grams of the generated set",
                "reference_value": distinct_value(ref[: len(gen)], n),
                "reference_value_on": min(len(gen), len(ref)),
                "library": "scikit-learn CountVectorizer(analyzer='char', lowercase=False)",
            },
        )
    return results


def self_bleu_scores(strings: list[str]) -> np.ndarray:
    """Each string's sacrebleu sentence BLEU against all the others (0-100), in order."""
    from sacrebleu.metrics import BLEU

    bleu = BLEU(tokenize="char", effective_order=True)
    return np.array(
        [bleu.sentence_score(s, strings[:i] + strings[i + 1 :]).score for i, s in enumerate(strings)]
    )


def _subset(strings: list[str], size: int, seed: int) -> list[str]:
    if len(strings) <= size:
        return list(strings)
    chosen = np.random.default_rng(seed).choice(len(strings), size=size, replace=False)
    return [strings[i] for i in np.sort(chosen)]


def self_bleu(generated: dict, reference: dict, context: MetricContext) -> dict[str, Result]:
    """Mean sacrebleu sentence BLEU of each string of a seeded subset against the rest of it."""
    import torch

    from gen_eval.errors import GenEvalError
    from gen_eval.metrics.bootstrap import percentile_interval, resample_counts

    assert context.generated_source is not None and context.reference_source is not None
    size = int(context.option("self_bleu_samples", SELF_BLEU_SAMPLES))
    if size < 2:
        raise GenEvalError(f"-o self_bleu_samples={size} is too small: self-BLEU needs at least 2 strings")
    gen, ref = source_strings(context.generated_source), source_strings(context.reference_source)
    subset = _subset(gen, size, context.random_state)
    if len(subset) < 2:
        return {}
    scores = self_bleu_scores(subset)
    interval = None
    if context.num_resamples > 0:
        weights = resample_counts(len(scores), context.num_resamples, context.random_state).double()
        replicates = weights @ torch.from_numpy(scores) / len(scores)
        interval = percentile_interval(replicates, context.confidence)
    ref_subset = _subset(ref, len(subset), context.random_state)
    return {
        "self_bleu": Result(
            "self_bleu",
            float(scores.mean()),
            "lower",
            len(gen),
            len(ref),
            interval=interval,
            interval_covers="the subset's strings resampled as hypotheses, each against the fixed rest",
            details={
                "means": "mean sentence BLEU (0-100) of each string against the other strings of the subset",
                "subset": len(subset),
                "subset_means": f"{len(subset):,} generated strings drawn without replacement (seed "
                f"{context.random_state}); each scored against the other {len(subset) - 1:,}",
                "reference_value": float(self_bleu_scores(ref_subset).mean())
                if len(ref_subset) > 1
                else None,
                "library": "sacrebleu BLEU(tokenize='char', effective_order=True), smooth 'exp', max order 4",
            },
        )
    }
