"""The text kind: strings, carried as int32 (N, L) rows of Unicode code points padded with 0.

Why code points in a matrix rather than Python strings: every layer below the edges (batches,
the feature cache, the sandbox's array transfer, memory estimates) moves tensors, and a string
of at most L characters is exactly one row. Code point 0 (NUL) is the padding, so it cannot
occur inside a sample; readers refuse it. :func:`encode_strings` and :func:`decode_rows` are
the only conversions; everything that shows or scores text calls them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from gen_eval.errors import GenEvalError
from gen_eval.kinds.base import DataKind, element_type

if TYPE_CHECKING:
    import numpy as np

# Longest sample any text source accepts unless told otherwise (characters). A line longer than
# this is an error naming the file and line, not a silent truncation.
MAX_LENGTH = 256


def encode_strings(strings: Sequence[str], length: int | None = None, name: str = "text") -> np.ndarray:
    """Strings -> int32 (N, L) code points, 0-padded (L: ``length`` or the longest string).

    Raises a one-line GenEvalError naming ``name`` for a string with a NUL character or one
    longer than ``length``.
    """
    import numpy as np

    width = max((len(s) for s in strings), default=0) if length is None else length
    out = np.zeros((len(strings), max(width, 1)), dtype=np.int32)
    for row, text in enumerate(strings):
        if not isinstance(text, str):
            raise GenEvalError(f"{name}: sample {row} is a {type(text).__name__}, not a string")
        if len(text) > width:
            raise GenEvalError(f"{name}: sample {row} has {len(text)} characters, over the limit of {width}")
        if "\x00" in text:
            raise GenEvalError(f"{name}: sample {row} contains a NUL character; text must not")
        out[row, : len(text)] = np.frombuffer(text.encode("utf-32-le"), dtype="<u4")
    return out


def decode_rows(rows: Any) -> list[str]:
    """int (N, L) code points (array or tensor), 0-padded -> the N strings."""
    import numpy as np

    array = np.asarray(rows.cpu() if hasattr(rows, "cpu") else rows).astype("<u4", copy=False)
    return [row[row != 0].tobytes().decode("utf-32-le") for row in array]


def validate_text(batch: Any, name: str) -> None:
    """Raise unless ``batch`` is an int32 (N, L) array or tensor of code points."""
    shape = tuple(batch.shape)
    if element_type(batch) != "int32" or len(shape) != 2:
        raise GenEvalError(
            f"{name}: text must be int32 (N, L) code points, got {element_type(batch)} of shape {shape}; "
            "convert strings with gen_eval.kinds.text.encode_strings"
        )


def text_from_code(raw: np.ndarray, name: str) -> tuple[np.ndarray, str | None]:
    """What ``sample()`` returned as strings (a list or a 1-D str array) -> code points."""
    strings = [str(s) for s in raw.tolist()]
    longest = max((len(s) for s in strings), default=0)
    if longest > MAX_LENGTH:
        raise GenEvalError(
            f"{name}: sample() returned a string of {longest} characters, over the limit of {MAX_LENGTH}"
        )
    # One width for every batch a generator yields, so batches concatenate.
    return encode_strings(strings, MAX_LENGTH, name=name), None


def _claims(shape: tuple[int, ...], dtype: str) -> bool:
    return len(shape) == 1 and dtype.startswith(("<U", "U", "str"))


def _draw(generated: np.ndarray, reference: np.ndarray | None, names: tuple[str, str]) -> bytes:
    from gen_eval.figure_style import text_table_png

    return text_table_png(decode_rows(generated[:40]), title=f"Samples of {names[0]}")


def _caption(generated: dict[str, Any], reference: dict[str, Any]) -> str:
    count = int(generated.get("count") or 0)
    return f"The first {min(count, 40):,} generated strings, in the order the source yields them."


TEXT = DataKind(
    name="text",
    plural="strings",
    description="strings: int32 (N, L) Unicode code points, 0-padded",
    dtype="int32",
    default_extractor="char-ngrams",
    validate=validate_text,
    draw=_draw,
    picture_count=40,
    provides=frozenset({"strings"}),
    claims=_claims,
    from_code=text_from_code,
    caption=_caption,
)
