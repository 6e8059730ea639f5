"""The Streamlit dashboard over a folder of runs (``gen-eval dashboard [RUNS_DIR]``).

``app.py`` is the Streamlit entry point (navigation); ``pages/`` holds one script per page
(leaderboard, run, compare, mode collapse, latent explorer); ``data.py`` finds and loads runs
and tolerates broken ones; ``widgets.py`` has the page building blocks. The package ships with
gen-eval, so the command works after a plain ``pip install``. Pages only read what the commands
wrote, except what the latent explorer computes on request, which it saves back into the run.
"""

from __future__ import annotations

from pathlib import Path

APP = Path(__file__).parent / "app.py"
RUNS_ENV = "GEN_EVAL_DASHBOARD_RUNS"
