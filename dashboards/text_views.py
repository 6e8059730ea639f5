"""Text runs on the dashboard: the samples table with novelty marks, and the n-gram and length charts.

The same table and charts as the HTML report (:mod:`gen_eval.report.text_run`), drawn with
Streamlit; the run and compare pages call :func:`show_text_run` for runs that kept their strings.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import streamlit as st


def show_text_run(path: Path, key: str, shown: int = 100, charts: bool = True) -> bool:
    """Show a text run's strings (and charts); False, showing nothing, for a run that kept none.

    Parameters
    ----------
    path : Path
        The run folder.
    key : str
        Prefix of the Streamlit element keys (one page may show several runs).
    shown : int
        Rows of the table.
    charts : bool
        Also draw the 1-gram, 2-gram and length histograms.

    Returns
    -------
    bool
    """
    from gen_eval.report.text_run import figures, load_text_view
    from gen_eval.runs.run import load_run

    view = load_text_view(load_run(path))
    if view is None:
        return False
    marks = view.marks()
    total = max(len(view.generated), 1)
    st.caption(
        f"All {len(view.generated):,} generated strings: "
        + ", ".join(f"{name} {count:,} ({count / total:.1%})" for name, count in marks.items())
        + (f"; training set {view.train_spec}" if view.train_spec else "; no training set named")
        + ". Edits: Levenshtein distance to the nearest training string (0: a copy, 1-2: a near copy)."
    )
    st.dataframe(pd.DataFrame(view.rows(shown)), hide_index=True, width="stretch", key=f"{key}-strings")
    if charts:
        for index, figure in enumerate(figures(view)):
            st.plotly_chart(figure, width="stretch", key=f"{key}-text-{index}")
    return True
