"""Human study results: rates equal a hand count, Wilson intervals cover, differences are tested, the CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from human_runs import make_runs
from typer.testing import CliRunner

from gen_eval.cli import app
from gen_eval.human import (
    CHANCE_NOTE,
    HumanStore,
    RunHumanResult,
    Study,
    StudySettings,
    compare_human,
    study_results,
    wilson_interval,
)
from gen_eval.human.results import LEVEL

SETTINGS = StudySettings(practice=2, attention_checks=2, trials_per_participant=12, samples_per_run=20)


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_runs(tmp_path_factory.mktemp("human-results"))


def _play(store: HumanStore, study: Study, answer, seconds: float) -> str:
    """A participant answering every trial with ``answer(trial)``; returns their id."""
    who = store.join(study.study_id)
    while (trial := store.next_trial(study.study_id, who)) is not None:
        store.record(study.study_id, who, trial.trial_id, answer(trial), seconds)
    return who


def test_error_rates_equal_a_hand_count(runs: Path, tmp_path: Path) -> None:
    store = HumanStore(tmp_path / "j.sqlite")
    study = store.create_study(runs, ["good", "noise"], SETTINGS, show_progress=False)
    right = lambda t: t.answer_truth  # noqa: E731
    # A: calls everything of "good" real, gets "noise" right. C: calls every scored sample fake.
    # D: right on "good", lets the time run out on every "noise" trial. B: misses one attention check.
    _play(store, study, lambda t: "real" if t.run == "good" and t.kind == "trial" else right(t), 1.0)
    _play(store, study, lambda t: "fake" if t.kind == "trial" else right(t), 3.0)
    _play(store, study, lambda t: "timeout" if t.run == "noise" and t.kind == "trial" else right(t), 2.0)
    missed = []

    def careless(t):
        if t.kind == "attention" and not missed:
            missed.append(t)
            return "real"
        return right(t)

    _play(store, study, careless, 5.0)
    good, noise = study_results(store, study.study_id)
    # Each participant sees 6 scored trials per run: 3 fakes and 3 reals (12 over 2 runs, 50/50).
    assert (good.fakes, good.fakes_judged_real, good.reals, good.reals_judged_fake) == (9, 3, 9, 3)
    assert (good.errors, good.judgements, good.participants) == (6, 18, 3)
    assert good.error_rate == pytest.approx(6 / 18) and good.fool_rate == pytest.approx(3 / 9)
    assert good.real_error_rate == pytest.approx(3 / 9)
    assert (good.excluded_participants, good.attention_failures, good.timeouts) == (1, 1, 0)
    assert (good.participant_min, good.participant_max) == (0.0, 0.5)
    assert good.participant_sd == pytest.approx(np.std([0.5, 0.5, 0.0], ddof=1))
    assert good.median_seconds == 2.0
    assert (noise.fakes, noise.fakes_judged_real, noise.reals, noise.reals_judged_fake) == (6, 0, 6, 3)
    assert (noise.errors, noise.judgements, noise.participants, noise.timeouts) == (3, 12, 2, 6)
    assert (
        good.error_interval == wilson_interval(6, 18)
        and good.error_interval[0] < 6 / 18 < good.error_interval[1]
    )
    # Letting one miss pass keeps B: B answered everything right, so good gains 6 correct judgements.
    lenient = study_results(store, study.study_id, max_attention_failures=1)[0]
    assert (lenient.judgements, lenient.errors, lenient.excluded_participants) == (24, 6, 0)
    document = good.to_dict()
    assert document["note"] == CHANCE_NOTE and "50%" in CHANCE_NOTE
    assert isinstance(document["error_rate"], float) and isinstance(document["error_interval"], list)


def test_pair_mode_rates_coincide_and_a_constant_answer_scores_half(runs: Path, tmp_path: Path) -> None:
    store = HumanStore(tmp_path / "j.sqlite")
    study = store.create_study(
        runs, ["good"], StudySettings(mode="pair", trials_per_participant=10), show_progress=False
    )
    trials = store.trials(study.study_id, "p-x")
    assert all(len(t.items) == 2 for t in trials)
    _play(store, study, lambda t: "0" if t.kind == "trial" else t.answer_truth, 1.0)
    (result,) = study_results(store, study.study_id)
    assert result.judgements == 10 and result.errors == 5  # the fake is on the right in exactly half
    assert result.error_rate == result.fool_rate == result.real_error_rate == 0.5


def test_no_judgements_gives_empty_rates_not_errors(runs: Path, tmp_path: Path) -> None:
    store = HumanStore(tmp_path / "j.sqlite")
    study = store.create_study(runs, ["good"], SETTINGS, show_progress=False)
    (result,) = study_results(store, study.study_id)
    assert result.judgements == 0 and result.error_rate is None and result.error_interval is None
    assert compare_human(result, result)["p_value"] is None


# --- intervals and tests against independent references -----------------------------------------


def test_wilson_matches_statsmodels() -> None:
    from statsmodels.stats.proportion import proportion_confint

    for k, n in [(0, 10), (3, 10), (10, 10), (17, 40), (120, 400), (1, 3)]:
        low, high = proportion_confint(k, n, alpha=0.05, method="wilson")
        assert wilson_interval(k, n) == pytest.approx((low, high), abs=1e-12)
    assert wilson_interval(0, 0) is None


def test_wilson_coverage_by_simulation_with_known_error_rates() -> None:
    """Measured (4,000 draws each, seed 0) vs exact (binomial sum) coverage of the 95% interval:
    p=0.05 n=40: 0.953 vs 0.952; p=0.2 n=40: 0.930 vs 0.928; p=0.5 n=40: 0.962 vs 0.962;
    p=0.2 n=400: 0.946 vs 0.948. Wilson's coverage oscillates around 95% with n and p.
    """
    from scipy.stats import binom

    rng = np.random.default_rng(0)
    for p, n in [(0.05, 40), (0.2, 40), (0.5, 40), (0.2, 400)]:
        covers = np.array([wilson_interval(k, n)[0] <= p <= wilson_interval(k, n)[1] for k in range(n + 1)])
        exact = float(binom.pmf(np.arange(n + 1), n, p)[covers].sum())
        simulated = float(covers[rng.binomial(n, p, size=4000)].mean())
        assert 0.92 < exact < 0.975, (p, n, exact)
        assert abs(simulated - exact) < 4 * np.sqrt(exact * (1 - exact) / 4000), (p, n, simulated, exact)


class _Rows:
    """A store holding simulated judgements (study_results reads only these two methods)."""

    def __init__(self, study: Study, rows: list[dict]) -> None:
        self.study, self.rows = study, rows

    def get_study(self, study_id: str) -> Study:
        return self.study

    def judgements(self, study_id: str) -> list[dict]:
        return self.rows


def _simulated_study(
    rng: np.random.Generator, fool: float, real_error: float, people: int, per_person: int
) -> list[dict]:
    rows = []
    for person in range(people):
        for i in range(per_person):
            truth = "fake" if i % 2 == 0 else "real"
            wrong = rng.random() < (fool if truth == "fake" else real_error)
            answer = {"fake": "real", "real": "fake"}[truth] if wrong else truth
            rows.append(
                {"participant_id": f"p{person}", "kind": "trial", "run": "m", "truth": truth,
                 "answer": answer, "correct": int(not wrong), "seconds": 1.0}
            )  # fmt: skip
    return rows


def test_study_results_intervals_cover_known_rates_in_simulated_studies() -> None:
    """300 simulated studies (20 people x 20 trials, fool rate 0.3, reals judged fake 0.1, so error 0.2):
    measured coverage 0.933 (fool rate), 0.973 (reals judged fake), 0.947 (both) at seed 0. People
    here do not differ; where they do, judgements are not independent and Wilson's interval is too
    narrow, which is why the spread across participants is reported beside it.
    """
    study = Study("s", "C", Path("."), ("m",), StudySettings(), "now", False, (100,))
    rng = np.random.default_rng(0)
    hits = np.zeros(3)
    reps = 300
    for _ in range(reps):
        (result,) = study_results(_Rows(study, _simulated_study(rng, 0.3, 0.1, 20, 20)), "s")
        for j, (interval, truth) in enumerate(
            [(result.fool_interval, 0.3), (result.real_error_interval, 0.1), (result.error_interval, 0.2)]
        ):
            hits[j] += interval[0] <= truth <= interval[1]
    coverage = hits / reps
    assert np.all(np.abs(coverage - LEVEL) < 4 * np.sqrt(LEVEL * (1 - LEVEL) / reps)), coverage


def _result(errors: int, n: int, run: str = "r") -> RunHumanResult:
    rate = errors / n
    return RunHumanResult(
        run, "s", "single", 10, 0, 0, n, 0, n // 2, 0, None, None, n - n // 2, 0, None, None,
        errors, rate, wilson_interval(errors, n), None, None, None, None,
    )  # fmt: skip


def test_compare_human_matches_statsmodels_and_finds_a_planted_difference() -> None:
    from statsmodels.stats.proportion import confint_proportions_2indep, proportions_ztest

    a, b = _result(90, 200, "a"), _result(30, 200, "b")
    found = compare_human(a, b)
    _, p_value = proportions_ztest([90, 30], [200, 200])
    low, high = confint_proportions_2indep(30, 200, 90, 200, method="newcomb", compare="diff")  # B - A
    assert found["test"] == "two-proportion z" and found["p_value"] == pytest.approx(p_value, rel=1e-9)
    assert found["interval"] == pytest.approx([low, high], abs=1e-12)
    assert found["difference"] == pytest.approx(-0.3) and found["significant"]
    same = compare_human(_result(40, 100), _result(41, 100))
    assert not same["significant"] and same["interval"][0] < 0 < same["interval"][1]
    small = compare_human(_result(1, 8), _result(6, 8))
    assert small["test"] == "fisher exact" and small["p_value"] == pytest.approx(0.04055944, rel=1e-6)


# --- command line --------------------------------------------------------------------------------


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "gen_eval", *args], capture_output=True, text=True, env=os.environ
    )


def test_cli_creates_shows_exports_and_closes(runs: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    made = runner.invoke(
        app,
        ["human", "create", str(runs), "--runs", "good,noise", "--trials", "12", "--samples", "20", "--json"],
    )
    assert made.exit_code == 0, made.output
    created = json.loads(made.stdout)
    from gen_eval.schemas import validator

    assert not list(validator("human-create").iter_errors(created))
    store = HumanStore.for_runs(runs)
    study = store.get_study(created["study_id"])
    assert created["code"] == study.code and created["counts"] == [20, 20]
    _play(store, study, lambda t: t.answer_truth if t.run != "good" else "real", 1.5)
    shown = runner.invoke(app, ["human", str(runs), "--study", study.code])
    assert shown.exit_code == 0, shown.output
    text = " ".join(shown.stdout.split())
    assert "good" in text and "noise" in text and "50% is the best possible" in text
    as_json = json.loads(
        runner.invoke(app, ["human", "show", str(runs), "--study", study.study_id, "--json"]).stdout
    )
    assert not list(validator("human").iter_errors(as_json))
    good = as_json["results"][0]
    assert good["run"] == "good" and good["error_rate"] == 0.5 and good["fool_rate"] == 1.0
    assert isinstance(good["judgements"], int) and as_json["note"] == CHANCE_NOTE
    out = tmp_path / "all.csv"
    exported = runner.invoke(
        app, ["human", str(runs), "--study", study.code, "--export", "csv", "--out", str(out)]
    )
    assert exported.exit_code == 0 and len(out.read_text().splitlines()) == 1 + len(
        store.judgements(study.study_id)
    )
    assert runner.invoke(app, ["human", "close", str(runs), "--study", study.code]).exit_code == 0
    assert store.get_study(study.study_id).closed


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["human", "{missing}"], "no such runs folder"),
        (["human", "create", "{runs}", "--runs", "good,nowhere"], "not a run"),
        (["human", "create", "{runs}", "--runs", "good", "--mode", "triple"], "choose single or pair"),
        (["human", "create", "{runs}", "--runs", "good", "--trials", "7"], "even number"),
        (["human", "{runs}", "--study", "NOPE42"], "no such study"),
        (["human", "{runs}", "--export", "csv"], "--export and --out go together"),
        (["human", "{runs}", "--bogus"], "No such option"),
    ],
)
def test_cli_errors_are_one_line(runs: Path, tmp_path: Path, args: list[str], expected: str) -> None:
    HumanStore.for_runs(runs).create_study(
        runs, ["good"], SETTINGS, show_progress=False
    )  # a study to look for
    filled = [a.format(runs=runs, missing=tmp_path / "missing") for a in args]
    done = _cli(*filled)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and expected in lines[0], done.stderr
    assert "Traceback" not in done.stderr


# --- where the results appear: compare and the run report -----------------------------------------


def test_compare_and_the_report_show_the_human_rates(runs: Path, tmp_path: Path) -> None:
    import gen_eval
    from gen_eval.report.run_report import write_report
    from gen_eval.schemas import validator

    store = HumanStore.for_runs(runs)
    study = store.create_study(runs, ["good", "noise"], SETTINGS, show_progress=False)
    for _ in range(2):  # "good" fools everyone, "noise" no one
        _play(
            store, study, lambda t: "real" if t.run == "good" and t.kind == "trial" else t.answer_truth, 1.0
        )
    comparison = gen_eval.compare(
        [runs / "good", runs / "noise"], num_resamples=0, cache_dir=tmp_path / "cache"
    )
    (human,) = comparison.human
    good, noise = study_results(store, study.study_id)
    assert noise.errors == 0 and noise.error_interval_people == noise.error_interval  # never [0, 0]
    assert human == {"label_a": "good", "label_b": "noise", "study_a": study.code, "study_b": study.code,
                     "same_study": True, **compare_human(good, noise)}  # fmt: skip
    assert human["difference"] == pytest.approx(0.0 - 0.5) and human["significant"]
    assert not list(validator("compare").iter_errors(json.loads(json.dumps(comparison.to_dict()))))
    from rich.console import Console

    from gen_eval.cli.compare import print_comparison

    console = Console(record=True, width=160)
    print_comparison(comparison, console)
    text = console.export_text()
    assert (
        "Human judgement" in text
        and "easier to tell from real" in text
        and "50% is the best possible" in text
    )
    from gen_eval.comparison.html import comparison_html

    compared = comparison_html(comparison)
    assert (
        "Human judgement" in compared
        and "easier to tell from real" in compared
        and "50% is the best" in compared
    )
    page = write_report(runs / "good", tmp_path / "good.html").read_text()
    assert (
        "<h2 id='human'>Human judgement</h2>" in page
        and study.code in page
        and "50% is the best possible" in page
    )
    assert "100.0% [" in page  # the fool rate of "good" with its interval


# --- when people differ: resampling participants ---------------------------------------------------


def _people(rng: np.random.Generator, rate: float, sd: float, people: int, trials: int, prefix: str) -> tuple:
    """Per-person (id, errors, judgements): each person's own error rate ~ Beta(mean rate, sd)."""
    scale = rate * (1 - rate) / sd**2 - 1
    own = rng.beta(rate * scale, (1 - rate) * scale, size=people)
    return tuple((f"{prefix}{i}", int(rng.binomial(trials, p)), trials) for i, p in enumerate(own))


def _pooled(per_person: tuple, run: str) -> RunHumanResult:
    errors, n = sum(e for _, e, _ in per_person), sum(j for _, _, j in per_person)
    return RunHumanResult(
        run, "s", "single", len(per_person), 0, 0, n, 0, n // 2, 0, None, None, n - n // 2, 0, None, None,
        errors, errors / n, wilson_interval(errors, n), None, None, None, None,
        per_participant=per_person,
    )  # fmt: skip


def test_the_interval_over_people_covers_when_people_differ_and_wilson_does_not() -> None:
    """20 people x 20 trials, error rates spread with sd 0.2 around 0.3, 300 studies at seed 1:
    measured coverage 0.947 resampling people, 0.600 for Wilson's over judgements."""
    from gen_eval.human.people import people_interval

    rng = np.random.default_rng(1)
    wilson = people = 0
    reps = 300
    for i in range(reps):
        per_person = _people(rng, 0.3, 0.2, 20, 20, "p")
        low, high = wilson_interval(sum(e for _, e, _ in per_person), 400)
        wilson += low <= 0.3 <= high
        low, high = people_interval(per_person, seed=i)
        people += low <= 0.3 <= high
    assert abs(people / reps - LEVEL) < 4 * np.sqrt(LEVEL * (1 - LEVEL) / reps), people / reps
    assert wilson / reps < 0.8  # the planted fault the interval over people fixes


def test_compare_human_keeps_its_false_alarms_near_5_percent_when_people_differ() -> None:
    """Two runs with the same true error rate 0.3, each judged by its own 20 people x 10 trials whose
    rates spread with sd 0.2 (300 pairs, seed 1): the z-test alone called 20.7% of them different,
    the test with the interval over people 5.3%. A planted difference (0.15 vs 0.45, sd 0.1) is
    still found in 100 of 100 pairs."""
    rng = np.random.default_rng(1)
    z_alone = claimed = 0
    reps = 300
    for _ in range(reps):
        versus = compare_human(
            _pooled(_people(rng, 0.3, 0.2, 20, 10, "a"), "a"),
            _pooled(_people(rng, 0.3, 0.2, 20, 10, "b"), "b"),
        )
        z_alone += versus["p_value"] < 0.05
        claimed += versus["significant"]
    assert z_alone / reps > 0.15 and claimed / reps < 0.08, (z_alone / reps, claimed / reps)
    found = sum(
        compare_human(
            _pooled(_people(rng, 0.15, 0.1, 20, 10, "a"), "a"),
            _pooled(_people(rng, 0.45, 0.1, 20, 10, "b"), "b"),
        )["significant"]
        for _ in range(100)
    )
    assert found >= 90


def test_reading_results_of_a_folder_without_studies_creates_nothing(runs: Path, tmp_path: Path) -> None:
    done = _cli("human", str(tmp_path))
    assert (
        done.returncode == 2
        and "no studies yet" in done.stderr
        and len(done.stderr.strip().splitlines()) == 1
    )
    assert not (tmp_path / "human").exists()
