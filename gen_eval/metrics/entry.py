"""``MetricEntry``: one metric registry row (its own module so entry lists in other files can import it)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from gen_eval.option_types import Option


@dataclass(frozen=True)
class MetricEntry:
    """A metric: where its function lives, what it needs, and which data kinds it applies to."""

    target: str | Callable[..., Any]  # "module:function", or the function itself
    requires: str  # "features", "logits", "images" or "log_prob" (or a need a new kind provides)
    default: bool  # part of the default set when its requirement is met
    summary: str
    options: Mapping[str, Option] = field(default_factory=dict)  # what ``context.option`` reads
    kinds: tuple[str, ...] | None = None  # the data kinds it applies to; None: every kind
    # Whether a reference's mean and covariance suffice (a statistics file as the reference).
    from_statistics: bool = False
