"""End to end against torch-fidelity (and prdc): same PNG folders, same Inception weights file."""

from __future__ import annotations

import pytest

from gen_eval.bench.parity import TOLERANCE, compare_with_torch_fidelity


@pytest.fixture(scope="module")
def parity_rows(tmp_path_factory):
    return compare_with_torch_fidelity(num_images=20, size=32, workdir=tmp_path_factory.mktemp("parity"))


def test_every_metric_matches_the_reference_implementation(parity_rows):
    assert {row["metric"] for row in parity_rows} == {
        "fid",
        "kid",
        "is",
        "precision",
        "recall",
        "density",
        "coverage",
    }
    for row in parity_rows:
        assert row["relative_difference"] <= TOLERANCE, row


def test_the_comparison_is_not_trivial(parity_rows):
    # Informative weights: two different image sets must be far apart, and IS above its minimum of 1.
    values = {row["metric"]: row["ours"] for row in parity_rows}
    assert values["fid"] > 1.0 and values["kid"] > 0 and values["is"] > 1.05
