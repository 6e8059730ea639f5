"""Two deliberately faulty text models: one collapsed onto a few dozen strings, one that copies.

Both are a mixture: with probability 1 - ``escape`` (0.99) the string is drawn uniformly from a
memorised list of training strings of the requested class, otherwise from a class-conditional
unigram model (ngram.py with order 1) fitted to the training set. So

    p(s | y) = (1 - escape) * m_y(s) / M_y + escape * unigram(s | y),

m_y(s) being the copies of s among the class's M_y memorised strings. The unigram part keeps
every log_prob finite (a likelihood metric needs that; a pure copier would give held-out
strings probability 0) and is why "exact" still holds.

* ``collapse`` (``memory = "most_common"``): the ``size`` most frequent training strings of
  each class; samples repeat a few dozen names, which the duplicate, birthday and n-gram
  evidence must flag.
* ``copy`` (``memory = "distinct"``): every distinct training string, each once; samples are
  training strings, which text_novelty's train_copies must flag against held-out data.
"""

from __future__ import annotations

from collections import Counter

import torch

from reference_models import ngram
from reference_models.text_common import TextModel, alphabet_of, bits_per_character, strings_of

DEFAULTS = {"memory": "most_common", "size": 15, "escape": 0.01, "alpha": 0.1}


class MemorisingText(TextModel):
    def __init__(self, alphabet: str, num_labels: int, memorised: int, width: int, escape: float):
        super().__init__(alphabet, num_labels)
        self.escape = escape
        self.register_buffer("memory", torch.zeros(memorised, width, dtype=torch.int32))  # code points
        self.register_buffer("memory_labels", torch.zeros(memorised, dtype=torch.long))
        self.background = ngram.NgramText(alphabet, num_labels, order=1)
        self._lookup: dict[tuple[str, int], int] | None = None

    def memorised(self) -> dict[tuple[str, int], int]:
        """(string, class) -> copies in memory."""
        if self._lookup is None:
            self._lookup = Counter(zip(strings_of(self.memory), self.memory_labels.tolist(), strict=True))
        return self._lookup

    def _log_prob_given(self, tokens: list[list[int]], labels: torch.Tensor) -> torch.Tensor:
        sizes = torch.bincount(self.memory_labels, minlength=self.num_labels).double()
        copies = torch.tensor(
            [
                self.memorised().get((self.text(t), y), 0)
                for t, y in zip(tokens, labels.tolist(), strict=True)
            ],
            dtype=torch.float64,
        )
        memorised = torch.log1p(torch.tensor(-self.escape)) + (copies / sizes[labels]).log()
        unigram = torch.log(torch.tensor(self.escape)) + self.background._log_prob_given(tokens, labels)
        return torch.logaddexp(memorised, unigram)

    def _sample_given(self, labels: torch.Tensor, generator) -> list[list[int]]:
        escaping = torch.rand(len(labels), generator=generator) < self.escape
        fallback = self.background._sample_given(labels, generator)
        out = []
        for y, escape, other in zip(labels.tolist(), escaping.tolist(), fallback, strict=True):
            if escape:
                out.append(other)
                continue
            rows = torch.nonzero(self.memory_labels == y)[:, 0]
            pick = rows[torch.randint(len(rows), (1,), generator=generator)]
            out.append([self._index[c] for c in strings_of(self.memory[pick])[0]])
        return out


def build(hparams: dict, dataset: str) -> MemorisingText:
    return MemorisingText(
        hparams["alphabet"], hparams["num_labels"], hparams["memorised"], hparams["width"], hparams["escape"]
    )


def choose_memory(strings: list[str], labels: list[int], how: str, size: int) -> list[tuple[str, int]]:
    """The (string, class) pairs to memorise: each class's ``size`` most common, or every distinct pair."""
    counts = Counter(zip(strings, labels, strict=True))
    if how == "distinct":
        return sorted(counts)
    if how != "most_common":
        raise ValueError(f"memory must be most_common or distinct, not {how!r}")
    return [
        pair
        for y in sorted(set(labels))
        for pair, _ in Counter({p: c for p, c in counts.items() if p[1] == y}).most_common(size)
    ]


def fit(hparams: dict, data, *, generator: torch.Generator, log) -> tuple[MemorisingText, dict]:
    from gen_eval.kinds.text import encode_strings

    train = strings_of(data.train)
    alphabet, num_labels = alphabet_of(train), int(data.train_labels.max()) + 1
    pairs = choose_memory(train, data.train_labels.tolist(), hparams["memory"], hparams["size"])
    width = max(len(s) for s, _ in pairs)
    hparams.update(alphabet=alphabet, num_labels=num_labels, memorised=len(pairs), width=width)
    log.begin(1)
    model = build(hparams, data.dataset)
    model.set_label_prior(data.train_labels)
    model.memory.copy_(torch.from_numpy(encode_strings([s for s, _ in pairs], width)))
    model.memory_labels.copy_(torch.tensor([y for _, y in pairs]))
    unigram = ngram.count(train, data.train_labels, alphabet, num_labels, 1, hparams["alpha"])
    model.background.load_state_dict(unigram.state_dict())
    val_bits = bits_per_character(model, strings_of(data.val), data.val_labels)
    log.record(1, val_bits_per_char=val_bits)
    log.step(1)
    return model, {"val_bits_per_char_given_label": round(val_bits, 4), "memorised": len(pairs)}
