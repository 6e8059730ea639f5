"""Text runs side by side: every run's string lengths and commonest characters over one reference.

The run page (:mod:`gen_eval.report.text_run`) draws one run against its reference; comparing
runs needs all of them on the same axes, with the reference once, so a model that writes too-long
names or overuses a letter stands out against the others at a glance. The compare page
(:mod:`gen_eval.comparison.html`) and the dashboard's compare view draw these figures.
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import plotly.graph_objects as go

    from gen_eval.report.text_run import TextView

REFERENCE_COLOUR = "#7f7f7f"


def _shares(counts: Counter, keys: list) -> list[float]:
    total = max(sum(counts.values()), 1)
    return [counts[key] / total for key in keys]


def length_comparison_figure(views: dict[str, TextView]) -> go.Figure:
    """String-length distributions (share of strings) of every run, and the first run's reference."""
    import plotly.graph_objects as go

    lengths = {label: Counter(len(s) for s in view.generated) for label, view in views.items()}
    reference = next((view.reference for view in views.values() if view.reference), [])
    reference_lengths = Counter(len(s) for s in reference)
    xs = sorted(set().union(*lengths.values(), reference_lengths))
    figure = go.Figure()
    if reference:
        figure.add_scatter(
            x=xs,
            y=_shares(reference_lengths, xs),
            name="reference",
            mode="lines+markers",
            line={"color": REFERENCE_COLOUR, "width": 3, "dash": "dot"},
        )
    for label, counts in lengths.items():
        figure.add_scatter(x=xs, y=_shares(counts, xs), name=label, mode="lines+markers")
    figure.update_layout(
        title="String length per run (share of each run's strings)",
        xaxis_title="characters",
        yaxis_title="share of strings",
        template="plotly_white",
        height=340,
        margin={"t": 50, "b": 40},
    )
    return figure


def character_comparison_figure(views: dict[str, TextView], top: int = 26) -> go.Figure:
    """Shares of the ``top`` commonest characters (in the reference, else all runs) per run."""
    import plotly.graph_objects as go

    counts = {label: Counter("".join(view.generated)) for label, view in views.items()}
    reference = next((view.reference for view in views.values() if view.reference), [])
    reference_counts = Counter("".join(reference))
    basis = reference_counts if reference_counts else sum(counts.values(), Counter())
    characters = [c for c, _ in basis.most_common(top)]
    figure = go.Figure()
    if reference_counts:
        figure.add_bar(
            x=[repr(c)[1:-1] for c in characters],
            y=_shares(reference_counts, characters),
            name="reference",
            marker_color=REFERENCE_COLOUR,
        )
    for label, c in counts.items():
        figure.add_bar(x=[repr(ch)[1:-1] for ch in characters], y=_shares(c, characters), name=label)
    figure.update_layout(
        title=f"Characters per run: the reference's {len(characters)} commonest, share of all characters",
        xaxis_title="character",
        yaxis_title="share of characters",
        barmode="group",
        template="plotly_white",
        height=360,
        margin={"t": 50, "b": 40},
    )
    return figure


def text_comparison_figures(views: dict[str, TextView]) -> list[go.Figure]:
    """The compare page's text charts; none for fewer than one run that kept strings."""
    if not views:
        return []
    return [length_comparison_figure(views), character_comparison_figure(views)]
