"""Human judgement study (issue 26): participants judge samples, the instructor runs the study.

Participants join with the study code and get a random id (no name), kept in the session and
in the address (``?study=CODE&participant=ID``), so a reload or a restarted server continues at
their first unanswered trial. Every answer is committed to the runs folder's SQLite store
(``gen_eval.human``) in the button's callback, which Streamlit runs before the page is drawn
again: a judgement is durable before the next image appears.

Time limit: the countdown runs in the browser; the time that counts is measured here, from the
moment the server first drew the trial to the moment the answer reached it. An answer that
arrives later than the limit plus ``GRACE_S`` (the round trip) is recorded as ``"timeout"``
with the time it took, whichever button was pressed (HYPE_time: only answers within the limit
count); the page says so under the countdown, and the buttons stay so the participant can go on.
After a server restart the trial on screen is drawn again by the new server, so its clock starts
again (the answers already given are in the database; only that one trial's time is lost).
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

import streamlit as st

from dashboards.data import human_table
from dashboards.widgets import _root, human_error_bars, load_runs
from gen_eval.errors import GenEvalError
from gen_eval.human import HumanStore, StudySettings, sample_picture, sample_text, study_results
from gen_eval.human.model import CHANCE_NOTE, TIMEOUT
from gen_eval.human.results import INTERVAL_NOTE

STUDY_PARAM, PARTICIPANT_PARAM = "study", "participant"
SHOWN = "human_shown"  # session key: (trial id, when the server first drew it)
FEEDBACK = "human_feedback"  # session key: the practice feedback to show above the next trial
PROBLEM = "human_problem"  # session key: why the last answer could not be recorded
JOINED = "human_joined"  # session key: (study code, participant id) of this browser's participant
GRACE_S = 0.5  # the round trip between the browser's countdown and the server's clock
MODES = {
    "single": "One at a time: real or fake?",
    "pair": "Side by side: which one is fake?",
}


def _store() -> HumanStore:
    return HumanStore.for_runs(_root())


def timed_out(seconds: float, limit: float | None) -> bool:
    """Whether an answer that reached the server ``seconds`` after its trial was drawn is too late.

    Parameters
    ----------
    seconds : float
        From the server drawing the trial to the answer's callback.
    limit : float or None
        The study's time limit (None: no limit).

    Returns
    -------
    bool
        True when ``seconds`` exceeds ``limit`` by more than ``GRACE_S``.
    """
    return limit is not None and seconds > limit + GRACE_S


# ---------------------------------------------------------------- participant
def _answer(study_id: str, participant: str, trial_id: int, answer: str) -> None:
    """Button callback: record the answer (committed before the page is drawn again)."""
    store = _store()
    current = store.next_trial(study_id, participant)
    if current is None or current.trial_id != trial_id:
        return  # a second click on a trial already answered: the first answer stands
    shown = st.session_state.get(SHOWN)
    started = shown[1] if shown and shown[0] == (study_id, participant, trial_id) else time.time()
    seconds = round(time.time() - started, 3)
    if timed_out(seconds, store.get_study(study_id).settings.time_limit_s):
        answer = TIMEOUT
    try:
        store.record(study_id, participant, trial_id, answer, seconds)
    except GenEvalError as exc:  # closed meanwhile: shown on the page rather than as a traceback
        st.session_state[PROBLEM] = str(exc)
        return
    st.session_state.pop(SHOWN, None)
    if current.kind == "practice":
        st.session_state[FEEDBACK] = (answer == current.answer_truth, current.answer_truth, answer)


def _feedback(mode: str) -> None:
    correct, truth, answer = st.session_state.pop(FEEDBACK, (None, "", ""))
    if correct is None:
        return
    if answer == TIMEOUT:
        st.warning("Practice: too slow, that answer came after the time limit.")
        return
    if mode == "single":
        fact = f"that one was {truth}"
    else:
        fact = f"the {'left' if truth == '0' else 'right'} one was fake"
    (st.success if correct else st.warning)(f"Practice: {'correct' if correct else 'not quite'}, {fact}.")


def _problem() -> None:
    message = st.session_state.pop(PROBLEM, None)
    if message:
        st.error(message)


def _countdown(key: str, seconds_left: float) -> None:
    """A countdown drawn by the browser (no server round trips); red at zero."""
    st.html(
        f"""<div id="cd-{key}" style="font-size:1.3rem;font-weight:600"></div>
<script>
(function() {{
  const end = Date.now() + {max(seconds_left, 0.0) * 1000:.0f};
  const box = document.getElementById("cd-{key}");
  function tick() {{
    if (!box || !box.isConnected) return;
    const left = Math.max(0, (end - Date.now()) / 1000);
    box.textContent = left > 0 ? `${{left.toFixed(0)}} s left` : "Time is up: press either button to go on (recorded as timed out)";
    box.style.color = left > 0 ? "inherit" : "#c0392b";
    if (left > 0) setTimeout(tick, 200);
  }}
  tick();
}})();
</script>""",
        unsafe_allow_javascript=True,
    )


def _show_item(study: Any, sample_id: str, caption: str) -> None:
    text = sample_text(study, sample_id)
    if text is not None:
        with st.container(border=True):
            st.text(text)
        st.caption(caption)
    else:
        st.image(sample_picture(study, sample_id), caption=caption, width=320)


def _participant_view(store: HumanStore) -> None:
    code = st.query_params.get(STUDY_PARAM, "")
    participant = st.query_params.get(PARTICIPANT_PARAM, "")
    study = store.find_study(code) if code else None
    if study is None or not participant:
        if code and study is None:
            st.error(f"No study has the code {code!r}: check the code the instructor gave you.")
        with st.form("join"):
            typed = st.text_input("Study code", value=code, placeholder="the code the instructor shows")
            if st.form_submit_button("Join", type="primary"):
                found = store.find_study(typed.strip())
                if found is None:
                    st.error(
                        f"No study has the code {typed.strip()!r}: check the code the instructor gave you."
                    )
                elif found.closed:
                    st.info("That study is closed.")
                else:
                    st.query_params[STUDY_PARAM] = found.code
                    st.query_params[PARTICIPANT_PARAM] = store.join(found.study_id)
                    st.rerun()
        st.caption("You are given a random participant id; nobody asks your name.")
        return

    trials = store.trials(study.study_id, participant)
    answered = len(store.answered(study.study_id, participant))
    _feedback(study.settings.mode)
    _problem()
    if answered >= len(trials):
        st.success(f"All {len(trials)} judgements done. Thank you!")
        return
    trial = store.next_trial(study.study_id, participant)
    if study.closed or trial is None:
        st.info(f"The instructor has closed this study after your {answered} judgements. Thank you!")
        return
    done = sum(1 for t in trials if t.position < trial.position)
    st.progress(done / max(len(trials), 1), text=f"Judgement {done + 1} of {len(trials)}")
    if trial.kind == "practice":
        st.caption("Practice: you will be told whether you were right. These answers do not count.")
    key = (study.study_id, participant, trial.trial_id)
    if (st.session_state.get(SHOWN) or (None,))[0] != key:
        st.session_state[SHOWN] = (key, time.time())
    limit = study.settings.time_limit_s
    if limit:
        _countdown(f"{trial.trial_id}", limit - (time.time() - st.session_state[SHOWN][1]))
    args = (study.study_id, participant, trial.trial_id)
    if study.settings.mode == "single":
        st.subheader("Real or fake?")
        _show_item(study, trial.items[0].sample_id, "")
        choices = [("Real", "real"), ("Fake", "fake")]
    else:
        st.subheader("Which one is fake?")
        for column, item, side in zip(st.columns(2), trial.items, ("Left", "Right"), strict=True):
            with column:
                _show_item(study, item.sample_id, side)
        choices = [("Left is fake", "0"), ("Right is fake", "1")]
    for column, (label, answer) in zip(st.columns(2), choices, strict=True):
        column.button(
            label,
            key=f"answer-{trial.trial_id}-{answer}",
            on_click=_answer,
            args=(*args, answer),
            type="primary",
            width="stretch",
        )
    if limit:
        st.caption(
            f"You have {limit:g} s per judgement; a later answer is recorded as timed out, "
            "whichever button you press."
        )
    st.button("Leave (your answers so far are kept)", on_click=_leave, type="tertiary")


def _leave() -> None:
    """Forget this browser's participant: the page offers to join again (as a new participant)."""
    st.session_state.pop(JOINED, None)
    st.query_params.clear()


# ---------------------------------------------------------------- instructor
def _open_study(store: HumanStore, runs: list[Any]) -> None:
    names = [info.name for info in runs]
    with st.form("open_study"):
        chosen = st.multiselect("Runs to judge", names, default=names[: min(4, len(names))])
        mode = st.radio("Question", list(MODES), format_func=MODES.get, horizontal=True)
        left, middle, right = st.columns(3)
        limit = left.number_input("Time limit per judgement, s (0: none)", 0.0, 600.0, 0.0, 1.0, "%.1f")
        practice = middle.number_input("Practice items (with feedback)", 0, 20, 4)
        checks = right.number_input("Attention checks (broken images)", 0, 20, 2)
        trials = left.number_input("Judgements per participant (even)", 2, 1000, 40, 2)
        samples = middle.number_input("Samples per run", 2, 10_000, 100)
        seed = right.number_input("Seed", 0, 2**31 - 1, 0)
        opened = st.form_submit_button("Open the study", type="primary")
    if not opened:
        return
    if not chosen:
        st.error("Pick at least one run.")
        return
    settings = StudySettings(
        mode=mode,
        time_limit_s=float(limit) or None,
        practice=int(practice),
        attention_checks=int(checks),
        trials_per_participant=int(trials),
        samples_per_run=int(samples),
        seed=int(seed),
    )
    try:
        with st.spinner("Taking the samples for the study..."):
            study = store.create_study(_root(), chosen, settings, show_progress=False)
    except GenEvalError as exc:
        st.error(str(exc))
        return
    st.session_state["human_study_choice"] = study.study_id
    st.success(f"Study open: its code is **{study.code}**.")


def _export(store: HumanStore, study_id: str, fmt: str) -> bytes:
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / f"judgements.{fmt}"
        store.export(study_id, fmt, out)
        return out.read_bytes()


PERCENT_COLUMNS = ("error rate", "fakes judged real", "reals judged fake")


@st.fragment(run_every=5)
def _live_results(study_id: str) -> None:
    """Progress and per-run results, refreshed every 5 s while the page is open."""
    store = _store()
    study = store.get_study(study_id)
    judgements = store.judgements(study_id)
    settings = study.settings
    total = settings.practice + settings.trials_per_participant + settings.attention_checks
    answers: dict[str, int] = {}
    for row in judgements:
        answers[row["participant_id"]] = answers.get(row["participant_id"], 0) + 1
    joined, recorded, finished = st.columns(3)
    joined.metric("Participants joined", len(store.participants(study_id)))
    recorded.metric("Judgements recorded", len(judgements))
    finished.metric(f"Finished all {total}", sum(count >= total for count in answers.values()))
    if not judgements:
        st.info("No judgements yet: results appear here as participants answer.")
        return
    results = study_results(store, study_id)
    st.dataframe(
        human_table(results),
        hide_index=True,
        width="stretch",
        column_config={c: st.column_config.NumberColumn(c, format="percent") for c in PERCENT_COLUMNS},
    )
    st.caption(
        f"{INTERVAL_NOTE}. Practice answers, timed-out trials and participants who missed an "
        "attention check are left out (and counted)."
    )
    if any(r.error_rate is not None for r in results):
        st.plotly_chart(human_error_bars(results), width="stretch", key="human-errors")


def _instructor_view() -> None:
    runs = load_runs()  # stops with a message when there is nothing to judge
    store = _store()
    with st.expander("Open a new study", expanded=not store.studies()):
        _open_study(store, runs)
    studies = sorted(store.studies(), key=lambda s: s.created, reverse=True)
    if not studies:
        return
    by_id = {s.study_id: s for s in studies}
    wanted = st.session_state.get("human_study_choice")
    chosen = st.selectbox(
        "Study",
        list(by_id),
        index=list(by_id).index(wanted) if wanted in by_id else 0,
        format_func=lambda i: (
            f"{by_id[i].code} · {', '.join(by_id[i].runs)} · {by_id[i].created[:16].replace('T', ' ')}"
            + (" · closed" if by_id[i].closed else "")
        ),
    )
    study = by_id[chosen]
    st.session_state["human_study_choice"] = study.study_id
    settings = study.settings
    st.markdown(
        f"Code **{study.code}** · {MODES[settings.mode]} · "
        + (f"{settings.time_limit_s:g} s per judgement" if settings.time_limit_s else "no time limit")
        + f" · {settings.practice} practice · {settings.attention_checks} attention checks"
        + f" · {settings.trials_per_participant} judgements each"
        + (" · **closed**" if study.closed else " · open")
    )
    if not study.closed:
        address = f"{st.context.url or ''}?{STUDY_PARAM}={study.code}" if st.context.url else ""
        st.info(
            f"Participants open this page, choose **Take part** and type **{study.code}**"
            + (f", or open {address}" if address else "")
            + ". Nobody is asked for a name."
        )
    _live_results(study.study_id)
    left, middle, right = st.columns(3)
    if not study.closed and left.button("Close the study", key="close_study"):
        store.close_study(study.study_id)
        st.rerun()
    for column, fmt in ((middle, "csv"), (right, "json")):
        column.download_button(
            f"Export {fmt.upper()}",
            lambda fmt=fmt: _export(store, study.study_id, fmt),
            file_name=f"judgements-{study.code}.{fmt}",
            mime="text/csv" if fmt == "csv" else "application/json",
            key=f"export_{fmt}",
        )


# ---------------------------------------------------------------- page
st.title("Human judgement")
st.caption(CHANCE_NOTE)
# The address carries the participant (a reload or a restarted server keeps it); the session keeps
# it too, because moving to another page of the dashboard and back drops the address's parameters.
if st.query_params.get(PARTICIPANT_PARAM):
    st.session_state[JOINED] = (st.query_params.get(STUDY_PARAM, ""), st.query_params[PARTICIPANT_PARAM])
elif st.session_state.get(JOINED):
    st.query_params[STUDY_PARAM], st.query_params[PARTICIPANT_PARAM] = st.session_state[JOINED]
participating = bool(st.query_params.get(PARTICIPANT_PARAM))
role = (
    "Take part"
    if participating
    else st.radio(
        "You are here to", ["Take part", "Run a study"], horizontal=True, label_visibility="collapsed"
    )
)
try:
    if role == "Take part":
        _participant_view(_store())
    else:
        _instructor_view()
except GenEvalError as exc:
    st.error(str(exc))
    st.stop()
