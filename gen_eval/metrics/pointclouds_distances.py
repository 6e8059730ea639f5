"""Distances between point clouds: Chamfer (batched in torch) and Earth Mover's (exact assignment).

Definitions follow PointFlow (Yang et al., 2019, ``metrics/evaluation_metrics.py``), so values
compare with published tables:

* **Chamfer distance** ``CD(X, Y) = mean_x min_y |x - y|^2 + mean_y min_x |x - y|^2``: squared
  Euclidean distances, the two directions' means summed.
* **Earth Mover's distance** ``EMD(X, Y) = min over one-to-one matchings phi of mean_x |x - phi(x)|``:
  plain (not squared) Euclidean distances, averaged over the points, for clouds of equal size.
  PointFlow approximates it on the GPU (an auction-style ``approxmatch``); here it is exact: the
  optimal assignment by :func:`scipy.optimize.linear_sum_assignment` (for equal sizes and uniform
  weights the optimal transport plan is a permutation, Birkhoff). Exact assignment costs about
  5 s per pair at 2,048 points on one CPU core, so clouds larger than ``emd_points`` (default 256)
  are first reduced by farthest-point sampling to ``emd_points`` points each, and the exact EMD of
  the reductions stands in for the full one. Its error against the exact full EMD is measured in
  ``reports/pointclouds.md`` (``gen-eval bench pointclouds``) and checked by
  ``tests/test_pointcloud_metrics.py`` on a sample; every result that uses it says so.

Pairwise CD matrices are computed in torch on the chosen device: each distance is one row of a
product of augmented coordinates (``[x, |x|^2, 1] . [-2y, 1, |y|^2]``), taken in blocks small
enough to stay in the CPU's cache (or large on CUDA), with running minima in both directions, so
no P x Q matrix of a whole pair set is ever held. float32, as PointFlow; the cancellation in
``|x|^2 + |y|^2 - 2 x.y`` costs about 1e-7 absolute on clouds within the unit ball (tested
against float64 brute force).

A second exact Chamfer path (``method="kdtree"``, CPU only) queries SciPy k-d trees in float64,
one tree per cloud built once, the rows shared by ``torch.get_num_threads()`` workers (queries
release the GIL). It is not the default: measured on 2,048-point clouds, one thread, CPU seconds
per pair on the shared 2-core machine (load average 3 to 4): shapes3d clouds, k-d trees 4.8 to
6.3 ms against GEMMs 3.4 to 3.7 ms (a query point inside a sphere, cylinder or torus is nearly
equidistant from many surface points, so the search visits most leaves); Gaussian blobs,
k-d trees 2.3 to 2.5 ms against GEMMs 3.3 to 3.6 ms. Shape surfaces are what the protocol
compares, so ``"auto"`` takes the GEMMs on every device. The two paths agree to 1e-6 relative
(8e-9 absolute measured on shapes3d clouds).

Normalisation (``normalise``): papers differ, so it is an option. ``"none"`` (PointFlow's
evaluation: the clouds as given, in the data's own units; PointFlow normalises its data per
dataset before training and de-normalises samples before scoring), ``"sphere"`` (each cloud
centred on its centroid and scaled to fit the unit ball) or ``"box"`` (each cloud centred on
its bounding box's centre and scaled so its longest side is 2, as in later work such as PVD and
LION).
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

import numpy as np
import torch

from gen_eval.errors import GenEvalError

NORMALISATIONS = {
    "none": "the clouds as given (PointFlow's evaluation)",
    "sphere": "each cloud centred on its centroid and scaled into the unit ball",
    "box": "each cloud centred on its bounding box and scaled so its longest side is 2",
}
CHAMFER_METHODS = {
    "auto": "GEMMs (faster than k-d trees on shape surfaces, measured: module docstring)",
    "kdtree": "exact float64 nearest-neighbour queries in SciPy k-d trees, on the CPU",
    "gemm": "blocked float32 GEMMs in torch on the chosen device",
}
EMD_POINTS = 256  # clouds above this many points are reduced by farthest-point sampling for EMD


def normalise_clouds(clouds: torch.Tensor, how: str) -> torch.Tensor:
    """``clouds`` (N, P, 3) normalised per cloud as ``how`` says (see :data:`NORMALISATIONS`)."""
    if how not in NORMALISATIONS:
        raise GenEvalError(f"pc_normalise must be one of {', '.join(NORMALISATIONS)}, not {how!r}")
    if how == "none":
        return clouds
    if how == "sphere":
        centred = clouds - clouds.mean(dim=1, keepdim=True)
        radius = centred.norm(dim=2).amax(dim=1).clamp_min(1e-12)
        return centred / radius[:, None, None]
    low, high = clouds.amin(dim=1, keepdim=True), clouds.amax(dim=1, keepdim=True)
    side = (high - low).amax(dim=2, keepdim=True).clamp_min(1e-12)
    return (clouds - (low + high) / 2) * (2 / side)


def _augmented(clouds: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Left (N, P, 5) and right-transposed (N, 5, P) factors whose product is the squared distances."""
    squares = (clouds * clouds).sum(dim=2, keepdim=True)
    ones = torch.ones_like(squares)
    left = torch.cat([clouds, squares, ones], dim=2)
    right = torch.cat([-2 * clouds, ones, squares], dim=2).transpose(1, 2).contiguous()
    return left, right


@contextmanager
def _restore_precision(precision: str, threads: int) -> Iterator[None]:
    try:
        yield
    finally:
        torch.set_float32_matmul_precision(precision)
        torch.set_num_threads(threads)


def chamfer_path(device: str, method: str = "auto") -> str:
    """The Chamfer path that ``method`` (:data:`CHAMFER_METHODS`) takes on ``device``."""
    if method not in CHAMFER_METHODS:
        raise GenEvalError(f"pc_chamfer must be one of {', '.join(CHAMFER_METHODS)}, not {method!r}")
    if method == "kdtree" and torch.device(device).type != "cpu":
        raise GenEvalError(f"pc_chamfer=kdtree runs on the CPU only; use pc_chamfer=gemm on {device}")
    # auto: GEMMs on every device. On the CPU the k-d trees were 1.7x slower on shapes3d clouds
    # (queries from inside a sphere or torus visit most leaves) though 1.4x faster on Gaussian blobs.
    return "gemm" if method == "auto" else method


def chamfer_pairs(
    generated: torch.Tensor,
    reference: torch.Tensor,
    *,
    device: str = "cpu",
    symmetric: bool = False,
    show_progress: bool = False,
    label: str = "Chamfer distances",
    block_entries: int | None = None,
    method: str = "auto",
) -> torch.Tensor:
    """Chamfer distance of every (generated, reference) pair: an (N, M) float64 matrix on the CPU.

    Parameters
    ----------
    generated, reference : torch.Tensor
        float (N, P, 3) and (M, Q, 3) clouds (P and Q may differ).
    device : str
        Where the GEMM path's products run (``"cpu"``, ``"cuda"``); the k-d tree path runs on
        the CPU only.
    symmetric : bool
        ``reference`` is ``generated``: only the upper triangle is computed and mirrored, the
        diagonal is 0.
    show_progress : bool
        A progress bar over the generated clouds.
    label : str
        The bar's text.
    block_entries : int, optional
        GEMM path: products per step (default 2^17 on the CPU, 2^28 on CUDA); only the speed
        depends on it.
    method : str
        ``"auto"`` (GEMMs), ``"gemm"`` or ``"kdtree"`` (exact float64 queries, CPU only)
        (:data:`CHAMFER_METHODS`).

    Returns
    -------
    torch.Tensor
        (N, M) float64.
    """
    if chamfer_path(device, method) == "kdtree":
        return _chamfer_kdtree(generated, reference, symmetric, show_progress, label)
    return _chamfer_gemm(generated, reference, device, symmetric, show_progress, label, block_entries)


def _chamfer_kdtree(
    generated: torch.Tensor, reference: torch.Tensor, symmetric: bool, show_progress: bool, label: str
) -> torch.Tensor:
    """Chamfer pairs by exact nearest-neighbour queries in float64 (SciPy k-d trees), on the CPU."""
    from scipy.spatial import cKDTree

    from gen_eval.progress import progress_task

    gen = generated.detach().cpu().numpy().astype(np.float64)
    ref = gen if symmetric else reference.detach().cpu().numpy().astype(np.float64)
    # One tree per cloud, built once (about 0.3 ms at 2,048 points) and queried by every pair.
    gen_trees = [cKDTree(cloud) for cloud in gen]
    ref_trees = gen_trees if symmetric else [cKDTree(cloud) for cloud in ref]
    m = len(ref)

    def row(i: int) -> np.ndarray:
        start = i + 1 if symmetric else 0
        values = np.empty(m - start)
        for j in range(start, m):
            forward, _ = ref_trees[j].query(gen[i], k=1)
            backward, _ = gen_trees[i].query(ref[j], k=1)
            values[j - start] = np.mean(forward * forward) + np.mean(backward * backward)
        return values

    out = np.zeros((len(gen), m))
    # cKDTree.query releases the GIL: one worker per torch thread (--threads) shares the rows.
    with (
        progress_task(label, len(gen), show_progress) as bar,
        ThreadPoolExecutor(max(1, torch.get_num_threads())) as pool,
    ):
        for i, values in enumerate(pool.map(row, range(len(gen)))):
            out[i, m - len(values) :] = values
            bar.advance(1)
    if symmetric:
        out = out + out.T
    return torch.from_numpy(out)


def _chamfer_gemm(
    generated: torch.Tensor,
    reference: torch.Tensor,
    device: str,
    symmetric: bool,
    show_progress: bool,
    label: str,
    block_entries: int | None,
) -> torch.Tensor:
    """Chamfer pairs by blocked float32 GEMMs in torch on ``device`` (the module docstring)."""
    from gen_eval.progress import progress_task

    cuda = torch.device(device).type == "cuda"
    left, _ = _augmented(generated.to(device, torch.float32))
    _, right = _augmented(reference.to(device, torch.float32))
    n, m, p, q = len(left), len(right), left.shape[1], right.shape[2]
    # One 2-D product per step, (clouds x rows, 5) @ (5, clouds x Q): the reference clouds side by
    # side, so the CPU runs one large GEMM rather than many tiny batched ones. On the CPU a step's
    # products (512 KB) stay in cache, about three times faster than whole P x Q products; on CUDA
    # about 1 GB of products per step.
    right_flat = right.permute(1, 0, 2).reshape(5, m * q)
    if block_entries is None:
        block_entries = 2**28 if cuda else 2**17  # float32 entries per step (CPU: 512 KB, measured fastest)
    columns = max(1, min(m, block_entries // (q * min(p, 16))))
    rows = max(1, block_entries // (q * columns))
    per_step = 1
    if rows >= p:  # whole generated clouds per step when several fit
        per_step, rows = rows // p, p
    out = torch.zeros(n, m, dtype=torch.float64)
    # Full float32 products: TF32 or bfloat16 (which "high"/"medium" precision allow) keep about 10
    # or 8 mantissa bits, ruinous for |x|^2 + |y|^2 - 2 x.y between nearby points.
    precision = torch.get_float32_matmul_precision()
    torch.set_float32_matmul_precision("highest")

    def rows_from(i0: int) -> int:
        group = left[i0 : i0 + per_step]  # (a, P, 5)
        a = len(group)
        for c0 in range(i0 if symmetric else 0, m, columns):
            b = min(columns, m - c0)
            block = right_flat[:, c0 * q : (c0 + b) * q]
            row_sum = torch.zeros(a, b, device=device, dtype=torch.float64)
            column_min = torch.full((a, b, q), float("inf"), device=device)
            for r0 in range(0, p, rows):
                chunk = group[:, r0 : r0 + rows]
                products = (chunk.reshape(-1, 5) @ block).view(a, chunk.shape[1], b, q)
                row_sum += products.amin(dim=3).clamp_min(0).sum(dim=1, dtype=torch.float64)
                column_min = torch.minimum(column_min, products.amin(dim=1))
            value = row_sum / p + column_min.clamp_min(0).sum(dim=2, dtype=torch.float64) / q
            out[i0 : i0 + a, c0 : c0 + b] = value.cpu()  # rows of their own: no two workers share one
        return a

    # CPU threads split the generated clouds among themselves, each running its products on one
    # thread (torch releases the GIL): torch's own threads on these small products wait at a barrier
    # after each, which on a busy 2-core machine ran 17x slower than one thread (measured).
    workers = 1 if cuda else torch.get_num_threads()
    with progress_task(label, n, show_progress) as bar, _restore_precision(precision, workers):
        if workers > 1:
            torch.set_num_threads(1)
        with ThreadPoolExecutor(workers) as pool:
            for done in pool.map(rows_from, range(0, n, per_step)):
                bar.advance(done)
    if symmetric:  # blocks on the diagonal were computed whole; the strict upper triangle is mirrored
        upper = torch.triu(out, diagonal=1)
        out = upper + upper.T
    return out


def farthest_points(cloud: np.ndarray, count: int) -> np.ndarray:
    """``count`` points of ``cloud`` (P, 3) by farthest-point sampling, from its first point.

    Deterministic (no random start), so a cloud is reduced the same way in every pair.
    """
    if len(cloud) <= count:
        return cloud
    chosen = np.empty(count, dtype=np.int64)
    chosen[0] = 0
    nearest = ((cloud - cloud[0]) ** 2).sum(axis=1)
    for k in range(1, count):
        chosen[k] = int(nearest.argmax())
        nearest = np.minimum(nearest, ((cloud - cloud[chosen[k]]) ** 2).sum(axis=1))
    return cloud[chosen]


def exact_emd(first: np.ndarray, second: np.ndarray) -> float:
    """Exact EMD of two equal-size clouds: the mean matched Euclidean distance of the optimal assignment."""
    from scipy.optimize import linear_sum_assignment
    from scipy.spatial.distance import cdist

    if len(first) != len(second):
        raise GenEvalError(
            f"EMD compares clouds of equal size, got {len(first)} and {len(second)} points; "
            "bring them to one count (gen-eval evaluate --resample-points N)"
        )
    cost = cdist(np.asarray(first, np.float64), np.asarray(second, np.float64))
    rows, columns = linear_sum_assignment(cost)
    return float(cost[rows, columns].mean())


def emd_pairs(
    generated: torch.Tensor,
    reference: torch.Tensor,
    *,
    points: int = EMD_POINTS,
    symmetric: bool = False,
    show_progress: bool = False,
    label: str = "EMD",
    device: str = "cpu",
    method: str = "exact",
) -> torch.Tensor:
    """EMD of every (generated, reference) pair, (N, M) float64: exact on clouds of at most ``points``.

    Larger clouds are reduced to ``points`` points each by :func:`farthest_point` sampling first
    (the approximation of the module docstring). ``method`` (``emd_path``'s choices): ``"exact"``
    runs the assignments on the CPU (SciPy) whatever the device; ``"sinkhorn"`` runs batched
    entropic OT on ``device`` (:mod:`gen_eval.metrics.pointclouds_emd_batch`, biased up by about 1%);
    ``"auto"`` takes Sinkhorn on CUDA and exact on the CPU.
    """
    from gen_eval.metrics.pointclouds_emd_batch import emd_path, sinkhorn_emd_pairs
    from gen_eval.progress import progress_task

    def reduce(clouds: torch.Tensor) -> list[np.ndarray]:
        return [farthest_points(c, points) for c in clouds.detach().cpu().numpy().astype(np.float64)]

    path = emd_path(device, method)
    left = reduce(generated)
    right = left if symmetric else reduce(reference)
    if path == "sinkhorn":
        return sinkhorn_emd_pairs(
            left, right, device=device, symmetric=symmetric, show_progress=show_progress, label=label
        )
    out = torch.zeros(len(left), len(right), dtype=torch.float64)

    def row(i: int) -> list[float]:
        return [exact_emd(left[i], right[j]) for j in range(i + 1 if symmetric else 0, len(right))]

    # SciPy's assignment releases the GIL: one worker per torch thread (--threads) shares the rows.
    with (
        progress_task(label, len(left), show_progress) as bar,
        ThreadPoolExecutor(torch.get_num_threads()) as pool,
    ):
        for i, values in enumerate(pool.map(row, range(len(left)))):
            out[i, len(right) - len(values) :] = torch.tensor(values, dtype=torch.float64)
            bar.advance(1)
    if symmetric:
        out = out + out.T
    return out
