"""Decoded samples of any kind as pictures, for the latent analyses' grids."""

from __future__ import annotations

import io

import numpy as np


def as_pictures(samples: np.ndarray, kind: str, lead: int) -> np.ndarray:
    """A grid of decoded samples, ``lead`` grid dimensions then one sample, as uint8 pictures.

    Images stay as they are; a sample of a kind that provides no images becomes the picture its
    kind draws of it alone (``DataKind.draw``: a point cloud's view), so the grid code (captions,
    plotly figures, labelled PNGs) needs nothing of its own per kind.

    Parameters
    ----------
    samples : numpy.ndarray
        (*grid, *sample shape): ``lead`` grid dimensions (a strip: 1, rows x columns: 2).
    kind : str
        The samples' data kind (:func:`gen_eval.kinds.get_kind`).
    lead : int
        How many leading dimensions index the grid.

    Returns
    -------
    numpy.ndarray
        ``samples`` unchanged for images, else uint8 (*grid, 3, H, W).
    """
    from gen_eval.kinds import get_kind

    declared = get_kind(kind)
    if "images" in declared.provides:
        return samples
    from PIL import Image

    grid = samples.shape[:lead]
    items = samples.reshape(-1, *samples.shape[lead:])
    pictures = [
        np.asarray(Image.open(io.BytesIO(declared.draw(item[None], None, ("decoded", "")))).convert("RGB"))
        for item in items
    ]
    return np.stack(pictures).transpose(0, 3, 1, 2).reshape(*grid, 3, *pictures[0].shape[:2])
