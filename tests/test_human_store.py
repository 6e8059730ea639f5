"""The human study's store: schema and migration, many writers, a killed writer, the schedule, snapshots."""

from __future__ import annotations

import io
import json
import multiprocessing
import os
import signal
import sqlite3
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from human_runs import make_runs
from PIL import Image

from gen_eval.errors import GenEvalError
from gen_eval.human import HumanStore, Study, StudySettings, sample_picture, sample_text
from gen_eval.human.schedule import schedule
from gen_eval.human.schema import SCHEMA_VERSION

SMALL = StudySettings(practice=2, attention_checks=1, trials_per_participant=10, samples_per_run=20)


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_runs(tmp_path_factory.mktemp("human-runs"))


@pytest.fixture
def study(runs: Path, tmp_path: Path) -> tuple[HumanStore, Study]:
    store = HumanStore(tmp_path / "judgements.sqlite")
    return store, store.create_study(runs, ["good", "noise"], SMALL, show_progress=False)


def _fake_study(mode: str = "single", runs: tuple[str, ...] = ("a", "b", "c"), **settings: int) -> Study:
    options = {"trials_per_participant": 40, "practice": 4, "attention_checks": 2, **settings}
    return Study(
        "s", "CODE", Path("."), runs, StudySettings(mode=mode, **options), "now", False, (30,) * len(runs)
    )


# --- schema -----------------------------------------------------------------------------------


def test_new_database_is_wal_and_at_the_current_version(tmp_path: Path) -> None:
    store = HumanStore.for_runs(tmp_path)
    assert store.path == tmp_path / "human" / "judgements.sqlite"
    with sqlite3.connect(store.path) as connection:
        assert connection.execute("SELECT version FROM schema_version").fetchall() == [(SCHEMA_VERSION,)]
        assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert store.migrated_from is None
    HumanStore(store.path)  # opening again changes nothing
    with sqlite3.connect(store.path) as connection:
        assert connection.execute("SELECT count(*) FROM schema_version").fetchone()[0] == 1


V1 = [  # the first format, written here as it was (no practice, closed flag or trial kind)
    "CREATE TABLE schema_version (version INTEGER NOT NULL)",
    "INSERT INTO schema_version VALUES (1)",
    "CREATE TABLE studies (study_id TEXT PRIMARY KEY, code TEXT NOT NULL UNIQUE, runs_dir TEXT NOT NULL, "
    "runs TEXT NOT NULL, settings TEXT NOT NULL, counts TEXT NOT NULL, created TEXT NOT NULL)",
    "CREATE TABLE participants (study_id TEXT NOT NULL, participant_id TEXT NOT NULL, joined TEXT NOT NULL, "
    "PRIMARY KEY (study_id, participant_id))",
    "CREATE TABLE judgements (study_id TEXT NOT NULL, participant_id TEXT NOT NULL, trial_id INTEGER NOT NULL, "
    "run TEXT NOT NULL, sample_id TEXT NOT NULL, truth TEXT NOT NULL, answer TEXT NOT NULL, seconds REAL NOT NULL, "
    "answered_at TEXT NOT NULL, PRIMARY KEY (study_id, participant_id, trial_id))",
]


def test_a_version_1_database_is_migrated_and_keeps_its_judgements(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite"
    settings = {
        "mode": "single",
        "trials_per_participant": 4,
        "attention_checks": 1,
        "samples_per_run": 5,
        "seed": 3,
    }
    with sqlite3.connect(path) as connection:
        for statement in V1:
            connection.execute(statement)
        connection.execute(
            "INSERT INTO studies VALUES ('s1', 'ABCDEF', ?, '[\"a\"]', ?, '[5]', '2026-01-01T00:00:00+00:00')",
            (str(tmp_path), json.dumps(settings)),
        )
        connection.execute("INSERT INTO participants VALUES ('s1', 'p-1', 't')")
        rows = [
            (0, "a", "r0-fake-1", "fake", "real"),
            (1, "a", "r0-real-2", "real", "real"),
            (4, "", "check-0", "fake", "real"),
        ]
        for trial_id, run, sample, truth, answer in rows:
            connection.execute(
                "INSERT INTO judgements VALUES ('s1', 'p-1', ?, ?, ?, ?, ?, 1.5, 't')",
                (trial_id, run, sample, truth, answer),
            )
    store = HumanStore(path)
    assert store.migrated_from == 1
    with sqlite3.connect(path) as connection:
        assert connection.execute("SELECT version FROM schema_version").fetchone()[0] == SCHEMA_VERSION
    study = store.get_study("s1")
    assert study.settings.practice == 0 and not study.closed and study.counts == (5,)
    found = {(row["trial_id"], row["kind"], row["correct"]) for row in store.judgements("s1")}
    assert found == {(0, "trial", 0), (1, "trial", 1), (4, "attention", 0)}
    # The migrated study goes on: its schedule has no practice, so the answered slots line up.
    trials = store.trials("s1", "p-1")
    assert [t.kind for t in trials].count("practice") == 0
    assert store.next_trial("s1", "p-1").trial_id in {2, 3}
    store.record("s1", "p-1", 2, "fake", 1.0)
    assert len(store.judgements("s1")) == 4


def test_newer_and_foreign_databases_are_one_line_errors(tmp_path: Path) -> None:
    newer = tmp_path / "newer.sqlite"
    with sqlite3.connect(newer) as connection:
        connection.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
        connection.execute("INSERT INTO schema_version VALUES (99)")
    with pytest.raises(GenEvalError, match="newer gen-eval"):
        HumanStore(newer)
    junk = tmp_path / "junk.sqlite"
    junk.write_bytes(b"not a database at all" * 100)
    with pytest.raises(GenEvalError, match=r"junk\.sqlite") as caught:
        HumanStore(junk)
    assert "\n" not in str(caught.value)


# --- many writers, a killed writer ---------------------------------------------------------------


def _answer_everything(path: str, study_id: str, participants: int, out: multiprocessing.Queue) -> None:
    store = HumanStore(path)
    answered = []
    for _ in range(participants):
        who = store.join(study_id)
        while (trial := store.next_trial(study_id, who)) is not None:
            answer = trial.answers()[trial.trial_id % 2]
            store.record(study_id, who, trial.trial_id, answer, 0.25)
            answered.append((who, trial.trial_id, answer))
    out.put(answered)


def test_concurrent_writers_from_several_processes_lose_nothing(study: tuple[HumanStore, Study]) -> None:
    store, made = study
    context = multiprocessing.get_context("fork")  # the children touch no torch state, only SQLite
    queue = context.Queue()
    workers = [
        context.Process(target=_answer_everything, args=(str(store.path), made.study_id, 3, queue))
        for _ in range(4)
    ]
    for worker in workers:
        worker.start()
    answered = [row for _ in workers for row in queue.get(timeout=120)]
    for worker in workers:
        worker.join(timeout=60)
        assert worker.exitcode == 0
    per_participant = SMALL.practice + SMALL.trials_per_participant + SMALL.attention_checks
    assert len(answered) == 4 * 3 * per_participant
    stored = {
        (row["participant_id"], row["trial_id"], row["answer"]) for row in store.judgements(made.study_id)
    }
    assert stored == set(answered)
    assert len(store.participants(made.study_id)) == 12


KILLED_WRITER = """
import sys
from gen_eval.human import HumanStore
store = HumanStore(sys.argv[1])
study_id, who = sys.argv[2], sys.argv[3]
while (trial := store.next_trial(study_id, who)) is not None:
    store.record(study_id, who, trial.trial_id, trial.answers()[0], 0.1)
    print(trial.trial_id, flush=True)  # said only after record returned: committed
"""


@pytest.mark.parametrize("kill_after", [1, 4, 9])
def test_a_writer_killed_mid_study_loses_no_committed_judgement(
    study: tuple[HumanStore, Study], kill_after: int
) -> None:
    store, made = study
    who = store.join(made.study_id)
    child = subprocess.Popen(
        [sys.executable, "-c", KILLED_WRITER, str(store.path), made.study_id, who],
        stdout=subprocess.PIPE,
        text=True,
    )
    acknowledged = [int(child.stdout.readline()) for _ in range(kill_after)]
    os.kill(child.pid, signal.SIGKILL)  # while it is writing the next ones
    child.wait(timeout=30)
    child.stdout.close()
    assert child.returncode == -signal.SIGKILL
    with sqlite3.connect(store.path) as connection:
        assert connection.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    stored = [row["trial_id"] for row in store.judgements(made.study_id) if row["participant_id"] == who]
    assert set(acknowledged) <= set(stored)
    order = [trial.trial_id for trial in store.trials(made.study_id, who)]
    assert stored == order[: len(stored)]  # answered in order, nothing skipped
    total = len(order)
    if len(stored) < total:  # the participant continues where the killed writer stopped
        assert store.next_trial(made.study_id, who).trial_id == order[len(stored)]
    while (trial := store.next_trial(made.study_id, who)) is not None:
        store.record(made.study_id, who, trial.trial_id, trial.answers()[1], 0.1)
    assert sorted(
        row["trial_id"] for row in store.judgements(made.study_id) if row["participant_id"] == who
    ) == sorted(order)


# --- answers ---------------------------------------------------------------------------------------


def test_answering_twice_a_bad_answer_and_a_closed_study_are_errors(study: tuple[HumanStore, Study]) -> None:
    store, made = study
    who = store.join(made.study_id)
    first = store.next_trial(made.study_id, who)
    store.record(made.study_id, who, first.trial_id, "fake", 2.0)
    with pytest.raises(GenEvalError, match="already answered"):
        store.record(made.study_id, who, first.trial_id, "real", 2.0)
    assert [row["answer"] for row in store.judgements(made.study_id)] == ["fake"]  # the first answer stands
    second = store.next_trial(made.study_id, who)
    with pytest.raises(GenEvalError, match="give one of real, fake, timeout"):
        store.record(made.study_id, who, second.trial_id, "0", 1.0)
    with pytest.raises(GenEvalError, match="has not joined"):
        store.record(made.study_id, "p-nobody", second.trial_id, "real", 1.0)
    with pytest.raises(GenEvalError, match="give the time taken"):
        store.record(made.study_id, who, second.trial_id, "real", float("nan"))
    with pytest.raises(GenEvalError, match="no trial 999"):
        store.record(made.study_id, who, 999, "real", 1.0)
    store.record(made.study_id, who, second.trial_id, "timeout", np.float32(4.0))  # the time ran out
    assert store.judgements(made.study_id)[-1]["answer"] == "timeout"
    second = store.next_trial(made.study_id, who)
    store.close_study(made.study_id)
    assert store.get_study(made.study_id).closed
    assert store.next_trial(made.study_id, who) is None
    with pytest.raises(GenEvalError, match="closed"):
        store.record(made.study_id, who, second.trial_id, "real", 1.0)
    with pytest.raises(GenEvalError, match="closed"):
        store.join(made.study_id)


def test_codes_find_the_study_and_exports_hold_every_row(
    study: tuple[HumanStore, Study], tmp_path: Path
) -> None:
    store, made = study
    assert len(made.code) == 6 and made.code.isalnum() and made.code.isupper()
    assert store.find_study(f" {made.code[:3].lower()}-{made.code[3:]} ") == made
    assert store.find_study("ZZZZZZ") is None
    assert store.studies() == [made]
    who = store.join(made.study_id)
    for _ in range(5):
        trial = store.next_trial(made.study_id, who)
        store.record(made.study_id, who, trial.trial_id, trial.answers()[0], 1.25)
    rows = store.judgements(made.study_id)
    as_json = json.loads(store.export(made.study_id, "json", tmp_path / "j.json").read_text())
    assert (
        as_json == rows
        and isinstance(as_json[0]["seconds"], float)
        and isinstance(as_json[0]["trial_id"], int)
    )
    import csv

    store.export(made.study_id, "csv", tmp_path / "j.csv")
    with (tmp_path / "j.csv").open(newline="") as handle:
        as_csv = list(csv.DictReader(handle))
    assert [row["sample_id"] for row in as_csv] == [row["sample_id"] for row in rows]
    assert {
        "study_id",
        "run",
        "sample_id",
        "truth",
        "answer",
        "seconds",
        "participant_id",
        "answered_at",
    } <= set(as_csv[0])
    with pytest.raises(GenEvalError, match="choose csv or json"):
        store.export(made.study_id, "xlsx", tmp_path / "j.xlsx")


# --- schedule --------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["single", "pair"])
def test_the_schedule_is_half_real_per_run_seeded_and_differs_per_participant(mode: str) -> None:
    made = _fake_study(mode, trials_per_participant=40)
    trials = schedule(made, "p-one")
    assert [t.kind for t in trials[:4]] == ["practice"] * 4
    assert [t.position for t in trials] == list(range(len(trials)))
    assert sorted(t.trial_id for t in trials) == list(range(4 + 40 + 2))
    scored = [t for t in trials if t.kind == "trial"]
    per_run = Counter(t.run for t in scored)
    assert sorted(per_run.values()) == [12, 14, 14]  # 20 real/fake units over 3 runs: 7, 7, 6
    for run in ("a", "b", "c"):
        truths = Counter(t.answer_truth for t in scored if t.run == run)
        assert truths[("fake" if mode == "single" else "0")] == truths[("real" if mode == "single" else "1")]
        for t in scored:
            assert {item.truth for item in t.items} == (
                {"real", "fake"} if mode == "pair" else {t.answer_truth}
            )
            assert all(item.run == t.run for item in t.items)
    if mode == "pair":
        assert all(t.items[int(t.answer_truth)].truth == "fake" for t in trials)
    checks = [t for t in trials if t.kind == "attention"]
    assert len(checks) == 2 and all(any(i.sample_id.startswith("check-") for i in t.items) for t in checks)
    assert schedule(made, "p-one") == trials  # seeded
    other = schedule(made, "p-two")
    assert [t.trial_id for t in other] != [t.trial_id for t in trials]
    assert [i.sample_id for t in other for i in t.items] != [i.sample_id for t in trials for i in t.items]
    reseeded = Study(
        "s", "C", Path("."), made.runs, StudySettings(mode=mode, seed=1), "now", False, made.counts
    )
    assert [t.trial_id for t in schedule(reseeded, "p-one")] != [t.trial_id for t in trials]


def test_a_participant_sees_distinct_samples_until_the_snapshot_runs_out() -> None:
    made = _fake_study(runs=("a",), trials_per_participant=40, practice=0)
    fakes = [
        t.items[0].sample_id for t in schedule(made, "p") if t.items[0].truth == "fake" and t.kind == "trial"
    ]
    assert len(fakes) == 20 and len(set(fakes)) == 20


def test_bad_settings_are_one_line_errors() -> None:
    for bad in ({"mode": "triple"}, {"trials_per_participant": 7}, {"time_limit_s": 0}, {"practice": -1}):
        with pytest.raises(GenEvalError) as caught:
            StudySettings(**bad)
        assert "\n" not in str(caught.value)


# --- snapshot and pictures ------------------------------------------------------------------------


def test_the_snapshot_holds_the_runs_samples_and_pictures_show_them_enlarged(
    study: tuple[HumanStore, Study], runs: Path
) -> None:
    _, made = study
    assert made.counts == (20, 20)
    with np.load(made.folder / "samples.npz", allow_pickle=False) as data:
        assert set(data.files) == {"r0_fake", "r0_real", "r1_fake", "r1_real", "check"}
        assert all(data[name].dtype == np.uint8 for name in data.files)
        good = np.load(runs / "arrays" / "good.npz")["arr_0"].transpose(0, 3, 1, 2)
        snapshot = json.loads((made.folder / "snapshot.json").read_text())
        taken = snapshot["runs"][0]["generated_indices"]
        assert np.array_equal(data["r0_fake"], good[taken])  # exactly the run's samples
        check = data["check"][0]
    picture = Image.open(io.BytesIO(sample_picture(made, "r0-fake-3")))
    assert picture.size == (256, 256)
    assert np.array_equal(np.asarray(picture)[::32, ::32], good[taken[3]][0])
    assert check.std() > 50  # the first attention check is noise, obviously not a digit
    assert sample_text(made, "r0-fake-3") is None
    with pytest.raises(GenEvalError, match="no such sample"):
        sample_picture(made, "r7-fake-0")


def test_a_run_whose_sources_are_gone_is_a_one_line_error_naming_it(runs: Path, tmp_path: Path) -> None:
    import shutil

    moved = tmp_path / "runs"
    shutil.copytree(runs, moved, ignore=shutil.ignore_patterns("human"))
    (moved / "arrays" / "noise.npz").unlink()
    # The manifest names the array by the path it had: point it at the copy that is now missing.
    manifest = json.loads((moved / "noise" / "manifest.json").read_text())
    spec = manifest["generated"]["spec"]
    assert spec.endswith("noise.npz")
    (runs / "arrays" / "noise.npz").rename(tmp_path / "away.npz")
    try:
        with pytest.raises(GenEvalError) as caught:
            HumanStore.for_runs(moved).create_study(moved, ["good", "noise"], SMALL, show_progress=False)
    finally:
        (tmp_path / "away.npz").rename(runs / "arrays" / "noise.npz")
    message = str(caught.value)
    assert "\n" not in message and str(moved / "noise") in message and "cannot be opened again" in message
    assert not any((moved / "human").glob("2*"))  # no half-made study folder
    with pytest.raises(GenEvalError, match="not a run"):
        HumanStore.for_runs(moved).create_study(moved, ["good", "nowhere"], SMALL, show_progress=False)
    with pytest.raises(GenEvalError, match="inside"):
        HumanStore.for_runs(moved / "arrays").create_study(
            moved / "arrays", ["../good"], SMALL, show_progress=False
        )


def test_a_run_of_vectors_is_refused_naming_it(tmp_path: Path) -> None:
    import gen_eval

    gen_eval.evaluate(
        "ring8:test", "ring8", features="identity", metrics=["fid"], collapse=False, num_resamples=2,
        num_samples=50, out=tmp_path / "ring", cache_dir=False,
    )  # fmt: skip
    with pytest.raises(GenEvalError) as caught:
        HumanStore.for_runs(tmp_path).create_study(tmp_path, ["ring"], SMALL, show_progress=False)
    message = str(caught.value)
    assert str(tmp_path / "ring") in message and "shows images" in message and "\n" not in message


def test_a_moved_runs_folder_keeps_its_studies(runs: Path, tmp_path: Path) -> None:
    import shutil

    made = HumanStore.for_runs(runs).create_study(runs, ["good"], SMALL, show_progress=False)
    moved = tmp_path / "elsewhere"
    shutil.copytree(runs, moved)
    study = HumanStore.for_runs(moved).get_study(made.study_id)
    assert study.runs_dir == moved and study.folder == moved / "human" / made.study_id
    assert sample_picture(study, "r0-real-0") == sample_picture(made, "r0-real-0")


def test_a_study_of_text_runs_shows_strings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Text runs (the text kind): strings are copied as code points and come back as strings."""
    text = pytest.importorskip("gen_eval.kinds.text")
    from dataclasses import dataclass

    import torch

    import gen_eval.human.snapshot as snapshot
    from gen_eval.sources.base import Batch, Source

    @dataclass
    class Strings(Source):
        kind = "array"
        items: tuple[str, ...] = ()

        def __post_init__(self) -> None:
            self.data_kind, self._count = "text", len(self.items)
            self.sample_shape = (max(map(len, self.items)),)

        def batches(self, batch_size: int):
            rows = text.encode_strings(list(self.items))
            for start in range(0, len(rows), batch_size):
                yield Batch(torch.from_numpy(rows[start : start + batch_size]))

    made_up = tuple(f"generated line {i}" for i in range(12))
    real = tuple(f"a somewhat longer real line number {i}" for i in range(12))
    monkeypatch.setattr(
        snapshot,
        "_reopen",
        lambda runs_dir, name, role, trust: Strings(role, made_up if role == "generated" else real),
    )
    (tmp_path / "lines").mkdir()
    (tmp_path / "lines" / "manifest.json").write_text("{}")
    store = HumanStore.for_runs(tmp_path)
    study = store.create_study(tmp_path, ["lines"], SMALL, show_progress=False)
    assert study.counts == (12,)
    shown = {sample_text(study, f"r0-fake-{i}") for i in range(12)}
    assert shown == set(made_up)
    assert sample_text(study, "r0-real-3") in real
    check = sample_text(study, "check-0")
    assert check and check not in made_up + real
    with pytest.raises(GenEvalError, match="shows text"):
        sample_picture(study, "r0-fake-0")
    trial = store.next_trial(study.study_id, store.join(study.study_id))
    assert trial is not None and all(sample_text(study, item.sample_id) for item in trial.items)
