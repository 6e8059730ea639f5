"""The scorecard's "likelihood by method" section: every method each digits model allows, side by side.

Exact values, ELBO, IWAE-k, AIS at several step counts and the BDMC bracket, so that a reader sees
how the bounds tighten and where the truth lies. GANs get AIS under Gaussian observation noise,
labelled so. Costs grow with the AIS steps: the defaults keep a model to about a minute on a CPU.
"""

from __future__ import annotations

import math
from typing import Any

DEFAULT_MODELS = (
    "baseline",
    "pixelcnn",
    "realnvp",
    "vae",
    "beta_vae",
    "ddpm",
    "dcgan",
    "wgan_gp",
    "rbm",
    "rbm_large",
)


def likelihood_rows(
    model: Any,
    x: Any,
    *,
    ais_steps: tuple[int, ...] = (100, 500),
    chains: int = 4,
    iwae_k: tuple[int, ...] = (10, 100),
    bdmc_examples: int = 16,
    seed: int = 0,
) -> list[dict[str, Any]]:
    """One row per method and setting: method, kind, bits/dim, interval (bits/dim), label.

    Parameters
    ----------
    model : object
        A loaded reference model.
    x : torch.Tensor
        Test images (uint8).
    ais_steps : tuple of int
        Schedules AIS runs at (beside a stored result, those shorter than its); BDMC runs at the first.
    chains : int
        AIS chains per image.
    iwae_k : tuple of int
        Importance samples of each IWAE row.
    bdmc_examples : int
        Images BDMC simulates from the model.
    seed : int
        Seed of every draw.

    Returns
    -------
    list of dict
    """
    from gen_eval.likelihood.methods import Settings, allowed, data_levels, run
    from gen_eval.likelihood.observation import can_anneal, has_own_likelihood, observation_for

    levels = data_levels(x, model)
    dims = math.prod(x.shape[1:])
    stored = _stored(model)
    if stored is not None:
        # The stored run (all test images) is the long schedule: rerun only the shorter ones here,
        # since a GAN's autograd AIS costs about 5x the VAE's hand-written gradient per step.
        ais_steps = tuple(s for s in ais_steps if s < stored["steps"]) or ais_steps[:1]
    runs: list[tuple[str, Settings]] = []
    methods = allowed(model)
    if "exact" in methods:
        # The truth is in the table already: AIS and BDMC under observation noise (a flow's decoder)
        # would only estimate it, at many CPU minutes per model (realnvp: over 30 at 500 steps).
        methods = [m for m in methods if m not in ("ais", "bdmc")]
    for method in methods:
        if method == "iwae":
            runs += [("iwae", Settings(iwae_k=k, seed=seed)) for k in iwae_k]
        elif method == "ais":
            runs += [("ais", Settings(steps=s, chains=chains, seed=seed)) for s in ais_steps]
        elif method == "bdmc":
            runs.append(
                ("bdmc", Settings(steps=ais_steps[0], chains=chains, seed=seed, bdmc_examples=bdmc_examples))
            )
        else:
            runs.append((method, Settings(seed=seed)))
    observation = None
    if can_anneal(model) and ("ais" in methods or "bdmc" in methods):  # sigma is chosen by AIS runs
        validation = None
        if not has_own_likelihood(model) and stored is None:
            from reference_models.common import load_training_data

            validation = load_training_data(model.dataset).val[:64]  # sigma is chosen off the test data
        # A stored result already chose sigma on validation images: the rows here use the same one.
        sigma = None if stored is None else stored["observation"].get("sigma")
        observation = observation_for(model, validation, levels, sigma=sigma, seed=seed)
    rows = []
    if stored is not None:
        rows.append(_stored_row(stored))
    for method, settings in runs:
        result = run(method, model, x, settings, levels=levels, observation=observation)
        bpd, interval = result.bits_per_dim(dims)
        setting = (
            f"{result.details['steps']} steps x {result.details['chains']} chains"
            if "steps" in result.details
            else ""
        )
        if result.kind == "bracket":
            setting += (
                f", gap {result.details['gap']:.2f} nats on {result.details['examples']} simulated images"
            )
        if "timesteps" in result.details:  # a diffusion model's variational bound
            setting = f"{result.details['timesteps']} timesteps, {result.details['draws']} x_t draw each"
        rows.append({"method": result.method, "kind": result.kind, "bits_per_dim": bpd, "interval": interval,
                     "setting": setting, "label": result.label,
                     "warning": result.details.get("sigma_warning")})  # fmt: skip
    if all(hasattr(model, a) for a in ("weights", "visible_bias", "hidden_bias", "log_partition")):
        rows += _rbm_rows(model, x, ais_steps, seed)
    return rows


def _stored(model: Any) -> dict[str, Any] | None:
    """The model's current stored AIS result (``NAME.ais.json``), or None."""
    from gen_eval.errors import GenEvalError
    from gen_eval.likelihood.stored import load_stored

    try:
        return load_stored(model.name) if isinstance(getattr(model, "name", None), str) else None
    except (GenEvalError, KeyError):  # stale or not a bundled model: the fresh rows stand alone
        return None


def _stored_row(record: dict[str, Any]) -> dict[str, Any]:
    """The stored AIS result on the whole test split, as the demo leaderboard shows it."""
    setting = f"{record['steps']} steps x {record['chains']} chains on all {record['examples']} test images (stored)"
    if record.get("bdmc"):
        bdmc = record["bdmc"]
        setting += f", BDMC gap {bdmc['gap']:.2f} nats on {bdmc['examples']} simulated images"
    interval = record.get("bits_per_dim_interval")
    return {"method": "ais (stored)", "kind": "estimate", "bits_per_dim": record["bits_per_dim"],
            "interval": tuple(interval) if interval else None, "setting": setting,
            "label": record["label"], "warning": record["observation"].get("warning")}  # fmt: skip


def _rbm_rows(
    model: Any, x: Any, ais_steps: tuple[int, ...], seed: int, reverse_burn_in: int = 10000
) -> list[dict[str, Any]]:
    """An RBM's log Z by AIS at each schedule (forward and reverse), beside its own log_prob's row."""
    import torch

    from gen_eval.likelihood.rbm_ais import rbm_log_likelihood, rbm_log_partition
    from reference_models.common import load_training_data, to_level_indices

    train = to_level_indices(load_training_data(model.dataset).train, model.levels).reshape(-1, x[0].numel())
    levels = to_level_indices(x, model.levels).reshape(len(x), -1)
    rows = []
    for steps in ais_steps:
        generator = torch.Generator().manual_seed(seed)
        log_z = rbm_log_partition(
            model, steps=steps, runs=100, generator=generator, data=train, reverse_burn_in=reverse_burn_in
        )
        result = rbm_log_likelihood(model, levels, log_z)
        bpd, interval = result.bits_per_dim(x[0].numel())
        setting = f"log Z by AIS, {steps} steps x 100 runs each way: forward {log_z.lower:.2f}, reverse {log_z.upper:.2f}"
        if log_z.kind != "bracket":  # reverse chains from Gibbs runs, not exact samples: no bound
            setting += f" (reverse from {log_z.details['reverse_start']}: approximate samples, so not an upper bound)"
        rows.append({"method": "rbm-ais", "kind": result.kind, "bits_per_dim": bpd, "interval": interval,
                     "setting": setting, "label": None})  # fmt: skip
    return rows


def likelihood_section(
    models: tuple[str, ...] = DEFAULT_MODELS, num_examples: int = 64, **options: Any
) -> list[str]:
    """Markdown lines of the section: a table per model on the first ``num_examples`` test digits."""
    import torch

    from gen_eval.datasets import get_dataset
    from reference_models import load_model

    x = torch.from_numpy(get_dataset("digits").read("test", 0, num_examples)[0].copy())
    lines = [
        "",
        "## Likelihood by method (digits)",
        "",
        f"On the first {num_examples} test images (`gen-eval likelihood MODEL --data digits:test` for any "
        "setting). Kinds: exact; bound (ELBO, IWAE-k: the true bits/dim is at most this); estimate (AIS: a "
        "stochastic bound that tightens with steps); bracket (BDMC on images simulated from the model: reverse "
        "and forward AIS on either side of the truth).",
    ]
    for name in models:
        rows = likelihood_rows(load_model(name), x, **options)
        lines += [
            "",
            f"**{name}**",
            "",
            "| method | kind | bits/dim | interval | setting |",
            "| --- | --- | --- | --- | --- |",
        ]
        for row in rows:
            interval = f"[{row['interval'][0]:.3f}, {row['interval'][1]:.3f}]" if row["interval"] else "-"
            lines.append(
                f"| {row['method']} | {row['kind']} | {row['bits_per_dim']:.3f} | {interval} | {row['setting']} |"
            )
        labels = sorted({row["label"] for row in rows if row["label"]})
        lines += [f"\n{label}." for label in labels]
        warnings = sorted({row["warning"] for row in rows if row.get("warning")})
        lines += [f"\nWarning: {warning}." for warning in warnings]
    return lines
