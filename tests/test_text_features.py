"""The bundled char-names encoder, MAUVE on its features and conditional accuracy through its logits.

References: the accuracy stated in the shipped json recomputed from the weights, and the Bayes
rule's from the true census frequencies; mauve-text's own compute_mauve; a label-ignoring planted
source (chance) against real labelled names (the classifier's accuracy).
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from gen_eval.datasets import census_names
from gen_eval.kinds.text import encode_strings
from gen_eval.metrics.base import MetricContext
from gen_eval.sources import open_source


@pytest.fixture(scope="module")
def extractor():
    from gen_eval.features.char_names import CharNamesExtractor

    return CharNamesExtractor()


def _features(extractor, strings) -> dict[str, torch.Tensor]:
    return extractor(torch.from_numpy(encode_strings(list(strings))))


def _write(tmp_path, name: str, strings, labels=None) -> str:
    path = tmp_path / name
    rows = [
        {"text": s} if labels is None else {"text": s, "label": int(y)}
        for s, y in zip(strings, labels or [0] * len(strings), strict=True)
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


def test_tokens_and_padding_do_not_change_features(extractor):
    from gen_eval.features.char_names import END, OTHER, START, tokenise

    assert tokenise(encode_strings(["ab", "Z"])).tolist() == [[START, 4, 5, END], [START, OTHER, END, 0]]
    names = ["anna", "bob", "christopher", "x"]
    narrow = extractor(torch.from_numpy(encode_strings(names)))
    wide = extractor(torch.from_numpy(encode_strings(names, 64)))
    alone = extractor(torch.from_numpy(encode_strings(names[:1])))
    for key in ("features", "logits"):
        assert torch.allclose(narrow[key], wide[key], atol=1e-5)
        assert torch.allclose(narrow[key][:1], alone[key], atol=1e-5)
    assert narrow["features"].shape == (4, 64) and narrow["logits"].shape == (4, 2)


def test_stated_test_accuracy_is_reproduced_and_near_the_bayes_rule(extractor):
    from gen_eval.features import choose_extractor
    from gen_eval.features.char_names import DEFAULT_WEIGHTS, bayes_accuracy

    info = json.loads(DEFAULT_WEIGHTS.with_suffix(".json").read_text())
    names, labels = census_names.load_names("test")
    predicted = _features(extractor, names)["logits"].argmax(1).numpy()
    assert float(np.mean(predicted == labels)) == pytest.approx(info["test_accuracy"], abs=1e-12)
    assert info["bayes_test_accuracy"] == pytest.approx(bayes_accuracy("test"))
    # The Bayes rule bounds any classifier's expected accuracy; the network is within 2 points of it.
    assert info["bayes_accuracy"] - 0.02 < info["test_accuracy"] < info["bayes_test_accuracy"] + 0.005
    names_source, hmm = open_source("census_names:test"), open_source("hmm_language:test")
    assert choose_extractor(names_source, names_source) == "char-names"
    assert choose_extractor(hmm, hmm) == "char-ngrams"


def test_mauve_is_mauve_texts_near_1_for_held_out_names_and_low_for_a_collapse(extractor, one_thread):
    import faiss
    from mauve import compute_mauve

    from gen_eval.metrics.text_mauve import frontier_area, mauve_score

    train, _ = census_names.load_names("train")
    # 1,000 names a set (100 clusters): k-means is most of MAUVE's time.
    reference = _features(extractor, census_names.load_names("test")[0][:1000])
    held_out = _features(extractor, census_names.load_names("validation")[0][:1000])
    collapsed = _features(extractor, list(dict.fromkeys(train))[:20] * 50)
    context = MetricContext(num_resamples=30, extractor="char-names")
    real = mauve_score(held_out, reference, context)["mauve"]
    stuck = mauve_score(collapsed, reference, context)["mauve"]
    faiss.omp_set_num_threads(1)  # as mauve_score does under one torch thread (spinning threads cost 20x)
    library = compute_mauve(
        p_features=reference["features"].double().numpy(),
        q_features=held_out["features"].double().numpy(),
        kmeans_num_redo=1,  # gen-eval's defaults (mauve's speed advice)
        kmeans_max_iter=100,
        seed=0,
    )
    assert real.value == pytest.approx(library.mauve, abs=1e-12)
    assert frontier_area(library.p_hist, library.q_hist) == pytest.approx(library.mauve, abs=1e-12)
    assert real.details["clusters"] == 100
    assert real.value > 0.9 and real.interval[0] <= real.value <= real.interval[1]
    assert stuck.value < 0.3 and stuck.interval[1] < real.interval[0]


def test_conditional_accuracy_reads_the_requested_label(tmp_path, extractor):
    from gen_eval.metrics.conditional_accuracy import conditional_accuracy

    names, labels = census_names.load_names("validation")
    features = _features(extractor, names)
    reference = _features(extractor, census_names.load_names("test")[0])
    ignoring = np.random.default_rng(0).integers(0, 2, len(names)).tolist()

    def score(generated: str) -> object:
        context = MetricContext(
            generated_source=open_source(generated),
            reference_source=open_source("census_names:test"),
            num_resamples=100,
            extractor="char-names",
        )
        return conditional_accuracy(features, reference, context)["conditional_accuracy"]

    real = score(_write(tmp_path, "real.jsonl", names, labels.tolist()))
    planted = score(_write(tmp_path, "ignoring.jsonl", names, ignoring))
    assert real.value > 0.95 and real.interval[0] <= real.value <= real.interval[1]
    assert real.details["reference_value"] == pytest.approx(0.9748)  # the stated test accuracy
    assert planted.interval[0] < 0.5 < planted.interval[1]
    assert planted.details["majority_share"] == pytest.approx(max(np.mean(ignoring), 1 - np.mean(ignoring)))
    unlabelled = MetricContext(
        generated_source=open_source(_write(tmp_path, "plain.jsonl", names)),
        reference_source=open_source("census_names:test"),
    )
    assert conditional_accuracy(features, reference, unlabelled) == {}


def test_exact_birthday_and_copies_on_strings():
    from gen_eval.collapse.strings import exact_birthday, exact_memorisation

    twenty = [f"name{i}" for i in range(20)]
    distinct = [f"other{i}" for i in range(4000)]
    stuck = exact_birthday(twenty * 50, distinct, batch_sizes=(8, 16))
    fine = exact_birthday(distinct[:2000], distinct[2000:], batch_sizes=(8, 16))
    # 20 equally likely strings: P(repeat in 8) = 1 - 20!/(12! 20^8) = 0.80, in 16 nearly 1.
    assert stuck.duplicate_rates[0] == pytest.approx(0.80, abs=0.08) and stuck.small_support
    assert 12 < stuck.support_estimate < 30
    assert fine.duplicate_rates == [0.0, 0.0] and not fine.small_support
    i, j, d = stuck.closest_pairs[0]
    assert (twenty * 50)[i] == (twenty * 50)[j] and d == 0.0
    copies = exact_memorisation(distinct[:100], distinct, distinct[3000:3100])
    assert copies.copy_fraction == 1.0 and copies.null_rate == 1.0 and not copies.likely_memorising
    copier = exact_memorisation(distinct[:100], distinct[:2000], distinct[3000:3100])
    assert copier.likely_memorising and copier.null_rate == 0.0


def test_collapse_check_flags_a_collapsing_source_with_example_strings(tmp_path):
    import gen_eval

    names, _ = census_names.load_names("train")
    twenty = list(dict.fromkeys(names))[:20]
    collapsing = _write(tmp_path, "twenty.jsonl", twenty * 125)
    verdicts = {}
    for source in (collapsing, "census_names:validation"):
        run = gen_eval.evaluate(
            source, "census_names:test", metrics="collapse", num_resamples=0, show_progress=False
        )
        verdicts[source] = run
    stuck, real = verdicts[collapsing].collapse, verdicts["census_names:validation"].collapse
    assert verdicts[collapsing].manifest["extractor"]["name"] == "char-names"
    assert stuck.status == "collapse"
    birthday = next(f for f in stuck.findings if f.detector == "birthday")
    assert birthday.severity == "collapse" and f"'{twenty[0]}' x125" in birthday.message
    assert 12 < stuck.detectors["birthday"].support_estimate < 30  # 20 distinct strings
    assert "classes" in stuck.detectors and "ndb" in stuck.detectors
    figures, grids = verdicts[collapsing].collapse_evidence()
    assert {"duplicates", "copies", "ndb_bins"} <= set(figures) and grids == {}
    # Held-out names repeat too (common names), and are not flagged.
    assert real.status == "ok", real.verdict
