"""The six disentanglement metrics of a model's encoder on the ``shapes`` factors, with figures.

A thin layer over :mod:`gen_eval.latent.disentangle` for ``gen-eval latent`` and the dashboard:
the encoder's code of rendered ``shapes`` images is scored, and the result comes back as plain
numbers plus two plotly figures (the scores, and DCI's code x factor importance matrix).
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch

from gen_eval.errors import GenEvalError

# Smaller than disentanglement_lib's 10,000 + 5,000 for the metrics that render images for every
# sampled batch (BetaVAE, FactorVAE: ~2.9M renders, 16 min, at the defaults) or fit boosted trees (DCI).
DISENTANGLEMENT_OPTIONS = {
    "beta_vae": {"num_train": 500, "num_eval": 250},
    "factor_vae": {"num_train": 500, "num_eval": 250, "num_variance_estimate": 5000},
    "dci": {"num_train": 3000, "num_test": 1500, "n_jobs": 2},
}
HEADLINES = {
    "beta_vae": ("eval_accuracy", "BetaVAE"),
    "factor_vae": ("eval_accuracy", "FactorVAE"),
    "mig": ("mig", "MIG"),
    "dci": ("disentanglement", "DCI disentanglement"),
    "sap": ("sap", "SAP"),
    "modularity": ("modularity", "modularity"),
}


def shapes_disentanglement(
    model: Any, num_train: int = 10_000, random_state: int = 0, options: dict | None = None
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Score ``model.encode`` on rendered ``shapes`` factors; returns (summary, figures).

    Parameters
    ----------
    model : object
        Has ``encode`` taking uint8 (N, 1, 64, 64) ``shapes`` images.
    num_train : int
        Samples for MIG, SAP and modularity (disentanglement_lib: 10,000; about 2 minutes on
        2 cores in all); BetaVAE, FactorVAE and DCI use :data:`DISENTANGLEMENT_OPTIONS`.
    random_state : int
        Seed.
    options : dict, optional
        Per-metric overrides, merged over :data:`DISENTANGLEMENT_OPTIONS`.

    Returns
    -------
    summary : dict
        Headline score per metric, DCI completeness and informativeness, the importance matrix,
        the factor names and the seconds taken.
    figures : dict
        ``"disentanglement"`` (bar chart) and ``"dci_importance"`` (heat map).
    """
    from gen_eval.datasets import shapes
    from gen_eval.latent.disentangle import evaluate_disentanglement

    if not callable(getattr(model, "encode", None)) or getattr(model, "dataset", None) != "shapes":
        raise GenEvalError(
            "disentanglement needs a model with encode(x) trained on shapes (e.g. ref:beta_vae_shapes)"
        )

    def represent(factors: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return torch.as_tensor(model.encode(torch.from_numpy(shapes.render_shapes(factors)))).numpy()

    merged = {
        name: {**DISENTANGLEMENT_OPTIONS.get(name, {}), **(options or {}).get(name, {})} for name in HEADLINES
    }
    started = time.perf_counter()
    found = evaluate_disentanglement(
        represent, shapes.FACTOR_SIZES, num_train=num_train, random_state=random_state, options=merged
    )
    scores = {label: float(found[name][key]) for name, (key, label) in HEADLINES.items()}
    importance = np.asarray(found["dci"]["importance_matrix"], dtype=float)
    factor_names = list(shapes.FACTOR_NAMES)
    summary = {
        "scores": scores,
        "dci_completeness": float(found["dci"]["completeness"]),
        "dci_informativeness": float(found["dci"].get("informativeness_test", float("nan"))),
        "importance_matrix": importance.tolist(),
        "factors": factor_names,
        "num_train": num_train,
        "seconds": round(time.perf_counter() - started, 1),
    }
    return summary, {
        "disentanglement": _scores_figure(scores),
        "dci_importance": importance_figure(importance, factor_names),
    }


def _scores_figure(scores: dict[str, float]) -> Any:
    import plotly.graph_objects as go

    fig = go.Figure(
        go.Bar(x=list(scores), y=list(scores.values()), text=[f"{v:.3f}" for v in scores.values()])
    )
    fig.update_layout(title="Disentanglement scores (shapes factors)", yaxis={"range": [0, 1]}, height=360)
    return fig


def importance_figure(importance: np.ndarray, factor_names: list[str]) -> Any:
    """Heat map of DCI's (codes x factors) importance matrix: one bright cell per row is disentangled."""
    import plotly.graph_objects as go

    fig = go.Figure(
        go.Heatmap(
            z=importance,
            x=factor_names,
            y=[f"z{i}" for i in range(len(importance))],
            colorscale="Viridis",
            colorbar={"title": "importance"},
        )
    )
    fig.update_layout(
        title="DCI importance: which code predicts which factor", height=420, yaxis={"autorange": "reversed"}
    )
    return fig
