"""Pictures saved with a run: a grid of sample images, or a scatter for 2-D data (PNG bytes).

Each data kind draws its own (:attr:`gen_eval.kinds.DataKind.draw`); these are the image and
vector kinds' pictures under their old names.
"""

from __future__ import annotations

from gen_eval.figure_style import scatter_png
from gen_eval.kinds.image import image_grid_png

__all__ = ["image_grid_png", "scatter_png"]
