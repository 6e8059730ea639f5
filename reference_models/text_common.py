"""What every text model shares: the character vocabulary, the end-of-string token, and the protocol.

A text model is a distribution over strings, one character at a time, ended by an
end-of-string token (index 0). Its protocol mirrors the image models':

* ``sample(n, generator=None, labels=None) -> list[str]``: ``labels`` (one class per string)
  for class-conditional models; None draws each class from the model's prior;
* ``log_prob(strings, labels=None) -> tensor`` of exact log-probabilities in nats per string,
  end-of-string included (given the label, or the marginal sum over labels when None);
* ``tokenisation``: what a token is (the characters, plus one end-of-string per string), so that
  bits per character = -sum log2 p / sum (len + 1).

Subclasses implement ``_log_prob_given(tokens, labels)`` (tokens: index lists without the end
token) and ``_sample_given(labels, generator)``. Characters never seen in training are outside
the vocabulary: their strings get log p = -inf.

Strings longer than ``LONGEST`` (256) characters have probability 0: the models that could run
on (n-gram, HMM, RNN) are stopped there when sampling and ``log_prob`` gives such strings -inf.
This moves at most P(length > 256) of mass, which for every shipped model is below 1e-30
(each one ends a string with probability above 0.2 at every step once past the longest name).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
from torch import nn

END = 0  # the end-of-string token; characters are 1..V-1. As an input it is also the start mark.
LONGEST = 256  # gen_eval.kinds.text.MAX_LENGTH: the longest string any text source accepts


def strings_of(codes: torch.Tensor) -> list[str]:
    """int32 (N, L) code points (as datasets hold text) -> strings."""
    from gen_eval.kinds.text import decode_rows

    return decode_rows(codes)


def alphabet_of(strings: Sequence[str]) -> str:
    """The sorted characters of the training strings: the model's vocabulary, less the end token."""
    return "".join(sorted(set("".join(strings))))


class TextModel(nn.Module):
    """Base of the text models: vocabulary, label prior, string <-> token conversions, the protocol."""

    likelihood = "discrete"
    tokenisation = "characters, plus one end-of-string token per string"
    latent_dim = None

    def __init__(self, alphabet: str, num_labels: int):
        super().__init__()
        codes = torch.tensor([ord(c) for c in alphabet], dtype=torch.int32)
        self.register_buffer("alphabet_codes", codes)
        self.register_buffer("log_label_prior", torch.full((num_labels,), -math.log(num_labels)))
        # The alphabet is fixed at construction (build() passes the saved one), so the lookups are too.
        self._chars = alphabet
        self._index = {c: i + 1 for i, c in enumerate(alphabet)}

    @property
    def alphabet(self) -> str:
        return "".join(chr(int(c)) for c in self.alphabet_codes)

    @property
    def vocabulary_size(self) -> int:
        """Characters plus the end-of-string token."""
        return len(self.alphabet_codes) + 1

    @property
    def num_labels(self) -> int:
        return len(self.log_label_prior)

    @property
    def num_classes(self) -> int | None:
        """The classes a generator is asked for (issue 23's conditional protocol): a model trained
        with labels (census_names' sex) is class-conditional, so ``ref:NAME`` asks sample ``i`` for
        class ``i % num_classes`` and the classifier can check it obeyed; None for one label."""
        return self.num_labels if self.num_labels > 1 else None

    def tokens(self, text: str) -> list[int] | None:
        """Token indices of ``text`` (no end token), or None if it holds a character outside the vocabulary."""
        out = [self._index.get(c, -1) for c in text]
        return None if -1 in out or len(out) > LONGEST else out

    def text(self, tokens: Sequence[int]) -> str:
        return "".join(self._chars[t - 1] for t in tokens)

    def set_label_prior(self, labels: torch.Tensor) -> None:
        """The label prior: the training labels' frequencies (add-one smoothed)."""
        counts = torch.bincount(labels.long(), minlength=self.num_labels).double() + 1
        self.log_label_prior.copy_((counts / counts.sum()).log().float())

    def _labels(self, n: int, labels: Sequence[int] | torch.Tensor | None, generator) -> torch.Tensor:
        if labels is None:
            prior = self.log_label_prior.exp()
            return torch.multinomial(prior, n, replacement=True, generator=generator)
        labels = torch.as_tensor(labels, dtype=torch.long)
        if len(labels) != n or bool(((labels < 0) | (labels >= self.num_labels)).any()):
            raise ValueError(f"labels must be {n} class indices in [0, {self.num_labels})")
        return labels

    @torch.no_grad()
    def sample(
        self, n: int, generator: torch.Generator | None = None, labels: Sequence[int] | None = None
    ) -> list[str]:
        """``n`` strings (of classes ``labels`` when given, else of classes drawn from the prior)."""
        return [self.text(t) for t in self._sample_given(self._labels(n, labels, generator), generator)]

    @torch.no_grad()
    def log_prob(
        self, strings: Sequence[str] | torch.Tensor, labels: Sequence[int] | torch.Tensor | None = None
    ) -> torch.Tensor:
        """(N,) float64 log p(string | label) in nats, end-of-string included (marginal when no labels)."""
        if isinstance(strings, torch.Tensor):
            strings = strings_of(strings)
        tokens = [self.tokens(s) for s in strings]
        known = [i for i, t in enumerate(tokens) if t is not None]
        out = torch.full((len(strings),), -math.inf, dtype=torch.float64)
        if not known:
            return out
        kept = [tokens[i] for i in known]
        if labels is not None:
            given = torch.as_tensor(labels, dtype=torch.long)[known]
            out[known] = self._chunked(kept, given)
            return out
        # p(s) = sum_y p(y) p(s | y), in log space.
        per_label = [self._chunked(kept, torch.full((len(kept),), y)) for y in range(self.num_labels)]
        out[known] = torch.logsumexp(torch.stack(per_label, 1) + self.log_label_prior.double(), dim=1)
        return out

    def _chunked(self, tokens: list[list[int]], labels: torch.Tensor, size: int = 2048) -> torch.Tensor:
        """``_log_prob_given`` over blocks of ``size`` strings (bounds the memory of batched passes)."""
        parts = [
            self._log_prob_given(tokens[i : i + size], labels[i : i + size]).double()
            for i in range(0, len(tokens), size)
        ]
        return torch.cat(parts)

    def _log_prob_given(self, tokens: list[list[int]], labels: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def _sample_given(self, labels: torch.Tensor, generator) -> list[list[int]]:
        raise NotImplementedError


def padded(tokens: Sequence[Sequence[int]], start: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """(rows, lengths): ``start`` start marks + tokens + the end token, END-padded on the right.

    ``lengths`` counts the predicted tokens of each row (characters + 1 end token).
    """
    lengths = torch.tensor([len(t) + 1 for t in tokens])
    rows = torch.full((len(tokens), start + int(lengths.max())), END, dtype=torch.long)
    for i, t in enumerate(tokens):
        rows[i, start : start + len(t)] = torch.tensor(t, dtype=torch.long)
    return rows, lengths


def bits_per_character(model: TextModel, strings: Sequence[str], labels=None) -> float:
    """-sum log2 p over all tokens (characters and end-of-string) / number of tokens."""
    log_p = model.log_prob(strings, labels)
    return float(-log_p.sum() / (math.log(2) * sum(len(s) + 1 for s in strings)))


def autoregressive_sample(
    step: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    labels: torch.Tensor,
    generator: torch.Generator | None,
    longest: int = LONGEST,
) -> list[list[int]]:
    """Token lists drawn one token at a time: ``step(prefixes (N, t) long, labels) -> (N, V) log-probs``.

    Each prefix starts with the start mark (the end token's index); a string still running after
    ``longest`` characters is ended there (see the module's docstring).
    """
    prefix = torch.full((len(labels), 1), END, dtype=torch.long)
    done = torch.zeros(len(labels), dtype=torch.bool)
    for _ in range(longest):
        token = torch.multinomial(step(prefix, labels).exp(), 1, generator=generator).squeeze(1)
        token[done] = END
        prefix = torch.cat([prefix, token[:, None]], dim=1)
        done |= token == END
        if bool(done.all()):
            break
    return [[t for t in row[1:].tolist() if t != END] for row in prefix]


def fit_counting_model(
    make: Callable[[float], TextModel], candidates: Sequence[float], data, log
) -> tuple[TextModel, dict]:
    """Count once per smoothing strength in ``candidates``; keep the best on validation bits/char.

    Shared by the counting models (naive Bayes, n-gram): ``make(alpha)`` returns the fitted model.
    """
    val = strings_of(data.val)
    log.begin(len(candidates))
    best: tuple[float, float, TextModel] | None = None
    for step, alpha in enumerate(candidates, 1):
        model = make(alpha)
        score = bits_per_character(model, val, data.val_labels)
        log.record(step, alpha=alpha, val_bits_per_char=score)
        log.step(step)
        if best is None or score < best[0]:
            best = (score, alpha, model)
    assert best is not None
    score, alpha, model = best
    return model, {"val_bits_per_char_given_label": round(score, 4), "alpha": alpha}
