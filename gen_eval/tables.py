"""Rich tables printed whole: names, paths and URLs are never cut with "…".

Rich's default cuts a cell that does not fit its column with an ellipsis, and a console that is
not a terminal (a pipe, a CI log, ``CliRunner``) is 80 columns wide, so piped tables lost exactly
the identifiers a user copies. Here every column folds instead, identifier columns never wrap,
and piped output is as wide as the longest unbreakable word needs.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

#: The width piped tables aim for (more when a word needs it).
PIPED_WIDTH = 120

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table


def unclipped(table: Table, whole: Iterable[str] = ()) -> Table:
    """Let ``table``'s cells wrap at spaces and fold long words, never end in "…".

    Parameters
    ----------
    table : rich.table.Table
        The table, columns already added.
    whole : iterable of str
        Headers of columns that must not wrap at all (short identifiers: model names, metrics).

    Returns
    -------
    rich.table.Table
        The same table, changed in place.
    """
    keep = set(whole)
    for column in table.columns:
        column.overflow = "fold"
        if column.header in keep:
            column.no_wrap = True
    return table


def console_for(*tables: Table, stderr: bool = False) -> Console:
    """A console that prints ``tables`` without folding a word when the output is not a terminal.

    On a terminal it is the terminal's own width (cells fold to fit it). Piped, each column is
    given a fixed width of at least its longest word (the whole cell for columns that do not wrap),
    the rest of the usual width shared by how much each column wants; the console is as wide as
    the widest table then is. Rich's own narrowing ignores a column's longest word, which folded
    URLs and paths mid-word.

    Parameters
    ----------
    *tables : rich.table.Table
        What will be printed (other text wraps at spaces anyway). Their columns' widths are set.
    stderr : bool
        Print to stderr instead of stdout.

    Returns
    -------
    rich.console.Console
    """
    from rich.console import Console

    console = Console(stderr=stderr)
    if console.is_terminal or not tables:
        return console
    # A pipe has no width of its own; rich's 80 would wrap short cells ("0.01 MB") needlessly.
    target = max(console.width, PIPED_WIDTH)
    needed = max(_fix_widths(table, target) for table in tables)
    return Console(width=max(needed, console.width), stderr=stderr)


def _fix_widths(table: Table, width: int) -> int:
    """Fix ``table``'s column widths (no word cut, about ``width`` in all); its resulting width."""
    from rich.console import Console
    from rich.measure import Measurement

    measuring = Console(width=1_000_000)  # wider than anything: measurements are the content's own
    ranges = []
    for column in table.columns:
        cells = [column.header, *column.cells]
        found = [Measurement.get(measuring, measuring.options, cell) for cell in cells]
        low = max(m.maximum if column.no_wrap else m.minimum for m in found)
        ranges.append((low, max(low, max(m.maximum for m in found))))
    for column, (low, _) in zip(table.columns, ranges, strict=True):
        column.width = low
    spare = width - measuring.measure(table).maximum
    wants = [high - low for low, high in ranges]
    # Water-filling: the columns that want least are made whole first (no "0.01 / MB" wraps).
    order = sorted(range(len(wants)), key=wants.__getitem__)
    for done, index in enumerate(order):
        share = min(wants[index], max(spare, 0) // (len(order) - done))
        table.columns[index].width = ranges[index][0] + share
        spare -= share
    return measuring.measure(table).maximum
