"""Checking the numbers a student claims (``[claimed]`` in ``submission.toml``) against measured ones.

What a claim means depends on the metric's direction. A student who writes ``precision = 0.90``
claims their model reaches *at least* 0.90; one who writes ``fid = 21.3`` claims *at most* 21.3.
An instructor wants to know whether the model is as good as claimed, so:

* **met, inside**: the claim lies in the measured 95% interval; the data cannot tell them apart.
* **met, modest** (``"under"``): the claim is worse than the whole interval; the model does better
  than claimed (precision claimed 0.90, measured 0.933 [0.92, 0.95]). Nothing to penalise.
* **not met** (``"over"``): the claim is better than the whole interval; the model does worse
  than claimed (fid claimed 10, measured 30 [28, 33]). ``off`` says by how much.
* **not measured**: no metric of that name was computed for the submission.

Without an interval (a metric that gives none, e.g. a bound) the claim is compared with the
measured value itself, and the description says there was no interval.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# Claimed names students are likely to write, mapped to the names of measured results.
CLAIM_ALIASES = {"inception_score": "is", "isc": "is", "bpd": "bits_per_dim", "fid_inf": "fd_inf"}
CLAIM_ALIASES |= {"fd_infinity": "fd_inf", "msssim": "ms_ssim", "ms-ssim": "ms_ssim"}

VERDICTS = ("inside", "under", "over", "not measured")


@dataclass
class Claim:
    """A number a student claimed, next to the measured one (see the module docstring)."""

    metric: str
    claimed: float
    measured: float | None = None
    interval: tuple[float, float] | None = None
    direction: str | None = None  # "lower" or "higher" is better, from the measured result
    verdict: str = "not measured"  # "inside", "under" (modest), "over" (not met) or "not measured"
    met: bool | None = None  # True for inside and under, False for over, None when not measured
    off: float | None = None  # claimed minus the nearest end of the interval (or the value); 0 inside
    relative: float | None = None  # (claimed - measured) / |measured|

    def describe(self) -> str:
        """One line: claimed vs measured, met or not, and how far off.

        Returns
        -------
        str
            For example ``"precision: claimed 0.9, measured 0.933 [0.92, 0.95]: met, the model
            does better than claimed (0.02 below the interval)"``.
        """
        if self.measured is None:
            return f"{self.metric}: claimed {self.claimed:.4g}, not measured"
        text = f"{self.metric}: claimed {self.claimed:.4g}, measured {self.measured:.4g}"
        if self.interval is not None:
            text += f" [{self.interval[0]:.4g}, {self.interval[1]:.4g}]"
        reference = "the interval" if self.interval is not None else "the value (no interval)"
        gap = f"{abs(self.off or 0.0):.4g} {'below' if (self.off or 0.0) < 0 else 'above'} {reference}"
        share = f", {self.relative:+.0%} of measured" if self.relative is not None else ""
        if self.verdict == "inside":
            return text + (": met (inside the interval)" if self.interval else ": met (equal, no interval)")
        if self.verdict == "under":
            return text + f": met, the model does better than claimed ({gap})"
        return text + f": NOT met, the model does worse than claimed ({gap}{share})"


def _better(direction: str | None, a: float, b: float) -> bool:
    """Whether ``a`` is strictly better than ``b`` in ``direction`` (higher unless "lower")."""
    return a < b if direction == "lower" else a > b


def check_claims(claimed: dict[str, float], metrics: dict[str, dict[str, Any]]) -> list[Claim]:
    """Compare claimed numbers with measured results.

    Parameters
    ----------
    claimed : dict
        Metric name (or an alias such as ``inception_score``) -> the claimed number.
    metrics : dict
        Measured ``Result.to_dict()`` by metric name (``value``, ``interval``, ``direction``).

    Returns
    -------
    list of Claim
        One per claimed number, in the order given.
    """
    claims = []
    for name, value in claimed.items():
        metric = CLAIM_ALIASES.get(name, name)
        claim = Claim(metric, value)
        result = metrics.get(metric)
        if result is not None and result.get("value") is not None:
            claim.measured, claim.direction = result["value"], result.get("direction")
            if claim.measured != 0:
                claim.relative = (value - claim.measured) / abs(claim.measured)
            interval = result.get("interval")
            low, high = interval if interval else (claim.measured, claim.measured)
            claim.interval = (low, high) if interval else None
            claim.off = value - low if value < low else value - high if value > high else 0.0
            if claim.off == 0:
                claim.verdict = "inside"
            else:  # the nearest end decides: a claim beyond it on the better side is not met
                end = low if value < low else high
                claim.verdict = "over" if _better(claim.direction, value, end) else "under"
            claim.met = claim.verdict != "over"
        claims.append(claim)
    return claims
