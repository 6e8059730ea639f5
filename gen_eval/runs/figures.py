"""Pictures saved with a run: a grid of sample images, or a scatter for 2-D data (PNG bytes)."""

from __future__ import annotations

import io
import math

import numpy as np

from gen_eval.figure_style import scatter_png  # noqa: F401  (the run figures' scatter lives there)


def _png(image) -> bytes:  # PIL.Image.Image
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def image_grid_png(images: np.ndarray, columns: int = 8, min_cell: int = 64, padding: int = 2) -> bytes:
    """A grid of uint8 NCHW ``images``, upscaled (nearest) so tiny images stay visible."""
    from PIL import Image

    count, channels, height, width = images.shape
    scale = max(1, math.ceil(min_cell / max(height, width)))
    columns = min(columns, count)
    rows = math.ceil(count / columns)
    cell_h, cell_w = height * scale, width * scale
    canvas = np.full(
        (rows * (cell_h + padding) + padding, columns * (cell_w + padding) + padding, 3), 255, dtype=np.uint8
    )
    for index, image in enumerate(images):
        tile = np.repeat(np.repeat(image.transpose(1, 2, 0), scale, axis=0), scale, axis=1)
        if channels == 1:
            tile = np.repeat(tile, 3, axis=2)
        top = padding + (index // columns) * (cell_h + padding)
        left = padding + (index % columns) * (cell_w + padding)
        canvas[top : top + cell_h, left : left + cell_w] = tile
    return _png(Image.fromarray(canvas))
