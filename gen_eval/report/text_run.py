"""What a text run shows: its samples as a table with novelty marks, and n-gram and length histograms.

Shared by the HTML run report, the compare page and the dashboard. A text run keeps its strings
(``text/generated.json``, ``text/reference.json``; :mod:`gen_eval.runs.text_files`); the training
set is the one ``train_copies`` was measured against, read again from its spec (an embedded
dataset's ``train`` split).

Each shown sample gets one mark: ``train copy`` (it occurs in the training set), ``in reference``
(not in training, but in the held-out reference) or ``new``, and its nearest training string with
the Levenshtein distance (insertions, deletions and substitutions of one character each), so that
a near copy (one or two edits from a training string) stands out next to the exact copies. The
distances come from rapidfuzz (MIT, C++): ``process.cdist`` gives all of them in one call, ~100x
faster than difflib, whose ratio is not an edit distance anyway.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pathlib import Path

    import plotly.graph_objects as go

    from gen_eval.runs.run import Run

SHOWN = 100  # rows of the samples table
GENERATED, REFERENCE = "#1f77b4", "#7f7f7f"  # the report's colours (gen_eval/figure_style.py)


@dataclass
class TextView:
    """The strings behind a text run's table and charts."""

    generated: list[str]
    reference: list[str]
    train: set[str] | None = None
    train_list: list[str] = field(default_factory=list)
    train_spec: str | None = None
    reference_set: set[str] = field(default_factory=set, init=False, repr=False)

    def __post_init__(self) -> None:
        self.reference_set = set(self.reference)

    def mark(self, text: str) -> str:
        """``train copy``, ``in reference`` or ``new``."""
        if self.train is not None and text in self.train:
            return "train copy"
        return "in reference" if text in self.reference_set else "new"

    def marks(self) -> dict[str, int]:
        """How many generated strings carry each mark (all of them, not only the shown rows)."""
        reference = set(self.reference)
        train = self.train or set()
        found = Counter(
            "train copy" if s in train else "in reference" if s in reference else "new"
            for s in self.generated
        )
        return {name: found.get(name, 0) for name in ("new", "train copy", "in reference")}

    def rows(self, shown: int = SHOWN) -> list[dict[str, Any]]:
        """The first ``shown`` generated strings with their mark and nearest training string."""
        strings = self.generated[:shown]
        nearest = nearest_training(strings, self.train_list)
        return [
            {
                "#": i,
                "sample": s,
                "mark": self.mark(s),
                "nearest training string": nearest[i][0] if nearest else None,
                "edits": nearest[i][1] if nearest else None,
            }
            for i, s in enumerate(strings)
        ]


def nearest_training(strings: list[str], train: list[str]) -> list[tuple[str, int]]:
    """For each string, its nearest training string and their Levenshtein distance ([] without a set).

    Ties go to the first training string in the set's order.
    """
    if not strings or not train:
        return []
    import numpy as np
    from rapidfuzz.distance import Levenshtein
    from rapidfuzz.process import cdist

    distances = cdist(strings, train, scorer=Levenshtein.distance, dtype=np.int32, workers=1)
    best = distances.argmin(axis=1)
    return [(train[j], int(distances[i, j])) for i, j in enumerate(best)]


def load_text_view(run: Run) -> TextView | None:
    """The strings a text run kept, and its training set when one was named; None for other runs."""
    from gen_eval.errors import GenEvalError
    from gen_eval.runs.text_files import read_run_strings

    generated = read_run_strings(run.path, "generated")
    if generated is None:
        return None
    view = TextView(generated, read_run_strings(run.path, "reference") or [])
    result = run.metrics.get("train_copies")
    spec = (result.details or {}).get("training_set") if result is not None else None
    if spec:
        from gen_eval.metrics.text import source_strings
        from gen_eval.sources import open_source

        try:
            view.train_list = list(dict.fromkeys(source_strings(open_source(spec))))
        except GenEvalError:  # a training file moved since the run: the table goes without it
            return view
        view.train, view.train_spec = set(view.train_list), spec
    return view


def ngram_figure(view: TextView, n: int = 1, top: int = 30) -> go.Figure:
    """Frequencies of the ``top`` commonest character n-grams (in either set), generated vs reference."""
    import plotly.graph_objects as go

    counts = [
        Counter(s[i : i + n] for s in strings for i in range(len(s) - n + 1))
        for strings in (view.generated, view.reference)
    ]
    totals = [max(sum(c.values()), 1) for c in counts]
    grams = [g for g, _ in (counts[0] + counts[1]).most_common(top)]
    figure = go.Figure()
    for (name, colour), c, total in zip(
        (("generated", GENERATED), ("reference", REFERENCE)), counts, totals, strict=True
    ):
        if total > 1 or c:
            figure.add_bar(
                x=[repr(g)[1:-1] for g in grams],
                y=[c[g] / total for g in grams],
                name=name,
                marker_color=colour,
            )
    figure.update_layout(
        title=f"Character {n}-grams: the {len(grams)} commonest, share of all {n}-grams",
        barmode="group",
        template="plotly_white",
        height=340,
        margin={"t": 50, "b": 40},
    )
    return figure


def length_figure(view: TextView) -> go.Figure:
    """Distribution of string lengths (characters), generated vs reference, as shares."""
    import plotly.graph_objects as go

    figure = go.Figure()
    for name, strings, colour in (
        ("generated", view.generated, GENERATED),
        ("reference", view.reference, REFERENCE),
    ):
        if strings:
            lengths = Counter(len(s) for s in strings)
            xs = sorted(lengths)
            figure.add_bar(x=xs, y=[lengths[x] / len(strings) for x in xs], name=name, marker_color=colour)
    figure.update_layout(
        title="Length in characters (share of strings)",
        barmode="group",
        template="plotly_white",
        height=320,
        margin={"t": 50, "b": 40},
        xaxis_title="characters",
    )
    return figure


def figures(view: TextView) -> list[go.Figure]:
    """The charts of a text run: 1-gram and 2-gram frequencies and lengths, generated vs reference."""
    return [ngram_figure(view, 1), ngram_figure(view, 2), length_figure(view)]


def text_section_html(view: TextView, shown: int = SHOWN) -> str:
    """A summary of the marks over all generated strings and the table of the first ``shown``."""
    from gen_eval.report.html import escape, table

    marks = view.marks()
    total = max(len(view.generated), 1)
    summary = ", ".join(f"{name} {count:,} ({count / total:.1%})" for name, count in marks.items())
    trained = (
        f"training set {view.train_spec}"
        if view.train_spec
        else "no training set named (no train-copy marks)"
    )
    rows = view.rows(shown)
    body = table(
        ["#", "sample", "mark", "nearest training string", "edits"],
        (
            [
                r["#"],
                r["sample"],
                r["mark"],
                r["nearest training string"] or "",
                "" if r["edits"] is None else r["edits"],
            ]
            for r in rows
        ),
        left=4,
    )
    return (
        f"<p>All {len(view.generated):,} generated strings: {escape(summary)}; {escape(trained)}. "
        f"The first {len(rows):,}, each with its nearest training string and the Levenshtein distance "
        "to it (0: a copy; 1-2: a near copy):</p>" + body
    )


def run_text_dir(run_dir: str | Path) -> TextView | None:
    """:func:`load_text_view` of the run at ``run_dir``."""
    from gen_eval.runs.run import load_run

    return load_text_view(load_run(run_dir))
