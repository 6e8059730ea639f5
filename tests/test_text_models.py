"""The text models of reference_models: exact probabilities, sampling, labels, faults, checkpoints.

Each check has an independent reference: a brute-force sum over hidden-state paths and
hmmlearn's own score for the HMM; sums over every string up to a length bound plus the exact
tail for the counting models; empirical frequencies of samples against exp(log_prob); scipy's
entropy for the exact KL.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch

from reference_models import char_rnn, hmm_text, naive_bayes_text, ngram, text_faulty
from reference_models.text_common import END

ALPHABET = "ab"
TRAIN = ["ab", "a", "abb", "ba", "b", "aab", "ab", "bba"]
LABELS = torch.tensor([0, 0, 0, 0, 1, 1, 1, 1])


def _all_strings(longest: int) -> list[str]:
    return ["".join(p) for n in range(longest + 1) for p in itertools.product(ALPHABET, repeat=n)]


def _random_hmm(states: int = 3, labels: int = 2, seed: int = 0) -> hmm_text.HiddenMarkovText:
    torch.manual_seed(seed)
    model = hmm_text.HiddenMarkovText(ALPHABET, labels, states)
    model.log_start.copy_(torch.log_softmax(torch.randn(labels, states, dtype=torch.float64), -1))
    model.log_move.copy_(torch.log_softmax(torch.randn(labels, states, states, dtype=torch.float64), -1))
    model.log_emit.copy_(torch.log_softmax(torch.randn(labels, states, 3, dtype=torch.float64), -1))
    return model


def test_hmm_log_prob_equals_brute_force_over_state_paths_and_hmmlearn():
    from hmmlearn.hmm import CategoricalHMM

    model = _random_hmm()
    strings = _all_strings(3)
    for y in (0, 1):
        start, move, emit = (x[y].exp().numpy() for x in (model.log_start, model.log_move, model.log_emit))
        got = model.log_prob(strings, labels=[y] * len(strings)).numpy()
        reference = CategoricalHMM(n_components=3, n_features=3)
        reference.startprob_, reference.transmat_, reference.emissionprob_ = start, move, emit
        for text, value in zip(strings, got, strict=True):
            tokens = [ALPHABET.index(c) + 1 for c in text] + [END]
            # Every path of hidden states, one term each: the definition, not the recursion.
            brute = sum(
                start[path[0]]
                * np.prod([move[path[t - 1], path[t]] for t in range(1, len(path))])
                * np.prod([emit[s, x] for s, x in zip(path, tokens, strict=True)])
                for path in itertools.product(range(3), repeat=len(tokens))
            )
            assert value == pytest.approx(math.log(brute), abs=1e-10)
            assert value == pytest.approx(reference.score(np.array(tokens)[:, None]), abs=1e-10)
    # The marginal is the prior-weighted mixture of the two classes.
    prior = model.log_label_prior.double().exp()
    mixture = (
        prior[0] * model.log_prob(strings, [0] * len(strings)).exp()
        + prior[1] * model.log_prob(strings, [1] * len(strings)).exp()
    )
    assert torch.allclose(model.log_prob(strings).exp(), mixture, atol=1e-12)


@pytest.mark.parametrize("order", [1, 2, 3])
def test_ngram_probabilities_sum_to_one_up_to_a_length_bound_plus_the_exact_tail(order):
    model = ngram.count(TRAIN, LABELS, ALPHABET, 2, order, alpha=0.3)
    longest = 8
    strings = _all_strings(longest)
    for y in (0, 1):
        total = float(model.log_prob(strings, [y] * len(strings)).exp().sum())
        # The tail P(length > 8): every prefix of 9 characters, its probability from the sampling
        # path (_step), which reads the table by another route than log_prob's.
        tail = 0.0
        for prefix in itertools.product((1, 2), repeat=longest + 1):
            p, seen = 1.0, torch.tensor([[END]])
            for token in prefix:
                p *= float(model._step(seen, torch.tensor([y]))[0, token].exp())
                seen = torch.cat([seen, torch.tensor([[token]])], 1)
            tail += p
        assert total + tail == pytest.approx(1.0, abs=1e-12)
        assert 0 < tail < 0.05


def test_naive_bayes_probabilities_sum_to_one_with_the_length_tail():
    model = naive_bayes_text.count(TRAIN, LABELS, ALPHABET, 2, alpha=0.1)
    longest = 6
    strings = _all_strings(longest)
    for y in (0, 1):
        total = float(model.log_prob(strings, [y] * len(strings)).exp().sum())
        tail = float(model.log_length[y, longest + 1 :].exp().sum())
        assert total + tail == pytest.approx(1.0, abs=1e-12)
    assert model.log_prob([""]).item() == -math.inf  # no name is empty
    assert model.log_prob(["abz"]).item() == -math.inf  # a character outside the vocabulary


def _frequencies_agree(model, labels: list[int] | None, n: int = 6000) -> None:
    """Empirical frequencies of n samples equal exp(log_prob) within 4.5 standard errors."""
    generator = torch.Generator().manual_seed(1)
    drawn = model.sample(n, generator, labels=None if labels is None else labels * n)
    counts: dict[str, int] = {}
    for s in drawn:
        counts[s] = counts.get(s, 0) + 1
    common = sorted(counts, key=counts.get, reverse=True)[:12]
    p = model.log_prob(common, None if labels is None else labels * len(common)).exp().numpy()
    observed = np.array([counts[s] / n for s in common])
    error = np.sqrt(p * (1 - p) / n)
    assert np.all(np.abs(observed - p) < 4.5 * error + 1e-9), (common, observed, p)


def test_samples_follow_log_prob_for_every_family_and_labels_are_obeyed():
    torch.manual_seed(0)
    rnn = char_rnn.CharRNN(ALPHABET, 2, hidden=8, embedding=4)
    with torch.no_grad():
        rnn.out.bias[END] += 1.0  # short strings, so the common ones are frequent
    copier = text_faulty.MemorisingText(ALPHABET, 2, memorised=3, width=2, escape=0.3)
    copier.memory.copy_(torch.tensor([[97, 98], [98, 0], [97, 98]], dtype=torch.int32))  # ab, b, ab
    copier.memory_labels.copy_(torch.tensor([0, 1, 1]))
    copier.background.load_state_dict(ngram.count(TRAIN, LABELS, ALPHABET, 2, 1, alpha=0.3).state_dict())
    models = [
        copier,
        naive_bayes_text.count(TRAIN, LABELS, ALPHABET, 2, alpha=0.1),
        ngram.count(TRAIN, LABELS, ALPHABET, 2, 3, alpha=0.3),
        _random_hmm(),
        rnn.eval(),
    ]
    for model in models:
        _frequencies_agree(model, None)  # classes drawn from the prior: the marginal
        _frequencies_agree(model, [1])  # conditional sampling: class 1's distribution


def test_conditional_sampling_reads_the_label():
    # Class 0 saw only "a" strings, class 1 only "b" strings: tiny smoothing, near-pure samples.
    strings, labels = ["a", "aa", "aaa", "b", "bb", "bbb"], torch.tensor([0, 0, 0, 1, 1, 1])
    model = ngram.count(strings, labels, ALPHABET, 2, 2, alpha=1e-4)
    generator = torch.Generator().manual_seed(0)
    for y, letter in ((0, "a"), (1, "b")):
        drawn = model.sample(500, generator, labels=[y] * 500)
        assert sum(set(s) <= {letter} for s in drawn) / 500 > 0.99
    with pytest.raises(ValueError, match="class indices"):
        model.sample(2, generator, labels=[0, 2])
    # The generator protocol's conditional side (issue 23): ref: sources ask for balanced classes,
    # and the strings of a source asked for "b" are b-strings (the labels reach the model).
    from gen_eval.kinds.text import decode_rows
    from gen_eval.sources.python import GeneratorSource

    assert (
        model.num_classes == 2 and ngram.count(strings, labels * 0, ALPHABET, 1, 2, 1e-4).num_classes is None
    )
    batch = next(GeneratorSource(spec="toy", model=model, count=6, seed=0).batches(6))
    assert batch.labels.tolist() == [0, 1, 0, 1, 0, 1]
    drawn = decode_rows(batch.data.numpy())
    assert all(set(text) <= {"ab"[int(y)]} for text, y in zip(drawn, batch.labels, strict=True))


def test_exact_kl_is_zero_for_the_truth_and_scipy_s_for_a_planted_model():
    from scipy.stats import entropy

    from gen_eval.datasets import hmm_language
    from gen_eval.metrics.text_likelihood import truth_gap

    truth = hmm_language.true_distribution()
    strings = list(truth)
    p = np.fromiter(truth.values(), float)

    class Fixed:
        def __init__(self, q):
            self.q = dict(zip(strings, q, strict=True))

        def log_prob(self, chunk):
            return torch.tensor([math.log(self.q[s]) for s in chunk], dtype=torch.float64)

    same = truth_gap(Fixed(p), truth)
    assert same["kl"] == pytest.approx(0.0, abs=1e-9)
    assert same["cross_entropy"] == pytest.approx(entropy(p, base=2), rel=1e-12)
    # A planted fault: strings with an 'a' lose half their mass, renormalised.
    q = p * np.where(["a" in s for s in strings], 0.5, 1.0)
    q /= q.sum()
    planted = truth_gap(Fixed(q), truth)
    assert planted["kl"] == pytest.approx(entropy(p, q, base=2), rel=1e-9)
    assert planted["kl"] > 0.05
    # A model that never writes 'd' misses the truth's strings with a 'd': KL is infinite, and said so.
    blind = ngram.count(["ab", "abc", "c"], torch.tensor([0, 0, 0]), "abc", 1, 2, alpha=0.1)
    missing = float(sum(v for s, v in truth.items() if "d" in s))
    assert truth_gap(blind, truth)["zero_mass"] == pytest.approx(missing, rel=1e-12)
    assert truth_gap(blind, truth)["kl"] == math.inf


@pytest.fixture(scope="module")
def shipped():
    from reference_models import MODELS, load_model

    names = [n for n, e in MODELS.items() if e.dataset in ("census_names", "hmm_language")]
    return {n: load_model(n) for n in names}


def _context(generated, reference: str, **options):
    from gen_eval.metrics.base import MetricContext
    from gen_eval.sources import open_source

    return MetricContext(
        generated_source=open_source(generated, num_samples=2500, seed=0),
        reference_source=open_source(reference),
        num_resamples=50,
        options=options,
    )


def test_shipped_text_models_load_and_give_finite_bits_per_character(shipped):
    from gen_eval.datasets.census_names import load_names
    from gen_eval.datasets.hmm_language import load_split
    from reference_models.text_common import bits_per_character

    test = {"census_names": list(load_names("test")[0][:500]), "hmm_language": list(load_split("test")[:500])}
    for name, model in shipped.items():
        bpc = bits_per_character(model, test[model.dataset])
        assert math.isfinite(bpc) and 0.5 < bpc < 5, (name, bpc)
        assert all(isinstance(s, str) for s in model.sample(5, torch.Generator().manual_seed(0)))


def test_bits_per_character_metric_and_kl_on_a_shipped_model():
    from gen_eval.datasets.census_names import load_names
    from gen_eval.metrics.text_likelihood import text_bpc, text_kl
    from reference_models import load_model

    out = text_bpc({}, {}, _context("ref:trigram_names", "census_names:test"))
    strings = list(load_names("test")[0])
    log_p = load_model("trigram_names").log_prob(strings)
    by_hand = float(-log_p.sum() / math.log(2) / sum(len(s) + 1 for s in strings))
    bpc = out["bits_per_char"]
    assert bpc.value == pytest.approx(by_hand, rel=1e-12)
    assert bpc.interval[0] < bpc.value < bpc.interval[1]
    assert out["perplexity"].value == pytest.approx(2**by_hand)
    kl = text_kl({}, {}, _context("ref:trigram_names", "census_names:test"))
    gap = kl["cross_entropy_to_truth"].value - kl["kl_to_truth"].details["entropy_bits_per_string"]
    assert kl["kl_to_truth"].value == pytest.approx(gap) and kl["kl_to_truth"].value > 0


def test_faulty_models_are_flagged():
    from gen_eval.metrics.text import text_ngrams, text_novelty

    real = text_novelty({}, {}, _context("census_names:validation", "census_names:test"))
    copier = text_novelty({}, {}, _context("ref:copier_names", "census_names:test"))
    collapsed = text_novelty({}, {}, _context("ref:collapsed_names", "census_names:test"))
    # Names repeat in held-out data too (95% of test names are in the training set), so the
    # copier stands out by a few points, well outside both intervals.
    assert copier["train_copies"].interval[0] > real["train_copies"].interval[1]
    assert copier["train_copies"].value > 0.985
    assert collapsed["distinct"].value < 0.05 < real["distinct"].value
    held_out = text_ngrams({}, {}, _context("census_names:validation", "census_names:test"))
    stuck = text_ngrams({}, {}, _context("ref:collapsed_names", "census_names:test"))
    for n in (2, 3):
        assert stuck[f"ngram_jsd_{n}"].value > 3 * held_out[f"ngram_jsd_{n}"].value
    # The birthday test on exact repeats: the collapsed model's support is about 30 strings.
    from gen_eval.collapse.strings import exact_birthday
    from gen_eval.datasets.census_names import load_names
    from reference_models import load_model

    test = list(load_names("test")[0])
    drawn = load_model("collapsed_names").sample(2500, torch.Generator().manual_seed(0))
    birthday = exact_birthday(drawn, test)
    assert birthday.small_support and birthday.support_estimate < 100
    assert not exact_birthday(list(load_names("validation")[0]), test).small_support


def test_training_runs_end_to_end_with_tiny_settings(tmp_path):
    from reference_models import load_model
    from reference_models.train import train_model

    tiny = {  # 2,000 training strings (1,800 train, 200 validation)
        "hmm_hmm_language": {"states": [3], "iterations": 3, "max_items": 2000},
        "char_rnn_hmm_language": {"hidden": 8, "embedding": 4, "epochs": 1, "max_items": 2000},
    }
    for name, overrides in tiny.items():
        model, config = train_model(name, directory=tmp_path, show_progress=False, overrides=overrides)
        again = load_model(name, tmp_path)
        strings = ["abc", "d", "aaaa"]
        assert torch.allclose(model.log_prob(strings), again.log_prob(strings))
        assert math.isfinite(config["summary"]["val_bits_per_char_given_label"])


def test_the_text_models_report_reading_follows_the_rows():
    from gen_eval.bench.text_models import _reading

    def row(name, family, bpc, faulty=None):
        return {"name": name, "family": family, "bits_per_char": bpc, "faulty": faulty}

    rows = [
        row("truth", "the true distribution", 1.0),
        row("char_rnn_names", "autoregressive", 1.5),
        row("copier_names", "memoriser", 1.7, "copies"),
        row("hmm_names", "classic", 2.0),
    ]
    text = _reading({"census_names": rows})[0]
    assert "best model is char_rnn_names at 1.500 bits/char, 0.500 above the truth" in text
    assert "hmm_names (12 states, 15 EM iterations" in text and "ranks 2 of 2 honest models" in text
    assert "copier_names beats 1 honest model(s) on likelihood (hmm_names)" in text
    # A memoriser that beats nobody gets no such sentence.
    rows[2]["bits_per_char"] = 2.5
    assert "beats" not in _reading({"census_names": rows})[0]
