"""A bundled model's AIS bits/dim, computed once offline and shipped beside its checkpoint.

A GAN has no ``log_prob``: its only likelihood is AIS under a Gaussian observation model (Wu et
al., 2017), minutes of CPU per model, too slow for every ``gen-eval demo``. So it runs once,

    gen-eval likelihood ref:dcgan --data digits:test --method ais,bdmc --steps 200 --chains 2 --save

and the result goes to ``reference_models/checkpoints/dcgan.ais.json``, the way ``rbm_large``
keeps the AIS estimate of its log Z with its weights. The file records how the number was made
(method, observation model and the sigma chosen on validation images, steps, chains, examples,
seed, the BDMC gap) and the SHA-256 of the checkpoint it belongs to: after a retrain the file is
stale, :func:`load_stored` refuses it and the leaderboard shows no value until it is regenerated.
"""

from __future__ import annotations

import json
import math
import os
import platform
from pathlib import Path
from typing import Any

from gen_eval.errors import GenEvalError

SUFFIX = ".ais.json"
FORMAT = 1
#: What the leaderboard's interval covers (written into its Result).
INTERVAL_COVERS = (
    "the mean AIS bits/dim over the test examples: ±1.96 standard errors across examples (AIS's own "
    "bias, a too-high bits/dim from a short schedule, is not in it: see the BDMC gap)"
)
REQUIRED = ("format", "model", "checkpoint_sha256", "data", "examples", "dimensions", "method", "kind",
            "observation", "steps", "chains", "seed", "log_p_nats", "per_example_log_p_nats", "stderr_nats",
            "bits_per_dim", "bits_per_dim_interval", "label", "command")  # fmt: skip


def stored_path(name: str) -> Path:
    """Where the stored AIS result of bundled model ``name`` lives (beside its checkpoint)."""
    from reference_models import get_entry

    return get_entry(name).checkpoint.with_name(f"{name}{SUFFIX}")


def regenerate_command(name: str, dataset: str, steps: int, chains: int, seed: int = 0) -> str:
    """The command line that writes the stored file of ``name`` with these settings."""
    seed_part = f" --seed {seed}" if seed else ""
    return (
        f"gen-eval --threads 1 likelihood ref:{name} --data {dataset}:test --method ais,bdmc "
        f"--steps {steps} --chains {chains}{seed_part} --save"
    )


def make_record(
    name: str,
    ais_result: Any,
    *,
    data: str,
    dimensions: int,
    levels: int,
    sigma_scores: dict[float, float] | None,
    validation_examples: int,
    bdmc_result: Any | None = None,
    sigma_settings: dict[str, int] | None = None,
) -> dict[str, Any]:
    """The stored document of one AIS run on the whole test split of ``name``'s dataset.

    Parameters
    ----------
    name : str
        Bundled model name.
    ais_result : LikelihoodEstimate
        Forward AIS on the test examples (method "ais").
    data : str
        The examples' spec, e.g. ``digits:test``.
    dimensions, levels : int
        D per example and the data's grey levels.
    sigma_scores : dict, optional
        Validation log p(x) (nats per example) of each sigma tried; None when sigma was given.
    validation_examples : int
        Validation images sigma was chosen on.
    bdmc_result : LikelihoodEstimate, optional
        BDMC at the same schedule (its gap certifies the schedule on simulated data).
    sigma_settings : dict, optional
        Steps and chains of the AIS runs that chose sigma.

    Returns
    -------
    dict
    """
    import torch

    from gen_eval.likelihood.observation import edge_warning, grid_edge
    from reference_models import checkpoint_hash

    details = ais_result.details
    sigma = details.get("sigma")
    bpd, interval = ais_result.bits_per_dim(dimensions)
    observation: dict[str, Any] = {
        "model": "own p(x|z)" if sigma is None else "discretised Gaussian" if levels else "Gaussian",
        "sigma": sigma,
    }
    if sigma is not None:
        observation["chosen_on"] = (
            f"{validation_examples} validation images, highest AIS log p(x) of the grid"
            if sigma_scores
            else "given (--sigma)"
        )
        observation["validation_log_p_nats"] = (
            {f"{s:g}": v for s, v in sigma_scores.items()} if sigma_scores else None
        )
        observation["selection"] = sigma_settings if sigma_scores else None
        # An end of the grid brackets no optimum: say so in the file and wherever the number is shown.
        observation["grid_edge"] = grid_edge(sigma, sigma_scores) if sigma_scores else None
        observation["warning"] = edge_warning(sigma, sigma_scores) if sigma_scores else None
    bdmc = None
    if bdmc_result is not None:
        bdmc = {key: bdmc_result.details.get(key) for key in ("examples", "steps", "chains", "gap")}
        bdmc.update(forward_nats=bdmc_result.lower, reverse_nats=bdmc_result.upper)
    dataset = data.split(":")[0]
    label = ais_result.label or ""
    return {
        "format": FORMAT,
        "model": name,
        "checkpoint_sha256": checkpoint_hash(name),
        "data": data,
        "examples": int(details["examples"]),
        "dimensions": dimensions,
        "levels": levels,
        "method": "ais",
        "kind": "estimate",
        "observation": observation,
        "steps": int(details["steps"]),
        "chains": int(details["chains"]),
        "leapfrog": details.get("leapfrog"),
        "schedule": "sigmoid",
        "seed": details.get("seed", 0),
        "acceptance": details.get("acceptance"),
        "log_p_nats": ais_result.value,
        "per_example_log_p_nats": [round(float(v), 4) for v in ais_result.per_example],
        "per_example_monte_carlo_stderr_nats": [round(float(v), 4) for v in ais_result.per_example_stderr]
        if ais_result.per_example_stderr is not None
        else None,
        "stderr_nats": ais_result.stderr,
        "monte_carlo_stderr_nats": details.get("monte_carlo_stderr"),
        "bits_per_dim": bpd,
        "bits_per_dim_interval": list(interval) if interval else None,
        "interval_covers": INTERVAL_COVERS,
        "bdmc": bdmc,
        "label": label,
        "seconds": details.get("seconds"),
        "threads": torch.get_num_threads(),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "torch": torch.__version__,
        "command": regenerate_command(
            name, dataset, int(details["steps"]), int(details["chains"]), int(details.get("seed", 0))
        ),
    }


def save_stored(record: dict[str, Any], path: Path | None = None) -> Path:
    """Write ``record`` beside its model's checkpoint (atomically: a stopped run leaves the old file)."""
    from gen_eval.schemas import to_json

    path = path or stored_path(record["model"])
    partial = path.with_name(path.name + ".partial")
    partial.write_text(to_json(record, sort_keys=True) + "\n", encoding="utf-8")
    partial.replace(path)
    return path


def load_stored(name: str, path: Path | None = None) -> dict[str, Any] | None:
    """The stored AIS result of ``name``, checked against its checkpoint; None when there is none.

    Raises
    ------
    GenEvalError
        The file is not a stored AIS result, or it was computed for other weights (stale).
    """
    from reference_models import checkpoint_hash, get_entry

    path = path or stored_path(name)
    if not path.is_file():
        return None
    fix = f"regenerate it with gen-eval likelihood ref:{name} --data {get_entry(name).dataset}:test --method ais,bdmc --save"
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise GenEvalError(f"{path}: not a stored AIS result ({exc}); {fix}") from None
    missing = [key for key in REQUIRED if not isinstance(record, dict) or key not in record]
    if missing or record.get("format") != FORMAT or record.get("model") != name:
        raise GenEvalError(
            f"{path}: not a stored AIS result of {name} (missing {', '.join(missing) or 'format'}); {fix}"
        )
    values = record.get("per_example_log_p_nats") or []
    if (
        not isinstance(record["bits_per_dim"], int | float)
        or len(values) != record["examples"]
        or not math.isclose(record["bits_per_dim"], _bits(sum(values) / len(values), record), abs_tol=1e-4)
    ):
        raise GenEvalError(f"{path}: bits_per_dim does not follow from its per-example log p(x); {fix}")
    if record["checkpoint_sha256"] != checkpoint_hash(name):
        raise GenEvalError(
            f"{path} is stale: computed for checkpoint {record['checkpoint_sha256'][:12]}, but "
            f"{get_entry(name).checkpoint.name} is {checkpoint_hash(name)[:12]}; {fix}"
        )
    return record


def _bits(log_p_nats: float, record: dict[str, Any]) -> float:
    return -log_p_nats / (record["dimensions"] * math.log(2))


def stored_metric(record: dict[str, Any], num_generated: int | None = None) -> dict[str, Any]:
    """The record as a ``bits_per_dim`` entry of a leaderboard row (``Result.to_dict()``'s shape)."""
    from gen_eval.metrics.result import Result

    details = {
        "method": "ais",
        "source": f"stored AIS result {record['model']}{SUFFIX}",
        "steps": record["steps"],
        "chains": record["chains"],
        "sigma": record["observation"].get("sigma"),
        "observation": record["observation"].get("model"),
        "sigma_grid_edge": record["observation"].get("grid_edge"),
        "bdmc_gap": (record.get("bdmc") or {}).get("gap"),
        "nll_nats_per_example": -record["log_p_nats"],
        "dimensions": record["dimensions"],
        "seed": record["seed"],
    }
    interval = record.get("bits_per_dim_interval")
    result = Result(
        name="bits_per_dim",
        value=record["bits_per_dim"],
        direction="lower",
        num_generated=num_generated,
        num_reference=record["examples"],
        kind="estimate",
        interval=tuple(interval) if interval else None,
        interval_covers=INTERVAL_COVERS if interval else None,
        warnings=[w for w in (record["label"], record["observation"].get("warning")) if w],
        details=details,
    )
    return result.to_dict()
