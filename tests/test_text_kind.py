"""The text kind: embedded corpora with known truths, text-file sources, features and text metrics.

References: the HMM language's probabilities against a brute-force sum over state paths; the
Census table against the package's files; the metrics against by-hand counts, a planted copier
and a planted collapse.
"""

from __future__ import annotations

import itertools
import json
from collections import Counter

import numpy as np
import pytest

from gen_eval.datasets import census_names, get_dataset, hmm_language, true_distribution
from gen_eval.errors import GenEvalError
from gen_eval.kinds import get_kind
from gen_eval.kinds.text import decode_rows, encode_strings
from gen_eval.metrics.base import MetricContext
from gen_eval.sources import open_source


def test_code_points_round_trip_any_unicode():
    strings = ["", "a", "naïve", "☃ snow", "日本語", "𝔘nicode"]
    codes = encode_strings(strings)
    assert codes.dtype == np.int32 and codes.shape == (6, 7)
    assert decode_rows(codes) == strings
    with pytest.raises(GenEvalError, match="over the limit"):
        encode_strings(["abcdef"], 3)
    with pytest.raises(GenEvalError, match="NUL"):
        encode_strings(["a\x00b"])


def test_hmm_language_probabilities_equal_a_sum_over_state_paths():
    def brute(text: str) -> float:
        total = 0.0
        for path in itertools.product(range(3), repeat=len(text)):
            p = hmm_language.START[path[0]]
            for t, (state, letter) in enumerate(zip(path, text, strict=True)):
                p *= hmm_language.EMIT[state, hmm_language.ALPHABET.index(letter)]
                p *= hmm_language.STOP[state] if t == len(text) - 1 else 1 - hmm_language.STOP[state]
                if t + 1 < len(text):
                    p *= hmm_language.MOVE[state, path[t + 1]]
            total += p
        return total

    strings, probs = hmm_language.all_strings()
    assert len(strings) == sum(4**n for n in range(1, 9)) and probs.sum() == pytest.approx(1, abs=1e-12)
    truncation = sum(brute("".join(s)) for n in (1, 2, 3) for s in itertools.product("abcd", repeat=n))
    lookup = dict(zip(strings, probs, strict=True))
    for text in ["a", "db", "abcd", "ddddd", "cab"]:
        # The truncated distribution is the untruncated one divided by P(length <= 8); compare the
        # ratio of two strings, which the truncation leaves alone, and each log-probability.
        assert lookup[text] / lookup["a"] == pytest.approx(brute(text) / brute("a"), rel=1e-10)
    assert hmm_language.log_prob(["abcd"])[0] == pytest.approx(np.log(lookup["abcd"]), abs=1e-12)
    assert np.isneginf(hmm_language.log_prob(["abcde", "x", "aaaaaaaaa"])).all()
    assert truncation < 1  # lengths 1..3 alone do not exhaust the mass
    # The forward sampler and the table agree: length histogram of 4,000 draws vs the exact one.
    draws = hmm_language.sample(4000, np.random.default_rng(0))
    exact = Counter()
    for s, p in zip(strings, probs, strict=True):
        exact[len(s)] += p
    seen = Counter(len(s) for s in draws)
    for n in range(1, 9):
        assert seen[n] / 4000 == pytest.approx(exact[n], abs=4 * np.sqrt(exact[n] / 4000) + 1e-3)


def test_census_names_table_and_splits():
    strings, labels, mass = census_names.table()
    assert len(strings) == 1219 + 4275 and mass.sum() == pytest.approx(1, abs=1e-12)
    assert mass[labels == 0].sum() == pytest.approx(0.5) and strings[4275] == "james"
    truth = true_distribution("census_names")
    assert truth["james"] == pytest.approx(mass[4275] + mass[np.array(strings) == "james"][:-1].sum())
    train, train_labels = census_names.load_names("train")
    assert len(train) == 20_000 and set(np.unique(train_labels)) == {0, 1}
    assert census_names.load_names("test")[0] != census_names.load_names("validation")[0][: len(train)]
    # Draws follow the truth: the commonest name's share within 4 standard errors.
    p = truth["james"]
    assert Counter(train)["james"] / 20_000 == pytest.approx(p, abs=4 * np.sqrt(p / 20_000))
    info = get_dataset("census_names")
    data, labels = info.read("test", 0, 10)
    assert data.dtype == np.int32 and decode_rows(data) == list(census_names.load_names("test")[0][:10])


def test_text_files_and_one_line_errors(tmp_path):
    good = tmp_path / "names.txt"
    good.write_bytes("anna\r\nbob\nçà ☃\n".encode())
    source = open_source(str(good))
    assert source.data_kind == "text" and len(source) == 3
    assert decode_rows(source.head(3).data) == ["anna", "bob", "çà ☃"]
    lines = tmp_path / "l.jsonl"
    lines.write_text('{"text": "x", "label": 1}\n{"text": "", "label": 0}\n')
    batch = open_source(str(lines)).head(2)
    assert decode_rows(batch.data) == ["x", ""] and batch.labels.tolist() == [1, 0]
    cases = {
        "empty.txt": (b"", "empty"),
        "binary.txt": (b"ok\n\x00\x01\x02", "line 2 holds a NUL byte"),
        "latin1.txt": (b"ok\ncaf\xe9\n", "line 2 is not valid UTF-8"),
        "blank.txt": (b"a\n\nb\n", "line 2 is blank"),
        "long.txt": (b"a\n" + b"x" * 300 + b"\n", "line 2 has 300 characters"),
        "bad.jsonl": (b'{"text": "a"}\nnot json\n', "line 2 is not JSON"),
        "nolabel.jsonl": (b'{"text": "a", "label": 1}\n{"text": "b"}\n', "label every line or none"),
        "neg.jsonl": (b'{"text": "a", "label": -1}\n', "non-negative integer"),
    }
    for name, (content, message) in cases.items():
        path = tmp_path / name
        path.write_bytes(content)
        with pytest.raises(GenEvalError, match=message) as error:
            open_source(str(path))
        assert "\n" not in str(error.value) and name in str(error.value)


def test_char_ngram_features_are_hashed_counts():
    from gen_eval.features import choose_extractor, create_extractor

    extractor = create_extractor("char-ngrams")
    codes = encode_strings(["anna", "anna", "bob"])
    import torch

    features = extractor(torch.from_numpy(codes))["features"].numpy()
    assert features.shape == (3, 257)
    assert np.array_equal(features[0], features[1]) and not np.array_equal(features[0], features[2])
    assert np.linalg.norm(features[:, :-1], axis=1) == pytest.approx(1, abs=1e-6)
    assert features[2, -1] == pytest.approx(np.log(4))
    source = open_source("hmm_language:test")
    assert choose_extractor(source, source) == get_kind("text").default_extractor == "char-ngrams"


def _context(generated, reference, **options) -> MetricContext:
    return MetricContext(
        generated_source=open_source(generated) if isinstance(generated, str) else generated,
        reference_source=open_source(reference),
        num_resamples=50,
        options=options,
    )


def _write(tmp_path, name: str, strings) -> str:
    path = tmp_path / name
    path.write_text("".join(json.dumps({"text": s}) + "\n" for s in strings))
    return str(path)


def test_ngram_jsd_equals_a_by_hand_count_and_flags_a_collapse(tmp_path):
    from scipy.spatial.distance import jensenshannon

    from gen_eval.metrics.text import text_ngrams

    a, b = ["ab", "ab", "b"], ["ba", "a"]
    out = text_ngrams({}, {}, _context(_write(tmp_path, "a.jsonl", a), _write(tmp_path, "b.jsonl", b)))

    def grams(strings, n):
        padded = ["\x02" * (n - 1) + s + "\x03" for s in strings]
        return Counter(p[i : i + n] for p in padded for i in range(len(p) - n + 1))

    for n in (1, 2, 4):
        ga, gb = grams(a, n), grams(b, n)
        keys = sorted(set(ga) | set(gb))
        expected = jensenshannon([ga[k] for k in keys], [gb[k] for k in keys], base=2) ** 2
        assert out[f"ngram_jsd_{n}"].value == pytest.approx(expected, abs=1e-12)
    assert out["length_distance"].value == pytest.approx(abs(np.mean([2, 2, 1]) - 1.5))
    # Held-out data sits near the floor; a generator stuck on 20 strings is far above it.
    held_out = text_ngrams({}, {}, _context("hmm_language:validation", "hmm_language:test"))
    collapsed = _write(tmp_path, "c.jsonl", list(hmm_language.load_split("train")[:20]) * 125)
    stuck = text_ngrams({}, {}, _context(collapsed, "hmm_language:test"))
    for n in (1, 2, 3, 4):
        real = held_out[f"ngram_jsd_{n}"]
        assert real.value < 3 * real.details["floor"] + 0.002
        assert real.interval[0] <= real.value <= real.interval[1]
        assert stuck[f"ngram_jsd_{n}"].value > 3 * real.value


def test_novelty_flags_a_train_copier_and_passes_held_out_data(tmp_path):
    from gen_eval.metrics.text import text_novelty

    copier = _write(tmp_path, "copy.jsonl", hmm_language.load_split("train")[:2500])
    real = text_novelty({}, {}, _context("hmm_language:validation", "hmm_language:test"))
    copied = text_novelty({}, {}, _context(copier, "hmm_language:test"))
    assert copied["train_copies"].value == 1.0
    assert real["train_copies"].interval[1] < 0.95  # held-out data has strings never seen in training
    gap = real["train_copies"].value - real["reference_overlap"].value
    assert abs(gap) < 0.2  # both measure overlap with a sample of one distribution
    stuck = text_novelty({}, {}, _context(_write(tmp_path, "s.jsonl", ["ab"] * 100), "hmm_language:test"))
    assert stuck["distinct"].value == pytest.approx(0.01)


def test_truth_metrics_match_their_expectation_for_the_truth_itself(tmp_path):
    from gen_eval.metrics.text import text_truth

    real = text_truth({}, {}, _context("hmm_language:validation", "hmm_language:test"))
    coverage = real["mass_coverage"]
    assert coverage.interval[0] <= coverage.details["expected_for_truth"] <= coverage.interval[1]
    assert real["outside_truth"].value == 0.0
    invented = _write(tmp_path, "inv.jsonl", ["zz", "abcdabcdabcd", "a"] * 10)
    out = text_truth({}, {}, _context(invented, "hmm_language:test"))
    assert out["outside_truth"].value == pytest.approx(2 / 3)
    p_a = true_distribution("hmm_language")["a"]
    assert out["mass_coverage"].value == pytest.approx(p_a)
    assert out["tv_to_truth"].value == pytest.approx(0.5 * ((1 / 3 - p_a) + 2 / 3 + (1 - p_a)))
    assert text_truth({}, {}, _context(invented, invented)) == {}  # no known truth: nothing claimed
