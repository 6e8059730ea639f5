"""Option declarations and their coercion: the leaf the registries import.

A metric (:mod:`gen_eval.metrics`) or collapse detector (:mod:`gen_eval.collapse.check`) declares
each option it reads as an :class:`Option`; :func:`coerce_against` holds user values against a set
of declarations. This module imports nothing of gen-eval's but its error type, so the registries
can import it without a cycle; :mod:`gen_eval.options` knows the registries and checks a whole
evaluation's options.
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


def coerce_against(
    options: Mapping[str, Any] | None, declared: Mapping[str, Option], valid: Sequence[str], owners: str
) -> dict[str, Any]:
    """Check every key against ``declared`` and convert each value to its declared type.

    Parameters
    ----------
    options : mapping, optional
        Option name -> value (text from the command line or Python values).
    declared : mapping
        Every option name that may be given -> its declaration.
    valid : sequence of str
        The keys listed in the message for an unknown key (those of what will run).
    owners : str
        What the options are for, in the message ("metrics fid, kid and the collapse check").

    Returns
    -------
    dict
        The options with values of their declared types.

    Raises
    ------
    GenEvalError
        One line naming an unknown key (with the closest declared one and the valid keys), or a
        key whose value does not convert to its type.
    """
    coerced: dict[str, Any] = {}
    for key, value in (options or {}).items():
        if key not in declared:
            close = difflib.get_close_matches(key, list(declared), n=2, cutoff=0.6)
            hint = f"did you mean {' or '.join(map(repr, close))}? " if close else ""
            raise GenEvalError(
                f"unknown option {key!r} for {owners}: {hint}"
                f"valid: {', '.join(valid) or 'none'} (see gen-eval metrics)"
            )
        coerced[key] = coerce_value(key, value, declared[key])
    return coerced


def coerce_value(key: str, value: Any, option: Option) -> Any:
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
