"""What every metric returns, and how a result's name and direction are shown."""

from __future__ import annotations

import math
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
        bounds = list(self.interval) if self.interval is not None else None
        # A NaN or infinite bound (no finite bootstrap replicate) is no interval: JSON has no NaN.
        out["interval"] = bounds if bounds is not None and all(map(math.isfinite, bounds)) else None
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Result:
        data = dict(data)
        if data.get("interval") is not None:
            data["interval"] = tuple(data["interval"])
        return cls(**data)


# How results are named wherever they are shown (terminal, HTML report, dashboard); any other
# result shows its registry name with spaces.
DISPLAY_NAMES = {
    "fid": "FID",
    "fd_inf": "FD∞",
    "sfid": "sFID",
    "fd_dinov2": "FD_DINOv2",
    "kid": "KID",
    "is": "IS",
    "ms_ssim": "MS-SSIM",
    "ms_ssim_reference": "MS-SSIM (reference)",
    "bits_per_dim": "bits/dim",
    "cas": "CAS",
    "cas_real": "CAS (real data)",
}
# Results that are a baseline to read another against, not a score: no "better" direction
# (the reference's own MS-SSIM is what the generated MS-SSIM should come close to).
BASELINES = frozenset({"ms_ssim_reference", "cas_real"})


def display_name(name: str) -> str:
    """A result's display name: ``fd_inf`` -> ``FD∞``, ``ms_ssim_reference`` -> ``MS-SSIM (reference)``.

    Parameters
    ----------
    name : str
        The result's name (``Result.name``, a key of ``metrics.json``).

    Returns
    -------
    str
    """
    return DISPLAY_NAMES.get(name, name.replace("_", " "))


def better_label(name: str, direction: str) -> str:
    """What the "better" column shows: ``↓ lower``, ``↑ higher``, or ``baseline`` for :data:`BASELINES`.

    Parameters
    ----------
    name : str
        The result's name.
    direction : {"lower", "higher"}
        ``Result.direction``.

    Returns
    -------
    str
    """
    if name in BASELINES:
        return "baseline"
    return "↓ lower" if direction == "lower" else "↑ higher"
