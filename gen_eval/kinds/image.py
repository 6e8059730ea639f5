"""The image kind: uint8 (N, C, H, W) batches with C in 1 or 3, drawn as a grid."""

from __future__ import annotations

import io
import math
from typing import TYPE_CHECKING, Any

from gen_eval.errors import GenEvalError
from gen_eval.kinds.base import DataKind, element_type

if TYPE_CHECKING:
    import numpy as np


def validate_images(batch: Any, name: str) -> None:
    """Raise unless ``batch`` is uint8 (N, 1 or 3, H, W)."""
    shape = tuple(batch.shape)
    if element_type(batch) != "uint8" or len(shape) != 4 or shape[1] not in (1, 3):
        raise GenEvalError(
            f"{name}: images must be uint8 (N, 1 or 3, H, W), got {element_type(batch)} of shape {shape}; "
            "convert them before they reach the extractor"
        )


def images_from_code(raw: np.ndarray, name: str) -> tuple[np.ndarray, str | None]:
    """What ``sample()`` returned as images -> uint8 NCHW (floats must lie in [0, 1])."""
    import numpy as np

    if raw.ndim != 4 or raw.shape[1] not in (1, 3):
        raise GenEvalError(
            f"{name}: sample() returned shape {raw.shape}; expected (N, C, H, W) with C in 1 or 3"
        )
    if raw.dtype == np.uint8:
        return raw, None
    if not np.issubdtype(raw.dtype, np.floating):
        raise GenEvalError(f"{name}: sample() returned {raw.dtype}; return floats in [0, 1] or uint8")
    if not np.isfinite(raw).all():
        raise GenEvalError(f"{name}: sample() returned NaN or inf; fix the model")
    low, high = float(raw.min()), float(raw.max())
    if low < 0 or high > 1:
        raise GenEvalError(
            f"{name}: sample() returned values in [{low:.3g}, {high:.3g}]; the protocol asks for [0, 1] "
            "floats or uint8 (for [-1, 1] outputs return (x + 1) / 2)"
        )
    converted = np.clip(np.rint(raw.astype(np.float64) * 255), 0, 255).astype(np.uint8)
    return converted, "float [0,1] samples -> uint8 via round(x * 255)"


def image_grid_png(images: np.ndarray, columns: int = 8, min_cell: int = 64, padding: int = 2) -> bytes:
    """A grid of uint8 NCHW ``images``, upscaled (nearest) so tiny images stay visible.

    Parameters
    ----------
    images : numpy.ndarray
        uint8 (N, C, H, W), C in 1 or 3.
    columns : int
        Images per row (fewer when there are fewer images).
    min_cell : int
        Smallest side of a cell in pixels; images are upscaled by a whole factor to reach it.
    padding : int
        White pixels between cells.

    Returns
    -------
    bytes
        The PNG.
    """
    import numpy as np
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
    buffer = io.BytesIO()
    Image.fromarray(canvas).save(buffer, format="PNG")
    return buffer.getvalue()


def _draw(generated: np.ndarray, reference: np.ndarray | None, names: tuple[str, str]) -> bytes:
    return image_grid_png(generated)


def _caption(generated: dict[str, Any], reference: dict[str, Any]) -> str:
    count = int(generated.get("count") or 0)
    return f"The first {min(count, 64):,} of {count:,} generated samples (upscaled, nearest neighbour)."


IMAGE = DataKind(
    name="image",
    plural="images",
    description="uint8 (N, C, H, W) pictures, C = 1 (grey) or 3 (RGB)",
    dtype="uint8",
    default_extractor="inception",
    validate=validate_images,
    draw=_draw,
    picture_count=64,
    picture_reference=False,
    provides=frozenset({"images"}),
    # Every shape but 2-D, so that a wrong shape from code is named by the image check
    # ("expected (N, C, H, W) with C in 1 or 3"), as it always was.
    claims=lambda shape, dtype: len(shape) != 2,
    from_code=images_from_code,
    caption=_caption,
)
