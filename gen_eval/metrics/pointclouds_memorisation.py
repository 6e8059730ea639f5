"""Memorisation of point clouds: each generated cloud's nearest training cloud under Chamfer distance.

A model that copies its training shapes puts generated clouds closer to a training cloud than
unseen data of the same distribution gets. The **held-out floor** is the ``pc_memorisation_quantile``
quantile (default 0.05) of the reference (held-out) clouds' Chamfer distances to their nearest
training cloud; ``cd_memorisation`` is the share of generated clouds nearer than that floor to
some training cloud. A model that does not copy scores about the quantile itself (0.05); a
copier scores near 1. The interval resamples the generated clouds with the floor fixed (it
covers the generated set's sampling variation, not the floor's).

The training set is ``-o pc_train=SPEC`` (any point-cloud source), by default the training
split of the embedded dataset the reference comes from (``shapes3d:test:512`` ->
``shapes3d:train:512``). The reference must be held out from it (a reference drawn from the
training set puts the floor at 0). Cost: one Chamfer distance per (generated or reference,
training) pair, so every cloud is first reduced to ``pc_memorisation_points`` points (default
256, a seeded random subset: the same reduction for all three sets, so their distances compare).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from gen_eval.errors import GenEvalError
from gen_eval.metrics.bootstrap import mean_interval
from gen_eval.metrics.pointclouds import read_clouds
from gen_eval.metrics.pointclouds_distances import NORMALISATIONS, chamfer_pairs
from gen_eval.metrics.result import Result

if TYPE_CHECKING:
    from gen_eval.metrics.base import MetricContext


def reduce_points(clouds: torch.Tensor, points: int, seed: int) -> torch.Tensor:
    """A seeded random subset of ``points`` points of each cloud (all of them when it has fewer)."""
    if clouds.shape[1] <= points:
        return clouds
    generator = torch.Generator().manual_seed(seed)
    keep = torch.argsort(torch.rand(clouds.shape[:2], generator=generator), dim=1)[:, :points]
    return torch.gather(clouds, 1, keep[:, :, None].expand(-1, -1, 3))


def cd_memorisation(
    generated: dict[str, torch.Tensor], reference: dict[str, torch.Tensor], context: MetricContext
) -> dict[str, Result]:
    """``cd_memorisation``: share of generated clouds nearer to a training cloud than the held-out floor.

    Parameters
    ----------
    generated, reference : dict
        Unused: the clouds are read from the sources.
    context : MetricContext
        The ``pc_train``, ``pc_memorisation_points``, ``pc_memorisation_quantile`` and
        ``pc_normalise`` options, the device and the bootstrap settings.

    Returns
    -------
    dict of str to Result
    """
    from gen_eval.sources import open_source
    from gen_eval.sources.dataset import default_train_spec

    normalise = context.option("pc_normalise", "none")
    points = int(context.option("pc_memorisation_points", 256))
    quantile = float(context.option("pc_memorisation_quantile", 0.05))
    if points < 1 or not 0 < quantile < 1:
        raise GenEvalError("pc_memorisation_points must be >= 1 and pc_memorisation_quantile in (0, 1)")
    spec = context.option("pc_train", None)
    if spec is None and context.reference_source is not None:
        spec = default_train_spec(context.reference_source)
    if spec is None:
        raise GenEvalError("cd_memorisation needs the training set: -o pc_train=SPEC (a point-cloud source)")
    if context.reference_source is not None and spec == context.reference_source.spec:
        raise GenEvalError(
            f"cd_memorisation: the reference {spec} is the training set; give a held-out reference"
        )
    train = read_clouds(open_source(spec, seed=context.random_state), "training", normalise)
    gen = read_clouds(context.generated_source, "generated", normalise)
    ref = read_clouds(context.reference_source, "reference", normalise)
    seed = context.random_state
    train, gen, ref = (reduce_points(c, points, seed + k) for k, c in enumerate((train, gen, ref)))
    gen_nearest = chamfer_pairs(gen, train, device=context.device, label="CD generated x training").min(dim=1)
    ref_nearest = chamfer_pairs(ref, train, device=context.device, label="CD reference x training").min(dim=1)
    floor = float(torch.quantile(ref_nearest.values, quantile))
    below = (gen_nearest.values < floor).double()
    share = float(below.mean())
    interval = (
        mean_interval(below, context.num_resamples, context.random_state, context.confidence)
        if context.num_resamples > 0
        else None
    )
    order = torch.argsort(gen_nearest.values)[:10]
    return {
        "cd_memorisation": Result(
            "cd_memorisation",
            share,
            "lower",
            len(gen),
            len(ref),
            interval=interval,
            interval_covers="the generated set's sampling variation, the held-out floor fixed"
            if interval
            else None,
            details={
                "training_set": spec,
                "training_count": len(train),
                "held_out_floor": floor,
                "expected_without_copying": quantile,
                "points": points,
                "normalise": f"{normalise}: {NORMALISATIONS[normalise]}",
                "closest": [
                    {
                        "generated": int(i),
                        "training": int(gen_nearest.indices[i]),
                        "cd": float(gen_nearest.values[i]),
                    }
                    for i in order
                ],
                "definition": (
                    "share of generated clouds whose nearest training cloud (CD) is nearer than the "
                    f"{quantile:g} quantile of the held-out reference clouds' nearest-training CD"
                ),
            },
        )
    }
