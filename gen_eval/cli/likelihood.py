"""``gen-eval likelihood``: log-likelihood of held-out data by every method a model allows."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated, Any

import typer

from gen_eval.cli.common import UnsafeNoIsolation, _guard, app
from gen_eval.schemas import to_json

LIKELIHOOD_EXAMPLES = """
[bold]Examples[/bold]

  gen-eval likelihood ref:vae --data digits:test --num-examples 64
  gen-eval likelihood ref:vae --data digits:test --method ais --steps 1000 --chains 16 --json
  gen-eval likelihood ref:vae --data digits:test --method bdmc --steps auto
  gen-eval likelihood ref:dcgan --data digits:test --method ais --num-examples 32
  gen-eval --threads 1 likelihood ref:dcgan --data digits:test --method ais,bdmc --steps 200 --chains 2 --save
"""
METHOD_CHOICES = ("auto", "exact", "elbo", "iwae", "ais", "bdmc")
SIGMA_STEPS, SIGMA_CHAINS = 50, 2  # --save: the AIS that chooses a GAN's noise sigma on validation images


def parse_steps(text: str) -> int | str:
    """``--steps``: a positive integer or "auto" (GenEvalError otherwise)."""
    from gen_eval.errors import GenEvalError

    if text == "auto":
        return "auto"
    try:
        steps = int(text)
    except ValueError:
        steps = 0
    if steps < 1:
        raise GenEvalError(f"--steps {text!r}: give a positive number of annealing steps or 'auto'")
    return steps


def parse_methods(text: str) -> list[str] | str:
    """``--method``: "auto" or a comma-separated list of methods (GenEvalError naming the choices)."""
    from gen_eval.errors import GenEvalError

    names = [part.strip() for part in text.split(",") if part.strip()]
    unknown = [name for name in names if name not in METHOD_CHOICES]
    if not names or unknown:
        raise GenEvalError(f"--method {text!r}: use auto or any of {', '.join(METHOD_CHOICES[1:])}")
    return "auto" if "auto" in names else names


def _load_data(spec: str, num_examples: int | None) -> tuple[Any, str]:
    """The examples of ``spec`` as one tensor, and the source's spec."""
    import torch

    from gen_eval.errors import GenEvalError
    from gen_eval.sources import open_source

    source = open_source(spec, num_samples=num_examples)
    parts = [batch.data for batch in source.batches(512)]
    if not parts:
        raise GenEvalError(f"{spec}: no examples to score")
    return torch.cat(parts), source.spec


def _validation(model: Any, seed: int) -> Any:
    """Validation images for choosing a deterministic decoder's noise: the model's data, never the test split."""
    dataset = getattr(model, "dataset", None)
    if not isinstance(dataset, str):
        return None
    from reference_models.common import load_training_data

    try:
        return load_training_data(dataset).val[:64]
    except (KeyError, ValueError):
        return None


def likelihood_document(
    model_name: str, data_spec: str, x: Any, levels: int, results: list
) -> dict[str, Any]:
    """The ``--json`` document: per method bits/dim with its interval and kind (numbers as numbers)."""
    dims = math.prod(x.shape[1:])
    methods = []
    for result in results:
        entry = result.to_dict(dims)
        entry["details"] = {k: v for k, v in entry["details"].items() if k != "schedule"} | (
            {"schedule": result.details["schedule"]} if "schedule" in result.details else {}
        )
        methods.append(entry)
    return {
        "model": model_name,
        "data": data_spec,
        "examples": len(x),
        "dimensions": dims,
        "levels": levels,
        "methods": methods,
    }


@app.command(epilog=LIKELIHOOD_EXAMPLES)
def likelihood(
    model: Annotated[str, typer.Argument(help="ref:NAME, a bundled model name, or file.py:factory.")],
    data: Annotated[str, typer.Option("--data", help="Held-out examples to score, e.g. digits:test.")],
    method: Annotated[
        str,
        typer.Option(
            help="auto (every method the model allows, cheapest first) or any of exact, elbo, iwae, ais, bdmc, comma-separated."
        ),
    ] = "auto",
    steps: Annotated[
        str, typer.Option(help="AIS/BDMC annealing steps, or auto (double until the BDMC gap < --tolerance).")
    ] = "1000",
    chains: Annotated[int, typer.Option(min=1, help="AIS chains per example.")] = 16,
    num_examples: Annotated[
        int | None, typer.Option(min=1, help="Score the first N examples (default: all).")
    ] = None,
    iwae_k: Annotated[int, typer.Option(min=1, help="Importance samples of the IWAE bound.")] = 100,
    leapfrog: Annotated[int, typer.Option(min=1, help="Leapfrog steps per HMC move.")] = 10,
    sigma: Annotated[
        float | None,
        typer.Option(
            help="Observation noise of a deterministic decoder (default: chosen on validation data)."
        ),
    ] = None,
    bdmc_examples: Annotated[int, typer.Option(min=1, help="Examples BDMC simulates from the model.")] = 32,
    tolerance: Annotated[
        float, typer.Option(help="--steps auto: BDMC gap to reach, nats per example.")
    ] = 1.0,
    time_budget: Annotated[float, typer.Option(help="--steps auto: seconds allowed.")] = 300.0,
    device: Annotated[str, typer.Option(help="cpu or cuda.")] = "cpu",
    checkpoint: Annotated[
        Path | None, typer.Option(help="AIS saves its state here and resumes from it when rerun alike.")
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of every random draw.")] = 0,
    trust_code: Annotated[bool, typer.Option(help="Allow running a Python model file.")] = False,
    unsafe_no_isolation: UnsafeNoIsolation = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the numbers as JSON.")] = False,
    save: Annotated[
        bool,
        typer.Option(
            help="Store the AIS result beside the bundled model's checkpoint (NAME.ais.json), where the "
            "demo leaderboard and the scorecard read it; needs ref:NAME, its whole test split and --method ais."
        ),
    ] = False,
) -> None:
    """Log-likelihood of the --data examples under MODEL, in bits/dim, by every method asked for.

    Each row says its kind: exact, bound (ELBO, IWAE: the true bits/dim is at most this), estimate
    (AIS: a stochastic bound that tightens with steps) or bracket (BDMC, on data simulated from the
    model: forward and reverse AIS on either side of the truth; the gap certifies the schedule).
    A GAN has no p(x | z): its AIS uses Gaussian observation noise and says so. With --save the
    AIS result (and BDMC's gap, when asked for) is stored beside a bundled model's checkpoint.
    """

    def body() -> None:
        from gen_eval.latent.analyse import load_latent_model
        from gen_eval.likelihood.methods import Settings, data_levels, run_all

        methods = parse_methods(method)
        if save:
            _check_save(model, data, methods, num_examples)
        settings = Settings(
            steps=parse_steps(steps), chains=chains, iwae_k=iwae_k, leapfrog=leapfrog, seed=seed, device=device,
            sigma=sigma, bdmc_examples=bdmc_examples, tolerance=tolerance, time_budget=time_budget,
            progress=not quiet and not as_json, checkpoint=checkpoint,
        )  # fmt: skip
        loaded, name = load_latent_model(model, trust_code, unsafe_no_isolation)
        x, spec = _load_data(data, num_examples)
        levels = data_levels(x, loaded)
        validation = None
        if sigma is None and not callable(getattr(loaded, "log_likelihood_given_latent", None)):
            validation = _validation(loaded, seed)
        sigma_scores = None
        if save and validation is not None:
            from gen_eval.likelihood.observation import choose_sigma

            # Chosen here rather than inside run_all so that the stored file can show every sigma tried;
            # a short schedule ranks the grid (neighbours differ by nats) at an eighth of the default's cost.
            settings.sigma, sigma_scores = choose_sigma(
                loaded, validation, levels, steps=SIGMA_STEPS, chains=SIGMA_CHAINS, seed=seed, device=device
            )
        results = run_all(methods, loaded, x, settings, levels=levels, validation=validation)
        if sigma_scores:
            _flag_grid_edge(results, settings.sigma, sigma_scores)
        document = likelihood_document(name, spec, x, levels, results)
        if save:
            _save(model, spec, x, levels, results, sigma_scores, validation)
        if as_json:
            typer.echo(to_json(document))
            return
        _print(document)

    _guard(body)


def _flag_grid_edge(results: list, sigma: float, sigma_scores: dict[float, float]) -> None:
    """Mark the annealed results when the sigma chosen here lies at an end of the grid tried."""
    from gen_eval.likelihood.observation import edge_warning, grid_edge

    edge = grid_edge(sigma, sigma_scores)
    for result in results:
        if edge is not None and "sigma" in result.details:
            result.details.update(sigma_grid_edge=edge, sigma_warning=edge_warning(sigma, sigma_scores))


def _check_save(model: str, data: str, methods: list[str] | str, num_examples: int | None) -> None:
    """--save stores one kind of result only: AIS of a bundled model on its whole test split."""
    from gen_eval.errors import GenEvalError

    name = model.removeprefix("ref:")
    try:
        from reference_models import get_entry

        dataset = get_entry(name).dataset
    except KeyError:
        raise GenEvalError(
            f"--save stores results of bundled models only; {model} is not one (gen-eval models)"
        ) from None
    if data != f"{dataset}:test" or num_examples is not None:
        raise GenEvalError(
            f"--save scores the whole test split: use --data {dataset}:test without --num-examples"
        )
    if methods == "auto" or "ais" not in methods or not set(methods) <= {"ais", "bdmc"}:
        raise GenEvalError(
            "--save stores an AIS result: use --method ais (or ais,bdmc to store BDMC's gap too)"
        )


def _save(
    model: str, spec: str, x: Any, levels: int, results: list, sigma_scores: Any, validation: Any
) -> None:
    from gen_eval.likelihood.stored import make_record, save_stored

    found = {result.method: result for result in results}
    record = make_record(
        model.removeprefix("ref:"), found["ais"], data=spec, dimensions=math.prod(x.shape[1:]), levels=levels,
        sigma_scores=sigma_scores, validation_examples=0 if validation is None else len(validation),
        sigma_settings={"steps": SIGMA_STEPS, "chains": SIGMA_CHAINS},
        bdmc_result=found.get("bdmc"),
    )  # fmt: skip
    path = save_stored(record)
    typer.echo(f"saved {path}", err=True)


def _print(document: dict[str, Any]) -> None:
    from rich.table import Table

    from gen_eval.tables import console_for, unclipped

    title = f"Likelihood of {document['data']} ({document['examples']} examples, {document['dimensions']} dims) under {document['model']}"
    table = Table(title=title)
    for column in ("method", "kind", "bits/dim", "interval", "log p(x), nats", "settings"):
        table.add_column(column)
    notes = []
    for entry in document["methods"]:
        low_high = entry["bits_per_dim_interval"]
        interval = f"[{low_high[0]:.4f}, {low_high[1]:.4f}]" if low_high else "-"
        details = entry["details"]
        settings = []
        if "steps" in details:
            settings.append(f"{details['steps']} steps x {details['chains']} chains")
        if "timesteps" in details:
            settings.append(f"{details['timesteps']} timesteps, {details['draws']} x_t draw each")
        if details.get("gap") is not None:
            settings.append(f"gap {details['gap']:.3f} nats on {details['examples']} simulated examples")
        if details.get("bdmc_gap") is not None:
            settings.append(f"BDMC gap {details['bdmc_gap']:.3f} nats")
        if details.get("acceptance") is not None:
            settings.append(f"acceptance {details['acceptance']:.2f}")
        settings.append(f"{details.get('seconds', 0):.1f} s")
        table.add_row(
            entry["method"], entry["kind"], f"{entry['bits_per_dim']:.4f}", interval,
            f"{entry['value']:.2f}", ", ".join(settings),
        )  # fmt: skip
        if entry.get("label") and entry["label"] not in notes:
            notes.append(entry["label"])
        if details.get("sigma_warning") and f"warning: {details['sigma_warning']}" not in notes:
            notes.append(f"warning: {details['sigma_warning']}")
    console = console_for(unclipped(table, whole=("method", "kind")))
    console.print(table)
    console.print(
        "[dim]intervals: 95% over the examples (bound, estimate); a bracket's ends are reverse and "
        "forward AIS on data simulated from the model[/dim]"
    )
    for note in notes:
        console.print(note if note.startswith("warning: ") else f"note: {note}")
