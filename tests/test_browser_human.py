"""Two real browsers take one human study at once against one dashboard server, which is killed.

Each browser answers by its own script; the database must then hold every answer and the error
rates must be the ones the scripts imply (counted here from the schedules, not by
``study_results``'s code). Mid-study the server is killed with SIGKILL and started again: no
committed judgement may be lost, and both participants continue where they were (one by the
page reconnecting by itself, one by a reload). Skips when no browser can run here.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import torch

import gen_eval

KILL_AFTER = 5  # answers each participant gives before the server is killed


def _serve(runs: Path, port: int) -> subprocess.Popen:
    """`gen-eval dashboard` (which becomes the Streamlit server) on ``port``; waits until it answers."""
    server = subprocess.Popen(
        [sys.executable, "-m", "gen_eval", "dashboard", str(runs), "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2)
            return server
        except OSError:
            time.sleep(0.3)
    server.kill()
    raise AssertionError("the dashboard server did not start within 60 s")


def _answer_a(trial) -> str:
    """Participant A: right on dcgan and the attention check, "real" for everything else."""
    return trial.answer_truth if trial.run == "dcgan" or trial.kind == "attention" else "real"


def _answer_b(trial) -> str:
    """Participant B: "fake" for everything (which passes the attention check)."""
    return "fake"


@pytest.mark.timeout(300)
def test_two_browsers_at_once_and_a_killed_server(tmp_path: Path, artifacts_dir: Path) -> None:
    from browser import find_chromium, unavailable_reason

    reason = unavailable_reason()
    if reason is not None:
        pytest.skip(f"no headless browser: {reason}")
    from playwright.sync_api import TimeoutError as PlaywrightTimeout
    from playwright.sync_api import sync_playwright

    from gen_eval.cli.dashboard import free_port
    from gen_eval.human import HumanStore, StudySettings, study_results

    runs = tmp_path / "runs"
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        common = {"num_samples": 200, "num_resamples": 10, "cache_dir": tmp_path / "cache"}
        gen_eval.evaluate("ref:dcgan", "digits:test", out=runs / "dcgan", **common)
        gen_eval.evaluate("digits:train", "digits:test", out=runs / "real", **common)
    finally:
        torch.set_num_threads(threads)
    store = HumanStore.for_runs(runs)
    settings = StudySettings(practice=2, attention_checks=1, trials_per_participant=8, samples_per_run=20)
    study = store.create_study(runs, ["dcgan", "real"], settings, show_progress=False)
    scripts = [_answer_a, _answer_b]

    port = free_port()
    server = _serve(runs, port)
    try:
        with sync_playwright() as playwright:
            launch = {"executable_path": find_chromium(), "args": ["--no-sandbox", "--disable-gpu"]}
            browsers = [playwright.chromium.launch(**launch) for _ in scripts]  # two separate browsers
            pages = [b.new_page(viewport={"width": 1100, "height": 900}) for b in browsers]
            for page in pages:
                page.goto(f"http://127.0.0.1:{port}/human?study={study.code}", timeout=60_000)
            for page in pages:  # the code comes from the address: just join
                page.get_by_role("button", name="Join").click(timeout=60_000)
            for page in pages:
                page.wait_for_url("**participant=*", timeout=60_000)
            people = [page.url.split("participant=")[1].split("&")[0] for page in pages]
            schedules = [store.trials(study.study_id, person) for person in people]
            given: list[list[tuple[int, str]]] = [[], []]

            def button(index: int, position: int):
                """The answer button the script picks at ``position`` (None past the end).

                The buttons carry their trial in their key (class ``st-key-...``), so a stale button
                of the previous trial is never taken for this one.
                """
                if position >= len(schedules[index]):
                    return None
                trial = schedules[index][position]
                answer = scripts[index](trial)
                return trial, answer, pages[index].locator(f".st-key-answer-{trial.trial_id}-{answer} button")

            def shown(index: int, position: int, timeout_s: float) -> bool:
                """Whether the page reached ``position`` (its buttons, or the thank-you) in time."""
                found = button(index, position)
                target = pages[index].get_by_text("judgements done") if found is None else found[2]
                try:
                    target.wait_for(state="visible", timeout=timeout_s * 1000)
                except PlaywrightTimeout:
                    return False
                return True

            def answer_both(count: int) -> None:
                """Both participants answer ``count`` trials, clicking in turn, never waiting for the other."""
                for _ in range(count):
                    positions = [len(done) for done in given]
                    for index, position in enumerate(positions):
                        assert shown(index, position, 60), f"participant {index} stuck before {position}"
                        button(index, position)[2].click()
                    for index, position in enumerate(positions):
                        # A click sent while the page was still reconnecting to a restarted server is
                        # not delivered (the page says CONNECTING): the participant clicks again. The
                        # page ignores a second click on an answered trial, and the store refuses it.
                        for _ in range(3):
                            if shown(index, position + 1, 15):
                                break
                            button(index, position)[2].click()
                        else:
                            raise AssertionError(f"participant {index}: answer {position} not taken")
                        trial, answer, _ = button(index, position)
                        given[index].append((trial.trial_id, answer))

            answer_both(KILL_AFTER)
            pages[0].screenshot(path=str(artifacts_dir / "human-trial.png"), full_page=True)
            committed = {
                (r["participant_id"], r["trial_id"], r["answer"]) for r in store.judgements(study.study_id)
            }
            assert len(committed) == 2 * KILL_AFTER

            os.kill(server.pid, signal.SIGKILL)
            server.wait(timeout=20)
            server = _serve(runs, port)
            pages[1].reload()  # B reloads; A's page reconnects by itself
            after = {
                (r["participant_id"], r["trial_id"], r["answer"]) for r in store.judgements(study.study_id)
            }
            assert after == committed  # nothing committed was lost
            answer_both(len(schedules[0]) - KILL_AFTER)
            assert all(shown(index, len(schedules[index]), 60) for index in range(len(pages)))
            pages[0].screenshot(path=str(artifacts_dir / "human-done.png"), full_page=True)
            # The instructor's view of the same server: the CSV download holds every answer.
            instructor = browsers[0].new_page(accept_downloads=True, viewport={"width": 1280, "height": 1000})
            instructor.goto(f"http://127.0.0.1:{port}/human", timeout=60_000)
            instructor.get_by_text("Run a study").click(timeout=60_000)
            with instructor.expect_download(timeout=60_000) as download:
                instructor.get_by_role("button", name="Export CSV").click(timeout=60_000)
            exported = Path(download.value.path()).read_text(encoding="utf-8").splitlines()
            instructor.screenshot(path=str(artifacts_dir / "human-instructor.png"), full_page=True)
            for browser in browsers:
                browser.close()
    finally:
        server.kill()
        server.wait(timeout=20)

    rows = store.judgements(study.study_id)
    assert len(exported) == 1 + len(rows) == 1 + sum(len(schedule) for schedule in schedules)
    for index, person in enumerate(people):
        mine = sorted((r["trial_id"], r["answer"]) for r in rows if r["participant_id"] == person)
        assert mine == sorted(given[index])  # every answer, exactly as given, once
    expected: dict[str, dict[str, list[int]]] = {}  # run -> truth -> [wrong, shown]
    for index, schedule in enumerate(schedules):
        for trial in schedule:
            if trial.kind == "trial":
                tally = expected.setdefault(trial.run, {"real": [0, 0], "fake": [0, 0]})[trial.answer_truth]
                tally[0] += scripts[index](trial) != trial.answer_truth
                tally[1] += 1
    results = {r.run: r for r in study_results(store, study.study_id)}
    for run, tallies in expected.items():
        (fooled, fakes), (missed, reals) = tallies["fake"], tallies["real"]
        result = results[run]
        assert (result.participants, result.judgements, result.excluded_participants) == (2, fakes + reals, 0)
        assert result.fool_rate == pytest.approx(fooled / fakes)
        assert result.real_error_rate == pytest.approx(missed / reals)
        assert result.error_rate == pytest.approx((fooled + missed) / (fakes + reals))
    # The scripts imply: on dcgan A is always right and B wrong on reals; on "real" A is wrong on
    # fakes and B on reals; so 25% and 50% error.
    assert results["dcgan"].error_rate == pytest.approx(0.25) and results["real"].error_rate == pytest.approx(
        0.5
    )
