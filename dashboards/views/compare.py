"""Compare: two or more runs, the compare command's table and charts; incomparable runs refused."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import streamlit as st

from dashboards.data import default_pair
from dashboards.widgets import load_runs
from gen_eval.errors import GenEvalError

st.title("Compare runs")
runs = load_runs()
names = [r.name for r in runs]
chosen = st.multiselect(
    "Runs (the first is the baseline A)",
    names,
    default=default_pair(runs),
    max_selections=8,
    help="Starts with the best and the worst comparable run (same reference and features) by FID, "
    "or the two most recent runs.",
)
left, right = st.columns(2)
resamples = left.select_slider("Bootstrap resamples per run", [0, 50, 100, 200], value=100)
force = right.checkbox("Compare anyway when references or features differ (rows marked)")
if len(chosen) < 2:
    st.info("Pick at least two runs.")
    st.stop()


@st.cache_data(show_spinner="Bootstrapping the differences...", max_entries=16)
def _compare(paths: tuple[str, ...], resamples: int, force: bool, stamps: tuple[float, ...]):
    from gen_eval.comparison.compare import compare

    return compare(list(paths), num_resamples=resamples, force=force)


paths = tuple(str(runs[names.index(n)].path) for n in chosen)
try:
    comparison = _compare(
        paths, resamples, force, tuple(runs[names.index(n)].path.stat().st_mtime for n in chosen)
    )
except GenEvalError as exc:
    st.error(str(exc))
    st.stop()

for warning in comparison.warnings:
    st.warning(warning)
for note in comparison.notes:
    st.caption(note)


def _interval(interval) -> str:
    return "" if not interval else f"{interval[0]:+.4g} – {interval[1]:+.4g}"


table = pd.DataFrame(
    [
        {
            "metric": row.metric,
            "A": row.run_a,
            "B": row.run_b,
            "value A": row.a,
            "value B": row.b,
            "B - A": row.difference,
            "95% interval": _interval(row.interval),
            "verdict": row.verdict if row.comparable else "not comparable",
            "method": row.method,
            "notes": "; ".join(row.warnings),
        }
        for row in comparison.rows
    ]
)
st.dataframe(table, hide_index=True, width="stretch")
if comparison.ranking:
    st.subheader(f"Ranking by {comparison.ranking_metric}")
    st.dataframe(
        pd.DataFrame(
            [
                {
                    "rank": e.rank,
                    "run": e.run,
                    "value": e.value,
                    "- best": e.difference,
                    "95% interval": _interval(e.difference_interval),
                    "verdict": e.verdict,
                }
                for e in comparison.ranking
            ]
        ),
        hide_index=True,
    )

from gen_eval.comparison.html import comparison_figures  # noqa: E402  (plotly only once needed)

for name, figure in comparison_figures(comparison).items():
    st.plotly_chart(figure, width="stretch", key=f"compare-{name}")
columns = st.columns(len(comparison.runs))
for column, summary in zip(columns, comparison.runs, strict=True):
    column.markdown(f"**{summary.label}**")
    column.image(str(Path(summary.path) / "samples.png"))
    column.caption(summary.collapse_verdict or "collapse not checked")

from gen_eval.report.pointclouds import cloud_figure, read_run_clouds  # noqa: E402

clouds = {s.label: c["generated"] for s in comparison.runs if "generated" in (c := read_run_clouds(s.path))}
if clouds:  # runs of point clouds: their first generated clouds, one row per run
    st.subheader("Point clouds in 3-D")
    st.plotly_chart(cloud_figure(clouds, title="drag to turn"), width="stretch", key="compare-clouds")

texts = [s for s in comparison.runs if (Path(s.path) / "text" / "generated.json").is_file()]
if texts:  # text runs: each run's first strings with their marks and nearest training strings
    from dashboards.text_views import show_text_run
    from gen_eval.report.text_compare import text_comparison_figures
    from gen_eval.report.text_run import load_text_view
    from gen_eval.runs.run import load_run

    st.subheader("Strings")
    views = {s.label: load_text_view(load_run(Path(s.path))) for s in texts}
    for index, figure in enumerate(
        text_comparison_figures({k: v for k, v in views.items() if v is not None})
    ):
        st.plotly_chart(figure, width="stretch", key=f"compare-text-{index}")
    for column, summary in zip(st.columns(len(texts)), texts, strict=True):
        with column:
            st.markdown(f"**{summary.label}**")
            show_text_run(Path(summary.path), f"compare-{summary.label}", shown=20, charts=False)
