"""The distortion-realism plane of paired image-to-image models: PSNR against FID, one point each.

Blau & Michaeli (2018) showed that no model can be best at both distortion (PSNR, SSIM: closeness
to the target) and perception (FID: closeness of the outputs' distribution to the targets'); papers
show it as bicubic/SRResNet/SRGAN landing on different sides. This plane puts each task's bundled
models (their numbers stored by the scorecard, ``reference_models/checkpoints/paired_scores.json``)
beside a submission, so a student sees on which side their model falls. Up and left is better:
higher PSNR, lower FID.

Interactive (plotly) for pages and the dashboard; PNG through matplotlib for files, because
the project's PIL figure helpers draw no text labels beside points.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import plotly.graph_objects as go

STORED = "paired_scores.json"
SUBMISSION_COLOUR = "#d62728"


def stored_points(task: str | None = None) -> list[dict[str, Any]]:
    """The bundled paired models' stored (PSNR, SSIM, FID) points, of one task or all."""
    from reference_models import CHECKPOINT_DIR

    path = Path(CHECKPOINT_DIR) / STORED
    if not path.is_file():
        return []
    points = json.loads(path.read_text(encoding="utf-8")).get("points", [])
    return [p for p in points if task is None or p.get("task") == task]


def _title(points: list[dict[str, Any]]) -> str:
    tasks = sorted({str(p.get("task")) for p in points})
    return f"Distortion vs realism ({', '.join(tasks)}): PSNR up, FID left is better"


def plane_figure(points: list[dict[str, Any]]) -> go.Figure:
    """Plotly scatter of ``points`` (dicts with name, task, psnr, fid; ``submission`` True to highlight)."""
    import plotly.graph_objects as go

    figure = go.Figure()
    for task in sorted({str(p.get("task")) for p in points}):
        for submitted in (False, True):
            chosen = [
                p for p in points if str(p.get("task")) == task and bool(p.get("submission")) == submitted
            ]
            if not chosen:
                continue
            figure.add_scatter(
                x=[p["fid"] for p in chosen],
                y=[p["psnr"] for p in chosen],
                text=[p["name"] for p in chosen],
                mode="markers+text",
                textposition="top center",
                name=f"{task}: {'this run' if submitted else 'bundled models'}",
                marker={"size": 14 if submitted else 10, "symbol": "star" if submitted else "circle"}
                | ({"color": SUBMISSION_COLOUR} if submitted else {}),
                hovertemplate="%{text}<br>FID %{x:.4g}<br>PSNR %{y:.2f} dB<extra></extra>",
            )
    figure.update_layout(
        title=_title(points),
        xaxis_title="FID of outputs vs targets (lower: more realistic)",
        yaxis_title="PSNR dB (higher: less distortion)",
        template="plotly_white",
        height=420,
        margin={"t": 60, "b": 50},
    )
    if points and min(p["fid"] for p in points) > 0:
        figure.update_xaxes(type="log")
    return figure


def plane_png(points: list[dict[str, Any]], path: str | Path) -> Path:
    """The same plane as a labelled PNG at ``path`` (written whole: a hidden name, then renamed)."""
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    target = Path(path)
    figure, axes = plt.subplots(figsize=(7.5, 5.2), dpi=110)
    tasks = sorted({str(p.get("task")) for p in points})
    markers = dict(zip(tasks, "osD^v<>", strict=False))
    for task in tasks:
        chosen = sorted((p for p in points if str(p.get("task")) == task), key=lambda p: p["fid"])
        for index, point in enumerate(chosen):
            submitted = bool(point.get("submission"))
            axes.scatter(
                point["fid"],
                point["psnr"],
                marker="*" if submitted else markers[task],
                s=180 if submitted else 55,
                color=SUBMISSION_COLOUR if submitted else f"C{tasks.index(task)}",
                label=None,
                zorder=3,
            )
            # Neighbours along the FID axis label above and below in turn, so close points stay legible.
            offset = (5, 5) if index % 2 == 0 else (5, -12)
            axes.annotate(
                point["name"],
                (point["fid"], point["psnr"]),
                textcoords="offset points",
                xytext=offset,
                fontsize=8,
            )
        axes.scatter([], [], marker=markers[task], color=f"C{tasks.index(task)}", label=task)
    if any(p.get("submission") for p in points):
        axes.scatter([], [], marker="*", s=120, color=SUBMISSION_COLOUR, label="this run")
    if points and min(p["fid"] for p in points) > 0:
        axes.set_xscale("log")
    axes.set_xlabel("FID of outputs vs targets (lower: more realistic)")
    axes.set_ylabel("PSNR dB (higher: less distortion)")
    axes.set_title(_title(points), fontsize=10)
    axes.grid(alpha=0.3)
    axes.legend(fontsize=8, loc="best")
    figure.tight_layout()
    hidden = target.with_name(f".{target.name}.partial")
    figure.savefig(hidden, format="png")
    plt.close(figure)
    hidden.replace(target)
    return target
