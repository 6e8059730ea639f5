"""n-gram character models (unigram, bigram, trigram): the next character given the previous n - 1.

p(s | y) = prod_t p(x_t | x_{t-n+1} .. x_{t-1}, y) over the characters and the end token, the
context padded with n - 1 start marks (the end token's index stands for "start" there).
Counts are smoothed by adding alpha to every next-token count (Lidstone), alpha chosen on the
validation split, so every string over the alphabet has a positive, exact probability and the
probabilities of all strings sum to 1: the end token has probability at least
alpha / (count + V alpha) in every context, so strings end with probability 1
(tests/test_text_models.py sums them up to a length bound and bounds the rest).

The table is dense: classes x V^(n-1) contexts x V next tokens (2 x 27^2 x 27 for trigram names).
"""

from __future__ import annotations

import torch

from reference_models.text_common import (
    END,
    TextModel,
    alphabet_of,
    autoregressive_sample,
    fit_counting_model,
    padded,
    strings_of,
)

DEFAULTS = {"order": 3, "alpha": [0.01, 0.03, 0.1, 0.3, 1.0]}


class NgramText(TextModel):
    def __init__(self, alphabet: str, num_labels: int, order: int):
        super().__init__(alphabet, num_labels)
        self.order = order
        v = len(alphabet) + 1
        self.register_buffer("log_next", torch.zeros(num_labels, v ** (order - 1), v, dtype=torch.float64))

    def context_ids(self, window: torch.Tensor) -> torch.Tensor:
        """(N, n - 1) previous tokens -> (N,) row of the table (the tokens read as base-V digits)."""
        powers = self.vocabulary_size ** torch.arange(self.order - 2, -1, -1)
        return (window * powers).sum(1)

    def events(self, tokens: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(contexts, next tokens, mask), each (N, T): every prediction the model makes on ``tokens``."""
        k = self.order - 1
        rows, lengths = padded(tokens, start=k)
        steps = rows.shape[1] - k
        contexts = torch.stack([self.context_ids(rows[:, t : t + k]) for t in range(steps)], 1)
        mask = torch.arange(steps)[None] < lengths[:, None]
        return contexts, rows[:, k:], mask

    def _log_prob_given(self, tokens: list[list[int]], labels: torch.Tensor) -> torch.Tensor:
        contexts, following, mask = self.events(tokens)
        picked = self.log_next[labels[:, None], contexts, following]
        return picked.masked_fill(~mask, 0.0).sum(1)

    def _step(self, prefix: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Log-probabilities of the next token after ``prefix`` (which starts with one start mark)."""
        k = self.order - 1
        marks = torch.full((len(prefix), k), END, dtype=torch.long)
        window = torch.cat([marks, prefix[:, 1:]], 1)[:, -k:] if k else prefix[:, :0]
        return self.log_next[labels, self.context_ids(window)]

    def _sample_given(self, labels: torch.Tensor, generator) -> list[list[int]]:
        return autoregressive_sample(self._step, labels, generator)


def build(hparams: dict, dataset: str) -> NgramText:
    return NgramText(hparams["alphabet"], hparams["num_labels"], hparams["order"])


def count(
    strings: list[str], labels: torch.Tensor, alphabet: str, num_labels: int, order: int, alpha: float
) -> NgramText:
    """The Lidstone-smoothed n-gram counts of ``strings`` as a model."""
    model = NgramText(alphabet, num_labels, order)
    model.set_label_prior(labels)
    counts = torch.full(model.log_next.shape, alpha, dtype=torch.float64)
    contexts, following, mask = model.events([model.tokens(s) for s in strings])
    which = labels.long()[:, None].expand_as(contexts)
    counts.index_put_(
        (which[mask], contexts[mask], following[mask]),
        torch.ones(int(mask.sum()), dtype=torch.float64),
        accumulate=True,
    )
    model.log_next.copy_((counts / counts.sum(2, keepdim=True)).log())
    return model


def fit(hparams: dict, data, *, generator: torch.Generator, log) -> tuple[NgramText, dict]:
    train = strings_of(data.train)
    alphabet, num_labels = alphabet_of(train), int(data.train_labels.max()) + 1
    hparams.update(alphabet=alphabet, num_labels=num_labels)
    model, summary = fit_counting_model(
        lambda alpha: count(train, data.train_labels, alphabet, num_labels, hparams["order"], alpha),
        hparams["alpha"],
        data,
        log,
    )
    hparams["chosen_alpha"] = summary["alpha"]
    return model, summary
