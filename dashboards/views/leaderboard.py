"""Leaderboard: every run with its metrics and intervals, filters, a chart; pick a row to open it."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from dashboards.data import HUMAN, leaderboard_frame
from dashboards.widgets import SELECTED, load_human, load_runs, metric_bars
from gen_eval.human import CHANCE_NOTE

st.title("Leaderboard")
runs = load_runs()
frame = leaderboard_frame(runs, load_human())

left, right = st.columns(2)
references = left.multiselect("Reference", sorted(frame["reference"].unique()), placeholder="all references")
families = right.multiselect("Family", sorted(frame["family"].unique()), placeholder="all families")
if references:
    frame = frame[frame["reference"].isin(references)]
if families:
    frame = frame[frame["family"].isin(families)]
metrics = [c for c in frame.columns if f"{c} 95% CI" in frame.columns]
sort_by = "FID" if "FID" in metrics else (metrics[0] if metrics else "run")
frame = frame.sort_values(sort_by, na_position="last").reset_index(drop=True)

if frame["reference"].nunique() > 1:
    st.caption(
        "Runs against different references (or features) are not comparable: filter by reference to rank them."
    )
details = st.toggle("Show 95% intervals, model and features", key="leaderboard_details")
st.caption(
    f"{len(frame)} run(s). Click a column header to sort; select a row to open that run. "
    "Intervals are 95% bootstrap intervals over the generated samples (the chart below shows them too)."
)
if HUMAN in frame.columns:
    st.caption(
        f"**{HUMAN}**: the error rate of people telling the run's samples from real ones (the newest "
        f"study that judged it, page Human judgement), with a 95% Wilson interval. {CHANCE_NOTE}"
    )
# Every row and, by default, every metric visible in a 1,280-px window: the value columns first,
# the intervals and long identifiers on request; the grid grows with its rows (no 10-row box).
shown = ["run", "family", "collapse", *metrics]
if frame["reference"].nunique() > 1:
    shown.insert(2, "reference")
if details:
    shown = [*shown[:3], *(c for c in ("reference", "features", "model") if c not in shown), *shown[3:]]
    shown += [f"{m} 95% CI" for m in metrics]
config = {m: st.column_config.NumberColumn(m, format="%.4g", width="small") for m in metrics}
config["run"] = st.column_config.TextColumn("run", pinned=True)
if HUMAN in config:
    config[HUMAN] = st.column_config.NumberColumn(HUMAN, format="percent", width="small")
event = st.dataframe(
    frame[shown],
    hide_index=True,
    width="stretch",
    height="content",
    on_select="rerun",
    selection_mode="single-row",
    key="leaderboard",
    column_config=config,
)
picked = event.selection.rows if event is not None else []
if picked:
    st.session_state[SELECTED] = frame.iloc[picked[0]]["run"]
    st.switch_page(Path(__file__).parent / "run.py")

if metrics:
    chosen = st.selectbox("Chart", metrics, index=metrics.index(sort_by))
    st.plotly_chart(metric_bars(frame, chosen), width="stretch")
