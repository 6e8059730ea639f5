"""Conversions from user arrays to the toolkit's canonical forms, each one stated in words.

Images become uint8 NCHW; vectors become float32 (N, D). A float image array is mapped
to uint8 by a rule chosen from its value range over the whole array, so that one batch
can never be converted differently from another:

==========  ==========================  ===============================
range       rule                        note in the manifest
==========  ==========================  ===============================
[0, 1]      round(x * 255)              ``float [0,1] -> uint8 ...``
[-1, 1]     round((x + 1) * 127.5)      ``float [-1,1] -> uint8 ...``
[0, 255]    round(x)                    ``float [0,255] -> uint8 ...``
==========  ==========================  ===============================

"auto" picks the first row that contains the observed [min, max]; ``value_range``
overrides it (a very dark [0, 255] set could otherwise be read as [0, 1]).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gen_eval.errors import GenEvalError

VALUE_RANGES = ("auto", "0,1", "-1,1", "0,255")
_RANGE_BOUNDS = {"0,1": (0.0, 1.0), "-1,1": (-1.0, 1.0), "0,255": (0.0, 255.0)}


@dataclass(frozen=True)
class Layout:
    """How to read an array as samples."""

    data_kind: str  # "image" or "vector"
    channels_last: bool
    sample_shape: tuple[int, ...]  # canonical: (C, H, W) or (D,)
    drop_alpha: bool = False
    note: str = ""


def infer_layout(shape: tuple[int, ...], dtype: np.dtype, name: str) -> Layout:
    """Decide whether an array of ``shape`` holds NHWC, NCHW or grey NHW images, or (N, D) vectors.

    NHWC (the OpenAI evaluator's convention) wins when both readings are possible.
    """
    if len(shape) == 2:
        if np.issubdtype(dtype, np.floating):
            return Layout("vector", False, (shape[1],))
        raise GenEvalError(
            f"{name}: a 2-D array of {dtype} reads as (N, D) vectors, which must be floats; "
            "save images as (N, H, W, C) uint8"
        )
    if len(shape) == 3:
        return Layout("image", False, (1, shape[1], shape[2]), note="(N, H, W) read as grey images")
    if len(shape) != 4:
        raise GenEvalError(
            f"{name}: array of shape {shape} has rank {len(shape)}; expected (N, H, W, C) images, "
            "(N, H, W) grey images or (N, D) vectors"
        )
    last, second = shape[3], shape[1]
    if last in (1, 3, 4):
        channels, height, width, channels_last = last, shape[1], shape[2], True
    elif second in (1, 3, 4):
        channels, height, width, channels_last = second, shape[2], shape[3], False
    else:
        raise GenEvalError(
            f"{name}: cannot find a channel axis of size 1, 3 or 4 in shape {shape}; "
            "save images as (N, H, W, C) with C in 1, 3 (or 4 with alpha)"
        )
    drop_alpha = channels == 4
    layout_note = "NHWC" if channels_last else "NCHW"
    note = f"read as {layout_note}" + ("; alpha channel dropped (RGBA -> RGB)" if drop_alpha else "")
    return Layout("image", channels_last, (3 if drop_alpha else channels, height, width), drop_alpha, note)


@dataclass(frozen=True)
class ValueRule:
    """The affine map from stored values to uint8 (``scale * x + offset``, rounded)."""

    scale: float
    offset: float
    note: str

    def apply(self, values: np.ndarray) -> np.ndarray:
        if values.dtype == np.uint8:
            return values
        mapped = values.astype(np.float64) * self.scale + self.offset
        return np.clip(np.rint(mapped), 0, 255).astype(np.uint8)


def choose_value_rule(
    dtype: np.dtype, low: float, high: float, name: str, value_range: str = "auto"
) -> ValueRule:
    """Pick how to map values in [low, high] of ``dtype`` to uint8, or explain why none fits."""
    if value_range not in VALUE_RANGES:
        raise GenEvalError(f"--value-range {value_range!r} is not one of {', '.join(VALUE_RANGES)}")
    if dtype == np.uint8 and value_range in ("auto", "0,255"):
        return ValueRule(1.0, 0.0, "uint8 used as is")
    if dtype == np.bool_:
        return ValueRule(255.0, 0.0, "bool -> uint8 as {0, 255}")
    if value_range == "auto":
        candidates = ["0,255"] if np.issubdtype(dtype, np.integer) else ["0,1", "-1,1", "0,255"]
        chosen = next(
            (r for r in candidates if _RANGE_BOUNDS[r][0] <= low and high <= _RANGE_BOUNDS[r][1]), None
        )
        if chosen is None:
            raise GenEvalError(
                f"{name}: {dtype} values span [{low:.4g}, {high:.4g}], outside every supported range "
                "(uint8, [0,1], [-1,1] or [0,255]); rescale the samples or pass --value-range"
            )
    else:
        chosen = value_range
        lo, hi = _RANGE_BOUNDS[chosen]
        if low < lo or high > hi:
            raise GenEvalError(
                f"{name}: values span [{low:.4g}, {high:.4g}] but --value-range says [{chosen}]; "
                "fix the samples or the option"
            )
    scale, offset = {"0,1": (255.0, 0.0), "-1,1": (127.5, 127.5), "0,255": (1.0, 0.0)}[chosen]
    formula = {"0,1": "round(x * 255)", "-1,1": "round((x + 1) * 127.5)", "0,255": "round(x)"}[chosen]
    return ValueRule(scale, offset, f"{dtype} [{chosen}] -> uint8 via {formula}")


def check_finite(values: np.ndarray, name: str, offset: int = 0) -> None:
    """Raise naming the first sample that holds NaN or inf."""
    if np.issubdtype(values.dtype, np.floating) and not np.isfinite(values).all():
        bad = np.argwhere(~np.isfinite(values.reshape(len(values), -1)).all(axis=1))[0, 0] + offset
        raise GenEvalError(
            f"{name}: sample {bad} contains NaN or inf; fix the generator or drop those samples"
        )


def to_canonical(chunk: np.ndarray, layout: Layout, rule: ValueRule | None) -> np.ndarray:
    """Convert one chunk to uint8 NCHW images or float32 vectors, as ``layout`` and ``rule`` say."""
    if layout.data_kind == "vector":
        return np.array(chunk, dtype=np.float32, order="C")  # a writable copy: torch shares its memory
    if chunk.ndim == 3:
        chunk = chunk[:, None]
    elif layout.channels_last:
        chunk = chunk.transpose(0, 3, 1, 2)
    if layout.drop_alpha:
        chunk = chunk[:, :3]
    assert rule is not None
    out = np.ascontiguousarray(rule.apply(chunk))
    return out if out.flags.writeable else out.copy()  # torch.from_numpy wants writable memory
