"""2-D embeddings (PCA, t-SNE, UMAP) of latents or features, cached on disk.

Real and generated points are embedded together, so their overlap in the picture means
something (two separate embeddings would place them in unrelated coordinates). UMAP and t-SNE
take seconds to minutes, so coordinates are cached under a key made of the points' bytes, the
method and its parameters; a fixed ``random_state`` makes reruns agree.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from gen_eval.errors import GenEvalError

METHODS = ("pca", "tsne", "umap")


def _key(points: np.ndarray, method: str, params: dict[str, Any]) -> str:
    digest = hashlib.sha256(np.ascontiguousarray(points, dtype=np.float32).tobytes())
    digest.update(json.dumps({"shape": points.shape, "method": method, **params}, sort_keys=True).encode())
    return digest.hexdigest()[:32]


def _compute(points: np.ndarray, method: str, random_state: int, params: dict[str, Any]) -> np.ndarray:
    if method == "pca":
        from sklearn.decomposition import PCA

        return PCA(n_components=2, random_state=random_state).fit_transform(points)
    if method == "tsne":
        from sklearn.manifold import TSNE

        perplexity = min(params.get("perplexity", 30.0), (len(points) - 1) / 3)
        return TSNE(
            n_components=2, perplexity=perplexity, init="pca", random_state=random_state
        ).fit_transform(points)
    import warnings

    with warnings.catch_warnings():  # umap warns that random_state disables parallelism: intended
        warnings.simplefilter("ignore")
        from umap import UMAP

        neighbours = int(min(params.get("n_neighbors", 15), len(points) - 1))
        return UMAP(n_components=2, n_neighbors=neighbours, random_state=random_state).fit_transform(points)


def embed(
    points: np.ndarray,
    method: str = "pca",
    random_state: int = 0,
    cache_dir: str | Path | None = None,
    **params: Any,
) -> np.ndarray:
    """(N, 2) coordinates of ``points`` (N, D) by PCA, t-SNE or UMAP.

    Parameters
    ----------
    points : np.ndarray
        (N, D) latents or features; embed real and generated points in one call.
    method : {"pca", "tsne", "umap"}
        PCA is exact and instant; t-SNE (``perplexity``, default 30) and UMAP (``n_neighbors``,
        default 15) show local structure and take longer.
    random_state : int
        Seed; part of the cache key.
    cache_dir : path, optional
        Folder for ``embedding-<key>.npy`` files; a hit returns the stored coordinates.
    **params
        Passed to the method (``perplexity``, ``n_neighbors``); part of the cache key.

    Returns
    -------
    np.ndarray
        (N, 2) float32.
    """
    if method not in METHODS:
        raise GenEvalError(f"embedding method must be one of {', '.join(METHODS)}; got {method!r}")
    points = np.asarray(points, dtype=np.float32)
    if points.ndim != 2 or len(points) < 5:
        raise GenEvalError(f"an embedding needs (N, D) points with N >= 5; got shape {points.shape}")
    if not np.isfinite(points).all():
        raise GenEvalError("an embedding's points contain NaN or inf")
    path = None
    if cache_dir is not None:
        path = (
            Path(cache_dir)
            / f"embedding-{_key(points, method, {'random_state': random_state, **params})}.npy"
        )
        if path.is_file():
            return np.load(path, allow_pickle=False)
    coords = _compute(points, method, random_state, params).astype(np.float32)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=path.parent, suffix=".npy.tmp")
        with os.fdopen(handle, "wb") as stream:
            np.save(stream, coords, allow_pickle=False)
        os.replace(temporary, path)
    return coords


def embedding_figure(
    coords: np.ndarray, groups: np.ndarray, colours: np.ndarray | None = None, title: str = "Embedding"
) -> Any:
    """Scatter of the coordinates: one trace per group ("real", "generated"), coloured by label."""
    import plotly.graph_objects as go

    fig = go.Figure()
    symbols = {"real": "circle", "generated": "x"}
    for group in dict.fromkeys(groups.tolist()):
        rows = groups == group
        marker: dict[str, Any] = {"size": 5, "symbol": symbols.get(group, "circle"), "opacity": 0.75}
        if colours is not None and group == "real":
            low, high = float(np.nanmin(colours)), float(np.nanmax(colours))
            marker.update(
                color=colours[rows], colorscale="Turbo", cmin=low, cmax=high, colorbar={"title": "label"}
            )
        elif colours is not None:
            marker["color"] = "black"
        fig.add_trace(
            go.Scattergl(x=coords[rows, 0], y=coords[rows, 1], mode="markers", name=str(group), marker=marker)
        )
    fig.update_layout(title=title, height=520, legend={"orientation": "h"})
    return fig
