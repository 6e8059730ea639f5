"""The Streamlit dashboard over a folder of runs (``gen-eval dashboard [RUNS_DIR]``).

It lives beside ``gen_eval/`` (a top-level ``dashboards/`` folder, as the design asks) and is
installed with gen-eval as the ``dashboards`` package, so the command works after a plain
``pip install``; from a checkout, ``streamlit run dashboards/app.py -- RUNS_DIR`` works too.

``app.py`` is the Streamlit entry point (navigation); ``views/`` holds one script per page (not ``pages/``: beside ``app.py`` that name makes Streamlit build its old automatic menu on a cold start)
(leaderboard, run, compare, mode collapse, latent explorer, human judgement); ``data.py`` finds
and loads runs and tolerates broken ones; ``widgets.py`` has the page building blocks. Pages only
read what the commands wrote, except what the latent explorer computes on request, which it saves
back into the run, and the human judgement page, which writes studies and answers to
``RUNS_DIR/human/`` through ``gen_eval.human.HumanStore``.
It sits above ``gen_eval``'s library layers and below ``gen_eval.cli`` (see ARCHITECTURE.md).
"""

from __future__ import annotations

from pathlib import Path

APP = Path(__file__).parent / "app.py"
RUNS_ENV = "GEN_EVAL_DASHBOARD_RUNS"
