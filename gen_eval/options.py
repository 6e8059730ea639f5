"""Metric and detector options (``-o KEY=VALUE``): declared, parsed, checked and coerced.

Every metric in :mod:`gen_eval.metrics` and every collapse detector in
:mod:`gen_eval.collapse.check` declares the options it reads as :class:`Option` entries (type,
default, one line of help). :func:`coerce_options` and :func:`check_applicable` hold what a user
passes against those declarations, so a misspelt key, a mistyped value or an option for a metric
that will not run is a one-line :class:`GenEvalError` instead of a run with default numbers.

This module is imported by the command line, so it loads nothing heavy at import time. The
registries import :mod:`gen_eval.option_types` (the declarations and their coercion), never this
module, so checking options against them makes no import cycle.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from gen_eval.errors import GenEvalError
from gen_eval.option_types import COLLAPSE, Option, coerce_against, parse_option_pairs

__all__ = [
    "Option",
    "check_applicable",
    "coerce_options",
    "declared_options",
    "option_rows",
    "parse_option_pairs",
]


def declared_options() -> dict[str, dict[str, Option]]:
    """Every declared option by owner: each metric's name, then ``"collapse"`` for the detectors.

    Returns
    -------
    dict
        ``{"kid": {"kid_subset_size": Option, ...}, ..., "collapse": {"ndb_bins": Option, ...}}``.
    """
    from gen_eval.collapse.check import DETECTOR_OPTIONS
    from gen_eval.metrics import metric_options

    owners = {name: dict(options) for name, options in metric_options().items()}
    owners[COLLAPSE] = {
        key: option for options in DETECTOR_OPTIONS.values() for key, option in options.items()
    }
    return owners


def option_rows() -> list[list[str]]:
    """One row per declared option for ``gen-eval metrics``: key, owner, default, help.

    Returns
    -------
    list of list of str
        ``[["kid_subset_size", "kid", "1000", "samples per subset ..."], ...]``; a default that
        depends on the data is shown as its type (the help says how it is chosen).
    """
    rows: dict[str, list[str]] = {}
    for owner, options in declared_options().items():
        for key, option in options.items():
            if key in rows:  # one option read by several metrics (kid and kid_per_class): one row
                rows[key][1] += f", {owner}"
                continue
            default = option.default
            if isinstance(default, tuple):
                default = ",".join(str(v) for v in default)
            elif isinstance(default, bool):
                default = str(default).lower()
            shown = f"({option.type.__name__})" if default is None else str(default)
            rows[key] = [key, owner, shown, option.help]
    return list(rows.values())


def _owners_of(key: str, owners: Mapping[str, Mapping[str, Option]]) -> list[str]:
    return [owner for owner, options in owners.items() if key in options]


def _describe_owners(metrics: Sequence[str], collapse: bool) -> str:
    names = [f"metrics {', '.join(metrics)}"] if metrics else []
    return " and ".join(names + (["the collapse check"] if collapse else [])) or "no metrics"


def coerce_options(
    options: Mapping[str, Any] | None, metrics: Sequence[str] | None, collapse: bool = True
) -> dict[str, Any]:
    """Check that every key is a declared option and convert each value to its declared type.

    Runs before any source is opened: a misspelt key or a value of the wrong type stops the
    evaluation at once. Whether each option's metric will actually run is checked once the
    metrics are chosen (:func:`check_applicable`).

    Parameters
    ----------
    options : mapping, optional
        Option name -> value: text from the command line (``"500"``, ``"8,16,32"``, ``"false"``)
        or Python values (``500``, ``(8, 16, 32)``, ``False``).
    metrics : sequence of str, optional
        The metrics expected to run (registry names), for the list of valid keys in messages;
        None for the default set (``--metrics auto``).
    collapse : bool
        Whether the collapse detectors run (their options are then valid too).

    Returns
    -------
    dict
        The options with values of their declared types (tuples of integers as tuples).

    Raises
    ------
    GenEvalError
        One line naming an unknown key (with the closest declared one, and the valid keys), or a
        key whose value does not convert to its type.
    """
    from gen_eval.metrics import default_metrics

    if metrics is None:  # which defaults apply is known only once the sources are open
        metrics = default_metrics({"features", "logits", "images", "log_prob"})
    owners = declared_options()
    every = {key: option for declared in owners.values() for key, option in declared.items()}
    valid = [k for owner in [*metrics, *([COLLAPSE] if collapse else [])] for k in owners.get(owner, {})]
    return coerce_against(options, every, valid, _describe_owners(metrics, collapse))


def check_applicable(options: Mapping[str, Any], metrics: Sequence[str], collapse: bool, how: str) -> None:
    """Refuse an option whose metric will not run, or a detector option with the check off.

    Parameters
    ----------
    options : mapping
        The options (keys already known to be declared: :func:`coerce_options`).
    metrics : sequence of str
        The metrics that will run (registry names), in order.
    collapse : bool
        Whether the collapse detectors run.
    how : {"list", "collapse"}
        How the metrics were chosen, for the fix the message suggests: ``"list"`` (``--metrics``
        or the defaults: add the metric) or ``"collapse"`` (``gen-eval collapse``, whose metrics
        are fixed).

    Raises
    ------
    GenEvalError
        One line naming the option, the metric it applies to and how to run that metric.
    """
    owners = declared_options()
    for key in options:
        found = _owners_of(key, owners)
        if not found or any(owner in metrics for owner in found):
            continue
        if found == [COLLAPSE]:
            if not collapse:
                raise GenEvalError(
                    f"option {key!r} applies to the collapse check, which is off (--no-collapse); "
                    "drop the option or the flag"
                )
            continue
        metric = next(owner for owner in found if owner != COLLAPSE)
        if how == "collapse":
            raise GenEvalError(
                f"option {key!r} applies to {metric}, which the collapse check does not compute "
                f"(it computes {', '.join(metrics)}); use gen-eval evaluate --metrics {metric}"
            )
        raise GenEvalError(
            f"option {key!r} applies to {metric}, which is not among the metrics: "
            f"add --metrics {','.join([*metrics, metric])}"
        )
