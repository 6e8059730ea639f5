"""Plotly figures for the collapse verdict: evidence a person can look at.

``collapse_figures`` draws what the numbers say (mode scatter, class histograms, NDB bins,
duplicate rates, stacked-digit modes); ``evidence_images`` fetches the samples behind them
(images from the most under- and over-filled NDB bins, the closest duplicate pairs, the
closest copies of training images) and ``image_grid_figure`` shows such a grid.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import plotly.graph_objects as go

    from gen_eval.collapse.check import CollapseReport

GENERATED, REFERENCE, MISSING, GREY = "#1f77b4", "#7f7f7f", "#d62728", "#c7c7c7"
_LAYOUT = {"template": "plotly_white", "height": 420, "margin": {"l": 60, "r": 20, "t": 60, "b": 50}}


def modes_figure(
    points: np.ndarray, coverage: Any, centres: np.ndarray, radius: np.ndarray | float
) -> go.Figure:
    """Generated points over the modes: covered modes ringed in green, missing ones in red.

    ``radius`` is the HQ radius around each centre in data units (3 std for the mixtures).
    """
    import plotly.graph_objects as go

    points = np.asarray(points)[:5000]
    ids = coverage.mode_ids if coverage.mode_ids is not None else list(range(coverage.num_modes))
    figure = go.Figure()
    figure.add_trace(
        go.Scattergl(
            x=points[:, 0],
            y=points[:, 1],
            mode="markers",
            name="generated",
            marker={"size": 3, "color": GENERATED, "opacity": 0.5},
        )
    )
    radii = np.broadcast_to(np.asarray(radius, dtype=float), (len(centres),))
    angles = np.linspace(0, 2 * np.pi, 60)
    for mode, (centre, r) in enumerate(zip(centres, radii, strict=True)):
        covered = ids[mode] in coverage.covered
        figure.add_trace(
            go.Scatter(
                x=centre[0] + r * np.cos(angles),
                y=centre[1] + r * np.sin(angles),
                mode="lines",
                line={"color": "#2ca02c" if covered else MISSING, "width": 2},
                showlegend=False,
                hovertext=f"mode {ids[mode]}: {'covered' if covered else 'missing'}",
                hoverinfo="text",
            )
        )
    figure.add_trace(
        go.Scatter(
            x=centres[:, 0],
            y=centres[:, 1],
            mode="markers+text",
            name="mode centres",
            text=[str(i) for i in ids],
            textposition="top center",
            marker={
                "symbol": "x",
                "size": 9,
                "color": ["#2ca02c" if i in coverage.covered else MISSING for i in ids],
            },
        )
    )
    figure.update_layout(
        title=f"Known modes: {coverage.modes_covered} of {coverage.num_modes} covered, "
        f"{coverage.hq_share:.1%} high quality",
        **{**_LAYOUT, "height": 520},
    )
    figure.update_yaxes(scaleanchor="x", scaleratio=1)
    return figure


def _share_bars(
    title: str, labels: list[str], gen: np.ndarray, ref: np.ndarray, flagged: list[int]
) -> go.Figure:
    import plotly.graph_objects as go

    gen_share = gen / max(gen.sum(), 1)
    ref_share = ref / max(ref.sum(), 1)
    labels = labels if len(labels) else ["(no confident prediction)"]
    colours = [MISSING if i in flagged else GENERATED for i in range(len(labels))]
    figure = go.Figure(
        [
            go.Bar(x=labels, y=ref_share, name="reference", marker_color=GREY),
            go.Bar(x=labels, y=gen_share, name="generated", marker_color=colours),
        ]
    )
    figure.update_layout(title=title, barmode="group", yaxis_title="share of samples", **_LAYOUT)
    return figure


def classes_figure(classes: Any) -> go.Figure:
    """Predicted-class shares, generated vs reference; missing classes in red.

    With many classes (Inception's 1,008) only those either set predicts are drawn.
    """
    gen = np.asarray(classes.generated_counts, float)
    ref = np.asarray(classes.reference_counts, float)
    shown = list(range(len(ref))) if len(ref) <= 50 else [int(k) for k in np.flatnonzero((gen + ref) > 0)]
    return _share_bars(
        f"Predicted classes: {classes.classes_covered} of {classes.num_classes} judged classes covered",
        [str(k) for k in shown],
        gen[shown],
        ref[shown],
        [i for i, k in enumerate(shown) if k in classes.missing],
    )


def ndb_figure(ndb: Any) -> go.Figure:
    """Per-bin share difference (generated - reference); significant bins coloured."""
    import plotly.graph_objects as go

    gen = np.asarray(ndb.generated_counts, float) / max(ndb.num_generated, 1)
    ref = np.asarray(ndb.reference_counts, float) / max(ndb.num_reference, 1)
    colours = [
        MISSING if k in ndb.under_filled else "#ff7f0e" if k in ndb.over_filled else GREY
        for k in range(ndb.num_bins)
    ]
    figure = go.Figure(
        go.Bar(
            x=list(range(ndb.num_bins)),
            y=gen - ref,
            marker_color=colours,
            customdata=np.stack([gen, ref, ndb.p_values], axis=1),
            hovertemplate="bin %{x}<br>generated %{customdata[0]:.3f}<br>reference %{customdata[1]:.3f}"
            "<br>p %{customdata[2]:.2g}<extra></extra>",
        )
    )
    figure.update_layout(
        title=f"NDB: {ndb.ndb} of {ndb.num_bins} bins differ (about {ndb.expected_by_chance:.0f} by chance); "
        "red under-filled, orange over-filled",
        xaxis_title="k-means bin of the reference",
        yaxis_title="generated share - reference share",
        **_LAYOUT,
    )
    return figure


def birthday_figure(birthday: Any) -> go.Figure:
    """Share of batches holding a near-duplicate pair, by batch size, for both sets and ideal supports."""
    import plotly.graph_objects as go

    sizes = np.asarray(birthday.batch_sizes, float)
    figure = go.Figure(
        [
            go.Scatter(
                x=sizes,
                y=birthday.duplicate_rates,
                mode="lines+markers",
                name="generated",
                line={"color": GENERATED},
            ),
            go.Scatter(
                x=sizes,
                y=birthday.reference_duplicate_rates,
                mode="lines+markers",
                name="reference",
                line={"color": REFERENCE},
            ),
        ]
    )
    grid = np.linspace(2, max(sizes.max(), 2), 50)
    for support in (100, 1000, 10000):
        figure.add_trace(
            go.Scatter(
                x=grid,
                y=1 - np.exp(-grid * (grid - 1) / (2 * support)),
                mode="lines",
                name=f"support {support:,}",
                line={"dash": "dot", "width": 1, "color": GREY},
            )
        )
    figure.add_hline(y=0.5, line_dash="dash", line_color=MISSING, annotation_text="1/2: support ~ s²")
    figure.update_layout(
        title="Birthday test: batches with a near-duplicate pair",
        xaxis_title="batch size s",
        yaxis_title="share of batches",
        yaxis_range=[0, 1.02],
        **_LAYOUT,
    )
    return figure


def stacked_figure(stacked: Any) -> go.Figure:
    """Counts of the 1,000 stacked-digit triples as a 10 x 100 heat map (first digit x last two)."""
    import plotly.graph_objects as go

    counts = np.asarray(stacked.counts, float).reshape(10, 100)
    figure = go.Figure(go.Heatmap(z=counts, colorscale="Blues", colorbar={"title": "samples"}))
    figure.update_layout(
        title=f"Stacked digits: {stacked.modes} of {stacked.num_modes} triples seen",
        xaxis_title="second and third digit (10b + c)",
        yaxis_title="first digit a",
        **_LAYOUT,
    )
    return figure


def collapse_figures(
    report: CollapseReport, generated_points: np.ndarray | None = None, mixture: str | None = None
) -> dict[str, go.Figure]:
    """Every figure the report's detectors support, by name (``modes``, ``classes``, ``ndb``...).

    ``generated_points`` (the 2-D features) are needed for the mode scatter.
    """
    figures: dict[str, go.Figure] = {}
    found = report.detectors
    if "modes" in found and generated_points is not None and np.asarray(generated_points).shape[1] == 2:
        if mixture is not None:
            from gen_eval.datasets.mixtures import get_mixture

            spec = get_mixture(mixture)
            figures["modes"] = modes_figure(generated_points, found["modes"], spec.centres, 3 * spec.std)
        elif getattr(found["modes"], "centres", None) is not None:
            figures["modes"] = modes_figure(
                generated_points, found["modes"], np.asarray(found["modes"].centres), found["modes"].radii
            )
    if "classes" in found:
        figures["classes"] = classes_figure(found["classes"])
    if "stacked" in found:
        figures["stacked"] = stacked_figure(found["stacked"])
    if "ndb" in found:
        figures["ndb"] = ndb_figure(found["ndb"])
    if "birthday" in found:
        figures["birthday"] = birthday_figure(found["birthday"])
    return figures


ImagesAt = Callable[[list[int]], np.ndarray]  # indices -> uint8 (n, C, H, W) images


def evidence_images(
    report: CollapseReport,
    generated_at: ImagesAt,
    reference_at: ImagesAt,
    train_at: ImagesAt | None = None,
    per_bin: int = 6,
    num_bins: int = 4,
) -> dict[str, tuple[np.ndarray, list[str]]]:
    """Image grids behind the verdict: ``{name: (uint8 (rows, cols, C, H, W), row captions)}``.

    * ``ndb_bins``: for the most under-filled bins, reference images from the bin (what the model
      misses); for the most over-filled bins, generated images from the bin (what it overdoes).
    * ``duplicates``: the closest generated pairs of the birthday test, one pair per column.
    * ``copies``: generated near-copies above their nearest training sample (memorisation).
    """
    grids: dict[str, tuple[np.ndarray, list[str]]] = {}
    found = report.detectors
    ndb = found.get("ndb")
    if ndb is not None and (ndb.under_filled or ndb.over_filled):
        rows, captions = [], []
        for kind, bins, members, fetch in (
            ("under-filled", ndb.under_filled, ndb.reference_bins, reference_at),
            ("over-filled", ndb.over_filled, ndb.generated_bins, generated_at),
        ):
            for b in bins[:num_bins]:
                index = [int(i) for i in np.flatnonzero(members == b)[:per_bin]]
                if index:
                    rows.append(_pad(fetch(index), per_bin))
                    captions.append(
                        f"bin {b} {kind}: generated {ndb.generated_counts[b]}, reference {ndb.reference_counts[b]} "
                        f"({'reference' if kind == 'under-filled' else 'generated'} images)"
                    )
        if rows:
            grids["ndb_bins"] = (np.stack(_same_shape(rows)), captions)
    birthday = found.get("birthday")
    if birthday is not None and birthday.closest_pairs:
        pairs = birthday.closest_pairs
        distances = ", ".join(f"{d:.3g}" for _, _, d in pairs)
        grids["duplicates"] = (
            np.stack([generated_at([i for i, _, _ in pairs]), generated_at([j for _, j, _ in pairs])]),
            ["generated samples", f"the closest other generated sample (distances {distances})"],
        )
    memorisation = found.get("memorisation")
    if memorisation is not None and memorisation.pairs and train_at is not None:
        pairs = memorisation.pairs
        distances = ", ".join(f"{d:.3g}" for _, _, d in pairs)
        grids["copies"] = (
            np.stack(
                _same_shape([generated_at([g for g, _, _ in pairs]), train_at([t for _, t, _ in pairs])])
            ),
            ["generated near-copies", f"their nearest training sample (distances {distances})"],
        )
    return grids


def _same_shape(rows: list[np.ndarray]) -> list[np.ndarray]:
    """Rows of (n, C, H, W) images brought to one shape for a grid: the most channels (grey repeated
    to RGB) and the largest size (PIL nearest-neighbour), e.g. 64x64 samples beside 8x8 digits."""
    channels = max(r.shape[1] for r in rows)
    height, width = max(r.shape[2] for r in rows), max(r.shape[3] for r in rows)
    out = []
    for row in rows:
        if row.shape[1] != channels:
            row = np.repeat(row[:, :1], channels, axis=1)
        if row.shape[2:] != (height, width):
            from PIL import Image

            row = np.stack(
                [
                    np.stack(
                        [np.asarray(Image.fromarray(c).resize((width, height), Image.NEAREST)) for c in image]
                    )
                    for image in row
                ]
            )
        out.append(row)
    return out


def _pad(images: np.ndarray, width: int) -> np.ndarray:
    if len(images) >= width:
        return images[:width]
    blank = np.full((width - len(images), *images.shape[1:]), 255, dtype=np.uint8)
    return np.concatenate([images, blank])


def grid_array(grid: np.ndarray, min_cell: int = 48, padding: int = 2) -> np.ndarray:
    """(rows, cols, C, H, W) uint8 images -> one (H', W', 3) RGB canvas, upscaled for tiny images."""
    rows, cols, channels, height, width = grid.shape
    scale = max(1, -(-min_cell // max(height, width)))
    cell_h, cell_w = height * scale, width * scale
    canvas = np.full(
        (rows * (cell_h + padding) + padding, cols * (cell_w + padding) + padding, 3), 255, np.uint8
    )
    for r in range(rows):
        for c in range(cols):
            tile = np.repeat(np.repeat(grid[r, c].transpose(1, 2, 0), scale, 0), scale, 1)
            if channels == 1:
                tile = np.repeat(tile, 3, axis=2)
            top, left = padding + r * (cell_h + padding), padding + c * (cell_w + padding)
            canvas[top : top + cell_h, left : left + cell_w] = tile[..., :3]
    return canvas


def image_grid_figure(title: str, grid: np.ndarray, captions: list[str]) -> go.Figure:
    """A plotly figure showing an image grid, one caption per row on hover and in the title."""
    import base64
    import io

    import plotly.graph_objects as go
    from PIL import Image

    canvas = grid_array(grid)
    buffer = io.BytesIO()
    Image.fromarray(canvas).save(buffer, format="PNG")
    # A PNG data URI rather than the pixel array: the figure's JSON stays the size of the PNG.
    source = "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")
    figure = go.Figure(go.Image(source=source, hoverinfo="skip"))
    row_height = canvas.shape[0] / len(captions)
    for row, caption in enumerate(captions):
        figure.add_annotation(
            x=canvas.shape[1],
            y=(row + 0.5) * row_height,
            text=caption,
            showarrow=False,
            xanchor="left",
            font={"size": 11},
        )
    figure.update_layout(
        title=title,
        template="plotly_white",
        height=max(240, int(canvas.shape[0] * 1.2) + 80),
        margin={"l": 10, "r": 420, "t": 50, "b": 10},
    )
    figure.update_xaxes(visible=False)
    figure.update_yaxes(visible=False)
    return figure
