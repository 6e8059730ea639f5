"""Text diversity: distinct-n against a by-hand count, self-BLEU against sacrebleu's own calls,
and both against a planted collapse (20 strings repeated) next to held-out names."""

from __future__ import annotations

import json

import numpy as np
import pytest

from gen_eval.datasets import census_names
from gen_eval.metrics.base import MetricContext
from gen_eval.sources import open_source


def _context(generated: str, reference: str, **options) -> MetricContext:
    return MetricContext(
        generated_source=open_source(generated),
        reference_source=open_source(reference),
        num_resamples=50,
        options=options,
    )


def _write(tmp_path, name: str, strings) -> str:
    path = tmp_path / name
    path.write_text("".join(json.dumps({"text": s}) + "\n" for s in strings))
    return str(path)


def test_distinct_n_equals_a_by_hand_count(tmp_path):
    from gen_eval.metrics.text_diversity import distinct_n

    strings = ["anna", "ann", "bob", "a", "anna"]
    out = distinct_n({}, {}, _context(_write(tmp_path, "a.jsonl", strings), "census_names:test"))
    for n in (1, 2, 3, 4):
        grams = [s[i : i + n] for s in strings for i in range(len(s) - n + 1)]
        assert out[f"distinct_{n}"].value == pytest.approx(len(set(grams)) / len(grams), abs=1e-12)
        low, high = out[f"distinct_{n}"].interval
        assert 0 <= low <= high <= 1
    assert "resampled" in out["distinct_1"].interval_covers


def test_self_bleu_equals_sacrebleus_own_calls():
    import sacrebleu

    from gen_eval.metrics.text_diversity import self_bleu_scores

    strings = ["anna", "hannah", "bob", "annabel", "jo"]
    ours = self_bleu_scores(strings)
    for i, text in enumerate(strings):
        others = strings[:i] + strings[i + 1 :]
        # The functional API, one reference stream per other string.
        expected = sacrebleu.sentence_bleu(text, others, tokenize="char", use_effective_order=True).score
        assert ours[i] == pytest.approx(expected, abs=1e-9)
    assert self_bleu_scores(["abcd", "abcd"]) == pytest.approx([100, 100])


def test_a_planted_collapse_is_less_diverse_than_held_out_names(tmp_path):
    from gen_eval.metrics.text_diversity import distinct_n, self_bleu

    names, _ = census_names.load_names("train")
    twenty = list(dict.fromkeys(names))[:20]
    collapsed = _write(tmp_path, "c.jsonl", twenty * 125)
    real = {
        **distinct_n({}, {}, c := _context("census_names:validation", "census_names:test")),
        **self_bleu({}, {}, c),
    }
    stuck = {**distinct_n({}, {}, c := _context(collapsed, "census_names:test")), **self_bleu({}, {}, c)}
    for n in (2, 3, 4):
        held, planted = real[f"distinct_{n}"], stuck[f"distinct_{n}"]
        # Held-out names sit at the reference's own value; 20 names repeated far below it.
        assert held.interval[0] - 0.02 <= held.details["reference_value"] <= held.interval[1] + 0.02
        assert planted.interval[1] < 0.5 * held.interval[0]
    assert stuck["self_bleu"].value == pytest.approx(100)  # every string has an exact copy in the pool
    assert real["self_bleu"].interval[1] < 90
    assert real["self_bleu"].details["subset"] == 200
    ref_value = real["self_bleu"].details["reference_value"]
    assert abs(real["self_bleu"].value - ref_value) < 8
    assert np.isfinite(real["self_bleu"].value)
