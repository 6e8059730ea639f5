"""A hidden Markov model of strings: categorical emissions over characters and the end token.

Per class y, hidden states follow a Markov chain (start probabilities, transition matrix) and
each state emits a token (a character or the end of the string). A string s is the tokens up to
and including the first end token, so p(s | y) = P(emit s_1 .. s_T, then end), a sum over
every path of hidden states, computed by the forward algorithm. Every state gives the end
token positive probability (a floor added after fitting), so strings end with probability 1
and p sums to 1 over strings.

Fitting is EM (Baum-Welch) by hmmlearn's ``CategoricalHMM``, one per class, best of a few
seeds, the number of states chosen on validation. Scoring is a forward pass of our own in
torch, batched over strings in log space: hmmlearn's ``score`` returns one total for all the
sequences it is handed, and the metrics need one number per string (one call per string is
far slower). tests/test_text_models.py checks the two agree, and both against a brute-force
sum over state paths.
"""

from __future__ import annotations

import numpy as np
import torch

from reference_models.text_common import (
    END,
    LONGEST,
    TextModel,
    alphabet_of,
    bits_per_character,
    padded,
    strings_of,
)

# hmmlearn runs EM one sequence at a time in Python (~4 s per iteration on 10,000 names here),
# so the search is small: 2 sizes x 20 iterations x 1 seed is a few CPU minutes.
DEFAULTS = {"states": [8, 16], "iterations": 20, "restarts": 1, "floor": 1e-4}


class HiddenMarkovText(TextModel):
    def __init__(self, alphabet: str, num_labels: int, states: int):
        super().__init__(alphabet, num_labels)
        v, f64 = len(alphabet) + 1, torch.float64
        self.register_buffer("log_start", torch.zeros(num_labels, states, dtype=f64))
        self.register_buffer("log_move", torch.zeros(num_labels, states, states, dtype=f64))
        self.register_buffer("log_emit", torch.zeros(num_labels, states, v, dtype=f64))  # column 0: end

    def _log_prob_given(self, tokens: list[list[int]], labels: torch.Tensor) -> torch.Tensor:
        rows, lengths = padded(tokens, start=0)  # tokens + end, END-padded
        move = self.log_move[labels]  # (N, S, S)
        emit = self.log_emit[labels]  # (N, S, V)

        def emitted(t: int) -> torch.Tensor:  # (N, S): log P(state emits the t-th token)
            return emit.gather(2, rows[:, t, None, None].expand(-1, emit.shape[1], 1))[..., 0]

        # alpha[n, s] = log P(first t + 1 tokens, state s at step t) (the forward variable)
        alpha = self.log_start[labels] + emitted(0)
        out = torch.logsumexp(alpha, 1)
        for t in range(1, rows.shape[1]):
            alpha = torch.logsumexp(alpha[:, :, None] + move, dim=1) + emitted(t)
            out = torch.where(lengths == t + 1, torch.logsumexp(alpha, 1), out)
        return out

    def _sample_given(self, labels: torch.Tensor, generator) -> list[list[int]]:
        n = len(labels)
        state = torch.multinomial(self.log_start[labels].exp(), 1, generator=generator).squeeze(1)
        drawn = torch.full((n, LONGEST), END, dtype=torch.long)
        running = torch.ones(n, dtype=torch.bool)
        for t in range(LONGEST):
            token = torch.multinomial(self.log_emit[labels, state].exp(), 1, generator=generator).squeeze(1)
            running &= token != END
            drawn[:, t] = torch.where(running, token, END)
            if not bool(running.any()):
                break
            state = torch.multinomial(self.log_move[labels, state].exp(), 1, generator=generator).squeeze(1)
        return [[t for t in row.tolist() if t != END] for row in drawn]


def build(hparams: dict, dataset: str) -> HiddenMarkovText:
    return HiddenMarkovText(hparams["alphabet"], hparams["num_labels"], hparams["chosen_states"])


def fit_hmmlearn(sequences: list[list[int]], vocabulary: int, states: int, hparams: dict, seed: int):
    """hmmlearn's best-of-restarts ``CategoricalHMM`` on token sequences (each ending with END)."""
    from hmmlearn.hmm import CategoricalHMM

    stacked = np.concatenate(sequences)[:, None]
    lengths = [len(s) for s in sequences]
    best = None
    for restart in range(hparams["restarts"]):
        hmm = CategoricalHMM(
            n_components=states,
            n_iter=hparams["iterations"],
            random_state=seed + restart,
            n_features=vocabulary,
        )
        hmm.fit(stacked, lengths)
        score = hmm.score(stacked, lengths)
        if best is None or score > best[0]:
            best = (score, hmm)
    return best[1]


def set_class(model: HiddenMarkovText, y: int, hmm, floor: float) -> None:
    """Copy hmmlearn's parameters into class ``y``, each row floored and renormalised.

    The floor keeps every token (the end token in particular) possible in every state, and
    every transition possible, so no string over the alphabet gets probability 0.
    """

    def log_normalised(p: np.ndarray) -> torch.Tensor:
        p = p + floor
        return torch.from_numpy(np.log(p / p.sum(-1, keepdims=True)))

    model.log_start[y] = log_normalised(hmm.startprob_)
    model.log_move[y] = log_normalised(hmm.transmat_)
    model.log_emit[y] = log_normalised(hmm.emissionprob_)


def fit(hparams: dict, data, *, generator: torch.Generator, log) -> tuple[HiddenMarkovText, dict]:
    train, val = strings_of(data.train), strings_of(data.val)
    alphabet, num_labels = alphabet_of(train), int(data.train_labels.max()) + 1
    seed = int(torch.randint(0, 2**31 - 1, (1,), generator=generator))
    log.begin(len(hparams["states"]) * num_labels)
    best, step = None, 0
    for states in hparams["states"]:
        model = HiddenMarkovText(alphabet, num_labels, states)
        model.set_label_prior(data.train_labels)
        for y in range(num_labels):
            sequences = [
                [*model.tokens(s), END]
                for s, label in zip(train, data.train_labels.tolist(), strict=True)
                if label == y
            ]
            set_class(
                model,
                y,
                fit_hmmlearn(sequences, model.vocabulary_size, states, hparams, seed),
                hparams["floor"],
            )
            step += 1
            log.step(step)
        score = bits_per_character(model, val, data.val_labels)
        log.record(step, states=states, val_bits_per_char=score)
        if best is None or score < best[0]:
            best = (score, states, model)
    score, states, model = best
    hparams.update(alphabet=alphabet, num_labels=num_labels, chosen_states=states)
    return model, {"val_bits_per_char_given_label": round(score, 4), "states": states}
