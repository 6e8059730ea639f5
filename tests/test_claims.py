"""Claims checked per direction: a modest claim is met, an overstated one is not (gen_eval.grading.claims)."""

from __future__ import annotations

import pytest

from gen_eval.grading.claims import check_claims


def _measured(value: float, low: float | None, high: float | None, direction: str) -> dict:
    interval = None if low is None else [low, high]
    return {"value": value, "interval": interval, "direction": direction}


# (metric, direction, claimed, measured, interval) -> verdict, met, off; worked out by hand.
CASES = [
    # higher is better: the under-claim (0.90 vs 0.933) is met, not "outside".
    ("precision", "higher", 0.90, 0.933, (0.92, 0.95), "under", True, -0.02),
    ("precision", "higher", 0.93, 0.933, (0.92, 0.95), "inside", True, 0.0),
    ("precision", "higher", 0.99, 0.933, (0.92, 0.95), "over", False, 0.04),
    # lower is better: a claimed FID above the interval is modest, below it overstated.
    ("fid", "lower", 40.0, 30.0, (28.0, 33.0), "under", True, 7.0),
    ("fid", "lower", 29.0, 30.0, (28.0, 33.0), "inside", True, 0.0),
    ("fid", "lower", 10.0, 30.0, (28.0, 33.0), "over", False, -18.0),
    # no interval: compared with the value itself.
    ("bits_per_dim", "lower", 2.0, 2.1, (None, None), "over", False, -0.1),
    ("bits_per_dim", "lower", 2.5, 2.1, (None, None), "under", True, 0.4),
]


@pytest.mark.parametrize(
    ("metric", "direction", "claimed", "value", "interval", "verdict", "met", "off"), CASES
)
def test_claim_verdict_follows_the_metric_direction(
    metric, direction, claimed, value, interval, verdict, met, off
):
    [claim] = check_claims({metric: claimed}, {metric: _measured(value, *interval, direction)})
    assert (claim.verdict, claim.met) == (verdict, met)
    assert claim.off == pytest.approx(off)
    text = claim.describe()
    assert ("NOT met" in text) == (not met)
    if verdict == "under":
        assert "the model does better than claimed" in text
    if interval[0] is None:
        assert claim.interval is None and "no interval" in text


def test_aliases_and_unmeasured_claims():
    metrics = {"is": _measured(9.0, 8.5, 9.5, "higher")}
    inception, other = check_claims({"inception_score": 9.2, "sharpness": 1.0}, metrics)
    assert inception.metric == "is" and inception.verdict == "inside"
    assert other.verdict == "not measured" and other.met is None and "not measured" in other.describe()
