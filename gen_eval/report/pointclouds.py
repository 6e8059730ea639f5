"""Interactive 3-D views of point clouds (plotly), for run reports, compare pages and the dashboard.

A run of point clouds keeps its first clouds in ``clouds.npz`` (``generated`` and, when known,
``reference``; written by the kind's ``run_files``). :func:`cloud_figure` draws a few of them as
3-D scatter plots side by side, each in its own scene that can be turned with the mouse, the
same colours as the rest of the report (generated blue, reference grey).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import plotly.graph_objects as go

CLOUDS_FILE = "clouds.npz"
GENERATED, REFERENCE = "#1f77b4", "#7f7f7f"


def read_run_clouds(run_dir: str | Path) -> dict[str, np.ndarray]:
    """The clouds a run kept (``{"generated": (n, P, 3), "reference": ...}``), or {} when it kept none.

    Loaded with ``allow_pickle=False``; an unreadable file reads as none kept.
    """
    path = Path(run_dir) / CLOUDS_FILE
    if not path.is_file():
        return {}
    try:
        with np.load(path, allow_pickle=False) as archive:
            return {name: np.asarray(archive[name], np.float32) for name in archive.files}
    except (OSError, ValueError):
        return {}


def cloud_figure(
    sets: dict[str, np.ndarray], per_set: int = 4, title: str = "", max_points: int = 2048
) -> go.Figure:
    """Rows of interactive 3-D scatters: ``per_set`` clouds of each named set.

    Parameters
    ----------
    sets : dict
        Row name -> float (n, P, 3) clouds (``{"generated": ..., "reference": ...}``).
    per_set : int
        Clouds shown per row (the first ones).
    title : str
        Figure title.
    max_points : int
        Points drawn per cloud (the first ones; shapes3d's points are in random order).

    Returns
    -------
    plotly.graph_objects.Figure
    """
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    rows = [(name, clouds[:per_set]) for name, clouds in sets.items() if len(clouds)]
    columns = max((len(clouds) for _, clouds in rows), default=1)
    figure = make_subplots(
        rows=max(len(rows), 1),
        cols=columns,
        specs=[[{"type": "scene"}] * columns for _ in range(max(len(rows), 1))],
        subplot_titles=[f"{name} #{i}" for name, clouds in rows for i in range(columns) if i < len(clouds)]
        or None,
        horizontal_spacing=0.01,
        vertical_spacing=0.05,
    )
    for row, (name, clouds) in enumerate(rows, start=1):
        colour = REFERENCE if name.startswith("reference") else GENERATED
        for column, cloud in enumerate(clouds, start=1):
            points = np.asarray(cloud[:max_points], np.float64)
            figure.add_trace(
                go.Scatter3d(
                    x=points[:, 0],
                    y=points[:, 1],
                    z=points[:, 2],
                    mode="markers",
                    marker={"size": 1.5, "color": colour},
                    name=f"{name} #{column - 1}",
                    showlegend=False,
                    hoverinfo="skip",
                ),
                row=row,
                col=column,
            )
    # One cube per scene, the same for every cloud: sizes compare across the grid.
    extent = max((float(np.abs(c).max()) for _, clouds in rows for c in clouds), default=1.0) or 1.0
    axis = {"range": [-extent, extent], "showticklabels": False, "title": ""}
    figure.update_scenes(xaxis=axis, yaxis=axis, zaxis=axis, aspectmode="cube")
    figure.update_layout(
        title=title or None, height=260 * max(len(rows), 1) + 40, margin={"l": 0, "r": 0, "t": 40, "b": 0}
    )
    return figure
