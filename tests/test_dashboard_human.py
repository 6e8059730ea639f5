"""The dashboard's human judgement page under AppTest: no runs, a study in progress, a study finished.

Answers go through the page's own buttons; what they must produce is counted here from the
participant's schedule (``store.trials``), independently of ``study_results``.
"""

from __future__ import annotations

import json
import shutil
import sys
import time
from pathlib import Path

import pytest
import torch

import dashboards
import gen_eval
from dashboards import RUNS_ENV

PAGES = Path(dashboards.__file__).parent / "views"
SHOWN = "human_shown"  # the page's session key: (study, participant, trial) and when it was drawn


@pytest.fixture(scope="module")
def built_runs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two digits runs: a DCGAN and the training digits themselves (the real data)."""
    root = tmp_path_factory.mktemp("human-runs") / "runs"
    cache = tmp_path_factory.mktemp("human-cache")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        common = {"num_samples": 200, "num_resamples": 10, "cache_dir": cache}
        gen_eval.evaluate("ref:dcgan", "digits:test", out=root / "dcgan", **common)
        gen_eval.evaluate("digits:train", "digits:test", out=root / "real", **common)
    finally:
        torch.set_num_threads(threads)
    return root


@pytest.fixture
def runs_dir(built_runs: Path, tmp_path: Path) -> Path:
    """A fresh copy of the runs, so every test has its own judgement database."""
    return Path(shutil.copytree(built_runs, tmp_path / "runs"))


def _page(name: str, runs: Path, monkeypatch: pytest.MonkeyPatch, **query: str):
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv(RUNS_ENV, str(runs))
    monkeypatch.setattr(sys, "argv", ["app"])
    monkeypatch.setitem(sys.modules, "__main__", sys.modules["__main__"])  # see test_dashboard._page
    app = AppTest.from_file(str(PAGES / f"{name}.py"), default_timeout=120)
    for key, value in query.items():
        app.query_params[key] = value
    app.run()
    assert not app.exception, [e.message for e in app.exception]
    return app


def _texts(app, kind: str) -> str:
    return " ".join(str(element.value) for element in getattr(app, kind))


def _study(runs: Path, **settings):
    from gen_eval.human import HumanStore, StudySettings

    store = HumanStore.for_runs(runs)
    defaults = {"practice": 2, "attention_checks": 1, "trials_per_participant": 8, "samples_per_run": 20}
    study = store.create_study(
        runs, ["dcgan", "real"], StudySettings(**{**defaults, **settings}), show_progress=False
    )
    return store, study


def _click(app, label: str):
    [button] = [b for b in app.button if b.label == label]
    button.click().run()
    assert not app.exception, [e.message for e in app.exception]
    return app


def test_no_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    app = _page("human", tmp_path / "missing", monkeypatch)
    assert "50% error" in _texts(app, "caption")  # the page says 50% is the best possible
    assert "no such runs folder" in _texts(app, "error")  # taking part: one line, no traceback
    app.radio[0].set_value("Run a study").run()
    assert not app.exception and "does not exist" in _texts(app, "info")
    app = _page("human", tmp_path, monkeypatch)
    app.radio[0].set_value("Run a study").run()
    assert "No complete runs" in _texts(app, "info")


def test_study_in_progress(runs_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Open a study from the page, join it, answer by a script; the page's table matches the count."""
    from gen_eval.human import HumanStore

    app = _page("human", runs_dir, monkeypatch)
    app.radio[0].set_value("Run a study").run()
    app.multiselect[0].set_value(["dcgan", "real"])
    app.radio[1].set_value("single")
    for label, value in {"Practice": 2, "Attention": 1, "Judgements per": 8, "Samples per": 20}.items():
        [box] = [n for n in app.number_input if n.label.startswith(label)]
        box.set_value(value)
    app.get("form_submit_button")[0].click().run()
    assert not app.exception and not app.error, _texts(app, "error")
    store = HumanStore.for_runs(runs_dir)
    [study] = store.studies()
    assert study.code in _texts(app, "success") and study.settings.trials_per_participant == 8
    assert "No judgements yet" in _texts(app, "info")

    # A participant with the code in the address: the join form, then a random id in the address.
    person = _page("human", runs_dir, monkeypatch, study=study.code.lower())
    person.get("form_submit_button")[0].click().run()
    participant = person.query_params["participant"]
    assert participant in store.participants(study.study_id)
    trials = store.trials(study.study_id, participant)
    assert [t.kind for t in trials[:2]] == ["practice", "practice"] and len(trials) == 11
    # Script: practice answered "Real"; run "dcgan" always right; run "real" always "Real";
    # the attention check right. Stop after 7 of the 11.
    expected = {"dcgan": [0, 0], "real": [0, 0]}  # run -> [errors, counted]
    for trial in trials[:7]:
        assert len(person.image) == 1 and {b.label for b in person.button} >= {"Real", "Fake"}
        if (trial.kind == "trial" and trial.run == "dcgan") or trial.kind == "attention":
            answer = trial.answer_truth
        else:
            answer = "real"
        _click(person, answer.capitalize())
        if trial.kind == "practice":  # feedback on practice only
            shown = _texts(person, "success") + _texts(person, "warning")
            assert ("correct" if answer == trial.answer_truth else "not quite") in shown
        else:
            assert "Practice" not in _texts(person, "success") + _texts(person, "warning")
        if trial.kind == "trial":
            expected[trial.run][0] += answer != trial.answer_truth
            expected[trial.run][1] += 1
        rows = store.judgements(study.study_id)  # committed before the next trial is drawn
        assert rows[-1]["trial_id"] == trial.trial_id and rows[-1]["answer"] == answer
    assert len(store.judgements(study.study_id)) == 7
    assert "Judgement 8 of 11" in person.get("progress")[0].proto.text

    # A reload (a new session with the same address) continues at the first unanswered trial.
    again = _page("human", runs_dir, monkeypatch, study=study.code, participant=participant)
    assert "Judgement 8 of 11" in again.get("progress")[0].proto.text and not again.radio

    # Another page and back drops the address's parameters: the session still knows the participant.
    person.query_params.clear()
    person.run()
    assert "Judgement 8 of 11" in person.get("progress")[0].proto.text
    assert person.query_params["participant"] == participant
    _click(person, "Leave (your answers so far are kept)")  # and "Leave" forgets them
    assert "participant" not in person.query_params and person.text_input[0].label == "Study code"

    app.run()
    table = app.dataframe[0].value.set_index("run")
    metrics = {m.label: m.value for m in app.metric}
    assert metrics["Participants joined"] == "1" and metrics["Judgements recorded"] == "7"
    for run, (errors, counted) in expected.items():
        assert table.loc[run, "judgements"] == counted
        if counted:
            assert table.loc[run, "error rate"] == pytest.approx(errors / counted)


def test_time_limit_and_pair_mode(runs_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Pair mode shows two samples; an answer after the limit is recorded as "timeout"."""
    store, study = _study(runs_dir, mode="pair", time_limit_s=5.0, practice=0, attention_checks=0)
    person = _page("human", runs_dir, monkeypatch, study=study.code)
    person.get("form_submit_button")[0].click().run()
    participant = person.query_params["participant"]
    first, second = store.trials(study.study_id, participant)[:2]
    assert len(person.image) == 2 and [b.label for b in person.button][:2] == [
        "Left is fake",
        "Right is fake",
    ]
    assert "5 s per judgement" in _texts(person, "caption")
    assert "s left" in person.get("html")[0].proto.body  # the countdown
    _click(person, "Left is fake")
    # The second trial was drawn 6 s ago: the answer comes too late.
    person.session_state[SHOWN] = ((study.study_id, participant, second.trial_id), time.time() - 6)
    _click(person, "Right is fake")
    rows = store.judgements(study.study_id)
    assert [(r["trial_id"], r["answer"]) for r in rows] == [
        (first.trial_id, "0"),
        (second.trial_id, "timeout"),
    ]
    assert rows[0]["seconds"] < 5 < rows[1]["seconds"] < 60


def test_study_finished(runs_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every trial answered: the participant is thanked; the study closes; leaderboard and run page show it."""
    store, study = _study(runs_dir, practice=0, attention_checks=1)
    person = _page("human", runs_dir, monkeypatch, study=study.code)
    person.get("form_submit_button")[0].click().run()
    participant = person.query_params["participant"]
    trials = store.trials(study.study_id, participant)
    wrong = {"dcgan": 0, "real": 0}
    for trial in trials:  # always "Fake": every real sample judged wrong, every fake right
        _click(person, "Fake")
        wrong[trial.run] = wrong.get(trial.run, 0) + (trial.answer_truth == "real")
    assert "All 9 judgements done" in _texts(person, "success")
    assert len(store.judgements(study.study_id)) == 9 and not person.button

    latecomer = _page("human", runs_dir, monkeypatch, study=study.code)
    app = _page("human", runs_dir, monkeypatch)
    app.radio[0].set_value("Run a study").run()
    assert {m.label: m.value for m in app.metric}["Finished all 9"] == "1"
    assert [b.label for b in app.get("download_button")] == ["Export CSV", "Export JSON"]
    _click(app, "Close the study")
    assert store.get_study(study.study_id).closed and "closed" in _texts(app, "markdown")
    latecomer.get("form_submit_button")[0].click().run()
    assert "closed" in _texts(latecomer, "info") and "participant" not in latecomer.query_params

    table = app.dataframe[0].value.set_index("run")
    for run in ("dcgan", "real"):
        assert table.loc[run, "error rate"] == pytest.approx(wrong[run] / 4)  # 8 trials over 2 runs
        assert table.loc[run, "fakes judged real"] == 0 and table.loc[run, "reals judged fake"] == 1
    board = _page("leaderboard", runs_dir, monkeypatch)
    frame = board.dataframe[0].value.set_index("run")
    assert frame.loc["dcgan", "human"] == pytest.approx(0.5) and "human" in _texts(board, "caption")
    # Over the folder above, the study's database is found below the root (runs named runs/...).
    above = _page("leaderboard", runs_dir.parent, monkeypatch).dataframe[0].value.set_index("run")
    assert above.loc["runs/real", "human"] == pytest.approx(0.5)
    run_page = _page("run", runs_dir, monkeypatch)
    run_page.selectbox[0].set_value("real").run()
    assert "Human judgement" in [s.value for s in run_page.subheader]
    assert run_page.dataframe[1].value["error rate"][0] == pytest.approx(0.5)
    exported = json.loads(store.export(study.study_id, "json", runs_dir / "out.json").read_text())
    assert len(exported) == 9


def test_text_samples_show_as_strings(runs_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A study of text runs (``sample_text`` gives a string) shows the strings, not pictures."""
    import gen_eval.human

    store, study = _study(runs_dir, mode="pair", practice=0, attention_checks=0)
    monkeypatch.setattr(gen_eval.human, "sample_text", lambda study, sample_id: f"the string of {sample_id}")
    person = _page("human", runs_dir, monkeypatch, study=study.code)
    person.get("form_submit_button")[0].click().run()
    trial = store.trials(study.study_id, person.query_params["participant"])[0]
    assert not person.image
    assert [t.value for t in person.text] == [f"the string of {item.sample_id}" for item in trial.items]
