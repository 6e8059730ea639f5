"""The point-cloud distances' other paths: k-d tree Chamfer, batched entropic EMD, the full-size bench section."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gen_eval.datasets import shapes3d
from gen_eval.errors import GenEvalError
from gen_eval.metrics.pointclouds_distances import chamfer_pairs, chamfer_path, emd_pairs, exact_emd
from gen_eval.metrics.pointclouds_emd_batch import ERROR_BOUND, emd_path

pytestmark = pytest.mark.usefixtures("one_thread")  # conftest: the CPU is shared


def _brute_cd(a: np.ndarray, b: np.ndarray) -> float:
    d = ((a[:, None, :] - b[None, :, :]) ** 2).sum(-1)
    return float(d.min(1).mean() + d.min(0).mean())


def test_kdtree_chamfer_equals_float64_brute_force_and_the_gemm_path():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(3, 7, 3)), rng.normal(size=(4, 5, 3))
    expected = np.array([[_brute_cd(x, y) for y in b] for x in a])
    got = chamfer_pairs(torch.tensor(a), torch.tensor(b), method="kdtree").numpy()
    assert np.allclose(got, expected, rtol=1e-12, atol=1e-14)  # float64 queries: exact
    same = chamfer_pairs(torch.tensor(a), torch.tensor(a), symmetric=True, method="kdtree").numpy()
    assert np.allclose(same, [[_brute_cd(x, y) for y in a] for x in a], rtol=1e-12, atol=1e-14)
    assert np.all(np.diag(same) == 0) and np.array_equal(same, same.T)
    # Against the float32 GEMM path on real clouds: the same to its documented ~1e-7 cancellation.
    clouds = torch.from_numpy(shapes3d.read("test", 0, 6, points=300)[0])
    kd = chamfer_pairs(clouds[:3], clouds[3:], method="kdtree")
    gemm = chamfer_pairs(clouds[:3], clouds[3:], method="gemm")
    assert torch.allclose(kd, gemm, rtol=1e-5, atol=1e-6)
    torch.set_num_threads(2)  # two workers share the rows: the same numbers
    assert torch.equal(chamfer_pairs(clouds[:3], clouds[3:], method="kdtree"), kd)
    # A planted fault: one point moved changes exactly the pairs that hold it.
    moved = clouds[3:].clone()
    moved[0, 0] += 5
    changed = chamfer_pairs(clouds[:3], moved, method="kdtree") != kd
    assert changed[:, 0].all() and not changed[:, 1:].any()


def test_chamfer_and_emd_paths_are_chosen_and_checked():
    assert chamfer_path("cpu") == "gemm" and chamfer_path("cuda") == "gemm"
    assert chamfer_path("cpu", "kdtree") == "kdtree"
    with pytest.raises(GenEvalError, match="CPU only"):
        chamfer_path("cuda", "kdtree")
    with pytest.raises(GenEvalError, match="pc_chamfer must be one of"):
        chamfer_path("cpu", "fast")
    assert emd_path("cpu") == "exact" and emd_path("cuda") == "sinkhorn"
    assert emd_path("cpu", "sinkhorn") == "sinkhorn"
    with pytest.raises(GenEvalError, match="pc_emd must be one of"):
        emd_path("cpu", "auction")


def test_sinkhorn_emd_holds_its_error_bound_against_exact_assignment():
    clouds = torch.from_numpy(shapes3d.read("test", 0, 8, points=64)[0])
    sinkhorn = emd_pairs(clouds[:4], clouds[4:], method="sinkhorn").numpy()
    exact = np.array(
        [[exact_emd(x, y) for y in clouds[4:].double().numpy()] for x in clouds[:4].double().numpy()]
    )
    relative = sinkhorn / exact - 1
    # The entropic plan is feasible, not optimal: above exact (less the marginal tolerance), within the bound.
    assert relative.min() > -1e-3 and relative.max() < ERROR_BOUND, relative
    within = emd_pairs(clouds[:4], clouds[:4], symmetric=True, method="sinkhorn").numpy()
    assert np.array_equal(within, within.T) and np.all(np.diag(within) == 0)
    off = ~np.eye(4, dtype=bool)
    exact_within = emd_pairs(clouds[:4], clouds[:4], symmetric=True, method="exact").numpy()
    assert np.all(np.abs(within[off] / exact_within[off] - 1) < ERROR_BOUND)


def test_pointflow_emd_says_which_path_ran(tmp_path):
    from gen_eval.metrics.base import MetricContext
    from gen_eval.metrics.pointclouds import pointflow_emd
    from gen_eval.sources import open_source

    def context(**options) -> MetricContext:
        return MetricContext(
            num_resamples=0,
            options=options,
            generated_source=open_source("shapes3d:test:32", num_samples=6),
            reference_source=open_source("shapes3d:validation:32", num_samples=6),
        )

    exact = pointflow_emd({}, {}, context())["mmd_emd"]
    assert exact.details["emd_path"].startswith("exact on cpu") and exact.warnings == []
    entropic = pointflow_emd({}, {}, context(pc_emd="sinkhorn"))["mmd_emd"]
    assert entropic.details["emd_path"].startswith("sinkhorn on cpu")
    assert "entropic OT" in entropic.warnings[0]
    assert 0 <= entropic.value / exact.value - 1 < ERROR_BOUND


def test_full_size_section_is_spliced_and_matches_the_metric(tmp_path):
    from gen_eval.bench.pointclouds_full import SECTION, existing_section, run_full_protocol, splice_section
    from gen_eval.metrics.base import MetricContext
    from gen_eval.metrics.pointclouds import pointflow_cd
    from gen_eval.sources import open_source

    out = tmp_path / "report.md"
    out.write_text("# Report\n\n## Quick\n\nkept\n", encoding="utf-8")
    summary = run_full_protocol(out, clouds=7, points=32, resamples=20)
    text = out.read_text(encoding="utf-8")
    assert text.startswith("# Report\n\n## Quick\n\nkept\n") and SECTION in text and summary["finished"]
    assert summary["pairs_done"] == summary["pairs_total"] == 7 * 7 + 7 * 6
    context = MetricContext(
        num_resamples=20,
        generated_source=open_source("shapes3d:test:32", num_samples=7),
        reference_source=open_source("shapes3d:validation:32", num_samples=7),
    )
    expected = pointflow_cd({}, {}, context)
    for name, (value, low, high) in summary["values"].items():
        assert value == pytest.approx(expected[name].value) and (low, high) == pytest.approx(
            expected[name].interval
        )
    # Rewriting replaces the section in place and keeps what follows it.
    again = splice_section(text + "\n## After\n\nstays\n", [SECTION, "", "new", ""])
    assert again.count(SECTION) == 1 and "new" in again and "stays" in again and "kept" in again
    assert existing_section(out)[0] == SECTION
