"""The human study's plain records: its settings, a study, a trial and the samples a trial shows.

A study asks people to tell generated samples from real ones (HYPE, Zhou et al. 2019): one at a
time ("single": real or fake?) or side by side ("pair": which one is fake?). These records are
what the store, the schedule, the results and the dashboard page pass between them.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from gen_eval.errors import GenEvalError

MODES = ("single", "pair")
TRIAL_KINDS = ("practice", "attention", "trial")
TIMEOUT = "timeout"  # the answer recorded when the time limit ran out before an answer
# Said on every output of results: 50% is what a perfect model earns, so nobody reads it as failure.
CHANCE_NOTE = (
    "A model whose samples are the real data itself lands at about 50% error: 50% is the best "
    "possible (people cannot tell its samples from real ones), not a failure."
)


@dataclass(frozen=True)
class StudySettings:
    """How a study runs.

    Attributes
    ----------
    mode : {"single", "pair"}
        "single": one sample at a time, real or fake?; "pair": a real and a fake side by side,
        which one is fake?
    time_limit_s : float, optional
        Seconds a participant has per trial (a countdown; HYPE_time); None: no limit (HYPE_inf).
    practice : int
        Practice trials shown first, with feedback; never scored.
    attention_checks : int
        Obviously broken images (noise, a flat colour) mixed among the trials; a participant who
        misses one is left out of the results (and counted).
    trials_per_participant : int
        Scored trials per participant, split evenly over the runs, half real and half fake
        (single mode), or half with the fake on the left (pair mode). Must be even.
    samples_per_run : int
        Generated samples snapshotted from each run, and as many real ones from its reference.
    seed : int
        Seeds the snapshot and, with each participant's id, the participant's order.
    """

    mode: str = "single"
    time_limit_s: float | None = None
    practice: int = 4
    attention_checks: int = 2
    trials_per_participant: int = 40
    samples_per_run: int = 100
    seed: int = 0

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise GenEvalError(f"study mode {self.mode!r}: choose single or pair")
        if self.time_limit_s is not None and not self.time_limit_s > 0:
            raise GenEvalError(
                f"--time-limit {self.time_limit_s}: give a positive number of seconds, or none"
            )
        for name in ("practice", "attention_checks"):
            if getattr(self, name) < 0:
                raise GenEvalError(f"{name} {getattr(self, name)}: must be 0 or more")
        if self.trials_per_participant < 2 or self.trials_per_participant % 2:
            raise GenEvalError(
                f"trials_per_participant {self.trials_per_participant}: give an even number of at least 2 "
                "(half real, half fake)"
            )
        if self.samples_per_run < 1:
            raise GenEvalError(f"samples_per_run {self.samples_per_run}: must be at least 1")

    def to_dict(self) -> dict[str, Any]:
        """The settings as JSON-ready values."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> StudySettings:
        """Settings back from :meth:`to_dict` (unknown keys ignored: a newer writer's extras)."""
        known = {name: data[name] for name in cls.__dataclass_fields__ if name in data}
        return cls(**known)


@dataclass(frozen=True)
class Study:
    """One study: which runs it judges, how, and whether it is still open.

    Attributes
    ----------
    study_id : str
        The study's id (its folder under ``RUNS_DIR/human/``).
    code : str
        A short code the instructor reads out and participants type to join.
    runs_dir : Path
        The runs folder the study belongs to.
    runs : tuple of str
        The runs judged, as names relative to ``runs_dir``.
    settings : StudySettings
    created : str
        UTC time stamp (ISO 8601).
    closed : bool
        A closed study takes no more answers.
    counts : tuple of int
        Per run, how many generated (and as many real) samples were snapshotted.
    """

    study_id: str
    code: str
    runs_dir: Path
    runs: tuple[str, ...]
    settings: StudySettings
    created: str
    closed: bool
    counts: tuple[int, ...] = field(default=())

    @property
    def folder(self) -> Path:
        """Where the study's samples are kept."""
        return Path(self.runs_dir) / "human" / self.study_id


@dataclass(frozen=True)
class TrialItem:
    """One sample a trial shows.

    Attributes
    ----------
    sample_id : str
        ``r{k}-fake-{i}`` / ``r{k}-real-{i}`` (run ``k`` of the study, snapshot index ``i``) or
        ``check-{i}`` (an attention check).
    truth : {"real", "fake"}
    run : str
        The run the sample stands for ("" for an attention check).
    """

    sample_id: str
    truth: str
    run: str


@dataclass(frozen=True)
class Trial:
    """One question put to a participant.

    Attributes
    ----------
    trial_id : int
        The trial's slot in the participant's plan (practice, then the scored trials run by run,
        then the attention checks); answers are recorded under it.
    position : int
        Where this participant sees it (0 first); practice always comes first.
    kind : {"practice", "attention", "trial"}
    run : str
        The run it judges ("" for an attention check).
    items : tuple of TrialItem
        One item (single mode) or two (pair mode: one real, one fake, in a seeded order).
    answer_truth : str
        The right answer: single mode "real" or "fake"; pair mode "0" or "1", the fake's index.
    """

    trial_id: int
    position: int
    kind: str
    run: str
    items: tuple[TrialItem, ...]
    answer_truth: str

    def answers(self) -> tuple[str, ...]:
        """The answers this trial accepts (besides ``"timeout"``)."""
        return ("real", "fake") if len(self.items) == 1 else ("0", "1")
