"""Centring before k-NN distances, the float32 squared distances, and their error bound.

Translation. The expansion cancels catastrophically when the features sit far from the origin
compared with their spread (|x|^2 ~ |y|^2 >> |x - y|^2): at an offset of 3,000 standard
deviations in 16-d every float32 distance is noise. Every function therefore first subtracts one
common point from all the sets it compares (:func:`common_shift`: the sets' pooled mean, rounded
per coordinate to a multiple of a power of two no larger than that coordinate's standard
deviation), in float64, then rounds to float32. The metrics become translation-invariant up to
rounding, and the rounding grid keeps data that lies on a power-of-two grid (integers, quantised
pixels) exactly on it, so distances between such points, and their ties, stay exact while
squared norms stay below 2^24.

Error bound. For centred float32 vectors x, y in D dimensions, with u = 2^-24 and
gamma_D = D u / (1 - D u), the computed squared distance differs from the exact one of the
float64-centred data by at most ``(gamma_D + 4 u) (|x| + |y|)^2``
(:func:`squared_distance_error_bound`): gamma_D (|x|^2 + |y|^2 + 2 |x| |y|) for the three dot
products (Higham, Accuracy and Stability of Numerical Algorithms, eq. 3.5), 2u for the two
additions, and 2u for rounding the centred inputs to float32. After centring, |x| and |y| are
of the order of the spread, so near a ball's edge the relative error of a squared distance is
about gamma_D at worst (sqrt(D) u typically): 1e-6 at D = 16, 1.2e-4 at D = 2048. Only pairs
that close to a radius can be decided differently from exact arithmetic;
``tests/test_knn_translation.py`` measures the error against float64 and checks the bound.
"""

from __future__ import annotations

import torch

UNIT_ROUNDOFF = 2.0**-24  # float32


def squared_distance_error_bound(dim: int, row_sq: torch.Tensor, col_sq: torch.Tensor) -> torch.Tensor:
    """(r, c) float64 bound on |computed - exact| squared distances between centred rows and columns.

    ``(gamma_D + 4 u) (|x| + |y|)^2`` with u the float32 unit roundoff and gamma_D = D u / (1 - D u);
    see the module docstring for the derivation. ``row_sq`` and ``col_sq`` are the squared norms
    of the centred vectors.
    """
    gamma = dim * UNIT_ROUNDOFF / (1 - dim * UNIT_ROUNDOFF)
    norms = row_sq.double().sqrt()[:, None] + col_sq.double().sqrt()[None, :]
    return (gamma + 4 * UNIT_ROUNDOFF) * norms.square()


_SHIFT_ROWS = 1024


def common_shift(*sets: torch.Tensor) -> torch.Tensor:
    """(D,) float64 point subtracted from every set before distances: the pooled mean, on a grid.

    Each coordinate's pooled mean is rounded to a multiple of 2^floor(log2(std)), the coordinate's
    pooled standard deviation rounded down to a power of two. The shift leaves at most half a
    standard deviation of offset, and data on a power-of-two grid (integers, quantised pixels)
    stays exactly on it after the subtraction, ties included. The shift only has to lie near the
    data (the grid makes it exact whatever rounding it carries), so the moments come from at most
    ``_SHIFT_ROWS`` evenly spaced rows of each set: a full pass cost 0.25 s per 10,000 x 2048 set.
    """
    samples = [_floating(s[:: max(1, len(s) // _SHIFT_ROWS)]).double() for s in sets]
    variance, mean = torch.var_mean(torch.cat(samples), dim=0, correction=0)
    std = variance.sqrt()
    grid = torch.exp2(torch.floor(torch.log2(std.clamp_min(torch.finfo(torch.float64).tiny))))
    return torch.where(std > 0, torch.round(mean / grid) * grid, mean)


def _floating(features: torch.Tensor) -> torch.Tensor:
    features = features.detach()
    return features if features.dtype in (torch.float32, torch.float64) else features.float()


def _centred(features: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    """float32 ``features - shift``: one correctly rounded subtraction per element.

    The shift is a multiple of a power of two, so it is exact in float32 (for offsets below 2^24
    grid steps) and a float32 subtraction rounds the exact difference once. float64 inputs are
    subtracted in float64, a chunk of rows at a time (no N x D float64 temporary).
    """
    features = _floating(features)
    if features.dtype == torch.float32:
        return features - shift.to(features.device, torch.float32)
    out = torch.empty(features.shape, dtype=torch.float32, device=features.device)
    shift = shift.to(features.device)
    for start in range(0, len(features), 4096):
        out[start : start + 4096] = features[start : start + 4096] - shift
    return out


def _moved(*sets: torch.Tensor, device: str | torch.device | None) -> list[torch.Tensor]:
    """The 2-D sets on ``device`` (default: the first set's), not yet centred."""
    for features in sets:
        if features.ndim != 2:
            raise ValueError(f"features must be 2-D (N, D); got shape {tuple(features.shape)}")
    target = torch.device(device) if device is not None else sets[0].device
    return [s.detach().to(target) for s in sets]


def centred_float32(*sets: torch.Tensor, device: str | torch.device | None) -> list[torch.Tensor]:
    """The sets as float32 on ``device``, all shifted by one :func:`common_shift` (module docstring)."""
    moved = _moved(*sets, device=device)
    shift = common_shift(*moved)
    return [_centred(s, shift) for s in moved]


def squared_distances(
    rows: torch.Tensor, cols: torch.Tensor, row_sq: torch.Tensor, col_sq: torch.Tensor
) -> torch.Tensor:
    """(r, c) float32 squared distances ``|x|^2 + |y|^2 - 2 x.y`` clamped at 0, from precomputed norms."""
    block = torch.addmm(row_sq[:, None], rows, cols.T, alpha=-2.0)
    return block.add_(col_sq[None, :]).clamp_min_(0.0)


def squared_norms(features: torch.Tensor, rows_per_chunk: int = 4096) -> torch.Tensor:
    """(N,) ``|x|^2`` per row, a chunk of rows at a time: no N x D temporary (80 MB at 10,000 x 2048)."""
    return torch.cat([chunk.square().sum(dim=1) for chunk in features.split(rows_per_chunk)])
