"""Building blocks of gen-eval's self-contained HTML pages (run reports, compare, score).

Every page inlines plotly.js once and embeds images as base64 data URIs, so a page opens
offline, from an e-mail attachment or a USB stick, with no server. Pages written side by side
(``gen-eval score``'s reports) may instead share one copy of plotly.js in their folder
(:func:`write_plotly_js`, ``Page(plotly_src=...)``): still offline, 4.6 MB lighter each.
"""

from __future__ import annotations

import base64
import html
import os
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import plotly.graph_objects as go

STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;max-width:1200px;margin:2em auto;padding:0 1em;color:#222}
h1{font-size:1.6em}h2{font-size:1.25em;margin-top:1.8em;border-bottom:1px solid #ddd;padding-bottom:.2em}
table{border-collapse:collapse;margin:.6em 0;font-size:.92em}
th,td{border-bottom:1px solid #e5e5e5;padding:.3em .7em;text-align:right;vertical-align:top}
th{background:#f6f6f6}td.l,th.l{text-align:left}
.ok{color:#2ca02c}.warning{color:#e67e00}.collapse,.worse,.error{color:#d62728;font-weight:600}
.memorisation{color:#9467bd;font-weight:600}.better{color:#2ca02c;font-weight:600}.same{color:#777}
.muted{color:#777;font-size:.9em}img.samples{image-rendering:pixelated;max-width:100%;border:1px solid #ddd}
pre{background:#f6f6f6;padding:.8em;overflow-x:auto;font-size:.8em}
.row{display:flex;gap:1.5em;flex-wrap:wrap}.row>div{flex:1;min-width:280px}
"""


def escape(value: object) -> str:
    """HTML-escaped text of ``value``."""
    return html.escape(str(value))


def image_tag(png: bytes, alt: str, css_class: str = "samples") -> str:
    """An ``<img>`` with the PNG embedded as a data URI."""
    data = base64.b64encode(png).decode("ascii")
    return f"<img class='{css_class}' alt='{escape(alt)}' src='data:image/png;base64,{data}'>"


def table(columns: Sequence[str], rows: Iterable[Sequence[Any]], left: int = 1, raw: bool = False) -> str:
    """A table; the first ``left`` columns are left-aligned. Cells are escaped unless ``raw``."""
    head = "".join(f"<th class='{'l' if i < left else ''}'>{escape(c)}</th>" for i, c in enumerate(columns))
    body = []
    for row in rows:
        cells = "".join(
            f"<td class='{'l' if i < left else ''}'>{cell if raw else escape(cell)}</td>"
            for i, cell in enumerate(row)
        )
        body.append(f"<tr>{cells}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def write_plotly_js(folder: str | Path) -> str:
    """Write plotly.js into ``folder`` once, for pages there to share (``Page(plotly_src=...)``).

    Parameters
    ----------
    folder : str or Path
        The folder of the pages.

    Returns
    -------
    str
        The file's name, to use as the pages' relative ``plotly_src``. The name carries the
        plotly.js version, so pages written by another version keep the copy they were made with.
    """
    from plotly.offline import get_plotlyjs, get_plotlyjs_version

    name = f"plotly-{get_plotlyjs_version()}.min.js"
    target = Path(folder) / name
    text = get_plotlyjs()
    if target.is_file() and target.stat().st_size == len(text.encode("utf-8")):
        return name
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{name}.", suffix=".tmp")
    try:  # written whole, then renamed: a page never loads half a library
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(text)
        os.chmod(temporary, 0o644)
        os.replace(temporary, target)
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)
    return name


class Page:
    """An HTML page assembled section by section.

    Parameters
    ----------
    title : str
        The page's title and first heading.
    plotly_src : str, optional
        A relative path to a shared plotly.js (see :func:`write_plotly_js`); by default plotly.js
        is inlined with the first figure, so the page stands alone.
    """

    def __init__(self, title: str, plotly_src: str | None = None) -> None:
        self.title = title
        self.parts: list[str] = [f"<h1>{escape(title)}</h1>"]
        self.plotly_src = plotly_src
        self._plotly_included = False

    def add(self, raw_html: str) -> Page:
        self.parts.append(raw_html)
        return self

    def heading(self, text: str) -> Page:
        return self.add(f"<h2>{escape(text)}</h2>")

    def paragraph(self, text: str, css_class: str = "") -> Page:
        return self.add(f"<p class='{css_class}'>{escape(text)}</p>")

    def figure(self, figure: go.Figure) -> Page:
        """A plotly figure (interactive; plotly.js inlined once per page unless shared)."""
        inline = self.plotly_src is None and not self._plotly_included
        self.parts.append(figure.to_html(full_html=False, include_plotlyjs=inline))
        self._plotly_included = True
        return self

    def render(self) -> str:
        """The whole document."""
        script = ""
        if self.plotly_src is not None and self._plotly_included:  # loaded before the figures run
            script = f"<script src='{escape(self.plotly_src)}' charset='utf-8'></script>"
        return (
            "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
            "<meta name='viewport' content='width=device-width, initial-scale=1'>"
            f"<title>{escape(self.title)}</title><style>{STYLE}</style>{script}</head><body>"
            + "\n".join(self.parts)
            + "</body></html>"
        )
