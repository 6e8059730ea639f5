"""What every metric returns."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal


@dataclass
class Result:
    """One metric's value with what a reader needs to trust and compare it.

    Attributes
    ----------
    name : str
        Registry name (``"fid"``).
    value : float
        Point estimate.
    direction : {"lower", "higher"}
        Which way is better.
    num_generated, num_reference : int
        Sample sizes the value was computed from (FID is biased by N).
    kind : {"exact", "estimate", "bound"}
        ``"bound"`` for likelihood bounds (ELBO, IWAE), else an estimate from samples.
    interval : (low, high) or None
        95% bootstrap interval, when computed.
    interval_covers : str or None
        What the interval is an interval for, in one sentence (FID's covers FID at this sample
        size, not the large-sample FID); shown next to the interval everywhere it is printed.
    warnings : list of str
        Caveats that belong next to the number (small samples, unofficial weights...).
    details : dict
        Metric-specific extras (method used, component terms).
    """

    name: str
    value: float
    direction: Literal["lower", "higher"]
    num_generated: int
    num_reference: int
    kind: Literal["exact", "estimate", "bound"] = "estimate"
    interval: tuple[float, float] | None = None
    interval_covers: str | None = None
    warnings: list[str] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["interval"] = list(self.interval) if self.interval is not None else None
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Result:
        data = dict(data)
        if data.get("interval") is not None:
            data["interval"] = tuple(data["interval"])
        return cls(**data)
