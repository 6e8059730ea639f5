"""The bfloat16 screen of the k-NN blocks: its error bound holds, and it changes no result.

The screen (gen_eval/metrics/knn_screen.py) must give exactly what the float32 path gives: the
same radii up to the summation order of one float32 dot product, and the same memberships. The
references here are the float32 path itself, float64 distances and prdc.
"""

from __future__ import annotations

import pytest
import torch

from gen_eval.metrics import knn_screen, knn_screened
from gen_eval.metrics.knn import Balls, ball_scans, centred_float32, knn_radii, squared_distances
from gen_eval.metrics.knn_screen import mirror, prepare, residual_bounds, use_screen


def _sets(
    n: int, dim: int, offset: float, seed: int, scale: float = 1.0
) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, dim, generator=g, dtype=torch.float64) * scale + offset
    y = torch.randn(n, dim, generator=g, dtype=torch.float64) * scale + offset + 0.1 * scale
    return x.float(), y.float()


@pytest.mark.parametrize(
    ("dim", "offset", "scale", "m"), [(64, 0.0, 1.0, 100.0), (512, 1e4, 3.0, 0.0), (300, -50.0, 0.01, 0.5)]
)
def test_screened_block_is_within_its_bound_and_the_bound_is_tight(dim, offset, scale, m):
    x, y = centred_float32(*_sets(400, dim, offset, 0, scale), device=None)
    left, right = prepare(x, m / 2, left=True), mirror(prepare(y, m / 2, left=True))
    out = (left.matrix @ right.matrix.T).double()
    reference = squared_distances(x, y, x.square().sum(1), y.square().sum(1)).double()  # the float32 path
    exact = torch.cdist(x.double(), y.double()).square()
    rows, cols = slice(0, len(x)), slice(0, len(y))
    row_bound, col_bound = residual_bounds(left, right, rows, cols, dim)
    bound = 2.0**-8 * out.abs() + torch.minimum(row_bound[:, None], col_bound[None, :])
    ratio = ((out + m - reference).abs() / bound).max().item()
    assert ratio <= 1.0
    assert ((out + m - exact).abs() / bound).max().item() <= 1.0
    # A bound ten times too small must be caught: the errors do reach a tenth of it.
    assert ratio > 0.1


def test_mirror_matches_a_right_side_prepared_directly():
    x, _ = centred_float32(*_sets(50, 32, 0.0, 1), device=None)
    left = prepare(x, 3.0, left=True)
    assert torch.equal(mirror(left).matrix, prepare(x, 3.0, left=False).matrix)


@pytest.mark.parametrize("offset", [0.0, 1e4])
def test_screened_radii_and_memberships_equal_the_float32_path(offset):
    x, y = _sets(1500, 256, offset, 2)
    radii = {
        s: (knn_radii(x, 3, screen=s, chunk_size=400), knn_radii(y, 3, screen=s, chunk_size=400))
        for s in ("float32", "bfloat16")
    }
    for a, b in zip(radii["float32"], radii["bfloat16"], strict=True):
        torch.testing.assert_close(b, a, rtol=2e-6, atol=0)  # one float32 dot, summed in another order
    rx, ry = radii["float32"]
    families = [Balls(ry, "rows"), Balls(rx, "cols", strict=True)]
    plain = ball_scans(y, x, families, screen="float32", chunk_size=300)
    screened = ball_scans(y, x, families, screen="bfloat16", chunk_size=300)
    for a, b in zip(plain, screened, strict=True):
        assert torch.equal(a.row_any, b.row_any)
        assert torch.equal(a.col_count, b.col_count)


def test_screened_precision_recall_density_coverage_equal_prdc_far_from_the_origin(monkeypatch):
    prdc = pytest.importorskip("prdc")
    from gen_eval.metrics.base import MetricContext
    from gen_eval.metrics.density_coverage import density_coverage
    from gen_eval.metrics.precision_recall import precision_recall

    monkeypatch.setenv("GEN_EVAL_KNN_SCREEN", "bfloat16")  # what "auto" chooses on a bfloat16 CPU
    x, y = _sets(800, 256, 3e3, 3)
    expected = prdc.compute_prdc(
        real_features=y.double().numpy(), fake_features=x.double().numpy(), nearest_k=5
    )
    context = MetricContext(num_resamples=0, options={"pr_k": 5, "dc_k": 5})
    features = {"features": x}, {"features": y}
    ours = {**precision_recall(*features, context), **density_coverage(*features, context)}
    for name in ("precision", "recall", "density", "coverage"):
        assert ours[name].value == pytest.approx(float(expected[name]), abs=1 / 800 + 1e-12), name


def test_ties_on_a_grid_fall_back_or_agree_exactly(monkeypatch):
    # Integer data: many exactly equal distances at a radius. Whatever the screen does (refine or
    # give up), the result is the float32 path's, ties included.
    g = torch.Generator().manual_seed(4)
    x = torch.randint(0, 3, (700, 256), generator=g).float()
    plain = knn_radii(x, 4, screen="float32")
    assert torch.equal(knn_radii(x, 4, screen="bfloat16"), plain)
    monkeypatch.setattr(knn_screened, "MAX_CANDIDATES_PER_ROW", 1)  # force the give-up path
    assert torch.equal(knn_radii(x, 4, screen="bfloat16"), plain)
    monkeypatch.setattr(knn_screened, "MAX_UNDECIDED_FRACTION", 0.0)
    scans = [
        ball_scans(x[:300], x[300:], [Balls(plain[300:], "cols")], screen=s)[0]
        for s in ("float32", "bfloat16")
    ]
    assert torch.equal(scans[0].col_count, scans[1].col_count)


def test_screen_choice():
    cpu = torch.device("cpu")
    assert use_screen("float32", cpu, 2048, 10**9) is False
    assert use_screen("bfloat16", cpu, 2, 4) is True
    assert use_screen("auto", cpu, 16, 10**9) is False  # narrow features: the GEMM is not the cost
    with pytest.raises(ValueError, match="screen must be"):
        use_screen("half", cpu, 2048, 10**9)
    assert isinstance(knn_screen.native_bfloat16(), bool)


def test_refine_by_row_equals_pairwise_refine_for_narrow_and_wide_rows():
    x, _ = centred_float32(*_sets(60, 32, 5.0, 5), device=None)
    g = torch.Generator().manual_seed(6)
    i = torch.cat([torch.randint(0, 60, (200,), generator=g), torch.full((40,), 7)])  # row 7: wide
    j = torch.randint(0, 60, (240,), generator=g)
    sq = x.square().sum(1)
    expected = knn_screen.refine(x.__getitem__, x.__getitem__, sq, sq, i, j)
    rows, values = knn_screen.refine_by_row(x.__getitem__, sq, i, j, rows_per_chunk=8, pairs_per_chunk=20)
    assert len(rows) == len(i)
    for row in range(60):  # each row gets its own pairs' values (any order)
        torch.testing.assert_close(
            values[rows == row].sort().values, expected[i == row].sort().values, rtol=1e-5, atol=1e-4
        )
