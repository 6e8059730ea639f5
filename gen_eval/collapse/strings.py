"""Collapse detectors on the strings themselves, and the example strings behind every text finding.

For text a duplicate is an identical string, so the birthday test and the memorisation check
count exact repeats and exact copies instead of thresholding feature distances (two different
names can embed close together; an identical pair always embeds identically):

* :func:`exact_birthday`: the share of random batches of s generated strings holding a repeated
  string, beside the same share for reference batches. Real names repeat too (common names), so
  only batch sizes at which reference batches repeat less than half of the time can show an
  excess: larger ones are dropped (at least the smallest size is kept). Small support is called
  when generated batches repeat at least half the time at a size where real batches do not.
  The support estimate inverts P(s) = 1 - exp(-s(s-1) / 2N) as the feature test does.
* :func:`exact_memorisation`: the share of generated strings found in the training set beside
  the share of the (held-out) reference strings found there, the rate real data shows by chance.
  Likely memorising when the excess is significant (one-sided binomial test, p < 1e-3) and large:
  at least twice that rate, or fewer than half as many novel strings as the reference has
  (census names: held-out data is 95% "copies", a copier 100%, so novelty is what differs).

:func:`attach_examples` appends example strings to the findings (the repeated strings with
their counts, the copied training strings, strings from NDB's most mismatched bins), and
:func:`string_tables` turns the same into plotly tables, the text kind's collapse evidence.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from gen_eval.collapse.birthday import BirthdayResult, _support_from_rates

if TYPE_CHECKING:
    import plotly.graph_objects as go

    from gen_eval.collapse.check import CollapseReport

EXAMPLES = 8  # strings shown per finding
ALPHA = 1e-3


def _has_repeat(strings: list[str], batches: np.ndarray) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """Per batch (rows of indices), whether two of its strings are equal, and the first such pair."""
    hits = np.zeros(len(batches), bool)
    pairs: list[tuple[int, int]] = []
    for b, batch in enumerate(batches):
        seen: dict[str, int] = {}
        for i in batch:
            text = strings[i]
            if text in seen:
                hits[b] = True
                pairs.append((seen[text], int(i)))
                break
            seen[text] = int(i)
    return hits, pairs


def exact_birthday(
    generated: list[str],
    reference: list[str],
    batch_sizes: Sequence[int] = (8, 16, 24, 32),
    num_batches: int = 200,
    random_state: int = 0,
    num_pairs: int = 8,
) -> BirthdayResult:
    """The birthday test on exact string repeats; see the module docstring.

    Returns
    -------
    BirthdayResult
        ``threshold`` 0 (a duplicate is an identical string); ``batch_size`` the largest size kept,
        ``closest_pairs`` index pairs of repeated generated strings (distance 0).
    """
    limit = max(2, min(len(generated), len(reference)) // 2)
    sizes = sorted({max(2, min(int(s), limit)) for s in batch_sizes})
    rng = np.random.default_rng(random_state)

    def batches(n: int, s: int) -> np.ndarray:
        return np.stack([rng.choice(n, size=s, replace=False) for _ in range(num_batches)])

    warnings: list[str] = []
    runs = [_has_repeat(generated, batches(len(generated), s)) for s in sizes]
    ref_rates = [float(_has_repeat(reference, batches(len(reference), s))[0].mean()) for s in sizes]
    kept = [k for k, r in enumerate(ref_rates) if r < 0.5] or [0]
    if len(kept) < len(sizes):
        dropped = [sizes[k] for k in range(len(sizes)) if k not in kept]
        warnings.append(
            f"real batches of {', '.join(map(str, dropped))} repeat a string at least half the time "
            "(common strings recur in real data): those sizes are left out"
        )
    sizes = [sizes[k] for k in kept]
    hits = [int(runs[k][0].sum()) for k in kept]
    rates = [h / num_batches for h in hits]
    ref_rates = [ref_rates[k] for k in kept]
    pairs = list(dict.fromkeys(p for k in kept for p in runs[k][1]))[:num_pairs]
    support, support_s, _ = _support_from_rates(sizes, hits, num_batches)
    small = any(r >= 0.5 and rr < 0.5 for r, rr in zip(rates, ref_rates, strict=True))
    return BirthdayResult(
        batch_sizes=sizes,
        duplicate_rates=rates,
        reference_duplicate_rates=ref_rates,
        threshold=0.0,
        threshold_quantile=0.0,
        batch_size=sizes[-1],
        duplicate_rate=rates[-1],
        small_support=small,
        support_estimate=support,
        closest_pairs=[(i, j, 0.0) for i, j in pairs],
        num_batches=num_batches,
        num_generated=len(generated),
        warnings=[*warnings, "duplicates are identical strings (exact test, no feature threshold)"],
        support_batch_size=support_s,
    )


@dataclass
class StringMemorisation:
    """Outcome of :func:`exact_memorisation` (``quantile`` is the reference's copy rate, for the verdict)."""

    copy_fraction: float
    null_rate: float
    quantile: float
    num_copies: int
    p_value: float
    likely_memorising: bool
    pairs: list[tuple[int, int, float]]
    num_generated: int
    num_train: int
    warnings: list[str]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def exact_memorisation(
    generated: list[str], train: list[str], reference: list[str], num_pairs: int = EXAMPLES
) -> StringMemorisation:
    """Exact copies of training strings, against the rate held-out reference strings show."""
    from scipy.stats import binom

    first: dict[str, int] = {}
    for index, text in enumerate(train):
        first.setdefault(text, index)
    copied = np.array([s in first for s in generated])
    null = float(np.mean([s in first for s in reference])) if reference else 0.0
    n, k = len(generated), int(copied.sum())
    fraction = k / max(n, 1)
    p_value = float(binom.sf(k - 1, n, null)) if n and null < 1 else 1.0
    large = fraction >= 2 * null or (1 - fraction) <= 0.5 * (1 - null)
    pairs = [(int(i), first[generated[i]], 0.0) for i in np.flatnonzero(copied)]
    distinct = list({generated[i]: (i, t, d) for i, t, d in pairs}.values())[:num_pairs]
    return StringMemorisation(
        copy_fraction=fraction,
        null_rate=null,
        quantile=null,
        num_copies=k,
        p_value=p_value,
        likely_memorising=bool(n and p_value < ALPHA and large and fraction > null),
        pairs=distinct,
        num_generated=n,
        num_train=len(train),
        warnings=[
            f"copies are exact training strings; {null:.1%} of the reference strings are in the training set too"
        ],
    )


def _quote(strings: Sequence[str]) -> str:
    return ", ".join(repr(s) for s in strings)


def duplicate_examples(generated: list[str], limit: int = EXAMPLES) -> list[tuple[str, int]]:
    """The most repeated generated strings and their counts (those that occur more than once)."""
    return [(s, c) for s, c in Counter(generated).most_common(limit) if c > 1]


def _ndb_examples(report: CollapseReport, generated: list[str], reference: list[str]) -> dict[str, list[str]]:
    ndb = report.detectors.get("ndb")
    if ndb is None:
        return {}
    out = {}
    for label, bins, members, strings in (
        ("under-filled (reference strings)", ndb.under_filled, ndb.reference_bins, reference),
        ("over-filled (generated strings)", ndb.over_filled, ndb.generated_bins, generated),
    ):
        for b in bins[:2]:
            out[f"bin {b} {label}"] = [strings[i] for i in np.flatnonzero(members == b)[:EXAMPLES]]
    return out


def attach_examples(
    report: CollapseReport, generated: list[str], reference: list[str], train: list[str] | None
) -> None:
    """Append example strings to the birthday, memorisation and NDB findings (in place)."""
    for finding in report.findings:
        extra = ""
        if finding.detector == "birthday":
            repeated = duplicate_examples(generated)
            if repeated:
                extra = "; most repeated: " + ", ".join(f"{s!r} x{c}" for s, c in repeated)
        elif finding.detector == "memorisation" and train is not None:
            pairs = report.detectors["memorisation"].pairs
            if pairs:
                extra = "; copied training strings: " + _quote([generated[i] for i, _, _ in pairs])
        elif finding.detector == "ndb" and finding.severity != "ok":
            examples = _ndb_examples(report, generated, reference)
            if examples:
                first = next(iter(examples.items()))
                extra = f"; e.g. {first[0]}: {_quote(first[1][:5])}"
        finding.message += extra


def string_tables(
    report: CollapseReport, generated: list[str], reference: list[str], train: list[str] | None
) -> dict[str, go.Figure]:
    """Plotly tables of the strings behind the verdict: ``duplicates``, ``copies``, ``ndb_bins``."""
    import plotly.graph_objects as go

    def table(title: str, header: list[str], columns: list[list[Any]]) -> go.Figure:
        figure = go.Figure(go.Table(header={"values": header}, cells={"values": columns}))
        figure.update_layout(title=title, height=120 + 28 * max((len(c) for c in columns), default=1))
        return figure

    figures: dict[str, go.Figure] = {}
    repeated = duplicate_examples(generated, 20)
    if repeated:
        share = [f"{c / len(generated):.1%}" for _, c in repeated]
        figures["duplicates"] = table(
            "Birthday test: the most repeated generated strings",
            ["string", "times generated", "share of the samples"],
            [[s for s, _ in repeated], [c for _, c in repeated], share],
        )
    memorisation = report.detectors.get("memorisation")
    if isinstance(memorisation, StringMemorisation) and memorisation.pairs and train is not None:
        figures["copies"] = table(
            "Memorisation: generated strings that are training strings",
            ["generated string", "sample index", "training index"],
            [
                [generated[i] for i, _, _ in memorisation.pairs],
                [i for i, _, _ in memorisation.pairs],
                [t for _, t, _ in memorisation.pairs],
            ],
        )
    examples = _ndb_examples(report, generated, reference)
    if examples:
        figures["ndb_bins"] = table(
            "NDB: strings from the most under-filled and over-filled bins",
            ["bin", "strings"],
            [list(examples), [", ".join(v) for v in examples.values()]],
        )
    return figures
