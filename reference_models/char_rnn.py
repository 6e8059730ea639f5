"""A character-level recurrent network (GRU), conditioned on the class: the deep end of the ladder.

Read a string as tokens x_1 .. x_T followed by the end token; the GRU reads the start mark and
x_1 .. x_{t-1} (each token's embedding plus the class's embedding) and predicts x_t with a
softmax. log p(s | y) is the sum of the log-softmax at each true next token: exact, and it
sums to 1 over strings (up to the 256-character stop of text_common). Trained by maximum
likelihood (teacher forcing) with Adam, keeping the weights with the best validation bits per
character.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from reference_models.text_common import TextModel, alphabet_of, autoregressive_sample, padded, strings_of

DEFAULTS = {"hidden": 128, "embedding": 32, "epochs": 12, "batch_size": 128, "lr": 3e-3}


def teacher_forcing(tokens: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(inputs, targets, mask), each (N, T): start mark + tokens in, tokens + end token out."""
    rows, lengths = padded(tokens, start=1)
    mask = torch.arange(rows.shape[1] - 1)[None] < lengths[:, None]
    return rows[:, :-1], rows[:, 1:], mask


class NextTokenModel(TextModel):
    """A neural text model: ``next_log_probs(inputs, labels) -> (N, T, V)`` is all a subclass gives."""

    def next_log_probs(self, inputs: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def _log_prob_given(self, tokens: list[list[int]], labels: torch.Tensor) -> torch.Tensor:
        inputs, targets, mask = teacher_forcing(tokens)
        picked = self.next_log_probs(inputs, labels).gather(2, targets[..., None])[..., 0]
        return picked.masked_fill(~mask, 0.0).sum(1)

    def _sample_given(self, labels: torch.Tensor, generator) -> list[list[int]]:
        return autoregressive_sample(
            lambda prefix, y: self.next_log_probs(prefix, y)[:, -1], labels, generator
        )


class CharRNN(NextTokenModel):
    def __init__(self, alphabet: str, num_labels: int, hidden: int, embedding: int):
        super().__init__(alphabet, num_labels)
        self.tokens_in = nn.Embedding(len(alphabet) + 1, embedding)
        self.labels_in = nn.Embedding(num_labels, embedding)
        self.gru = nn.GRU(embedding, hidden, batch_first=True)
        self.out = nn.Linear(hidden, len(alphabet) + 1)

    def next_log_probs(self, inputs: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """(N, T, V) log p(next token | inputs so far, label)."""
        hidden, _ = self.gru(self.tokens_in(inputs) + self.labels_in(labels)[:, None])
        return torch.log_softmax(self.out(hidden), dim=-1)


def build(hparams: dict, dataset: str) -> CharRNN:
    return CharRNN(hparams["alphabet"], hparams["num_labels"], hparams["hidden"], hparams["embedding"])


def train_by_likelihood(model: NextTokenModel, data, hparams: dict, generator: torch.Generator, log) -> dict:
    """Adam on the mean negative log-likelihood per token; keeps the best validation weights.

    Shared by the neural text models (the transformer calls it too).
    """
    from reference_models.common import EarlyStopping, minibatches

    train_tokens = [model.tokens(s) for s in strings_of(data.train)]
    val = strings_of(data.val)
    val_tokens, val_count = [model.tokens(s) for s in val], sum(len(s) + 1 for s in val)
    optimiser = torch.optim.Adam(model.parameters(), lr=hparams["lr"])
    stopping = EarlyStopping(model, patience=3)
    log.begin(hparams["epochs"])
    for epoch in range(1, hparams["epochs"] + 1):
        model.train()
        for index in minibatches(len(train_tokens), hparams["batch_size"], generator):
            chosen = [train_tokens[i] for i in index.tolist()]
            log_p = model._log_prob_given(chosen, data.train_labels[index].long())
            loss = -log_p.sum() / sum(len(t) + 1 for t in chosen)
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
        model.eval()
        with torch.no_grad():
            val_nats = -model._chunked(val_tokens, data.val_labels.long()).sum()
        val_bits = float(val_nats / (val_count * math.log(2)))
        log.record(epoch, loss=float(loss.detach()), val_bits_per_char=val_bits)
        log.step(epoch)
        if stopping.check(val_bits, epoch):
            break
    stopping.restore()
    return {"val_bits_per_char_given_label": round(stopping.best, 4), "best_epoch": stopping.best_step}


def fit(hparams: dict, data, *, generator: torch.Generator, log) -> tuple[CharRNN, dict]:
    train = strings_of(data.train)
    hparams.update(alphabet=alphabet_of(train), num_labels=int(data.train_labels.max()) + 1)
    model = build(hparams, data.dataset)
    model.set_label_prior(data.train_labels)
    return model, train_by_likelihood(model, data, hparams, generator, log)
