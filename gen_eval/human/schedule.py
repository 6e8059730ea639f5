"""Each participant's trials: seeded by the study's seed and the participant's id, 50/50 by design.

The plan (``trial_id`` order) is practice first, then the scored trials run by run, then the
attention checks. Every run gets the same number of scored trials (a remainder of the split goes
to runs the participant's generator picks), and each run's trials are exactly half real and half
fake (single mode) or half with the fake first (pair mode), so a participant who always answers
"real" scores exactly 50% on every run. The order shown is practice first (with feedback), then
the scored trials and attention checks shuffled together.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING

from gen_eval.human.model import Trial, TrialItem

if TYPE_CHECKING:
    import numpy as np

    from gen_eval.human.model import Study


def participant_rng(seed: int, participant_id: str) -> np.random.Generator:
    """The participant's own generator: the study's seed and a hash of the id (stable across runs)."""
    import numpy as np

    digest = int.from_bytes(hashlib.sha256(participant_id.encode()).digest()[:8], "big")
    return np.random.default_rng([seed, digest])


class _Pool:
    """Snapshot indices of one run, drawn without replacement in a seeded order (cycled when used up)."""

    def __init__(self, count: int, rng: np.random.Generator) -> None:
        self.order = rng.permutation(count).tolist()
        self.next = 0

    def draw(self) -> int:
        index = self.order[self.next % len(self.order)]
        self.next += 1
        return index


def schedule(study: Study, participant_id: str) -> list[Trial]:
    """The participant's trials in the order they are shown (``position`` 0 first).

    Parameters
    ----------
    study : Study
        Its runs, settings and snapshot counts.
    participant_id : str
        Seeds the order together with ``study.settings.seed``.

    Returns
    -------
    list of Trial
    """
    settings = study.settings
    rng = participant_rng(settings.seed, participant_id)
    runs = list(study.runs)
    fakes = [_Pool(count, rng) for count in study.counts]
    reals = [_Pool(count, rng) for count in study.counts]
    pair = settings.mode == "pair"

    def items(k: int, fake_first: bool) -> tuple[tuple[TrialItem, ...], str]:
        def fake() -> TrialItem:
            return TrialItem(f"r{k}-fake-{fakes[k].draw()}", "fake", runs[k])

        def real() -> TrialItem:
            return TrialItem(f"r{k}-real-{reals[k].draw()}", "real", runs[k])

        if not pair:  # draw only what is shown, so a participant sees every snapshot sample before repeats
            return ((fake(),), "fake") if fake_first else ((real(),), "real")
        return ((fake(), real()), "0") if fake_first else ((real(), fake()), "1")

    plan: list[tuple[str, int, tuple[TrialItem, ...], str]] = []  # kind, run index, items, truth
    for i in range(settings.practice):
        k = i % len(runs)
        plan.append(("practice", k, *items(k, fake_first=i % 2 == 0)))
    units = settings.trials_per_participant // 2  # a unit: one real and one fake (or fake left, fake right)
    per_run = [units // len(runs)] * len(runs)
    for k in rng.choice(len(runs), size=units % len(runs), replace=False).tolist():
        per_run[k] += 1
    for k, count in enumerate(per_run):
        for _ in range(count):
            for fake_first in (True, False):
                plan.append(("trial", k, *items(k, fake_first)))
    for i in range(settings.attention_checks):
        check = TrialItem(f"check-{i}", "fake", "")
        if pair:
            k = i % len(runs)
            real = TrialItem(f"r{k}-real-{reals[k].draw()}", "real", runs[k])
            left = bool(rng.integers(2))
            plan.append(("attention", -1, (check, real) if left else (real, check), "0" if left else "1"))
        else:
            plan.append(("attention", -1, (check,), "fake"))
    rest = list(range(settings.practice, len(plan)))
    order = list(range(settings.practice)) + [rest[i] for i in rng.permutation(len(rest)).tolist()]
    return [
        Trial(
            trial_id=trial_id,
            position=position,
            kind=plan[trial_id][0],
            run=runs[plan[trial_id][1]] if plan[trial_id][1] >= 0 else "",
            items=plan[trial_id][2],
            answer_truth=plan[trial_id][3],
        )
        for position, trial_id in enumerate(order)
    ]
