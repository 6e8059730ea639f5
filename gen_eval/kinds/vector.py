"""The vector kind: float (N, D) batches (2-D points, features), drawn as a scatter over the reference."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from gen_eval.errors import GenEvalError
from gen_eval.kinds.base import DataKind, element_type

if TYPE_CHECKING:
    import numpy as np


def validate_vectors(batch: Any, name: str) -> None:
    """Raise unless ``batch`` is a float (N, D) array or tensor."""
    shape = tuple(batch.shape)
    if not element_type(batch).startswith("float") or len(shape) != 2:
        raise GenEvalError(
            f"{name}: vectors must be float (N, D), got {element_type(batch)} of shape {shape}; "
            "convert them before they reach the extractor"
        )


def vectors_from_code(raw: np.ndarray, name: str) -> tuple[np.ndarray, str | None]:
    """What ``sample()`` returned as (N, D) vectors -> float32 (finite values only)."""
    import numpy as np

    if not np.issubdtype(raw.dtype, np.floating):
        raise GenEvalError(f"{name}: (N, D) samples must be floats, got {raw.dtype}")
    if not np.isfinite(raw).all():
        raise GenEvalError(f"{name}: sample() returned NaN or inf; fix the model")
    return raw.astype(np.float32), None


def _draw(generated: np.ndarray, reference: np.ndarray | None, names: tuple[str, str]) -> bytes:
    from gen_eval.figure_style import scatter_png

    return scatter_png(
        generated, reference, title="Generated samples (blue) over the reference (grey)", names=names
    )


def _caption(generated: dict[str, Any], reference: dict[str, Any]) -> str:
    count = int(generated.get("count") or 0)
    shape = generated.get("sample_shape") or [2]
    reference_count = int(reference.get("count") or 0)
    return (
        f"The first {min(count, 5000):,} generated points (blue) over the first "
        f"{min(reference_count, 5000):,} reference points (grey)"
        + (f", first two of {shape[0]} coordinates" if shape and shape[0] > 2 else "")
        + "."
    )


VECTOR = DataKind(
    name="vector",
    plural="vectors",
    description="float (N, D) rows: 2-D points, embeddings",
    dtype="float32",
    default_extractor="identity",
    validate=validate_vectors,
    draw=_draw,
    picture_count=5000,
    picture_reference=True,
    claims=lambda shape, dtype: len(shape) == 2,
    from_code=vectors_from_code,
    caption=_caption,
)
