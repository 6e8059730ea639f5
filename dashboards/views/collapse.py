"""Mode collapse: the verdict, each finding, and the detectors' figures and evidence images."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboards.data import figure_files
from dashboards.widgets import choose_run, load_runs, show_stored_figure

# Scatter with modes first, then histograms, NDB bins and their images, then duplicate pairs.
ORDER = (
    "modes",
    "known_modes",
    "stacked",
    "classes",
    "ndb",
    "ndb_bins",
    "birthday",
    "duplicates",
    "copies",
    "vendi",
)

st.title("Mode collapse")
runs = load_runs()
checked = [r for r in runs if r.collapse]
if not checked:
    st.info(
        "No run here has a mode-collapse check. `gen-eval evaluate` runs it by default (or `gen-eval collapse ... --out`)."
    )
    st.stop()
info = choose_run(checked, key="collapse_run")
status = info.collapse.get("status", "")
show = st.success if status == "ok" else (st.warning if status == "warning" else st.error)
show(info.verdict)
findings = info.collapse.get("findings", [])
if findings:
    st.dataframe(pd.DataFrame(findings), hide_index=True, width="stretch")
skipped = info.collapse.get("skipped") or {}
if skipped:
    st.caption("Not run: " + "; ".join(f"{k}: {v}" for k, v in skipped.items()))

files = figure_files(info, "collapse")
files.sort(key=lambda item: ORDER.index(item[0]) if item[0] in ORDER else len(ORDER))
if not files:
    st.info("This run stored no collapse figures.")
for _stem, json_path, png_path in files:
    show_stored_figure(json_path, png_path)
with st.expander("Every detector's numbers"):
    st.json(info.collapse.get("detectors", {}), expanded=1)
