"""Perceptual path length (Karras et al. 2019, StyleGAN, section 3.2).

For z0, z1 ~ N(0, I) and t ~ U[0, 1] ("full") or t = 0 ("end"), with epsilon = 1e-4:

    d = distance(G(path(t)), G(path(t + epsilon))) / epsilon^2

where ``path`` is slerp in a Gaussian latent space (lerp in a mapped, non-Gaussian one), and
PPL is the mean of d after discarding values below the 1st and above the 99th percentile.
``distance`` is LPIPS-VGG in the paper: :func:`ppl_distance` uses it when its weights are
found locally and otherwise falls back to the squared Euclidean distance between the domain
extractor's features, reported under another name (``ppl_<extractor>_features``): that number
ranks models on the same data but is not comparable with published PPL values.

Images are compared as decoded floats, never quantised to 8 bits: a step of 1e-4 in z moves a
pixel by far less than one grey level.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import torch

from gen_eval.errors import GenEvalError
from gen_eval.latent.interpolate import lerp, slerp

if TYPE_CHECKING:
    import plotly.graph_objects as go

Distance = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
EPSILON = 1e-4


@dataclass
class PathLength:
    """The filtered mean and the raw per-sample values of one PPL estimate."""

    name: str
    value: float
    distances: np.ndarray
    kept: np.ndarray
    sampling: str
    space: str
    epsilon: float
    notes: list[str] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "value": self.value,
            "num_samples": len(self.distances),
            "num_kept": int(self.kept.sum()),
            "sampling": self.sampling,
            "space": self.space,
            "epsilon": self.epsilon,
            "notes": self.notes,
        }

    def figure(self) -> go.Figure:
        """Histogram of the per-sample d (log scale), the kept 1-99% range shaded."""
        import plotly.graph_objects as go

        positive = np.maximum(self.distances, 1e-30)
        fig = go.Figure(go.Histogram(x=np.log10(positive), nbinsx=40, name="d"))
        kept = np.log10(positive[self.kept])
        fig.add_vrect(
            x0=float(kept.min()), x1=float(kept.max()), fillcolor="green", opacity=0.08, line_width=0
        )
        fig.add_vline(x=float(np.log10(max(self.value, 1e-30))), line_dash="dash", annotation_text="PPL")
        fig.update_layout(
            title=f"{self.name} = {self.value:.4g} ({self.sampling}, {self.space}); shaded: kept 1-99%",
            xaxis_title="log10 d",
            yaxis_title="samples",
            height=360,
        )
        return fig


def filtered_mean(values: np.ndarray, low: float = 1.0, high: float = 99.0) -> tuple[float, np.ndarray]:
    """Mean of the values within the [low, high] percentiles (inclusive), and the kept mask."""
    lo, hi = np.percentile(values, [low, high])
    kept = (values >= lo) & (values <= hi)
    return float(values[kept].mean()), kept


def perceptual_path_length(
    decode: Callable[[torch.Tensor], torch.Tensor],
    latent_dim: int,
    distance: Distance,
    *,
    name: str = "ppl",
    num_samples: int = 2000,
    epsilon: float = EPSILON,
    sampling: Literal["full", "end"] = "full",
    space: Literal["z", "w"] = "z",
    batch_size: int = 250,
    random_state: int = 0,
) -> PathLength:
    """Estimate PPL of ``decode`` over ``num_samples`` random path segments.

    Parameters
    ----------
    decode : callable
        Latents (N, latent_dim) to float images (N, C, H, W) in [0, 1] (or vectors).
    latent_dim : int
        Dimension of z.
    distance : callable
        (x0, x1) -> (N,) distances; LPIPS in the paper.
    name : str
        The metric's name in the output (say which distance it is).
    num_samples : int
        Segments drawn (the paper uses 100,000; 2,000 gives about 2-digit precision here).
    epsilon : float
        Segment length in t (1e-4, as in the paper).
    sampling : {"full", "end"}
        t ~ U[0, 1] or t = 0 (path end points only).
    space : {"z", "w"}
        ``"z"``: slerp in a Gaussian latent; ``"w"``: lerp (a mapped space).
    batch_size, random_state : int
        Decoding batch and seed.

    Returns
    -------
    PathLength
    """
    if sampling not in ("full", "end"):
        raise GenEvalError(f"PPL sampling must be 'full' or 'end'; got {sampling!r}")
    if num_samples < 100:
        raise GenEvalError(f"PPL needs at least 100 samples for its 1%/99% filtering; got {num_samples}")
    generator = torch.Generator().manual_seed(random_state)
    path = slerp if space == "z" else lerp
    values = []
    with torch.inference_mode():
        for start in range(0, num_samples, batch_size):
            n = min(batch_size, num_samples - start)
            z0 = torch.randn(n, latent_dim, generator=generator, dtype=torch.float64)
            z1 = torch.randn(n, latent_dim, generator=generator, dtype=torch.float64)
            t = torch.rand(n, 1, generator=generator, dtype=torch.float64)
            if sampling == "end":
                t = torch.zeros_like(t)
            za, zb = path(z0, z1, t), path(z0, z1, t + epsilon)  # one t per row
            d = distance(_as_float(decode(za.float())), _as_float(decode(zb.float())))
            values.append(d.double().cpu() / epsilon**2)
    distances = torch.cat(values).numpy()
    value, kept = filtered_mean(distances)
    return PathLength(name, value, distances, kept, sampling, space, epsilon)


def _as_float(x: Any) -> torch.Tensor:
    x = torch.as_tensor(x)
    if x.dtype == torch.uint8:
        raise GenEvalError("PPL needs decode(z) to return floats: uint8 images hide steps of epsilon = 1e-4")
    return x.float()


def squared_feature_distance(features: Callable[[torch.Tensor], torch.Tensor]) -> Distance:
    """``|f(x0) - f(x1)|^2`` for a feature map f of float images (squared, like LPIPS)."""

    def distance(x0: torch.Tensor, x1: torch.Tensor) -> torch.Tensor:
        return (features(x0) - features(x1)).double().square().sum(dim=1)

    return distance


def ppl_distance(
    extractor_name: str, vgg_path: str | None = None, lin_path: str | None = None
) -> tuple[str, Distance, list[str]]:
    """LPIPS when its weights are local, else the domain extractor's features: (name, distance, notes)."""
    from gen_eval.features.lpips import LPIPS, resolve_lpips_weights

    try:
        lpips = LPIPS.from_files(*resolve_lpips_weights(vgg_path, lin_path))
    except GenEvalError as exc:
        note = (
            f"LPIPS unavailable ({exc}); PPL measured with squared {extractor_name} feature distances "
            "instead: comparable between models on this data, not with published PPL"
        )
        return (
            f"ppl_{extractor_name}_features",
            squared_feature_distance(float_features(extractor_name)),
            [note],
        )
    return "ppl_lpips_vgg", lambda a, b: lpips(a, b), []


def float_features(extractor_name: str) -> Callable[[torch.Tensor], torch.Tensor]:
    """A feature map of float [0, 1] images for the extractors that can take them unquantised."""
    if extractor_name == "identity":
        # As the identity extractor sees them: images as 0..255 pixels, vectors as given.
        return lambda x: x.reshape(len(x), -1) * (255.0 if x.ndim == 4 else 1.0)
    if extractor_name == "digits":
        from gen_eval.features.digits import DEFAULT_WEIGHTS, digits_net_input, load_digits_net

        net = load_digits_net(DEFAULT_WEIGHTS).eval()
        return lambda x: net(digits_net_input(x * 255.0))[0]
    raise GenEvalError(
        f"PPL without LPIPS weights needs a domain extractor that takes float images (digits, identity); "
        f"got {extractor_name!r}: provide LPIPS weights (see gen-eval latent --help)"
    )
