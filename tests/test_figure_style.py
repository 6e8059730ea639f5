"""The PNGs a run writes on their own carry titles, labels and legends (gen_eval.figure_style)."""

from __future__ import annotations

import io
import json

import numpy as np
from PIL import Image

from gen_eval.collapse.figures import grid_array
from gen_eval.collapse.outputs import collapse_files
from gen_eval.figure_style import GENERATED, REFERENCE, labelled_grid_png, scatter_png


def _image(png: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(int)


def _inked(pixels: np.ndarray) -> bool:
    """Dark text-like pixels (the grids here are mid-grey, so only text is this dark on white)."""
    return bool((pixels.max(axis=-1) < 90).any())


def test_grid_has_a_title_and_a_label_beside_every_row():
    grid = np.zeros((3, 4, 3, 8, 8), np.uint8)
    grid[:, :, 1] = 200  # flat green tiles: no text pixel has this colour, every dark pixel is text
    bare = grid_array(grid)
    labelled = _image(labelled_grid_png(grid, "A title", ["first", "second", "third"], ["a", "b", "c", "d"]))
    assert labelled.shape[0] > bare.shape[0] and labelled.shape[1] > bare.shape[1]
    tiles = np.argwhere((labelled == (0, 200, 0)).all(axis=-1))
    top, bottom, right = tiles[:, 0].min(), tiles[:, 0].max(), tiles[:, 1].max()
    assert _inked(labelled[:top, :])  # the title (and column labels) above the tiles
    assert not _inked(labelled[top:bottom, : right + 1])  # the tiles themselves hold no text
    band = (bottom - top) // 3
    for row in range(3):  # a label to the right of each row
        assert _inked(labelled[top + row * band : top + (row + 1) * band, right + 1 :]), row
    assert not _inked(grid_array(grid))  # the planted fault: the old bare grid has no text at all


def test_long_labels_wrap_instead_of_widening_the_picture():
    grid = np.full((1, 2, 1, 8, 8), 128, np.uint8)
    short = _image(labelled_grid_png(grid, "t", ["x"], label_width=200))
    long = _image(labelled_grid_png(grid, "t", ["word " * 60], label_width=200))
    assert long.shape[1] == short.shape[1] and long.shape[0] > short.shape[0]


def test_scatter_has_axes_and_a_legend_for_both_sets():
    rng = np.random.default_rng(0)
    generated, reference = rng.normal(size=(300, 2)), rng.normal(size=(300, 2)) + 5
    pixels = _image(scatter_png(generated, reference, names=("generated: g", "reference: r")))
    for colour in (GENERATED, REFERENCE):
        at = np.argwhere((pixels == colour).all(axis=-1))
        assert len(at) > 0
        assert at[:, 0].min() < 50  # a legend marker in the header, above the plot
    assert _inked(pixels[:, :40])  # the rotated "dimension 2" label and tick values on the left
    assert _inked(pixels[-20:, :])  # "dimension 1" under the plot


def test_collapse_pngs_are_labelled_and_their_figures_keep_the_bare_grid():
    grid = np.full((2, 3, 1, 8, 8), 128, np.uint8)
    files = collapse_files({}, {"duplicates": (grid, ["generated", "closest"])})
    png = _image(files["collapse/duplicates.png"])
    assert png.shape[0] > grid_array(grid).shape[0] and _inked(png)


def test_latent_figures_use_the_report_template():
    import plotly.graph_objects as go

    from gen_eval.latent.analyse import LatentAnalysis

    analysis = LatentAnalysis("m", figures={"chart": go.Figure(go.Bar(y=[1, 2]))})
    analysis.grids["traversal"] = (np.full((2, 3, 1, 8, 8), 128, np.uint8), ["z0", "z1"])
    analysis.columns["traversal"] = ["-1", "0", "+1"]
    files = analysis.files()
    layout = json.loads(files["latent/chart.json"])["layout"]["template"]["layout"]
    assert layout["plot_bgcolor"] == "white"  # plotly_white, not the default grey "#E5ECF6"
    assert _inked(_image(files["latent/traversal.png"]))
