"""Single-latent traversals and latent arithmetic.

Traversals vary one latent dimension over a range (default [-3, 3], the bulk of a standard
normal prior) with all others fixed, for the most active dimensions. Activity is ranked by the
first measure the model allows:

- ``"kl"``: mean KL(q(z_d | x) || N(0, 1)) over real images (VAEs with ``kl_per_dimension``);
  dimensions with KL near 0 are unused ("posterior collapse");
- ``"encoder_variance"``: variance of the encoder means over real images (any ``encode``);
- ``"decoder_sensitivity"``: mean feature distance between decoding z with z_d = -2 and with
  z_d = +2 (decode-only models such as GANs).

Latent arithmetic: the mean latent of the real images of class b minus that of class a, added
to the latents of class-a images, decoded (for example turning 3s into 8s).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from gen_eval.errors import GenEvalError
from gen_eval.latent.interpolate import decode_images


@dataclass
class DimensionRanking:
    """Latent dimensions ordered from most to least active, with the score behind the order."""

    order: np.ndarray
    scores: np.ndarray
    method: str

    def top(self, k: int) -> list[int]:
        return [int(d) for d in self.order[:k]]

    def figure(self) -> Any:
        """Bar chart of the score per dimension, in rank order."""
        import plotly.graph_objects as go

        labels = [f"z{d}" for d in self.order]
        fig = go.Figure(go.Bar(x=labels, y=self.scores[self.order]))
        fig.update_layout(
            title=f"Latent dimension activity ({self.method})",
            xaxis_title="dimension",
            yaxis_title=self.method,
        )
        return fig


def rank_dimensions(
    model: Any,
    images: torch.Tensor | None = None,
    featurize: Callable[[np.ndarray], torch.Tensor] | None = None,
    num_probes: int = 64,
    random_state: int = 0,
) -> DimensionRanking:
    """Order the latent dimensions by activity (see the module docstring for the three measures).

    Parameters
    ----------
    model : object
        Has ``decode`` and ``latent_dim``; ``kl_per_dimension`` and ``encode`` are used if present.
    images : torch.Tensor, optional
        uint8 real images for the encoder-based measures.
    featurize : callable, optional
        Decoded samples -> (N, F) features, for ``"decoder_sensitivity"`` (default: raw values).
    num_probes, random_state : int
        Base latents drawn for ``"decoder_sensitivity"``, and their seed.

    Returns
    -------
    DimensionRanking
    """
    with torch.inference_mode():
        if images is not None and callable(getattr(model, "kl_per_dimension", None)):
            scores, method = torch.as_tensor(model.kl_per_dimension(images)).double(), "kl"
            if scores.ndim == 2:
                scores = scores.mean(dim=0)
        elif images is not None and callable(getattr(model, "encode", None)):
            scores, method = torch.as_tensor(model.encode(images)).double().var(dim=0), "encoder_variance"
        else:
            featurize = featurize or (lambda x: torch.as_tensor(x, dtype=torch.float64).reshape(len(x), -1))
            generator = torch.Generator().manual_seed(random_state)
            base = torch.randn(num_probes, model.latent_dim, generator=generator)
            scores = torch.zeros(model.latent_dim, dtype=torch.float64)
            for d in range(model.latent_dim):
                low, high = base.clone(), base.clone()
                low[:, d], high[:, d] = -2.0, 2.0
                f = torch.as_tensor(
                    featurize(decode_images(model, torch.cat([low, high]))), dtype=torch.float64
                )
                scores[d] = (f[:num_probes] - f[num_probes:]).norm(dim=1).mean()
            method = "decoder_sensitivity"
    scores_np = scores.numpy()
    return DimensionRanking(np.argsort(-scores_np, kind="stable"), scores_np, method)


def traversal_grid(
    model: Any,
    dims: list[int],
    values: np.ndarray | list[float] | None = None,
    z: torch.Tensor | None = None,
) -> np.ndarray:
    """Decoded images with z_d set to each of ``values`` in turn: (len(dims), len(values), C, H, W) uint8.

    ``z`` is the fixed base latent (default: zeros, the prior's mode); ``values`` default to
    seven points on [-3, 3].
    """
    values = np.linspace(-3, 3, 7) if values is None else np.asarray(values, dtype=np.float64)
    base = torch.zeros(model.latent_dim) if z is None else torch.as_tensor(z, dtype=torch.float32).reshape(-1)
    if len(base) != model.latent_dim:
        raise GenEvalError(
            f"traversal base latent has {len(base)} entries; the model's latent_dim is {model.latent_dim}"
        )
    bad = [d for d in dims if not 0 <= d < model.latent_dim]
    if bad:
        raise GenEvalError(f"latent dimensions {bad} out of range [0, {model.latent_dim - 1}]")
    latents = base.repeat(len(dims) * len(values), 1)
    for row, d in enumerate(dims):
        latents[row * len(values) : (row + 1) * len(values), d] = torch.as_tensor(values, dtype=torch.float32)
    images = decode_images(model, latents)
    return images.reshape(len(dims), len(values), *images.shape[1:])


def latent_arithmetic(
    model: Any,
    images: torch.Tensor,
    labels: np.ndarray,
    source: int,
    target: int,
    num_examples: int = 8,
) -> tuple[np.ndarray, torch.Tensor]:
    """Move class-``source`` images towards class ``target`` by the difference of class-mean latents.

    Returns
    -------
    grid : np.ndarray
        (3, num_examples, C, H, W) uint8: the originals, their reconstructions, and the decoded
        ``encode(x) - mean_z(source) + mean_z(target)``.
    shift : torch.Tensor
        The latent difference ``mean_z(target) - mean_z(source)``.
    """
    if not callable(getattr(model, "encode", None)):
        raise GenEvalError(f"latent arithmetic needs encode(x); {type(model).__name__} has none")
    labels = np.asarray(labels)
    for cls in (source, target):
        if (labels == cls).sum() < 2:
            raise GenEvalError(
                f"latent arithmetic needs at least 2 real images of class {cls}; found {(labels == cls).sum()}"
            )
    with torch.inference_mode():
        z = torch.as_tensor(model.encode(images)).float()
    source_rows = np.flatnonzero(labels == source)
    shift = z[labels == target].mean(dim=0) - z[source_rows].mean(dim=0)
    chosen = source_rows[:num_examples]
    moved = decode_images(model, torch.cat([z[chosen], z[chosen] + shift]))
    originals = images[chosen].numpy()
    if originals.shape[1:] != moved.shape[1:]:
        raise GenEvalError(f"decode returns {moved.shape[1:]} but the images are {originals.shape[1:]}")
    return np.stack([originals, moved[: len(chosen)], moved[len(chosen) :]]), shift
