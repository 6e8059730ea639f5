"""The PointFlow protocol on point clouds: MMD, COV and 1-NNA under Chamfer and Earth Mover's distances.

Following Achlioptas et al. (2018) and Yang et al. (2019, PointFlow, ``compute_all_metrics``),
with ``D`` the distance (CD or EMD, :mod:`gen_eval.metrics.pointclouds_distances`) between a
generated set G and a reference set R:

* **MMD** (minimum matching distance, lower is better): for each reference cloud the distance to
  its nearest generated cloud, averaged over the reference (fidelity to every reference shape).
* **COV** (coverage, higher is better): the share of reference clouds that are the nearest
  reference of at least one generated cloud (diversity; collapse leaves most uncovered).
* **1-NNA** (1-nearest-neighbour accuracy, 0.5 is ideal): leave-one-out 1-NN classification of
  G u R into "generated" and "reference"; near 0.5 when the sets are indistinguishable, near 1
  when they differ; well below 0.5 means generated clouds sit on reference ones (copies).

Clouds are read from the sources themselves (not the features) and normalised per
``pc_normalise`` (PointFlow's default ``none``). A generator is sampled again for them, with the
run's seed: the same clouds as its features' only when its sampling does not depend on the
batch size. Intervals (``num_resamples`` > 0) resample both
sets' clouds with replacement and recompute the statistic from the fixed distance matrices
(a copy of a cloud is never its own neighbour): they cover the sampling variation of the two
finite sets of clouds, at these set sizes, not the randomness of the points within a cloud nor
the EMD approximation. Replicates are recentred on the point value (resampling fewer distinct
clouds biases MMD up and COV down; :func:`gen_eval.metrics.bootstrap.recentred_interval`).
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

import torch

from gen_eval.errors import GenEvalError
from gen_eval.metrics.bootstrap import recentred_interval, resample_indices
from gen_eval.metrics.pointclouds_distances import (
    CHAMFER_METHODS,
    EMD_POINTS,
    NORMALISATIONS,
    chamfer_pairs,
    chamfer_path,
    emd_pairs,
    normalise_clouds,
)
from gen_eval.metrics.pointclouds_emd_batch import EMD_PATHS, ERROR_BOUND, RELATIVE_REG, emd_path
from gen_eval.metrics.result import Result

if TYPE_CHECKING:
    from gen_eval.metrics.base import MetricContext
    from gen_eval.sources import Source

COVERS = (
    "the sampling variation of the two finite sets of clouds (both resampled, distances fixed), "
    "at these set sizes"
)


def read_clouds(source: Source | None, role: str, normalise: str = "none") -> torch.Tensor:
    """Every cloud of ``source`` as float32 (N, P, 3), normalised per ``normalise``."""
    if source is None:
        raise GenEvalError(f"point-cloud metrics need the {role} source itself, not only its features")
    if source.data_kind != "pointcloud":
        raise GenEvalError(
            f"point-cloud metrics need point clouds; the {role} {source.spec} holds {source.data_kind}s"
        )
    if len(source) < 2:
        raise GenEvalError(
            f"point-cloud metrics need at least 2 {role} clouds; {source.spec} has {len(source)}"
        )
    clouds = source.head(len(source)).data.to(torch.float32)
    return normalise_clouds(clouds, normalise)


def mmd_cov(cross: torch.Tensor) -> tuple[float, float]:
    """(MMD, COV) from the (generated, reference) distance matrix, as PointFlow's ``lgan_mmd_cov``."""
    mmd = float(cross.amin(dim=0).mean())
    covered = torch.unique(cross.argmin(dim=1))
    return mmd, len(covered) / cross.shape[1]


def one_nna(within_generated: torch.Tensor, cross: torch.Tensor, within_reference: torch.Tensor) -> float:
    """Leave-one-out 1-NN accuracy of telling the generated clouds from the reference ones."""
    n = len(within_generated)
    full = torch.cat(
        [torch.cat([within_generated, cross], dim=1), torch.cat([cross.T, within_reference], dim=1)], dim=0
    ).clone()
    full.fill_diagonal_(float("inf"))
    labels = torch.cat([torch.zeros(n), torch.ones(len(within_reference))])
    return float((labels[full.argmin(dim=1)] == labels).double().mean())


def _replicates(
    gg: torch.Tensor, gr: torch.Tensor, rr: torch.Tensor, resamples: int, seed: int
) -> torch.Tensor:
    """(resamples, 3) bootstrap replicates of (MMD, COV, 1-NNA), both sets resampled."""
    n, m = gr.shape
    gen_draws, ref_draws = resample_indices(n, resamples, seed), resample_indices(m, resamples, seed + 1)
    labels = torch.cat([torch.zeros(n), torch.ones(m)])
    out = torch.empty(resamples, 3, dtype=torch.float64)
    for row, (g, r) in enumerate(zip(gen_draws, ref_draws, strict=True)):
        cross = gr[g][:, r]
        nearest_ref = r[cross.argmin(dim=1)]  # original ids of the references hit
        covered = torch.isin(r, nearest_ref).double().mean()
        within_g = gg[g][:, g].masked_fill(
            g[:, None] == g[None, :], float("inf")
        )  # copies are not neighbours
        within_r = rr[r][:, r].masked_fill(r[:, None] == r[None, :], float("inf"))
        full = torch.cat([torch.cat([within_g, cross], 1), torch.cat([cross.T, within_r], 1)], 0)
        accuracy = (labels[full.argmin(dim=1)] == labels).double().mean()
        out[row] = torch.stack([cross.amin(dim=0).mean(), covered, accuracy])
    return out


def protocol_results(
    distance: str,
    gg: torch.Tensor,
    gr: torch.Tensor,
    rr: torch.Tensor,
    context: MetricContext,
    details: dict[str, Any],
    warnings: list[str] | None = None,
) -> dict[str, Result]:
    """``mmd_<distance>``, ``cov_<distance>`` and ``1nna_<distance>`` Results from the three distance matrices."""
    n, m = gr.shape
    mmd, cov = mmd_cov(gr)
    nna = one_nna(gg, gr, rr)
    intervals: list[tuple[float, float] | None] = [None, None, None]
    if context.num_resamples > 0:
        reps = _replicates(gg, gr, rr, context.num_resamples, context.random_state)
        intervals = [
            recentred_interval(reps[:, 0], mmd, context.confidence, 0.0, float("inf")),
            recentred_interval(reps[:, 1], cov, context.confidence),
            recentred_interval(reps[:, 2], nna, context.confidence),
        ]
    covers = COVERS if context.num_resamples > 0 else None
    label = distance.upper()
    rows = [
        (
            f"mmd_{distance}",
            mmd,
            "lower",
            f"mean {label} from each reference cloud to its nearest generated cloud",
        ),
        (
            f"cov_{distance}",
            cov,
            "higher",
            "share of reference clouds that are some generated cloud's nearest",
        ),
        (
            f"1nna_{distance}",
            nna,
            "lower",
            "leave-one-out 1-NN accuracy on generated vs reference; 0.5 is ideal, below 0.5 suggests copies",
        ),
    ]
    return {
        name: Result(
            name,
            value,
            direction,  # type: ignore[arg-type]
            n,
            m,
            interval=interval,
            interval_covers=covers,
            warnings=list(warnings or []),
            details={**details, "definition": definition},
        )
        for (name, value, direction, definition), interval in zip(rows, intervals, strict=True)
    }


def _show_progress() -> bool:
    return sys.stderr.isatty()


def pointflow_cd(
    generated: dict[str, torch.Tensor], reference: dict[str, torch.Tensor], context: MetricContext
) -> dict[str, Result]:
    """MMD-CD, COV-CD and 1-NNA-CD (``mmd_cd``, ``cov_cd``, ``1nna_cd``).

    Parameters
    ----------
    generated, reference : dict
        Unused: the clouds are read from ``context.generated_source`` / ``reference_source``.
    context : MetricContext
        Device, bootstrap settings and the ``pc_normalise`` and ``pc_chamfer`` options.

    Returns
    -------
    dict of str to Result
    """
    normalise = context.option("pc_normalise", "none")
    gen = read_clouds(context.generated_source, "generated", normalise)
    ref = read_clouds(context.reference_source, "reference", normalise)
    method = context.option("pc_chamfer", "auto")
    path = chamfer_path(context.device, method)
    show = _show_progress()
    options = {"device": context.device, "show_progress": show, "method": path}
    gr = chamfer_pairs(gen, ref, label="CD generated x reference", **options)
    gg = chamfer_pairs(gen, gen, symmetric=True, label="CD generated", **options)
    rr = chamfer_pairs(ref, ref, symmetric=True, label="CD reference", **options)
    details = {
        "distance": "Chamfer: mean squared nearest distance, both directions summed (PointFlow)",
        "chamfer_path": f"{path} on {context.device if path == 'gemm' else 'cpu'}: {CHAMFER_METHODS[path]}",
        "normalise": f"{normalise}: {NORMALISATIONS[normalise]}",
        "points": [int(gen.shape[1]), int(ref.shape[1])],
    }
    return protocol_results("cd", gg, gr, rr, context, details)


def pointflow_emd(
    generated: dict[str, torch.Tensor], reference: dict[str, torch.Tensor], context: MetricContext
) -> dict[str, Result]:
    """MMD-EMD, COV-EMD and 1-NNA-EMD (``mmd_emd``, ``cov_emd``, ``1nna_emd``).

    Exact EMD on clouds of at most ``pc_emd_points`` points; larger clouds are first reduced to
    that many by farthest-point sampling (see :mod:`gen_eval.metrics.pointclouds_distances`).

    Parameters
    ----------
    generated, reference : dict
        Unused: the clouds are read from the sources.
    context : MetricContext
        Device, bootstrap settings and the ``pc_normalise``, ``pc_emd_points`` and ``pc_emd``
        (``auto``: Sinkhorn on CUDA, exact on the CPU) options.

    Returns
    -------
    dict of str to Result
    """
    normalise = context.option("pc_normalise", "none")
    points = int(context.option("pc_emd_points", EMD_POINTS))
    if points < 1:
        raise GenEvalError(f"pc_emd_points must be at least 1, got {points}")
    gen = read_clouds(context.generated_source, "generated", normalise)
    ref = read_clouds(context.reference_source, "reference", normalise)
    if min(gen.shape[1], points) != min(ref.shape[1], points):
        raise GenEvalError(
            f"EMD compares clouds of equal size: generated clouds have {gen.shape[1]} points, reference "
            f"{ref.shape[1]}; set -o pc_emd_points=N to at most the smaller count"
        )
    path = emd_path(context.device, context.option("pc_emd", "auto"))
    show = _show_progress()
    options = {"points": points, "show_progress": show, "device": context.device, "method": path}
    gr = emd_pairs(gen, ref, label="EMD generated x reference", **options)
    gg = emd_pairs(gen, gen, symmetric=True, label="EMD generated", **options)
    rr = emd_pairs(ref, ref, symmetric=True, label="EMD reference", **options)
    reduced = max(gen.shape[1], ref.shape[1]) > points
    sinkhorn = path == "sinkhorn"
    details = {
        "distance": "EMD: mean Euclidean distance of the optimal one-to-one matching"
        + (" (entropic OT estimate)" if sinkhorn else " (exact assignment)"),
        "emd_path": f"{path} on {context.device if sinkhorn else 'cpu'}: {EMD_PATHS[path]}",
        "normalise": f"{normalise}: {NORMALISATIONS[normalise]}",
        "points": [int(gen.shape[1]), int(ref.shape[1])],
        "emd_points": min(points, int(gen.shape[1])),
        "approximation": (
            f"exact EMD of {points}-point farthest-point reductions of each cloud"
            if reduced
            else "none: exact EMD of the whole clouds"
        ),
    }
    warnings = (
        [
            f"EMD on {points}-point farthest-point reductions, not the whole clouds: its error against exact EMD "
            "is measured in reports/pointclouds.md (-o pc_emd_points=N for more points, slower)"
        ]
        if reduced
        else []
    )
    if sinkhorn:
        warnings.append(
            f"EMD estimated by entropic OT (POT batched log-domain Sinkhorn, reg {RELATIVE_REG:g} x mean cost): "
            f"biased up, within +{ERROR_BOUND:.0%} of exact EMD on the tested sample (-o pc_emd=exact for exact)"
        )
    return protocol_results("emd", gg, gr, rr, context, details, warnings)
