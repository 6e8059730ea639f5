"""Streamlit entry point: ``gen-eval dashboard [RUNS_DIR]`` runs this file."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

PAGES = Path(__file__).parent / "pages"

st.set_page_config(page_title="gen-eval dashboard", layout="wide")
navigation = st.navigation(
    [
        st.Page(PAGES / "leaderboard.py", title="Leaderboard", default=True),
        st.Page(PAGES / "run.py", title="Run"),
        st.Page(PAGES / "compare.py", title="Compare"),
        st.Page(PAGES / "collapse.py", title="Mode collapse"),
        st.Page(PAGES / "latent.py", title="Latent explorer"),
    ]
)
navigation.run()
