"""The ``bpd`` metric of ``gen-eval evaluate``: the best likelihood the model allows, AIS when asked.

With ``bpd_method=auto`` (the default) it is :func:`gen_eval.metrics.likelihood.bits_per_dim`:
the model's ``log_prob``, exact or a bound. ``bpd_method=ais`` anneals over the model's latent
instead (:mod:`gen_eval.likelihood.ais`), the only way to a bits/dim for a GAN; it is slow, so
it never runs unasked. The metric registry names this function by its import path (a string),
so the metrics layer does not import this higher one.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from gen_eval.errors import GenEvalError
from gen_eval.likelihood.annealing import nats_to_bits_per_dim
from gen_eval.metrics.base import MetricContext
from gen_eval.metrics.bootstrap import mean_interval
from gen_eval.metrics.likelihood import bits_per_dim as log_prob_bits_per_dim
from gen_eval.metrics.result import Result

BPD_METHODS = ("auto", "ais")


def can_use_ais(model: Any) -> bool:
    """Whether ``bpd_method=ais`` can score ``model`` (a latent and a decoder or p(x | z))."""
    from gen_eval.likelihood.observation import can_anneal

    return model is not None and can_anneal(model)


def bits_per_dim(
    generated: dict[str, torch.Tensor], reference: dict[str, torch.Tensor], context: MetricContext
) -> dict[str, Result]:
    """Bits/dim of the reference images under the generated source's model.

    Parameters
    ----------
    generated, reference : dict of str to torch.Tensor
        Unused: the model is ``context.generated_source.model``, the data ``context.reference_source``.
    context : MetricContext
        Options ``bpd_method`` ("auto" or "ais"), ``bpd_steps``, ``bpd_chains``, ``bpd_sigma`` and
        those of :func:`gen_eval.metrics.likelihood.bits_per_dim`.

    Returns
    -------
    dict
        ``{"bits_per_dim": Result}``; ``details`` state the method (and for AIS steps and chains).
    """
    method = context.option("bpd_method", "auto")
    if method not in BPD_METHODS:
        raise GenEvalError(f"bpd_method must be one of {', '.join(BPD_METHODS)}, got {method!r}")
    if method == "auto":
        results = log_prob_bits_per_dim(generated, reference, context)
        result = results["bits_per_dim"]
        convention = result.details.get("convention")
        result.details["method"] = {"discrete": "exact"}.get(convention, f"log_prob ({convention})")
        return results
    return {"bits_per_dim": _ais_bits_per_dim(context)}


def _ais_bits_per_dim(context: MetricContext) -> Result:
    from gen_eval.likelihood.methods import Settings, data_levels, run

    source, data = context.generated_source, context.reference_source
    model = getattr(source, "model", None)
    if not can_use_ais(model):
        spec = getattr(source, "spec", "the generated source")
        raise GenEvalError(
            f"bpd_method=ais needs a model with latent_dim and decode(z); {spec} does not provide one"
        )
    if data is None:
        raise GenEvalError("bits/dim needs a reference source (the held-out test data)")
    x = torch.cat([batch.data for batch in data.batches(512)])
    levels = data_levels(x, model, context.option("bpd_levels", None))
    validation = None
    dataset = getattr(model, "dataset", None)
    if isinstance(dataset, str) and not callable(getattr(model, "log_likelihood_given_latent", None)):
        from reference_models.common import load_training_data

        validation = load_training_data(dataset).val[:64]  # sigma is chosen off the test data
    settings = Settings(
        steps=int(context.option("bpd_steps", 1000)), chains=int(context.option("bpd_chains", 16)),
        seed=context.random_state, device=str(context.device), sigma=context.option("bpd_sigma", None),
    )  # fmt: skip
    estimate = run("ais", model, x, settings, levels=levels, validation=validation)
    dims = math.prod(x.shape[1:])
    per_example = nats_to_bits_per_dim(estimate.per_example, dims)
    interval = None
    if context.num_resamples > 0:
        interval = mean_interval(per_example, context.num_resamples, context.random_state, context.confidence)
    details = {
        "method": "ais",
        "steps": estimate.details["steps"],
        "chains": estimate.details["chains"],
        "acceptance": estimate.details["acceptance"],
        "dimensions": dims,
        "levels": levels,
        "nll_nats_per_example": -estimate.value,
        "model": type(model).__name__,
    }
    if estimate.details.get("sigma") is not None:
        details["sigma"] = estimate.details["sigma"]
    warnings = [estimate.label] if estimate.label else []
    if estimate.details.get("sigma_grid_edge"):
        details["sigma_grid_edge"] = estimate.details["sigma_grid_edge"]
        warnings.append(estimate.details["sigma_warning"])
    return Result(
        name="bits_per_dim",
        value=nats_to_bits_per_dim(estimate.value, dims),
        direction="lower",
        num_generated=len(source),
        num_reference=len(x),
        kind="estimate",
        interval=interval,
        interval_covers=None
        if interval is None
        else "this model's expected AIS bits/dim on data like the test set: a mean over the test examples, resampled",
        warnings=warnings,
        details=details,
    )
