"""The input / output / target picture of a paired run: ``triplets.png`` (issue 23).

One row per input (the first :data:`ROWS`): the input, its output (up to :data:`MAX_OUTPUTS`
when a model gave several per input), then its target, each labelled above its column, and the
row's PSNR beside it. Inputs smaller than the outputs (``sr4``'s 7x7) are enlarged by
repeating pixels (nearest neighbour), so what the model saw is shown without smoothing.
``evaluate`` writes it into a run whose generated set is paired; the report and the dashboard
show it by name.
"""

from __future__ import annotations

import numpy as np

from gen_eval.sources import Source

FILE = "triplets.png"
ROWS = 8
MAX_OUTPUTS = 4


def _enlarged(images: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """uint8 (N, C, h, w) images shown at (C, H, W): repeated pixels, centred on white if not a multiple."""
    channels, height, width = shape
    if images.shape[1] != channels:
        images = np.repeat(images[:, :1], channels, axis=1)
    factor = max(1, min(height // images.shape[2], width // images.shape[3]))
    big = images.repeat(factor, axis=2).repeat(factor, axis=3)[:, :, :height, :width]
    out = np.full((len(images), *shape), 255, np.uint8)
    top, left = (height - big.shape[2]) // 2, (width - big.shape[3]) // 2
    out[:, :, top : top + big.shape[2], left : left + big.shape[3]] = big
    return out


def triplet_files(gen: Source, rows: int = ROWS) -> dict[str, bytes]:
    """``{"triplets.png": PNG}`` for a paired generated set with targets; empty otherwise."""
    from gen_eval.figure_style import labelled_grid_png
    from gen_eval.metrics.paired import PSNR_CAP, psnr_values

    if not getattr(gen, "paired", False) or not callable(getattr(gen, "pairs", None)):
        return {}
    pairs = gen.pairs()
    if pairs.targets is None or len(pairs.outputs) == 0:
        return {}
    k = pairs.outputs_per_input
    shown_k = min(k, MAX_OUTPUTS)
    n = min(rows, pairs.num_inputs)
    first = np.arange(n) * k  # the first row of each input
    outputs = pairs.outputs[: n * k].reshape(n, k, *pairs.outputs.shape[1:])[:, :shown_k]
    targets = pairs.targets[first]
    shape = tuple(targets.shape[1:])
    columns = ["output"] * shown_k if shown_k == 1 else [f"output {j + 1}" for j in range(shown_k)]
    parts = [outputs, targets[:, None]]
    if pairs.inputs is not None:
        parts.insert(0, _enlarged(pairs.inputs[first], shape)[:, None])
        columns.insert(0, "input")
    columns.append("target")
    grid = np.concatenate(parts, axis=1)
    psnr = np.minimum(psnr_values(pairs.outputs[first], targets), PSNR_CAP)
    labels = []
    for row in range(n):
        label = f"pair {row}" + (
            f", class {int(pairs.labels[first[row]])}" if pairs.labels is not None else ""
        )
        value = "identical" if psnr[row] >= PSNR_CAP else f"{psnr[row]:.1f} dB"
        labels.append(f"{label}: PSNR {value}" + (" (output 1)" if k > 1 else ""))
    task = f" (task {pairs.task})" if pairs.task else ""
    note = f"The first {n} inputs{task}: " + ", ".join(columns)
    if pairs.inputs is not None and pairs.inputs.shape[2:] != targets.shape[2:]:
        height, width = pairs.inputs.shape[2:]
        note += f"; the {height}x{width} inputs enlarged by repeating pixels"
    if k > shown_k:
        note += f"; {shown_k} of the {k} outputs per input"
    title = f"Input, output and target: {gen.spec}"
    return {FILE: labelled_grid_png(grid, title, labels, columns, note, label_width=200)}
