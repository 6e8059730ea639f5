"""Naive Bayes over characters: the seed's text model, and why it is not enough.

Given the class y (a name's sex), a string is its length, drawn from p(length | y), and then
that many characters, each drawn independently from p(char | y): the "bag of characters" of
the spam-filter example ("learn P(word | target) by counting"). Fitting is counting, with
add-alpha smoothing (alpha chosen on validation); log p(s | y) = log p(len(s) | y) +
sum_i log p(s_i | y), exact, and it sums to 1 over all strings (the length model covers 1 to
LONGEST characters; the empty string has probability 0, as no name is empty).

What is wrong with this approach: every character forgets its neighbours, so samples have the
right letters in the right amounts and the right lengths, and read like "aenrl" rather than
"laren". The n-gram, HMM and neural models on the ladder fix that step by step.
"""

from __future__ import annotations

import torch

from reference_models.text_common import (
    LONGEST,
    TextModel,
    alphabet_of,
    fit_counting_model,
    padded,
    strings_of,
)

DEFAULTS = {"alpha": [0.01, 0.1, 1.0]}  # candidates, chosen on validation bits per character


class NaiveBayesText(TextModel):
    def __init__(self, alphabet: str, num_labels: int):
        super().__init__(alphabet, num_labels)
        self.register_buffer(
            "log_length", torch.zeros(num_labels, LONGEST + 1, dtype=torch.float64)
        )  # column = length
        # Column 0 (the end token) is unused and stays 0: padding positions add nothing below.
        self.register_buffer("log_char", torch.zeros(num_labels, len(alphabet) + 1, dtype=torch.float64))

    def _log_prob_given(self, tokens: list[list[int]], labels: torch.Tensor) -> torch.Tensor:
        rows, lengths = padded(tokens, start=0)
        chars = self.log_char[labels[:, None], rows]
        chars = chars.masked_fill(rows == 0, 0.0)  # the end token and the padding
        return self.log_length[labels, lengths - 1] + chars.sum(1)

    def _sample_given(self, labels: torch.Tensor, generator) -> list[list[int]]:
        lengths = torch.multinomial(self.log_length[labels].exp(), 1, generator=generator).squeeze(1)
        out: list[list[int]] = [[] for _ in labels]
        for y in labels.unique().tolist():
            # All characters of class y's strings in one draw, then cut into strings.
            rows = torch.nonzero(labels == y)[:, 0].tolist()
            sizes = lengths[rows].tolist()
            chars = (
                torch.multinomial(
                    self.log_char[y, 1:].exp(), sum(sizes), replacement=True, generator=generator
                )
                + 1
            )
            for row, part in zip(rows, chars.split(sizes), strict=True):
                out[row] = part.tolist()
        return out


def build(hparams: dict, dataset: str) -> NaiveBayesText:
    return NaiveBayesText(hparams["alphabet"], hparams["num_labels"])


def count(
    strings: list[str], labels: torch.Tensor, alphabet: str, num_labels: int, alpha: float
) -> NaiveBayesText:
    """The add-``alpha`` smoothed counts of lengths and characters of ``strings``, per class, as a model."""
    model = NaiveBayesText(alphabet, num_labels)
    model.set_label_prior(labels)
    lengths = torch.full((num_labels, LONGEST + 1), alpha, dtype=torch.float64)
    lengths[:, 0] = 0  # no empty strings
    chars = torch.full((num_labels, len(alphabet) + 1), alpha, dtype=torch.float64)
    chars[:, 0] = 0
    for text, y in zip(strings, labels.tolist(), strict=True):
        lengths[y, len(text)] += 1
        chars[y].index_add_(
            0, torch.tensor(model.tokens(text), dtype=torch.long), torch.ones(len(text), dtype=torch.float64)
        )
    model.log_length.copy_((lengths / lengths.sum(1, keepdim=True)).log())
    probabilities = chars / chars.sum(1, keepdim=True)
    model.log_char.copy_(torch.where(probabilities > 0, probabilities.log(), 0.0))
    return model


def fit(hparams: dict, data, *, generator: torch.Generator, log) -> tuple[NaiveBayesText, dict]:
    train = strings_of(data.train)
    alphabet, num_labels = alphabet_of(train), int(data.train_labels.max()) + 1
    hparams.update(alphabet=alphabet, num_labels=num_labels)
    model, summary = fit_counting_model(
        lambda alpha: count(train, data.train_labels, alphabet, num_labels, alpha),
        hparams["alpha"],
        data,
        log,
    )
    hparams["chosen_alpha"] = summary["alpha"]
    return model, summary
