"""Metric and detector options (``-o KEY=VALUE``): declared, parsed, checked and coerced.

Every metric in :mod:`gen_eval.metrics` and every collapse detector in
:mod:`gen_eval.collapse.check` declares the options it reads as :class:`Option` entries (type,
default, one line of help). :func:`coerce_options` and :func:`check_applicable` hold what a user
passes against those declarations, so a misspelt key, a mistyped value or an option for a metric
that will not run is a one-line :class:`GenEvalError` instead of a run with default numbers.

This module is imported by the command line, so it loads nothing heavy at import time; the
registries are imported inside the functions (they import this module for :class:`Option`).
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import import_module
from typing import Any

from gen_eval.errors import GenEvalError

COLLAPSE = "collapse"  # owner name of the collapse detectors' options in messages
_TYPE_NAMES = {
    int: "an integer",
    float: "a number",
    bool: "true or false",
    str: "a string",
    tuple: "comma-separated integers",
}
_TRUE, _FALSE = ("true", "1", "yes", "on"), ("false", "0", "no", "off")


@dataclass(frozen=True)
class Option:
    """One option a metric or detector reads.

    Attributes
    ----------
    type : type
        ``int``, ``float``, ``bool``, ``str``, or ``tuple`` for a tuple of integers (given as
        ``8,16,32`` on the command line).
    default : Any
        The value used when the option is not given; None when it depends on the data (the
        ``help`` says how).
    help : str
        One line: what the option changes, and the default when ``default`` is None.
    choices : tuple of str or str, optional
        Accepted values of a string option, or ``"module:NAME"`` of the metric's own collection of
        accepted values (read when checking, so the declaration cannot fall behind the metric).
    """

    type: type
    default: Any
    help: str
    choices: tuple[str, ...] | str | None = None

    def accepted(self) -> tuple[str, ...] | None:
        """The accepted values of a string option, or None when any string goes."""
        if isinstance(self.choices, str):
            module, _, name = self.choices.partition(":")
            return tuple(getattr(import_module(module), name))
        return self.choices

    def describe(self) -> dict[str, Any]:
        """Plain data for ``gen-eval metrics --json``."""
        default = list(self.default) if isinstance(self.default, tuple) else self.default
        return {"type": self.type.__name__, "default": default, "help": self.help, "choices": self.accepted()}


def parse_option_pairs(pairs: Sequence[str]) -> dict[str, str]:
    """``["kid_subset_size=500"]`` -> ``{"kid_subset_size": "500"}``, values kept as text.

    Parameters
    ----------
    pairs : sequence of str
        What ``-o`` received, each ``KEY=VALUE``.

    Returns
    -------
    dict of str to str
        The values are converted later, once, to each option's declared type
        (:func:`coerce_options`): ``8,16,32`` is a tuple for one option and a typo for another.
    """
    options: dict[str, str] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key.strip():
            raise GenEvalError(f"--option {pair!r}: expected KEY=VALUE, e.g. kid_subset_size=500")
        options[key.strip()] = raw.strip()
    return options


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
    rows = []
    for owner, options in declared_options().items():
        for key, option in options.items():
            default = option.default
            if isinstance(default, tuple):
                default = ",".join(str(v) for v in default)
            elif isinstance(default, bool):
                default = str(default).lower()
            shown = f"({option.type.__name__})" if default is None else str(default)
            rows.append([key, owner, shown, option.help])
    return rows


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
    coerced: dict[str, Any] = {}
    for key, value in (options or {}).items():
        if key not in every:
            valid = [
                k for owner in [*metrics, *([COLLAPSE] if collapse else [])] for k in owners.get(owner, {})
            ]
            close = difflib.get_close_matches(key, list(every), n=2, cutoff=0.6)
            hint = f"did you mean {' or '.join(map(repr, close))}? " if close else ""
            raise GenEvalError(
                f"unknown option {key!r} for {_describe_owners(metrics, collapse)}: {hint}"
                f"valid: {', '.join(valid) or 'none'} (see gen-eval metrics)"
            )
        coerced[key] = _coerce(key, value, every[key])
    return coerced


def _coerce(key: str, value: Any, option: Option) -> Any:
    """``value`` as ``option.type``, or a one-line error naming the key, the type and the value."""
    kind = option.type

    def wrong() -> GenEvalError:
        example = (
            option.default
            if option.default is not None
            else {int: 100, float: 0.5, tuple: "8,16"}.get(kind, "x")
        )
        if isinstance(example, tuple):
            example = ",".join(str(v) for v in example)
        if isinstance(example, bool):
            example = str(example).lower()
        return GenEvalError(f"option {key}={value!r}: expected {_TYPE_NAMES[kind]}, e.g. -o {key}={example}")

    if value is None:
        if option.default is None:  # "use the data-dependent default", as when not given
            return None
        raise wrong()
    if isinstance(value, str):
        text = value.strip()
        try:
            if kind is bool:
                if text.lower() not in _TRUE + _FALSE:
                    raise ValueError(text)
                value = text.lower() in _TRUE
            elif kind is tuple:
                value = tuple(int(part) for part in text.replace(";", ",").split(",") if part.strip())
                if not value:
                    raise ValueError(text)
            elif kind is int:
                value = int(text)
            elif kind is float:
                value = float(text)
            else:
                value = text
        except ValueError:
            raise wrong() from None
    elif kind is bool:
        if not isinstance(value, bool):
            raise wrong()
    elif isinstance(value, bool):  # True is an int to Python, never a count or a size here
        raise wrong()
    elif kind is int:
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if not isinstance(value, int):
            raise wrong()
    elif kind is float:
        if not isinstance(value, int | float):
            raise wrong()
        value = float(value)
    elif kind is tuple:
        items = value if isinstance(value, list | tuple) else [value]
        if not items or not all(isinstance(v, int) and not isinstance(v, bool) for v in items):
            raise wrong()
        value = tuple(items)
    else:  # str
        raise wrong()
    accepted = option.accepted() if kind is str else None
    if accepted is not None and value not in accepted:
        raise GenEvalError(f"option {key}={value!r}: choose one of {', '.join(map(repr, accepted))}")
    return value


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
