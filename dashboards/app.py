"""Streamlit entry point: ``gen-eval dashboard [RUNS_DIR]`` runs this file.

From a checkout it also runs as ``streamlit run dashboards/app.py [-- RUNS_DIR]``.
"""

from __future__ import annotations

import sys
from pathlib import Path

# `streamlit run dashboards/app.py` puts only dashboards/ itself on sys.path, so the pages'
# `import dashboards...` would fail in a checkout; the folder above makes this very copy (and its
# gen_eval) importable. Installed, that folder is site-packages, already on the path.
_ROOT = str(Path(__file__).resolve().parent.parent)
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

import streamlit as st  # noqa: E402  (after the path fix, like every import the pages make)

PAGES = Path(__file__).parent / "views"  # not pages/: Streamlit would switch to its old automatic menu

st.set_page_config(page_title="gen-eval dashboard", layout="wide")
navigation = st.navigation(
    [
        st.Page(PAGES / "leaderboard.py", title="Leaderboard", default=True),
        st.Page(PAGES / "run.py", title="Run"),
        st.Page(PAGES / "compare.py", title="Compare"),
        st.Page(PAGES / "collapse.py", title="Mode collapse"),
        st.Page(PAGES / "latent.py", title="Latent explorer"),
        st.Page(PAGES / "human.py", title="Human judgement"),
    ]
)
navigation.run()
