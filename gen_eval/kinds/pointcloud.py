"""The point-cloud kind: float32 (N, P, 3) batches, N clouds of P points each, drawn as a grid of views."""

from __future__ import annotations

import io
import math
from typing import TYPE_CHECKING, Any

from gen_eval.errors import GenEvalError
from gen_eval.kinds.base import DataKind, element_type

if TYPE_CHECKING:
    import numpy as np

# A fixed oblique view (30 degrees about z, then 20 degrees of elevation) so clouds of a run and of
# runs side by side are seen alike; the third row of the rotation is the depth used for shading.
_AZIMUTH, _ELEVATION = math.radians(30.0), math.radians(20.0)


def validate_pointclouds(batch: Any, name: str) -> None:
    """Raise unless ``batch`` is a float (N, P, 3) array or tensor."""
    shape = tuple(batch.shape)
    if not element_type(batch).startswith("float") or len(shape) != 3 or shape[-1] != 3:
        raise GenEvalError(
            f"{name}: point clouds must be float (N, P, 3), got {element_type(batch)} of shape {shape}; "
            "convert them before they reach the extractor"
        )


def pointclouds_from_code(raw: np.ndarray, name: str) -> tuple[np.ndarray, str | None]:
    """What ``sample()`` returned as (N, P, 3) clouds -> float32 (finite values, at least 1 point)."""
    import numpy as np

    if not np.issubdtype(raw.dtype, np.floating):
        raise GenEvalError(f"{name}: (N, P, 3) point clouds must be floats, got {raw.dtype}")
    if raw.shape[1] < 1:
        raise GenEvalError(f"{name}: sample() returned clouds of 0 points; return (N, P, 3) with P >= 1")
    if not np.isfinite(raw).all():
        raise GenEvalError(f"{name}: sample() returned NaN or inf; fix the model")
    return raw.astype(np.float32), None


def view_matrix() -> np.ndarray:
    """The 3 x 3 rotation of the fixed view: rows are screen right, screen up and depth (towards the eye)."""
    import numpy as np

    ca, sa, ce, se = math.cos(_AZIMUTH), math.sin(_AZIMUTH), math.cos(_ELEVATION), math.sin(_ELEVATION)
    turn = np.array([[ca, -sa, 0.0], [sa, ca, 0.0], [0.0, 0.0, 1.0]])
    # After the turn about z, look along +y towards the origin from slightly above.
    look = np.array([[1.0, 0.0, 0.0], [0.0, -se, ce], [0.0, -ce, -se]])
    return look @ turn


def cloud_grid_png(clouds: np.ndarray, columns: int = 4, cell: int = 160, padding: int = 2) -> bytes:
    """A grid of small views of float (N, P, 3) ``clouds``, each from the same oblique direction.

    Each cloud is centred and scaled to fill its cell (its own bounding sphere), drawn as dots
    whose shade gets darker towards the viewer (farther points are drawn first, nearer on top).
    Hand-written with numpy and PIL rather than matplotlib's 3-D axes: a grid of 16 views costs
    milliseconds and is the same bytes on every machine.

    Parameters
    ----------
    clouds : numpy.ndarray
        float (N, P, 3).
    columns : int
        Views per row (fewer when there are fewer clouds).
    cell : int
        Side of one view in pixels.
    padding : int
        White pixels between views.

    Returns
    -------
    bytes
        The PNG.
    """
    import numpy as np
    from PIL import Image

    clouds = np.asarray(clouds, dtype=np.float64)
    count = max(len(clouds), 1)
    columns = min(columns, count)
    rows = math.ceil(count / columns)
    canvas = np.full(
        (rows * (cell + padding) + padding, columns * (cell + padding) + padding, 3), 255, np.uint8
    )
    view = view_matrix()
    for index, cloud in enumerate(clouds):
        seen = (cloud - cloud.mean(axis=0)) @ view.T
        radius = float(np.linalg.norm(seen, axis=1).max()) or 1.0
        half = (cell - 8) / 2
        x = np.clip(np.rint(cell / 2 + seen[:, 0] / radius * half), 0, cell - 2).astype(int)
        y = np.clip(np.rint(cell / 2 - seen[:, 1] / radius * half), 0, cell - 2).astype(int)
        depth = (seen[:, 2] / radius + 1) / 2  # 0 far, 1 near
        order = np.argsort(depth)
        shade = (40 + (1 - depth[order]) * 160)[:, None] * np.array([0.55, 0.75, 1.0])
        tile = np.full((cell, cell, 3), 255, np.uint8)
        for dy in (0, 1):  # 2 x 2 dots: visible at report size
            for dx in (0, 1):
                tile[y[order] + dy, x[order] + dx] = shade.astype(np.uint8)
        top = padding + (index // columns) * (cell + padding)
        left = padding + (index % columns) * (cell + padding)
        canvas[top : top + cell, left : left + cell] = tile
    buffer = io.BytesIO()
    Image.fromarray(canvas).save(buffer, format="PNG")
    return buffer.getvalue()


def _draw(generated: np.ndarray, reference: np.ndarray | None, names: tuple[str, str]) -> bytes:
    """The run's picture: the grid of views under a title naming the set (it is opened on its own)."""
    from PIL import Image, ImageDraw

    from gen_eval.figure_style import INK, font

    grid = Image.open(io.BytesIO(cloud_grid_png(generated))).convert("RGB")
    titled = Image.new("RGB", (max(grid.width, 420), grid.height + 34), "white")
    titled.paste(grid, (0, 34))
    ImageDraw.Draw(titled).text((8, 8), f"Samples of {names[0]}", font=font(15, bold=True), fill=INK)
    buffer = io.BytesIO()
    titled.save(buffer, format="PNG")
    return buffer.getvalue()


RUN_FILE = "clouds.npz"  # the clouds a run keeps for the interactive 3-D views of reports and dashboards


def _run_files(generated: np.ndarray, reference: np.ndarray | None) -> dict[str, bytes]:
    """``clouds.npz``: the first generated (and reference) clouds, float32, for the 3-D views."""
    import numpy as np

    arrays = {"generated": np.asarray(generated, np.float32)}
    if reference is not None:
        arrays["reference"] = np.asarray(reference, np.float32)
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    return {RUN_FILE: buffer.getvalue()}


def _caption(generated: dict[str, Any], reference: dict[str, Any]) -> str:
    count = int(generated.get("count") or 0)
    shape = generated.get("sample_shape") or [0, 3]
    return (
        f"The first {min(count, 16):,} of {count:,} generated point clouds ({int(shape[0]):,} points each), "
        "each seen from the same oblique direction, centred and scaled to its cell; darker points are nearer."
    )


POINTCLOUD = DataKind(
    name="pointcloud",
    plural="point clouds",
    description="float32 (N, P, 3): N clouds of P points in 3-D",
    dtype="float32",
    default_extractor="pointnet-shapes3d",
    validate=validate_pointclouds,
    draw=_draw,
    picture_count=16,
    picture_reference=False,
    # The point-cloud metrics (gen_eval/metrics/pointclouds*.py) read the clouds themselves.
    provides=frozenset({"pointclouds"}),
    claims=lambda shape, dtype: len(shape) == 3 and shape[-1] == 3 and dtype.startswith("float"),
    from_code=pointclouds_from_code,
    caption=_caption,
    run_files=_run_files,
)
