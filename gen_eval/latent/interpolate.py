"""Interpolation between latents: lerp and slerp paths, image strips, and path smoothness.

A decoder that is smooth along a path gives evenly spaced images in feature space; a jump (one
step much longer than the others) marks a hole or a fold in the latent space. Mid-path images
that lie far from every reference sample, farther than the path's end points do, show that the
model decodes the space between its samples into things that are not data.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import torch

from gen_eval.errors import GenEvalError

if TYPE_CHECKING:
    import pandas as pd
    import plotly.graph_objects as go

Method = Literal["lerp", "slerp"]


def lerp(z0: torch.Tensor, z1: torch.Tensor, t: torch.Tensor | float) -> torch.Tensor:
    """Linear interpolation ``(1 - t) z0 + t z1``.

    ``t`` is a float or a tensor broadcastable against the latents with a trailing axis of 1:
    (N, 1) for one t per row, (T, 1, 1) for T points along P paths of (P, D) end points.
    """
    t = torch.as_tensor(t, dtype=z0.dtype, device=z0.device)
    return (1 - t) * z0 + t * z1


def slerp(z0: torch.Tensor, z1: torch.Tensor, t: torch.Tensor | float) -> torch.Tensor:
    """Spherical interpolation along the great circle through z0 and z1 (last axis = latent).

    Norms are interpolated linearly, so equal-norm end points keep their norm all along the
    path; a Gaussian prior puts its mass near that sphere, which is why slerp is the default
    for Gaussian latents (White 2016). Nearly parallel end points fall back to lerp. ``t`` as
    for :func:`lerp`.
    """
    t = torch.as_tensor(t, dtype=z0.dtype, device=z0.device)
    n0, n1 = z0.norm(dim=-1, keepdim=True), z1.norm(dim=-1, keepdim=True)
    u0, u1 = z0 / n0.clamp_min(1e-12), z1 / n1.clamp_min(1e-12)
    cos = (u0 * u1).sum(dim=-1, keepdim=True).clamp(-1.0, 1.0)
    omega = torch.arccos(cos)
    sin = torch.sin(omega)
    parallel = sin.abs() < 1e-6
    safe = torch.where(parallel, torch.ones_like(sin), sin)
    direction = (torch.sin((1 - t) * omega) * u0 + torch.sin(t * omega) * u1) / safe
    direction = torch.where(parallel, (1 - t) * u0 + t * u1, direction)
    return direction * ((1 - t) * n0 + t * n1)


def interpolate(z0: torch.Tensor, z1: torch.Tensor, steps: int = 8, method: Method = "slerp") -> torch.Tensor:
    """``steps`` latents from z0 to z1 inclusive, shape (steps, D) (or (steps, P, D) for P pairs)."""
    if steps < 2:
        raise GenEvalError(f"an interpolation needs at least 2 steps; got {steps}")
    if method not in ("lerp", "slerp"):
        raise GenEvalError(f"interpolation method must be 'lerp' or 'slerp'; got {method!r}")
    t = torch.linspace(0, 1, steps, dtype=z0.dtype).reshape(steps, *(1,) * z0.ndim)
    return (lerp if method == "lerp" else slerp)(z0, z1, t)


def decode_images(model: Any, z: torch.Tensor, batch_size: int = 256) -> np.ndarray:
    """``model.decode`` in batches, brought to uint8 NCHW images or float32 (N, D) vectors."""
    from gen_eval.sources.python import canonical_samples

    name = f"{type(model).__name__}.decode"
    parts = []
    with torch.inference_mode():
        for start in range(0, len(z), batch_size):
            chunk = z[start : start + batch_size]
            parts.append(canonical_samples(model.decode(chunk), name, len(chunk))[0])
    return np.concatenate(parts)


def decoded_kind(model: Any) -> str:
    """The data kind of what ``model.decode`` returns (``"image"``, ``"vector"``...), from one sample."""
    from gen_eval.sources.python import canonical_samples

    with torch.inference_mode():
        z = torch.zeros(1, model.latent_dim)
        return canonical_samples(model.decode(z), f"{type(model).__name__}.decode", 1)[1]


def interpolation_strip(
    model: Any, z0: torch.Tensor, z1: torch.Tensor, steps: int = 8, method: Method = "slerp"
) -> np.ndarray:
    """Decoded images along the path from z0 to z1: (steps, C, H, W) uint8 (or (steps, D) vectors)."""
    return decode_images(model, interpolate(z0.float(), z1.float(), steps, method))


@dataclass
class Smoothness:
    """Step lengths along many interpolation paths, in feature space.

    Attributes
    ----------
    steps : np.ndarray
        (P, S - 1) feature distance between consecutive images of each of P paths.
    ratio : np.ndarray
        (P,) largest step / mean step per path: 1 for perfectly even steps, S - 1 for a path
        whose whole change happens in one step.
    mid_distance, end_distance : np.ndarray or None
        (P,) distance from the path's middle image to its nearest reference sample, and the mean
        of that distance over the two end images (None without reference features).
    method : str
        ``"lerp"`` or ``"slerp"``.
    """

    steps: np.ndarray
    ratio: np.ndarray
    mid_distance: np.ndarray | None
    end_distance: np.ndarray | None
    method: str
    notes: list[str] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        """Median and 90th percentile of the ratio, and the mid-path to end-point distance ratio."""
        out: dict[str, Any] = {
            "num_paths": len(self.ratio),
            "num_steps": int(self.steps.shape[1] + 1),
            "method": self.method,
            "step_ratio_median": float(np.median(self.ratio)),
            "step_ratio_p90": float(np.quantile(self.ratio, 0.9)),
            "step_ratio_max": float(self.ratio.max()),
        }
        if self.mid_distance is not None and self.end_distance is not None:
            out["mid_to_end_distance_ratio"] = float(
                np.median(self.mid_distance / np.maximum(self.end_distance, 1e-12))
            )
        return out

    def to_frame(self) -> pd.DataFrame:
        """One row per path: ratio, mean and max step, and the distances to the data."""
        import pandas as pd

        frame = pd.DataFrame(
            {"ratio": self.ratio, "mean_step": self.steps.mean(axis=1), "max_step": self.steps.max(axis=1)}
        )
        if self.mid_distance is not None:
            frame["mid_distance"], frame["end_distance"] = self.mid_distance, self.end_distance
        return frame

    def figure(self) -> go.Figure:
        """Histogram of the per-path ratio next to the mean step profile along the path."""
        import plotly.graph_objects as go
        from plotly.subplots import make_subplots

        fig = make_subplots(
            rows=1, cols=2, subplot_titles=("largest / mean step per path", "step length along the path")
        )
        fig.add_trace(go.Histogram(x=self.ratio, nbinsx=30, name="paths"), row=1, col=1)
        profile = self.steps / np.maximum(self.steps.mean(axis=1, keepdims=True), 1e-12)
        x = np.arange(1, self.steps.shape[1] + 1)
        fig.add_trace(
            go.Scatter(x=x, y=profile.mean(axis=0), mode="lines+markers", name="mean"), row=1, col=2
        )
        fig.add_trace(
            go.Scatter(x=x, y=profile.max(axis=0), mode="lines", name="max", line={"dash": "dot"}),
            row=1,
            col=2,
        )
        fig.update_xaxes(title_text="ratio (1 = even steps)", row=1, col=1)
        fig.update_xaxes(title_text="step", row=1, col=2)
        fig.update_yaxes(title_text="step / path's mean step", row=1, col=2)
        fig.update_layout(
            title=f"Interpolation smoothness ({self.method}, {len(self.ratio)} paths)", height=380
        )
        return fig


def path_smoothness(
    model: Any,
    featurize: Any,
    *,
    num_pairs: int = 64,
    steps: int = 16,
    method: Method = "slerp",
    reference_features: torch.Tensor | None = None,
    random_state: int = 0,
) -> Smoothness:
    """Feature distances between consecutive decoded images along random latent paths.

    Parameters
    ----------
    model : object
        Has ``decode(z)`` and ``latent_dim``; end points are drawn from N(0, I).
    featurize : callable
        Decoded samples (uint8 images or float vectors, as :func:`decode_images` returns) to an
        (N, F) float tensor; distances are Euclidean in that space.
    num_pairs, steps : int
        Number of paths and images per path (end points included).
    method : {"lerp", "slerp"}
        Path shape.
    reference_features : torch.Tensor, optional
        (M, F) features of real data; gives the mid-path and end-point distances to the data.
    random_state : int
        Seed of the end points.

    Returns
    -------
    Smoothness
    """
    generator = torch.Generator().manual_seed(random_state)
    z0 = torch.randn(num_pairs, model.latent_dim, generator=generator)
    z1 = torch.randn(num_pairs, model.latent_dim, generator=generator)
    path = interpolate(z0, z1, steps, method)  # (S, P, D)
    images = decode_images(model, path.reshape(-1, model.latent_dim))
    feats = torch.as_tensor(featurize(images), dtype=torch.float64).reshape(steps, num_pairs, -1)
    step_lengths = (feats[1:] - feats[:-1]).norm(dim=-1).T.numpy()  # (P, S - 1)
    ratio = step_lengths.max(axis=1) / np.maximum(step_lengths.mean(axis=1), 1e-12)
    mid = end = None
    if reference_features is not None:
        ref = reference_features.to(torch.float64)
        nearest = torch.cdist(feats[[0, steps // 2, steps - 1]].reshape(-1, feats.shape[-1]), ref).min(dim=1)
        distances = nearest.values.reshape(3, num_pairs).numpy()
        mid, end = distances[1], (distances[0] + distances[2]) / 2
    return Smoothness(step_lengths, ratio, mid, end, method)
