"""The small file makers every part of the robustness corpus uses (digits images, PNG bytes and
folders); a leaf module, so the per-kind corpus files (hostile_labels.py, hostile_paired.py, ...)
and hostile.py, which gathers them, never import one another."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image

from gen_eval.datasets.digits import load_digits_split


def digits(start: int, stop: int) -> np.ndarray:
    """Digits test-split images ``start:stop``, uint8 (N, 1, 8, 8)."""
    return load_digits_split("test")[0][start:stop]


def png_bytes(image: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(image.squeeze()).save(buffer, format="PNG")
    return buffer.getvalue()


def write_pngs(folder: Path, images: np.ndarray) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for i, image in enumerate(images):
        (folder / f"img_{i:03d}.png").write_bytes(png_bytes(image))
