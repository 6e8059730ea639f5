"""Point-cloud distances and the PointFlow protocol against brute force, peers and planted faults."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from gen_eval.datasets import shapes3d
from gen_eval.errors import GenEvalError
from gen_eval.metrics.base import MetricContext
from gen_eval.metrics.pointclouds import mmd_cov, one_nna, protocol_results
from gen_eval.metrics.pointclouds_distances import (
    chamfer_pairs,
    emd_pairs,
    exact_emd,
    farthest_points,
    normalise_clouds,
)


@pytest.fixture(autouse=True)
def _one_thread():
    # The CPU is shared: two threads that wait on each other's barriers under load ran 17x slower.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _brute_cd(a: np.ndarray, b: np.ndarray) -> float:
    d = ((a[:, None, :] - b[None, :, :]) ** 2).sum(-1)
    return float(d.min(1).mean() + d.min(0).mean())


def test_chamfer_equals_brute_force():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(3, 7, 3)), rng.normal(size=(4, 5, 3))
    expected = np.array([[_brute_cd(x, y) for y in b] for x in a])
    got = chamfer_pairs(torch.tensor(a), torch.tensor(b)).numpy()
    assert np.allclose(got, expected, rtol=1e-5, atol=1e-5)
    same = chamfer_pairs(torch.tensor(a), torch.tensor(a), symmetric=True).numpy()
    assert np.allclose(same, [[_brute_cd(x, y) for y in a] for x in a], atol=1e-5)
    # float32 products on real clouds against float64 brute force (the cancellation is ~1e-7 absolute).
    clouds = shapes3d.read("test", 0, 6, points=300)[0]
    got = chamfer_pairs(torch.from_numpy(clouds[:3]), torch.from_numpy(clouds[3:])).numpy()
    exact = [[_brute_cd(x.astype(np.float64), y.astype(np.float64)) for y in clouds[3:]] for x in clouds[:3]]
    assert np.allclose(got, exact, rtol=1e-4)


def test_emd_equals_brute_force_over_permutations_and_pot():
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(5, 3)), rng.normal(size=(5, 3))
    cost = np.linalg.norm(a[:, None] - b[None], axis=2)
    brute = min(cost[range(5), list(p)].mean() for p in itertools.permutations(range(5)))
    assert exact_emd(a, b) == pytest.approx(brute, rel=1e-12)
    clouds = torch.tensor(rng.normal(size=(3, 5, 3)))
    pairs = emd_pairs(clouds, clouds, symmetric=True).numpy()
    for i, j in itertools.product(range(3), repeat=2):
        c = np.linalg.norm(clouds[i].numpy()[:, None] - clouds[j].numpy()[None], axis=2)
        assert pairs[i, j] == pytest.approx(
            min(c[range(5), list(p)].mean() for p in itertools.permutations(range(5)))
        )
    # A peer: POT's exact optimal transport with uniform weights on 60 points.
    import ot

    x, y = rng.normal(size=(60, 3)), rng.normal(size=(60, 3)) + 0.3
    m = ot.dist(x, y, metric="euclidean")
    assert exact_emd(x, y) == pytest.approx(ot.emd2(np.full(60, 1 / 60), np.full(60, 1 / 60), m), rel=1e-9)


def test_farthest_point_emd_error_bound_holds_on_a_sample():
    """The stated bound of the reduction (8x fewer points) against exact EMD, at a size a test can afford.

    Measured here on 10 pairs of 512-point shapes3d clouds reduced to 64 points: relative errors
    from -3.0% to +4.4% (mean +0.1%); the bound checked is 10%. A random 64-point subset instead:
    mean +9.1%, up to +30%. The default (2,048 -> 256 points) is measured
    by ``gen-eval bench pointclouds``.
    """
    clouds = shapes3d.read("validation", 0, 20, points=512)[0].astype(np.float64)
    errors = []
    for i in range(10):
        a, b = clouds[i], clouds[i + 10]
        full = exact_emd(a, b)
        errors.append(exact_emd(farthest_points(a, 64), farthest_points(b, 64)) / full - 1)
    assert max(abs(e) for e in errors) < 0.10, errors
    # Planted fault: a random (not farthest-point) reduction is biased up well beyond that.
    rng = np.random.default_rng(0)
    random_errors = [
        exact_emd(
            clouds[i][rng.choice(512, 64, replace=False)], clouds[i + 10][rng.choice(512, 64, replace=False)]
        )
        / exact_emd(clouds[i], clouds[i + 10])
        - 1
        for i in range(10)
    ]
    assert np.mean(random_errors) > np.mean(errors) + 0.03


def _brute_protocol(gg, gr, rr):
    """MMD, COV and 1-NNA with loops, as PointFlow's lgan_mmd_cov and knn(k=1)."""
    n, m = gr.shape
    mmd = np.mean([min(gr[i, j] for i in range(n)) for j in range(m)])
    cov = len({int(np.argmin(gr[i])) for i in range(n)}) / m
    correct = 0
    for i in range(n):
        others = [(gg[i, k], 0) for k in range(n) if k != i] + [(gr[i, j], 1) for j in range(m)]
        correct += min(others)[1] == 0
    for j in range(m):
        others = [(gr[i, j], 0) for i in range(n)] + [(rr[j, k], 1) for k in range(m) if k != j]
        correct += min(others)[1] == 1
    return mmd, cov, correct / (n + m)


def test_mmd_cov_1nna_equal_brute_force():
    rng = np.random.default_rng(2)
    points = rng.random((13, 3))
    d = np.linalg.norm(points[:, None] - points[None], axis=2)
    gg, gr, rr = d[:6, :6], d[:6, 6:], d[6:, 6:]
    mmd, cov = mmd_cov(torch.tensor(gr))
    nna = one_nna(torch.tensor(gg), torch.tensor(gr), torch.tensor(rr))
    assert (mmd, cov, nna) == pytest.approx(_brute_protocol(gg, gr, rr))


def _protocol(gen: np.ndarray, ref: np.ndarray, resamples: int = 50):
    g, r = torch.from_numpy(gen), torch.from_numpy(ref)
    gg, gr, rr = chamfer_pairs(g, g, symmetric=True), chamfer_pairs(g, r), chamfer_pairs(r, r, symmetric=True)
    return protocol_results("cd", gg, gr, rr, MetricContext(num_resamples=resamples), {})


def test_two_draws_of_the_test_split_are_indistinguishable():
    # 120 clouds of 256 points from two independent draws of the test split's distribution.
    # Measured: 1-NNA 0.508, 95% interval (0.423, 0.600); COV 0.517 (0.408, 0.627); MMD-CD 0.0290.
    first = shapes3d.read("test", 0, 120, points=256)[0]
    second = shapes3d.read("test", 0, 120, points=256, random_state=1)[0]
    results = _protocol(first, second)
    nna = results["1nna_cd"]
    assert 0.40 < nna.value < 0.60 and nna.interval[0] < 0.5 < nna.interval[1], nna
    assert results["cov_cd"].value > 0.4 and results["cov_cd"].interval_covers
    # Planted collapse: 5 shapes repeated cover at most 5 of the 120 references, and 1-NNA rises.
    collapsed = _protocol(np.repeat(first[:5], 24, axis=0), second, resamples=0)
    assert collapsed["cov_cd"].value <= 5 / 120 and collapsed["1nna_cd"].value > 0.75
    # Disjoint classes, scale removed (pc_normalise=sphere): spheres, cubes and cylinders against
    # cones, tori, pyramids and octahedra. Measured 1-NNA 0.96 (0.90 without the normalisation: a
    # small cube and a small pyramid are near under CD).
    clouds, labels, _ = shapes3d.read("test", 0, 420, points=256)
    clouds = normalise_clouds(torch.from_numpy(clouds), "sphere").numpy()
    disjoint = _protocol(clouds[labels < 3][:100], clouds[labels >= 3][:100], resamples=0)
    assert disjoint["1nna_cd"].value > 0.9 and disjoint["1nna_cd"].interval is None
    assert disjoint["cov_cd"].value < results["cov_cd"].value


def test_normalisations():
    rng = np.random.default_rng(3)
    clouds = torch.tensor(rng.normal(size=(4, 50, 3)) * [1, 2, 3] + 5)
    sphere = normalise_clouds(clouds, "sphere")
    assert torch.allclose(sphere.mean(1), torch.zeros(4, 3, dtype=sphere.dtype), atol=1e-12)
    assert torch.allclose(sphere.norm(dim=2).amax(1), torch.ones(4, dtype=sphere.dtype))
    box = normalise_clouds(clouds, "box")
    sides = box.amax(1) - box.amin(1)
    assert torch.allclose(sides.amax(1), torch.full((4,), 2.0, dtype=box.dtype))
    assert torch.allclose(box.amax(1) + box.amin(1), torch.zeros(4, 3, dtype=box.dtype), atol=1e-12)
    assert normalise_clouds(clouds, "none") is clouds


def _context(generated: str, reference: str, **options) -> MetricContext:
    from gen_eval.sources import open_source

    return MetricContext(
        num_resamples=20,
        options=options,
        generated_source=open_source(generated, num_samples=30),
        reference_source=open_source(reference, num_samples=30),
    )


def test_voxel_jsd_equals_an_independent_implementation(tmp_path):
    from scipy.spatial.distance import jensenshannon
    from sklearn.neighbors import NearestNeighbors

    from gen_eval.metrics.pointclouds_jsd import voxel_jsd

    context = _context("shapes3d:test:64", "shapes3d:validation:64", jsd_resolution=12)
    result = voxel_jsd({}, {}, context)["jsd"]
    # latent_3d_points' recipe, written out: cell centres i / (r - 1) - 0.5 kept within radius 0.5,
    # each point counted for its nearest centre (scikit-learn), JSD in bits (SciPy's distance squared).
    gen = context.generated_source.head(30).data.numpy().astype(np.float64)
    ref = context.reference_source.head(30).data.numpy().astype(np.float64)
    scale = 0.5 / np.linalg.norm(ref, axis=2).max()
    axis = np.arange(12) / 11 - 0.5
    grid = np.array([[x, y, z] for x in axis for y in axis for z in axis])
    grid = grid[np.linalg.norm(grid, axis=1) <= 0.5]
    nearest = NearestNeighbors(n_neighbors=1).fit(grid)
    counts = [
        np.bincount(nearest.kneighbors((c * scale).reshape(-1, 3))[1][:, 0], minlength=len(grid))
        for c in (gen, ref)
    ]
    expected = jensenshannon(counts[0], counts[1], base=2) ** 2
    assert result.value == pytest.approx(expected, rel=1e-9, abs=1e-12)
    assert result.interval[0] <= result.value <= result.interval[1] and result.details["cells"] == len(grid)
    # The same clouds: 0. Planted fault: the same clouds moved by 0.3 along x (a third of the ball).
    same = voxel_jsd({}, {}, _context("shapes3d:test:64", "shapes3d:test:64"))["jsd"].value
    assert same == pytest.approx(0.0, abs=1e-12)
    np.save(tmp_path / "moved.npy", (gen + np.array([0.3, 0.0, 0.0])).astype(np.float32))
    # A coarse grid: 30 clouds of 64 points over 28^3 cells leave most cells with one point or none,
    # and the JSD of two draws of one distribution is then 0.76 bits (small-sample bias).
    moved = voxel_jsd(
        {}, {}, _context(str(tmp_path / "moved.npy"), "shapes3d:validation:64", jsd_resolution=6)
    )
    alike = voxel_jsd({}, {}, _context("shapes3d:test:64", "shapes3d:validation:64", jsd_resolution=6))
    assert moved["jsd"].value > 3 * alike["jsd"].value, (moved["jsd"].value, alike["jsd"].value)


def test_cd_memorisation_flags_copies_of_the_training_set(tmp_path):
    from gen_eval.metrics.pointclouds_memorisation import cd_memorisation

    train = shapes3d.read("train", 0, 60, points=64)[0]
    np.save(tmp_path / "train.npy", train)
    np.save(tmp_path / "copies.npy", train[:30] + np.float32(1e-4))  # 30 near-copies of training clouds
    copies = _context(str(tmp_path / "copies.npy"), "shapes3d:test:64", pc_train=str(tmp_path / "train.npy"))
    result = cd_memorisation({}, {}, copies)["cd_memorisation"]
    assert result.value == 1.0 and result.details["closest"][0]["training"] < 30
    fresh = _context("shapes3d:validation:64", "shapes3d:test:64", pc_train=str(tmp_path / "train.npy"))
    honest = cd_memorisation({}, {}, fresh)["cd_memorisation"]
    assert honest.value < 0.3 and honest.details["expected_without_copying"] == 0.05
    with pytest.raises(GenEvalError, match=r"the reference .* is the training set"):
        cd_memorisation(
            {},
            {},
            _context(
                "shapes3d:validation:64", str(tmp_path / "train.npy"), pc_train=str(tmp_path / "train.npy")
            ),
        )


def test_chamfer_keeps_full_float32_products_whatever_the_global_precision():
    clouds = torch.from_numpy(shapes3d.read("test", 0, 4, points=200)[0])
    exact = chamfer_pairs(clouds[:2], clouds[2:])
    before = torch.get_float32_matmul_precision()
    torch.set_float32_matmul_precision("medium")  # would allow bfloat16 products
    try:
        assert torch.equal(chamfer_pairs(clouds[:2], clouds[2:]), exact)
        assert torch.get_float32_matmul_precision() == "medium"  # restored
    finally:
        torch.set_float32_matmul_precision(before)
    # Two workers split the generated clouds (one torch thread each): the same numbers, threads restored.
    one = chamfer_pairs(clouds[:3], clouds)
    # CUDA's large steps (several whole clouds per product) and one-row steps: the same to ~1e-7
    # (the documented float32 cancellation; the products' summation order follows their shapes).
    assert torch.allclose(chamfer_pairs(clouds[:3], clouds, block_entries=2**28), one, atol=1e-7)
    assert torch.allclose(chamfer_pairs(clouds[:3], clouds, block_entries=1), one, atol=1e-7)
    torch.set_num_threads(2)
    assert torch.equal(chamfer_pairs(clouds[:3], clouds), one) and torch.get_num_threads() == 2


def test_pointflow_emd_metric_reduces_large_clouds_and_says_so(tmp_path):
    from gen_eval.metrics.pointclouds import pointflow_emd

    gen, ref = (shapes3d.read(split, 0, 12, points=48)[0] for split in ("test", "validation"))
    np.save(tmp_path / "gen.npy", gen)
    np.save(tmp_path / "ref.npy", ref)
    context = _context(str(tmp_path / "gen.npy"), str(tmp_path / "ref.npy"), pc_emd_points=16)
    results = pointflow_emd({}, {}, context)
    reduced = [
        torch.from_numpy(np.stack([farthest_points(c.astype(np.float64), 16) for c in s])) for s in (gen, ref)
    ]
    expected = mmd_cov(emd_pairs(reduced[0], reduced[1]))
    assert results["mmd_emd"].value == pytest.approx(expected[0]) and results["cov_emd"].value == expected[1]
    assert "16-point farthest-point reductions" in results["1nna_emd"].warnings[0]
    whole = pointflow_emd(
        {}, {}, _context(str(tmp_path / "gen.npy"), str(tmp_path / "ref.npy"), pc_emd_points=48)
    )
    assert whole["mmd_emd"].warnings == [] and whole["mmd_emd"].details["approximation"].startswith("none")
