"""Likelihood metrics of text models: bits per character on held-out strings, and exact KL to a known truth.

Tokenisation. A string of n characters is n + 1 tokens: its characters and one end-of-string
token (a model must say where a string stops, or it would give probability 1 to every prefix).
The model's ``log_prob(strings)`` returns log p(s) in nats, end-of-string included, marginal
over labels (every text model in ``reference_models`` does; ``reference_models/text_common.py``).

* ``text_bpc``: bits per character of the reference (test) strings,
  -sum_s log2 p(s) / sum_s (len(s) + 1), and perplexity 2^bpc per token. The interval resamples
  the test strings (the model fixed): it covers the choice of test set, not the training run.
  Exact for any model whose ``log_prob`` is exact (the shipped ones are). ``details`` also hold
  the value given each string's label when the reference has labels and the model takes them.
* ``text_kl``: only against an embedded dataset with a known distribution (``census_names``,
  ``hmm_language``): the cross-entropy H(truth, model) = -sum_s p(s) log2 q(s) in bits per
  string, summed over the truth's whole support (every one of its strings), the truth's entropy
  H(truth), and their gap KL(truth || model) = H(truth, model) - H(truth), exact (no sampling,
  so no interval; float64 sums over at most 87,380 strings). Also per token: divided by the
  truth's expected number of tokens.
"""

from __future__ import annotations

import inspect
import math
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from gen_eval.errors import GenEvalError
from gen_eval.metrics.result import Result

if TYPE_CHECKING:
    from gen_eval.metrics.base import MetricContext

TOKENISATION = "characters plus one end-of-string token per string"
COVERS = "the test strings resampled, the model fixed"


def _model(context: MetricContext) -> Any:
    source = context.generated_source
    model = getattr(source, "model", None)
    if model is None or not callable(getattr(model, "log_prob", None)):
        spec = getattr(source, "spec", "the generated source")
        raise GenEvalError(
            f"bits per character needs a model with log_prob(strings); {spec} does not provide one"
        )
    return model


def model_log_prob(
    model: Any, strings: list[str], labels: np.ndarray | None = None, batch: int = 4096
) -> np.ndarray:
    """(N,) float64 log p(s) in nats from ``model.log_prob`` (given ``labels`` when not None), checked."""
    name = type(model).__name__
    out = []
    for start in range(0, len(strings), batch):
        chunk = strings[start : start + batch]
        try:
            with torch.no_grad():
                if labels is None:
                    value = model.log_prob(chunk)
                else:
                    value = model.log_prob(chunk, labels=labels[start : start + batch])
        except GenEvalError:
            raise
        except Exception as exc:
            raise GenEvalError(f"{name}.log_prob raised {type(exc).__name__}: {exc}") from exc
        value = (
            value.detach().cpu().double().numpy()
            if isinstance(value, torch.Tensor)
            else np.asarray(value, float)
        )
        if value.shape != (len(chunk),):
            raise GenEvalError(
                f"{name}.log_prob returned shape {value.shape} for {len(chunk)} strings; return one per string"
            )
        out.append(value)
    log_p = np.concatenate(out) if out else np.zeros(0)
    if (log_p > 1e-9).any():
        raise GenEvalError(f"{name}.log_prob gave log p(s) > 0: a probability of a string is at most 1")
    return log_p


def _takes_labels(model: Any) -> bool:
    return "labels" in inspect.signature(model.log_prob).parameters


def _reference(context: MetricContext) -> tuple[list[str], np.ndarray | None]:
    from gen_eval.kinds.text import decode_rows

    data = context.reference_source
    if data is None or data.data_kind != "text":
        raise GenEvalError("bits per character needs a reference source of strings (the held-out test data)")
    strings: list[str] = []
    labels: list[np.ndarray] = []
    for batch in data.batches(4096):
        strings += decode_rows(batch.data)
        if batch.labels is not None:
            labels.append(np.asarray(batch.labels).reshape(len(batch.data), -1)[:, 0])
    return strings, (
        np.concatenate(labels) if len(labels) and sum(map(len, labels)) == len(strings) else None
    )


def text_bpc(generated: dict, reference: dict, context: MetricContext) -> dict[str, Result]:
    """Bits per character and perplexity of the reference strings under the generated source's model.

    Parameters
    ----------
    generated, reference : dict
        Unused: the model is ``context.generated_source.model``, the strings ``context.reference_source``.
    context : MetricContext
        Seed, bootstrap resamples and confidence.

    Returns
    -------
    dict
        ``{"bits_per_char": Result, "perplexity": Result}``, kind "exact" (an estimate of the
        population value only through the choice of test strings; the interval says how much).
    """
    from gen_eval.metrics.bootstrap import percentile_interval, resample_counts

    model = _model(context)
    strings, labels = _reference(context)
    log_p = model_log_prob(model, strings)
    tokens = np.array([len(s) + 1 for s in strings], float)
    name = type(model).__name__
    if not np.isfinite(log_p).all():
        zero = [s for s, v in zip(strings, log_p, strict=True) if not np.isfinite(v)][:5]
        raise GenEvalError(
            f"{name}.log_prob gives probability 0 to {int((~np.isfinite(log_p)).sum())} test strings "
            f"(e.g. {', '.join(map(repr, zero))}): bits per character would be infinite"
        )
    bits = -log_p / math.log(2)
    bpc = float(bits.sum() / tokens.sum())
    interval = None
    if context.num_resamples > 0:
        # The ratio of sums of a resample of test strings (strings, not tokens, are the unit drawn).
        counts = resample_counts(len(strings), context.num_resamples, context.random_state).numpy()
        interval = percentile_interval(
            torch.from_numpy(counts @ bits / (counts @ tokens)), context.confidence
        )
    details: dict[str, Any] = {
        "tokenisation": TOKENISATION,
        "tokens": int(tokens.sum()),
        "strings": len(strings),
        "nll_bits_per_string": float(bits.mean()),
        "model": name,
        "means": "-sum log2 p(s) / number of tokens over the reference strings (marginal over labels)",
    }
    if labels is not None and _takes_labels(model):
        given = model_log_prob(model, strings, labels)
        if np.isfinite(given).all():
            details["bits_per_char_given_label"] = float(-given.sum() / math.log(2) / tokens.sum())
    common = {"num_generated": 0, "num_reference": len(strings), "kind": "exact", "interval_covers": COVERS}
    perplexity_interval = None if interval is None else (2.0 ** interval[0], 2.0 ** interval[1])
    return {
        "bits_per_char": Result("bits_per_char", bpc, "lower", interval=interval, details=details, **common),
        "perplexity": Result(
            "perplexity",
            2.0**bpc,
            "lower",
            interval=perplexity_interval,
            details={**details, "means": "2 ** bits_per_char: the per-token perplexity"},
            **common,
        ),
    }


def truth_gap(model: Any, truth: dict[str, float]) -> dict[str, float]:
    """Cross-entropy, entropy and KL(truth || model) in bits, summed over the truth's strings.

    Returns ``cross_entropy``, ``entropy``, ``kl`` (bits per string), ``kl_per_token`` (bits per
    token: KL over the truth's expected tokens per string) and ``zero_mass`` (the truth's mass on
    strings the model gives probability 0; KL is then infinite).
    """
    strings = list(truth)
    p = np.fromiter(truth.values(), float, len(strings))
    log2_q = model_log_prob(model, strings) / math.log(2)
    positive = p > 0
    zero = float(p[~np.isfinite(log2_q) & positive].sum())
    cross = float(-(p[positive] * log2_q[positive]).sum()) if zero == 0 else math.inf
    entropy = float(-(p[positive] * np.log2(p[positive])).sum())
    tokens = float((p * np.array([len(s) + 1 for s in strings])).sum())
    kl = cross - entropy
    return {
        "cross_entropy": cross,
        "entropy": entropy,
        "kl": kl,
        "kl_per_token": kl / tokens,
        "zero_mass": zero,
    }


def text_kl(generated: dict, reference: dict, context: MetricContext) -> dict[str, Result]:
    """Exact KL(truth || model) and the model's cross-entropy against a known true distribution.

    Parameters
    ----------
    generated, reference : dict
        Unused.
    context : MetricContext
        Its reference source names the dataset (``census_names:test``); its generated source's
        model gives ``log_prob``.

    Returns
    -------
    dict
        ``{"kl_to_truth": Result, "cross_entropy_to_truth": Result}`` (bits per string, exact),
        or nothing when the reference's true distribution is unknown.
    """
    from gen_eval.datasets import true_distribution
    from gen_eval.sources.dataset import dataset_name

    assert context.reference_source is not None
    name = dataset_name(context.reference_source)
    truth = true_distribution(name) if name else None
    if truth is None:
        return {}
    model = _model(context)
    gap = truth_gap(model, truth)
    details = {
        "truth": f"{name}: the exact distribution over {len(truth):,} strings (labels pooled)",
        "tokenisation": TOKENISATION,
        "entropy_bits_per_string": gap["entropy"],
        "cross_entropy_bits_per_string": gap["cross_entropy"],
        "kl_bits_per_token": gap["kl_per_token"],
        "truth_mass_at_zero_probability": gap["zero_mass"],
    }
    warnings = []
    if gap["zero_mass"] > 0:  # JSON shows the infinite value as null; say why beside it
        warnings.append(
            f"the model gives probability 0 to strings holding {gap['zero_mass']:.2%} of the truth's mass "
            "(characters outside its vocabulary?): KL and cross-entropy are infinite"
        )
    common = {"num_generated": 0, "num_reference": len(truth), "kind": "exact", "warnings": warnings}
    return {
        "kl_to_truth": Result(
            "kl_to_truth",
            gap["kl"],
            "lower",
            details={
                **details,
                "means": "KL(truth || model) in bits per string, summed over every true string",
            },
            **common,
        ),
        "cross_entropy_to_truth": Result(
            "cross_entropy_to_truth",
            gap["cross_entropy"],
            "lower",
            details={
                **details,
                "means": "-sum p_truth(s) log2 q(s) in bits per string; at least the entropy",
            },
            **common,
        ),
    }
