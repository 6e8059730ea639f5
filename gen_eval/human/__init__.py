"""Human judgement studies (HYPE, Zhou et al. 2019): can people tell a run's samples from real ones?

An instructor creates a study over some runs (:meth:`HumanStore.create_study`, or
``gen-eval human create``); participants join it with its code in the dashboard and judge samples
one at a time (real or fake?) or side by side (which one is fake?); every answer is committed to
an SQLite database under ``RUNS_DIR/human/`` before the next sample shows. :func:`study_results`
gives each run's error rates with intervals; :func:`compare_human` tests a difference. A model
whose samples are the real data lands at about 50% error, the best possible.
"""

from __future__ import annotations

from gen_eval.human.lookup import human_comparison, run_human_results
from gen_eval.human.model import (
    CHANCE_NOTE,
    MODES,
    TIMEOUT,
    Study,
    StudySettings,
    Trial,
    TrialItem,
)
from gen_eval.human.results import RunHumanResult, compare_human, study_results, wilson_interval
from gen_eval.human.snapshot import sample_picture, sample_text
from gen_eval.human.store import HumanStore

__all__ = [
    "CHANCE_NOTE",
    "MODES",
    "TIMEOUT",
    "HumanStore",
    "RunHumanResult",
    "Study",
    "StudySettings",
    "Trial",
    "TrialItem",
    "compare_human",
    "human_comparison",
    "run_human_results",
    "sample_picture",
    "sample_text",
    "study_results",
    "wilson_interval",
]
