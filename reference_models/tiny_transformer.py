"""A tiny decoder-only transformer over characters (minGPT in miniature), conditioned on the class.

The input is the class as a token of its own (indices after the characters and the end token),
the start mark, then the string; causal self-attention predicts each next token. The context is
``block`` tokens, so strings of up to block - 2 characters can be scored: at the last position
the end token is forced, and longer strings get probability 0 (stated because the normalisation
depends on it; names have at most 11 characters, the HMM language 8, the default block is 32).
"""

from __future__ import annotations

import torch
from torch import nn

from reference_models.char_rnn import NextTokenModel, train_by_likelihood
from reference_models.text_common import END, alphabet_of, autoregressive_sample, strings_of

DEFAULTS = {"width": 64, "heads": 4, "layers": 2, "block": 32, "epochs": 12, "batch_size": 128, "lr": 2e-3}


class TinyTransformer(NextTokenModel):
    def __init__(self, alphabet: str, num_labels: int, width: int, heads: int, layers: int, block: int):
        super().__init__(alphabet, num_labels)
        self.block = block
        self.embed = nn.Embedding(len(alphabet) + 1 + num_labels, width)
        self.position = nn.Parameter(torch.randn(block, width) * 0.02)
        layer = nn.TransformerEncoderLayer(
            width, heads, 4 * width, dropout=0.0, batch_first=True, norm_first=True
        )
        self.body = nn.TransformerEncoder(layer, layers, norm=nn.LayerNorm(width), enable_nested_tensor=False)
        self.out = nn.Linear(width, len(alphabet) + 1)

    def next_log_probs(self, inputs: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """(N, T, V) log p(next token | label, start mark, inputs so far); inputs start with the start mark."""
        x = torch.cat([(labels + self.vocabulary_size)[:, None], inputs], 1)
        t = x.shape[1]
        causal = nn.Transformer.generate_square_subsequent_mask(t)
        h = self.body(self.embed(x) + self.position[:t], mask=causal, is_causal=True)
        log_p = torch.log_softmax(self.out(h[:, 1:]), dim=-1)
        if t == self.block:  # the last position: the string must end here
            forced = torch.full_like(log_p[:, -1], -torch.inf)
            forced[:, END] = 0
            log_p = torch.cat([log_p[:, :-1], forced[:, None]], 1)
        return log_p

    def _log_prob_given(self, tokens: list[list[int]], labels: torch.Tensor) -> torch.Tensor:
        out = torch.full((len(tokens),), -torch.inf, dtype=torch.float64)
        fits = [i for i, t in enumerate(tokens) if len(t) <= self.block - 2]
        if fits:
            out[fits] = super()._log_prob_given([tokens[i] for i in fits], labels[fits]).double()
        return out

    def _sample_given(self, labels: torch.Tensor, generator) -> list[list[int]]:
        def step(prefix: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
            return self.next_log_probs(prefix, y)[:, -1]

        return autoregressive_sample(step, labels, generator, longest=self.block - 2)


def build(hparams: dict, dataset: str) -> TinyTransformer:
    return TinyTransformer(
        hparams["alphabet"],
        hparams["num_labels"],
        hparams["width"],
        hparams["heads"],
        hparams["layers"],
        hparams["block"],
    )


def fit(hparams: dict, data, *, generator: torch.Generator, log) -> tuple[TinyTransformer, dict]:
    train = strings_of(data.train)
    hparams.update(alphabet=alphabet_of(train), num_labels=int(data.train_labels.max()) + 1)
    model = build(hparams, data.dataset)
    model.set_label_prior(data.train_labels)
    return model, train_by_likelihood(model, data, hparams, generator, log)
