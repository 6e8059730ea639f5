"""One look for every picture gen-eval makes: the plotly template, the colours, and labelled PNGs.

The PNG files a run writes (sample scatter, collapse evidence grids, latent grids) are opened on
their own, outside the report, so each carries its own title, axis or row/column labels and
legend; a person must be able to tell reference from generated without the page around it. The
colours are those of the report's plotly charts (``plotly_white``, generated in plotly's first
colour, the reference in grey).
"""

from __future__ import annotations

import io
import math
import textwrap
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from PIL import Image, ImageFont

TEMPLATE = "plotly_white"  # the report's, compare's and the collapse charts' template
GENERATED = (31, 119, 180)  # plotly's first colour, as generated sets are drawn in the charts
REFERENCE = (150, 150, 150)
INK, MUTED = (34, 34, 34), (110, 110, 110)
_FONTS = {
    False: ("DejaVuSans.ttf", "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"),
    True: ("DejaVuSans-Bold.ttf", "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf"),
}


def font(size: int = 13, bold: bool = False) -> ImageFont.FreeTypeFont:
    """DejaVu Sans when installed (most Linux systems), else Pillow's built-in scalable font."""
    from PIL import ImageFont

    for candidate in _FONTS[bold]:
        try:
            return ImageFont.truetype(candidate, size)
        except OSError:
            continue
    return ImageFont.load_default(size=size)  # Pillow >= 10.1 (a scalable font, no bold)


def _png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def _text_width(text: str, face: ImageFont.FreeTypeFont) -> float:
    return face.getlength(text)


def _wrap(text: str, face: ImageFont.FreeTypeFont, width: float) -> list[str]:
    """``text`` broken into lines no wider than ``width`` pixels (a long word keeps its own line)."""
    average = max(1.0, _text_width("abcdefghijklmnopqrstuvwxyz", face) / 26)
    columns = max(8, int(width / average))
    while columns > 8:
        lines = textwrap.wrap(text, columns, break_long_words=False) or [""]
        if all(_text_width(line, face) <= width for line in lines):
            return lines
        columns -= 2
    return textwrap.wrap(text, columns, break_long_words=False) or [""]


def _line_height(face: ImageFont.FreeTypeFont) -> int:
    return int(face.size * 1.3) + 1


def _strip(images: np.ndarray, min_cell: int, padding: int = 2) -> np.ndarray:
    """(n, C, H, W) uint8 images side by side on white, upscaled (nearest) so tiny ones stay visible."""
    count, channels, height, width = images.shape
    scale = max(1, -(-min_cell // max(height, width)))
    tiles = np.repeat(np.repeat(images.transpose(0, 2, 3, 1), scale, 1), scale, 2)
    if channels == 1:
        tiles = np.repeat(tiles, 3, axis=3)
    cell_h, cell_w = height * scale, width * scale
    strip = np.full((cell_h + 2 * padding, count * (cell_w + padding) + padding, 3), 255, np.uint8)
    for index, tile in enumerate(tiles[..., :3]):
        left = padding + index * (cell_w + padding)
        strip[padding : padding + cell_h, left : left + cell_w] = tile
    return strip


def labelled_grid_png(
    grid: np.ndarray,
    title: str,
    row_labels: list[str],
    column_labels: list[str] | None = None,
    note: str | None = None,
    min_cell: int = 48,
    label_width: int = 300,
) -> bytes:
    """An image grid with a title, a label beside each row and optional labels above the columns.

    Parameters
    ----------
    grid : numpy.ndarray
        uint8 images, shape (rows, columns, C, H, W).
    title : str
        What the picture shows (wrapped to the picture's width).
    row_labels : list of str
        One per row, drawn to the right of the row and wrapped to ``label_width`` pixels.
    column_labels : list of str, optional
        One per column, drawn above the first row.
    note : str, optional
        A muted line under the title (for example what the colours or columns mean).
    min_cell : int
        Tiny images are upscaled (nearest neighbour) to at least this many pixels.
    label_width : int
        Width of the row-label column in pixels.

    Returns
    -------
    bytes
        The PNG.
    """
    from PIL import Image, ImageDraw

    rows, columns = grid.shape[:2]
    tiles = [_strip(grid[r], min_cell) for r in range(rows)]
    strip_h, strip_w = tiles[0].shape[:2]
    small, label_face, title_face = font(11), font(12), font(15, bold=True)
    wrapped = [_wrap(text, label_face, label_width - 12) for text in row_labels] + [[]] * rows
    heights = [max(strip_h, len(lines) * _line_height(label_face) + 4) for lines in wrapped[:rows]]
    width = max(strip_w + label_width, 420)
    title_lines = _wrap(title, title_face, width - 16)
    note_lines = _wrap(note, small, width - 16) if note else []
    top = 8 + len(title_lines) * _line_height(title_face) + len(note_lines) * _line_height(small) + 6
    column_h = _line_height(small) + 2 if column_labels else 0
    canvas = Image.new("RGB", (width, top + column_h + sum(heights) + 6), "white")
    draw = ImageDraw.Draw(canvas)
    y = 8
    for line in title_lines:
        draw.text((8, y), line, fill=INK, font=title_face)
        y += _line_height(title_face)
    for line in note_lines:
        draw.text((8, y), line, fill=MUTED, font=small)
        y += _line_height(small)
    y = top
    if column_labels:
        cell_w = (strip_w - 2) / columns
        for index, text in enumerate(column_labels[:columns]):
            centre = 2 + (index + 0.5) * cell_w
            draw.text((centre - _text_width(text, small) / 2, y), text, fill=MUTED, font=small)
        y += column_h
    for tile, lines, height in zip(tiles, wrapped, heights, strict=False):
        canvas.paste(Image.fromarray(tile), (0, y + (height - strip_h) // 2))
        text_y = y + (height - len(lines) * _line_height(label_face)) // 2
        for line in lines:
            draw.text((strip_w + 8, text_y), line, fill=INK, font=label_face)
            text_y += _line_height(label_face)
        y += height
    return _png(canvas)


def _ticks(low: float, high: float, count: int = 5) -> list[float]:
    """Round tick values covering [low, high] (1, 2 or 5 times a power of ten apart)."""
    span = high - low if high > low else 1.0
    raw = span / count
    step = 10 ** math.floor(math.log10(raw))
    step *= next(m for m in (1, 2, 5, 10) if m * step >= raw)
    first = math.ceil(low / step) * step
    return [first + i * step for i in range(int((high - first) / step + 1e-9) + 1)]


def scatter_png(
    generated: np.ndarray,
    reference: np.ndarray | None = None,
    size: int = 512,
    title: str = "Generated vs reference samples",
    names: tuple[str, str] = ("generated", "reference"),
) -> bytes:
    """2-D points with axes, ticks, a legend and a title: reference in grey under generated in blue.

    Parameters
    ----------
    generated : numpy.ndarray
        (N, >=2) points; the first two coordinates are drawn.
    reference : numpy.ndarray, optional
        (M, >=2) points drawn underneath.
    size : int
        Side of the plotting square in pixels.
    title : str
        The picture's title.
    names : tuple of str
        Legend names of the generated and the reference set.

    Returns
    -------
    bytes
        The PNG (at most 5,000 points of each set are drawn).
    """
    from PIL import Image, ImageDraw

    sets = [p for p in (reference, generated) if p is not None]
    everything = np.concatenate(sets)[:, :2].astype(np.float64)
    low, high = everything.min(axis=0), everything.max(axis=0)
    span = float(max(high - low)) or 1.0
    centre = (low + high) / 2
    lo, hi = centre - span * 0.55, centre + span * 0.55  # one scale on both axes: circles stay round
    small, label_face, title_face = font(11), font(12), font(15, bold=True)
    left, top, right, bottom = 64, 58, 16, 44
    image = Image.new("RGB", (left + size + right, top + size + bottom), "white")
    draw = ImageDraw.Draw(image)

    def to_pixels(points: np.ndarray) -> np.ndarray:
        unit = (points[:, :2] - lo) / (hi - lo)
        return np.stack([left + unit[:, 0] * size, top + (1 - unit[:, 1]) * size], axis=1)

    draw.rectangle((left, top, left + size, top + size), outline=(200, 200, 200))
    for axis in (0, 1):
        for value in _ticks(lo[axis], hi[axis]):
            position = (value - lo[axis]) / (hi[axis] - lo[axis]) * size
            text = f"{value:.4g}"
            if axis == 0:
                x = left + position
                draw.line((x, top, x, top + size), fill=(238, 238, 238))
                draw.line((x, top + size, x, top + size + 4), fill=MUTED)
                draw.text((x - _text_width(text, small) / 2, top + size + 6), text, fill=MUTED, font=small)
            else:
                y = top + size - position
                draw.line((left, y, left + size, y), fill=(238, 238, 238))
                draw.line((left - 4, y, left, y), fill=MUTED)
                draw.text((left - 6 - _text_width(text, small), y - 7), text, fill=MUTED, font=small)
    for points, colour in ((reference, REFERENCE), (generated, GENERATED)):
        if points is None:
            continue
        for x, y in to_pixels(points[:5000].astype(np.float64)):
            draw.ellipse((x - 1.5, y - 1.5, x + 1.5, y + 1.5), fill=colour)
    draw.text((left + size / 2 - 30, top + size + 24), "dimension 1", fill=INK, font=label_face)
    axis_label = Image.new("RGB", (90, 16), "white")
    ImageDraw.Draw(axis_label).text((0, 0), "dimension 2", fill=INK, font=label_face)
    image.paste(axis_label.rotate(90, expand=True), (4, top + size // 2 - 45))
    draw.text((left, 8), title, fill=INK, font=title_face)
    x = left
    for points, colour, name in ((generated, GENERATED, names[0]), (reference, REFERENCE, names[1])):
        if points is None:
            continue
        draw.ellipse((x, 36, x + 9, 45), fill=colour)
        text = f"{name} ({len(points):,} points" + (", 5,000 drawn)" if len(points) > 5000 else ")")
        draw.text((x + 14, 33), text, fill=INK, font=label_face)
        x += 28 + _text_width(text, label_face)
    return _png(image)


def text_table_png(
    strings: list[str],
    title: str = "Generated strings",
    marks: list[str] | None = None,
    columns: int = 4,
    cell_width: int = 200,
) -> bytes:
    """Strings in a numbered table under a title (the text kind's sample picture).

    Parameters
    ----------
    strings : list of str
        What to show, in order; a string wider than a cell is cut with an ellipsis.
    title : str
        The picture's title.
    marks : list of str, optional
        A short mark after each string (``"new"``, ``"train copy"``), drawn muted.
    columns : int
        Cells per row.
    cell_width : int
        Width of a cell in pixels.

    Returns
    -------
    bytes
        The PNG.
    """
    from PIL import Image, ImageDraw

    face, heading, small = font(14), font(15, bold=True), font(11)
    line = _line_height(face) + 4
    rows = max(1, math.ceil(len(strings) / columns))
    width = columns * cell_width + 16
    image = Image.new("RGB", (width, 40 + rows * line + 8), "white")
    draw = ImageDraw.Draw(image)
    draw.text((8, 8), title, font=heading, fill=INK)
    for index, text in enumerate(strings):
        x = 8 + (index % columns) * cell_width
        y = 40 + (index // columns) * line
        shown = text.replace("\n", " ") or "(empty)"
        while len(shown) > 1 and _text_width(f"{index + 1}. {shown}", face) > cell_width - 70:
            shown = shown[:-2] + "…"
        draw.text((x, y), f"{index + 1}.", font=small, fill=MUTED)
        draw.text((x + 28, y - 2), shown, font=face, fill=GENERATED if text else MUTED)
        if marks and marks[index]:
            draw.text((x + 32 + _text_width(shown, face), y), marks[index], font=small, fill=MUTED)
    return _png(image)
