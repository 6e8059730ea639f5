"""Building blocks the dashboard pages share: the run list, run choice, and stored figures."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import streamlit as st

from dashboards.data import RunInfo, find_runs, human_results, root_problem, runs_root
from gen_eval.errors import GenEvalError

SELECTED = "selected_run"  # session key: the run chosen on the leaderboard


def _root() -> Path:
    # `streamlit run app.py -- RUNS_DIR` puts RUNS_DIR in sys.argv; tests use the environment.
    argument = sys.argv[1] if len(sys.argv) > 1 and not sys.argv[1].startswith("-") else None
    return runs_root(argument)


# A cold first load verifies every run's checksums, which takes a while: say so rather than
# leave the page showing only its title.
@st.cache_data(show_spinner="Loading the runs and verifying their checksums...", ttl=10)
def _cached_runs(root: str, stamp: float) -> list[RunInfo]:
    return find_runs(Path(root))


def _stamp(root: Path) -> float:
    """Changes when a run is added, replaced or removed (each is a rename inside its parent)."""
    try:
        return max([root.stat().st_mtime] + [p.stat().st_mtime for p in root.iterdir() if p.is_dir()])
    except OSError:
        return 0.0


def load_runs(show_broken: bool = True) -> list[RunInfo]:
    """The loaded runs under the runs folder; stops the page with a message when there are none."""
    root = _root()
    problem = root_problem(root)
    if problem:
        st.info(problem)
        st.stop()
    runs = _cached_runs(str(root.resolve()), _stamp(root))
    broken = [r for r in runs if not r.ok]
    good = [r for r in runs if r.ok]
    if show_broken and broken:
        with st.expander(f"{len(broken)} run(s) could not be loaded", expanded=not good):
            for info in broken:
                st.warning(f"**{info.name}**: {info.error}")
    if not good:
        st.info(
            f"No complete runs under {root}. Create some with `gen-eval demo` or `gen-eval evaluate ... --out {root}/NAME`."
        )
        st.stop()
    return good


def load_human() -> dict[str, Any]:
    """Each run's newest human judgement results (``data.human_results``); a warning when unreadable."""
    try:
        return human_results(_root())
    except GenEvalError as exc:
        st.warning(f"Human judgements cannot be read: {exc}")
        return {}


def choose_run(runs: list[RunInfo], label: str = "Run", key: str = "run_choice") -> RunInfo:
    """A select box over ``runs``, starting at the run picked on the leaderboard."""
    names = [r.name for r in runs]
    wanted = st.session_state.get(SELECTED) or st.query_params.get("run")
    index = names.index(wanted) if wanted in names else 0
    name = st.selectbox(label, names, index=index, key=key)
    st.session_state[SELECTED] = name
    return runs[names.index(name)]


def show_stored_figure(json_path: Path, png_path: Path | None) -> None:
    """A figure a command stored: image grids as their PNG with captions, the rest as plotly."""
    import plotly.io

    try:
        spec = json.loads(json_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        st.warning(f"{json_path.name}: cannot be read ({exc})")
        return
    traces = spec.get("data", [])
    layout = spec.get("layout", {})
    title = layout.get("title", "")
    title = title.get("text", "") if isinstance(title, dict) else title
    if png_path is not None and traces and all(t.get("type") == "image" for t in traces):
        st.markdown(f"**{title or json_path.stem}**")
        captions = [a.get("text", "") for a in layout.get("annotations", []) if a.get("text")]
        st.image(str(png_path))
        if captions:
            st.caption(" · ".join(f"row {i + 1}: {c}" for i, c in enumerate(captions)))
        return
    try:
        figure = plotly.io.from_json(json.dumps(spec))
    except ValueError as exc:
        st.warning(f"{json_path.name}: not a figure ({exc})")
        return
    st.plotly_chart(figure, width="stretch", key=f"fig-{json_path}")


def metric_name(name: str, result: dict[str, Any]) -> str:
    """A stored metric's display name; FID says its N (``FID at N=500``), as the terminal and report do."""
    from gen_eval.metrics.result import display_name

    count = result.get("num_generated")
    label = display_name(name)
    return f"{label} at N={count:,}" if name == "fid" and isinstance(count, int) else label


def interval_notes(metrics: dict[str, dict[str, Any]]) -> list[str]:
    """One markdown line per metric whose stored interval says what it covers (none for older runs).

    Parameters
    ----------
    metrics : dict
        A run's ``metrics.json["metrics"]``.

    Returns
    -------
    list of str
    """
    return [
        f"**{metric_name(name, r)}** interval: {r['interval_covers']}"
        for name, r in metrics.items()
        if r.get("interval") and r.get("interval_covers")
    ]


def metric_bars(frame: Any, metric: str) -> Any:
    """Bar chart of one leaderboard metric per run with its 95% interval as error bars."""
    import plotly.graph_objects as go

    values = frame[metric]
    shown = frame[values.notna()].sort_values(metric)
    lows, highs = [], []
    for value, text in zip(shown[metric], shown[f"{metric} 95% CI"], strict=True):
        if text:
            low, high = (float(part) for part in text.split(" – "))
            lows.append(value - low)
            highs.append(high - value)
        else:
            lows.append(0.0)
            highs.append(0.0)
    figure = go.Figure(
        go.Bar(
            x=shown["run"],
            y=shown[metric],
            error_y={"type": "data", "array": highs, "arrayminus": lows, "symmetric": False},
            marker_color="#1f77b4",
        )
    )
    title = f"{metric} with 95% intervals" + (" (FID at each run's N)" if metric == "FID" else "")
    figure.update_layout(title=title, height=380, margin={"t": 50, "b": 120})
    return figure


def human_error_bars(results: list[Any]) -> Any:
    """Each run's human error rate with its 95% Wilson interval, and the 50% line (the best possible).

    Parameters
    ----------
    results : list of RunHumanResult

    Returns
    -------
    plotly.graph_objects.Figure
    """
    import plotly.graph_objects as go

    shown = [r for r in results if r.error_rate is not None]
    figure = go.Figure(
        go.Bar(
            x=[r.run for r in shown],
            y=[r.error_rate for r in shown],
            error_y={
                "type": "data",
                "symmetric": False,
                "array": [r.error_interval[1] - r.error_rate for r in shown],
                "arrayminus": [r.error_rate - r.error_interval[0] for r in shown],
            },
            marker_color="#1f77b4",
        )
    )
    figure.add_hline(
        y=0.5,
        line_dash="dot",
        annotation_text="50%: indistinguishable from real (best)",
        annotation_position="top left",
    )
    figure.update_layout(
        title="Human error rate with 95% intervals",
        yaxis={"range": [0, 1], "tickformat": ".0%"},
        height=340,
        margin={"t": 50},
    )
    return figure
