"""Per-run results of a human study: how often people were fooled, with intervals, and differences.

Rates count the scored trials of participants who passed every attention check (those who missed
one are left out and counted); a trial whose time ran out has no answer and is counted apart.
Intervals are 95% Wilson score intervals over judgements (scipy's ``binomtest``), which treat
every judgement as independent; people differ, so the spread across participants is given beside
them. 50% error is what samples indistinguishable from the real data earn: the best possible.
"""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from dataclasses import asdict, dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from gen_eval.human.model import CHANCE_NOTE, TIMEOUT
from gen_eval.human.people import people_difference_interval, people_interval

if TYPE_CHECKING:
    from gen_eval.human.store import HumanStore

LEVEL = 0.95
INTERVAL_NOTE = (
    "95% Wilson score intervals over judgements (each judgement counted as independent), and for the "
    "error rate also a bootstrap over participants (right when people differ, where Wilson's is too narrow)"
)


@lru_cache(maxsize=4096)  # a pure function of three numbers, and scipy's binomtest costs ~1 ms a call
def wilson_interval(successes: int, trials: int, level: float = LEVEL) -> tuple[float, float] | None:
    """The Wilson score interval for a proportion (scipy's ``binomtest``); None when ``trials`` is 0."""
    if trials == 0:
        return None
    from scipy.stats import binomtest

    interval = binomtest(successes, trials).proportion_ci(confidence_level=level, method="wilson")
    return (float(interval.low), float(interval.high))


def _hull(
    people: tuple[float, float] | None, wilson: tuple[float, float] | None
) -> tuple[float, float] | None:
    """The interval over people, never narrower than Wilson's: when every person scored the same
    (all 0% on an obvious fake) the bootstrap has nothing to resample and would claim certainty."""
    if people is None or wilson is None:
        return people
    return (min(people[0], wilson[0]), max(people[1], wilson[1]))


def _rate(k: int, n: int) -> float | None:
    return k / n if n else None


@dataclass(frozen=True)
class RunHumanResult:
    """One run's human judgement results.

    In pair mode every error is both a fake judged real and a real judged fake, so the three
    rates are equal there.

    Attributes
    ----------
    run, study_id, mode : str
    participants : int
        Participants counted (they answered at least one scored trial of this run).
    excluded_participants : int
        Participants left out for missing an attention check (who had answered this run).
    attention_failures : int
        Attention checks missed by those participants.
    judgements : int
        Scored answers counted (timeouts not included).
    timeouts : int
        Scored trials whose time ran out before an answer.
    fakes, fakes_judged_real, fool_rate, fool_interval
        Generated samples shown, how many were judged real, the rate and its interval.
    reals, reals_judged_fake, real_error_rate, real_error_interval
        Real samples shown (pair mode: pairs), how many were judged fake, the rate, its interval.
    errors, error_rate, error_interval
        Both kinds of mistake together: the HYPE error rate (50% = indistinguishable).
    participant_sd, participant_min, participant_max : float or None
        The spread of the per-participant error rates.
    median_seconds : float or None
        Median answer time of the counted judgements.
    error_interval_people : (low, high) or None
        95% percentile bootstrap interval of the error rate resampling participants (2,000
        resamples; :mod:`gen_eval.human.people`), widened to the Wilson interval where that is
        wider: it stays right when people differ, where the Wilson interval is too narrow. None
        with fewer than two participants.
    per_participant : tuple of (participant, errors, judgements)
        The counts behind the spread and the bootstrap (ids are random, nothing personal).
    """

    run: str
    study_id: str
    mode: str
    participants: int
    excluded_participants: int
    attention_failures: int
    judgements: int
    timeouts: int
    fakes: int
    fakes_judged_real: int
    fool_rate: float | None
    fool_interval: tuple[float, float] | None
    reals: int
    reals_judged_fake: int
    real_error_rate: float | None
    real_error_interval: tuple[float, float] | None
    errors: int
    error_rate: float | None
    error_interval: tuple[float, float] | None
    participant_sd: float | None
    participant_min: float | None
    participant_max: float | None
    median_seconds: float | None
    error_interval_people: tuple[float, float] | None = None
    per_participant: tuple[tuple[str, int, int], ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: numbers stay numbers, intervals are [low, high] lists, the 50% note included."""
        data = asdict(self)
        for key in ("fool_interval", "real_error_interval", "error_interval", "error_interval_people"):
            data[key] = None if data[key] is None else list(data[key])
        data["per_participant"] = [list(entry) for entry in self.per_participant]
        data["level"] = LEVEL
        data["note"] = CHANCE_NOTE
        return data


def _excluded(rows: list[dict[str, Any]], max_attention_failures: int) -> dict[str, int]:
    """Participant -> attention checks missed, for those who missed more than allowed."""
    missed: dict[str, int] = defaultdict(int)
    for row in rows:
        if row["kind"] == "attention" and not row["correct"]:
            missed[row["participant_id"]] += 1
    return {who: count for who, count in missed.items() if count > max_attention_failures}


def study_results(store: HumanStore, study_id: str, max_attention_failures: int = 0) -> list[RunHumanResult]:
    """Each run's rates, intervals, spread and answer times (one result per run, in the study's order).

    Parameters
    ----------
    store : HumanStore
    study_id : str
    max_attention_failures : int
        A participant who misses more attention checks than this is left out (default: any miss).

    Returns
    -------
    list of RunHumanResult
    """
    study = store.get_study(study_id)
    rows = store.judgements(study_id)
    excluded = _excluded(rows, max_attention_failures)
    pair = study.settings.mode == "pair"
    results = []
    for run in study.runs:
        scored = [row for row in rows if row["kind"] == "trial" and row["run"] == run]
        counted = [
            row for row in scored if row["participant_id"] not in excluded and row["answer"] != TIMEOUT
        ]
        timeouts = sum(row["participant_id"] not in excluded and row["answer"] == TIMEOUT for row in scored)
        out_here = {row["participant_id"] for row in scored if row["participant_id"] in excluded}
        if pair:
            fakes = reals = len(counted)
            fooled = fooled_real = sum(not row["correct"] for row in counted)
        else:
            fakes = sum(row["truth"] == "fake" for row in counted)
            reals = len(counted) - fakes
            fooled = sum(row["truth"] == "fake" and row["answer"] == "real" for row in counted)
            fooled_real = sum(row["truth"] == "real" and row["answer"] == "fake" for row in counted)
        errors = sum(not row["correct"] for row in counted)
        per_person: dict[str, list[int]] = defaultdict(lambda: [0, 0])
        for row in counted:
            per_person[row["participant_id"]][0] += not row["correct"]
            per_person[row["participant_id"]][1] += 1
        person_rates = [wrong / total for wrong, total in per_person.values()]
        counts = tuple((who, wrong, total) for who, (wrong, total) in sorted(per_person.items()))
        results.append(
            RunHumanResult(
                run=run,
                study_id=study_id,
                mode=study.settings.mode,
                participants=len(per_person),
                excluded_participants=len(out_here),
                attention_failures=sum(excluded[who] for who in out_here),
                judgements=len(counted),
                timeouts=timeouts,
                fakes=fakes,
                fakes_judged_real=fooled,
                fool_rate=_rate(fooled, fakes),
                fool_interval=wilson_interval(fooled, fakes),
                reals=reals,
                reals_judged_fake=fooled_real,
                real_error_rate=_rate(fooled_real, reals),
                real_error_interval=wilson_interval(fooled_real, reals),
                errors=errors,
                error_rate=_rate(errors, len(counted)),
                error_interval=wilson_interval(errors, len(counted)),
                participant_sd=statistics.stdev(person_rates) if len(person_rates) > 1 else None,
                participant_min=min(person_rates) if person_rates else None,
                participant_max=max(person_rates) if person_rates else None,
                median_seconds=statistics.median(row["seconds"] for row in counted) if counted else None,
                error_interval_people=_hull(
                    people_interval(counts, study.settings.seed), wilson_interval(errors, len(counted))
                ),
                per_participant=counts,
            )
        )
    return results


def compare_human(a: RunHumanResult, b: RunHumanResult) -> dict[str, Any]:
    """Whether two runs' error rates differ: the difference, its interval and a test.

    The test is the two-proportion z-test (pooled; the one ``statsmodels.proportions_ztest``
    computes), or Fisher's exact test when an expected count is under 5 and the normal
    approximation is poor. The interval is Newcombe's hybrid score interval (method 10 of
    Newcombe 1998), built from the two Wilson intervals.

    Parameters
    ----------
    a, b : RunHumanResult

    Returns
    -------
    dict
        ``run_a``, ``run_b``, ``error_rate_a``, ``error_rate_b``, ``difference`` (b - a, as
        ``gen-eval compare`` reports B - A),
        ``interval`` (95%, Newcombe), ``interval_people`` (95%, bootstrap over participants,
        paired where the same people judged both, widened to Newcombe's where that is wider; None
        without per-participant counts),
        ``p_value``, ``test``, ``significant`` (p < 0.05 and ``interval_people`` excluding 0),
        ``note``; the numbers are None when either run has no judgements.
    """
    out: dict[str, Any] = {
        "run_a": a.run,
        "run_b": b.run,
        "error_rate_a": a.error_rate,
        "error_rate_b": b.error_rate,
        "judgements_a": a.judgements,
        "judgements_b": b.judgements,
        "difference": None,
        "interval": None,
        "interval_people": None,
        "p_value": None,
        "test": None,
        "significant": None,
        "level": LEVEL,
        "note": CHANCE_NOTE,
    }
    if not a.judgements or not b.judgements:
        return out
    from scipy.stats import fisher_exact, norm

    k1, n1, k2, n2 = a.errors, a.judgements, b.errors, b.judgements
    p1, p2 = k1 / n1, k2 / n2
    pooled = (k1 + k2) / (n1 + n2)
    expected = [n * share for n in (n1, n2) for share in (pooled, 1 - pooled)]
    if min(expected) < 5:
        test, p_value = "fisher exact", float(fisher_exact([[k1, n1 - k1], [k2, n2 - k2]]).pvalue)
    else:
        se = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
        test, p_value = "two-proportion z", float(2 * norm.sf(abs(p1 - p2) / se)) if se > 0 else 1.0
    (l1, u1), (l2, u2) = wilson_interval(k1, n1), wilson_interval(k2, n2)  # type: ignore[misc]
    difference = p2 - p1  # B - A, as every row of gen-eval compare
    interval = (
        difference - math.sqrt((p2 - l2) ** 2 + (u1 - p1) ** 2),
        difference + math.sqrt((u2 - p2) ** 2 + (p1 - l1) ** 2),
    )
    people = _hull(people_difference_interval(a.per_participant, b.per_participant), interval)
    # Significant only when the test and, where it exists, the interval over people both say so:
    # the test counts judgements as independent, which people who differ make them not.
    significant = p_value < 0.05 and (people is None or not people[0] <= 0 <= people[1])
    out.update(
        difference=difference,
        interval=list(interval),
        interval_people=None if people is None else list(people),
        p_value=p_value,
        test=test,
        significant=significant,
    )
    return out


def human_verdict(versus: dict[str, Any]) -> str:
    """B against A in words, from :func:`compare_human`'s dict: a higher error rate is harder to tell from real."""
    if versus.get("difference") is None:
        return "not tested"
    if not versus["significant"]:
        return "no significant difference"
    return "harder to tell from real" if versus["difference"] > 0 else "easier to tell from real"
