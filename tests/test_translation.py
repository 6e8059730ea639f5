"""Unpaired translation (issue 23): the translation source and its two metrics, on planted translators.

Planted models stand in for a trained CycleGAN so each test knows its answer:
- a class-lookup translator that answers an 8x8 digit of class c with a real 28x28 mnist digit of
  class c: label preservation is limited only by the two classifiers (high);
- the same with each answer's class scrambled: label preservation is near chance;
- an exactly invertible pair (the 8x8 pasted into the centre of a blank 28x28, and cut out
  again): cycle consistency exactly 0; and a lossy way back whose error has a closed form.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gen_eval.datasets import get_dataset
from gen_eval.metrics.base import MetricContext
from gen_eval.metrics.translation import classify, cycle_consistency, label_preservation
from gen_eval.sources.translation import TranslationModelSource, is_translation_model

MNIST_TEST = get_dataset("mnist").read("test", 0, 1000)
DIGITS_TEST = get_dataset("digits").read("test", 0, 360)
OFFSET = 10  # where the 8x8 sits in the 28x28 canvas of the invertible pair


class Planted:
    """A translation model: ``lookup`` maps each input (by its bytes) to its planted output."""

    task = "digits2mnist"

    def __init__(self, outputs_by_class: dict[int, np.ndarray] | None = None, scramble: bool = False):
        self.outputs_by_class = outputs_by_class
        self.scramble = scramble

    def translate(self, inputs: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        if self.outputs_by_class is None:  # the invertible pair: paste into a blank canvas
            out = torch.zeros((len(inputs), 1, 28, 28), dtype=torch.uint8)
            out[:, :, OFFSET : OFFSET + 8, OFFSET : OFFSET + 8] = inputs
            return out
        # The class of an input is its true label, found by content.
        rows = [ROW_OF[bytes(x.numpy())] for x in inputs]  # so chunking does not change the answers
        labels = [SCRAMBLED[i] if self.scramble else DIGITS_TEST[1][i] for i in rows]
        picks = [
            self.outputs_by_class[int(c)][i % len(self.outputs_by_class[int(c)])]
            for i, c in zip(rows, labels, strict=True)
        ]
        return torch.from_numpy(np.stack(picks))

    def translate_back(self, outputs: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        return outputs[:, :, OFFSET : OFFSET + 8, OFFSET : OFFSET + 8].clone()


ROW_OF = {bytes(x): i for i, x in enumerate(DIGITS_TEST[0])}
SCRAMBLED = np.random.default_rng(0).integers(0, 10, len(DIGITS_TEST[0]))
BY_CLASS = {c: MNIST_TEST[0][MNIST_TEST[1] == c] for c in range(10)}


def _context(model, count: int = 360) -> MetricContext:
    source = TranslationModelSource(
        spec="planted", model=model, count=count, seed=0, content_hash="x", name="p"
    )
    return MetricContext(generated_source=source, num_resamples=50)


def test_translation_source_rows_shapes_and_count() -> None:
    model = Planted()
    assert is_translation_model(model)
    source = TranslationModelSource(
        spec="planted", model=model, count=5000, seed=0, content_hash="x", name="p"
    )
    assert len(source) == 360 and source.sample_shape == (1, 28, 28)  # all of digits:test, and a note
    assert any("360" in note for note in source.notes)
    batch = next(iter(source.batches(100)))
    assert batch.data.shape == (100, 1, 28, 28) and batch.inputs.shape == (100, 1, 8, 8)
    assert batch.targets is None and np.array_equal(batch.labels, DIGITS_TEST[1][:100])
    assert not source.paired  # the paired metrics (they need targets) must not apply


def test_available_inputs_offers_translation_only_for_translators() -> None:
    from gen_eval.evaluation_setup import available_inputs

    source = TranslationModelSource(
        spec="planted", model=Planted(), count=10, seed=0, content_hash="x", name="p"
    )
    assert "translation" in available_inputs(source, ("features", "logits"))
    source.model = object()
    assert "translation" not in available_inputs(source, ("features", "logits"))


def test_label_preservation_high_for_a_class_keeping_translator_and_chance_when_scrambled() -> None:
    kept = label_preservation({}, {}, _context(Planted(BY_CLASS)))["label_preservation"]
    details = kept.details
    # Independent reference: the two classifiers' predictions counted directly.
    outputs = Planted(BY_CLASS).translate(torch.from_numpy(DIGITS_TEST[0])).numpy()
    expected = np.mean(classify("digits", DIGITS_TEST[0])[0] == classify("mnist", outputs)[0])
    assert kept.value == pytest.approx(expected)
    assert kept.value > 0.9 and kept.interval[0] < kept.value < kept.interval[1]
    assert details["input_accuracy"] > 0.9 and details["target_classifier_accuracy"] > 0.85
    assert np.trace(np.array(details["confusion"])) == round(kept.value * 360)
    scrambled = label_preservation({}, {}, _context(Planted(BY_CLASS, scramble=True)))["label_preservation"]
    assert abs(scrambled.value - scrambled.details["chance"]) < 0.06
    assert scrambled.value < 0.2 and scrambled.interval[1] < kept.interval[0]


def test_cycle_consistency_zero_for_an_invertible_pair_and_exact_for_a_lossy_one() -> None:
    exact = cycle_consistency({}, {}, _context(Planted()))["cycle_consistency"]
    assert exact.value == 0.0 and exact.interval == (0.0, 0.0)

    class Dark(Planted):  # the way back loses everything: the error is the inputs' mean brightness
        def translate_back(self, outputs, generator=None):
            return torch.zeros((len(outputs), 1, 8, 8), dtype=torch.uint8)

    lossy = cycle_consistency({}, {}, _context(Dark()))["cycle_consistency"]
    assert lossy.value == pytest.approx(DIGITS_TEST[0].astype(np.float64).mean())
    assert lossy.interval[0] < lossy.value < lossy.interval[1]
    assert lossy.details["in_digit_levels"] == pytest.approx(lossy.value * 16 / 255)


def test_a_failing_way_back_is_one_line_naming_the_source() -> None:
    from gen_eval.errors import GenEvalError

    class Broken(Planted):
        def translate_back(self, outputs, generator=None):
            return outputs  # 28x28 back instead of 8x8

    with pytest.raises(GenEvalError, match="planted: translate_back"):
        cycle_consistency({}, {}, _context(Broken(), count=10))
