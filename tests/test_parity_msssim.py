"""The MS-SSIM parity rows: within the parity bound, and skipped with a note without pytorch-msssim."""

from __future__ import annotations

import importlib.util

import pytest

from gen_eval.bench.common import relative_difference
from gen_eval.bench.parity import TOLERANCE
from gen_eval.bench.parity_msssim import msssim_rows


def test_both_conventions_match_their_libraries_on_the_same_pairs(tmp_path):
    pytest.importorskip("pytorch_msssim")
    rows, notes = msssim_rows(tmp_path, pairs=3)
    assert [(row["metric"].split("(")[1], row["tool"]) for row in rows] == [
        ("grey sprites, torchmetrics)", "torchmetrics"),
        ("grey sprites, pytorch_msssim)", "pytorch-msssim"),
        ("RGB textures, torchmetrics)", "torchmetrics"),
        ("RGB textures, pytorch_msssim)", "pytorch-msssim"),
    ]
    for row in rows:
        assert 0.01 < row["theirs"] < 0.99
        assert relative_difference(row["ours"], row["theirs"]) <= TOLERANCE
    # On blank backgrounds the conventions are far apart: the rows are not one number twice.
    assert rows[1]["ours"] < 0.9 * rows[0]["ours"]
    assert "The two conventions on these pairs" in notes[-1]


def test_without_pytorch_msssim_its_rows_are_skipped_with_a_note(tmp_path, monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "pytorch_msssim" else real(name, *a)
    )
    rows, notes = msssim_rows(tmp_path, pairs=1)
    assert [row["tool"] for row in rows] == ["torchmetrics", "torchmetrics"]
    assert any("pytorch-msssim is not installed" in note for note in notes)
