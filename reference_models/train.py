"""Train a bundled reference model reproducibly on the CPU and write its checkpoint.

``train_model("vae")`` is what ``gen-eval train vae`` runs: it loads the train split (10% held
out for validation and early stopping), calls the model file's ``fit``, and writes
``NAME.safetensors`` + ``NAME.json`` (settings, seed, time, validation scores) + ``NAME.log.jsonl``.

A model file provides ``DEFAULTS`` (hyperparameters, including ``steps`` or ``epochs``),
``build(hparams, dataset) -> nn.Module`` and
``fit(hparams, data, *, generator, log) -> (model, summary)``.
"""

from __future__ import annotations

import importlib
import platform
from pathlib import Path
from typing import Any

import torch

from gen_eval.reproducible import reproducible
from reference_models import CHECKPOINT_DIR, full_config, get_entry
from reference_models.common import Timer, TrainLog, load_training_data, save_checkpoint


def train_model(
    name: str,
    *,
    steps: int | None = None,
    epochs: int | None = None,
    seed: int = 0,
    directory: Path | None = None,
    show_progress: bool = True,
    overrides: dict[str, Any] | None = None,
) -> tuple[Any, dict[str, Any]]:
    """Train reference model ``name`` and save it.

    Parameters
    ----------
    name : str
        A registry name (``gen-eval models``).
    steps, epochs : int, optional
        Override the model's default number of optimiser steps or epochs (whichever it uses).
    seed : int
        Seeds initialisation, data order and every random draw.
    directory : Path, optional
        Where to write the checkpoint (default: the shipped ``checkpoints/``).
    show_progress : bool
        Show a progress bar.
    overrides : dict, optional
        Other hyperparameters to change (tests use tiny networks).

    Returns
    -------
    model, config : the trained model and the JSON config written beside it.
    """
    entry = get_entry(name)
    module = importlib.import_module(entry.module)
    hparams = full_config(entry)
    hparams.update(overrides or {})
    for key, value in (("steps", steps), ("epochs", epochs)):
        if value is not None:
            if key not in hparams:
                raise ValueError(f"{name} is trained in {'epochs' if key == 'steps' else 'steps'}, not {key}")
            hparams[key] = int(value)
    data = load_training_data(entry.dataset, hparams.get("keep_labels"), hparams.get("max_items"))
    log = TrainLog(description=f"train {name}", show_progress=show_progress)
    threads = int(hparams.get("threads", 1))
    try:
        with Timer() as timer, reproducible(seed, threads) as generator:
            model, summary = module.fit(hparams, data, generator=generator, log=log)
    finally:
        log.close()
    config = {
        "name": name,
        "module": entry.module,
        "family": entry.family,
        "dataset": entry.dataset,
        "description": entry.description,
        "faulty": entry.faulty,
        "hyperparameters": hparams,
        "seed": seed,
        "train_seconds": round(timer.seconds, 1),
        "train_items": len(data.train),
        "val_items": len(data.val),
        "parameters": sum(t.numel() for t in model.state_dict().values()),
        "summary": summary,
        "torch": torch.__version__,
        "machine": f"{platform.machine()}, {threads} thread(s)",
    }
    save_checkpoint(model, name, config, log, directory or CHECKPOINT_DIR)
    model.eval()
    model.name, model.family, model.dataset, model.faulty = name, entry.family, entry.dataset, entry.faulty
    return model, config
