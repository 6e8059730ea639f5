"""End to end against torch-fidelity (and prdc): same PNG folders, same Inception weights file."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gen_eval.bench.parity import TOLERANCE, compare_with_torch_fidelity, fid_eigvals_rank_limited, tolerance
from gen_eval.metrics.fid import fid


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
        assert row["relative_difference"] <= tolerance(row), row
    exact_fid = [r for r in parity_rows if r["metric"] == "fid" and r["tool"] != "torch-fidelity"]
    assert len(exact_fid) == 1 and exact_fid[0]["relative_difference"] <= TOLERANCE / 100


def test_rank_limited_eigvals_fid_equals_the_closed_form():
    # Diagonal covariances, N > D: no noise eigenvalues to drop, so it must equal our FID.
    rng = np.random.default_rng(0)
    x = rng.normal(size=(4000, 3)) * np.array([1.0, 2.0, 0.5])
    y = rng.normal(size=(4000, 3)) * np.array([1.5, 1.0, 0.5]) + 0.3
    expected = fid({"features": torch.from_numpy(x)}, {"features": torch.from_numpy(y)})["fid"].value
    assert fid_eigvals_rank_limited(x, y) == pytest.approx(expected, rel=1e-9)
