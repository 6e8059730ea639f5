"""A bfloat16 screen with exact float32 refinement for the k-NN distance blocks.

Why. Precision/recall at 10,000 x 10,000 x 2048 spends almost all its time in float32 GEMMs. A
CPU with native bfloat16 dot products (AVX512_BF16, AMX) runs the same GEMM about twice as fast,
but bfloat16 keeps 8 significant bits. So bfloat16 only *screens*: with a rigorous bound on its
error, it decides every pair that is clearly inside or clearly outside a ball, and the few pairs
near a radius are recomputed in float32 exactly as the plain path computes them. The results are
those of the float32 path (:mod:`gen_eval.metrics.knn`): the same radii and memberships, up to
the summation order of a float32 dot product. No library offers a screened k-NN with a
certified bound, hence this module.

The screened product. Each set is centred (see :mod:`gen_eval.metrics.knn`) and each vector x is
split as x = h + l with h = bfloat16(x) (round to nearest) and l the exact float32 remainder. One
bfloat16 GEMM of augmented vectors computes, for a constant m (a typical squared radius),

    out_ij = bf16( (s_i - m/2) + (s_j - m/2) - 2 h_i . h_j )  ~  |x_i - x_j|^2 - m,

with s = |x|^2 carried exactly as three bfloat16 pieces (one on each side is paired with ones).
Centring the output on m keeps its final rounding, 2^-8 |out|, small near a radius.

The bound. Against a = the float32 expansion |x|^2 + |y|^2 - 2 x.y of the plain path,
``|out + m - a| <= 2^-8 |out| + R_ij`` with

    R_ij = e_i + e_j                                  (three bfloat16 pieces miss s - m/2 by e)
         + 2 (|h_i| |l_j| + |l_i| |h_j| + |l_i| |l_j|)  (h . h instead of x . y; Cauchy-Schwarz)
         + gamma_2(D+6) (|s_i - m/2| + |s_j - m/2| + 2 |h_i| |h_j|)   (float32 accumulation)
         + (gamma_D + 4 u) (|x_i| + |x_j|)^2            (a's own float32 error, Higham eq. 3.5)
         + 2^-100                                       (flushed subnormal products)

with u = 2^-24 and gamma_n = n u / (1 - n u). It assumes what oneDNN documents for bfloat16
GEMMs: exact products and float32 accumulation (:func:`native_bfloat16` probes that at run
time), then one rounding to bfloat16, which keeps the sign. Per block, R_ij is bounded per row
by the largest column terms, so thresholds stay per row (or per column) vectors and each test
is one comparison of the bfloat16 block. ``tests/test_knn_screen.py`` checks the bound against
float64 and the results against the float32 path.
"""

from __future__ import annotations

import functools
import math
import os
from collections.abc import Callable
from dataclasses import dataclass

import torch

BF16_UNIT = 2.0**-8
UNIT_ROUNDOFF = 2.0**-24
TINY = 2.0**-100
_ROWS = 1024  # rows per chunk when preparing a side: 8 MB temporaries at 2048-d
# Screening pays off when the GEMM dominates: wide features and enough pairs.
MIN_DIM, MIN_PAIRS = 256, 2**22


def _gamma(n: int) -> float:
    return n * UNIT_ROUNDOFF / (1 - n * UNIT_ROUNDOFF)


@functools.cache
def native_bfloat16() -> bool:
    """Whether this CPU multiplies bfloat16 natively and torch accumulates its GEMMs in float32.

    The CPU flags come from /proc/cpuinfo (AVX512_BF16 or AMX-BF16; elsewhere bfloat16 GEMMs are
    emulated and slower than float32). The probe: 4,096 products of 1 + 2^-7 and 1 sum to
    4,128 in float32 but stall at 256 in a bfloat16 accumulator; the result must be exact.
    """
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="ignore") as info:
            flags = info.read()
    except OSError:
        return False
    if "avx512_bf16" not in flags and "amx_bf16" not in flags:
        return False
    a = torch.ones(2, 4096, dtype=torch.bfloat16)
    a[1] = 1 + 2**-7
    out = (a @ torch.ones(4096, 2, dtype=torch.bfloat16)).float()
    return bool(out[0, 0] == 4096 and out[1, 0] == 4096 * (1 + 2**-7))


def use_screen(screen: str, device: torch.device, dim: int, num_pairs: int) -> bool:
    """Resolve ``screen`` ("auto", "bfloat16", "float32"; env GEN_EVAL_KNN_SCREEN overrides "auto")."""
    screen = os.environ.get("GEN_EVAL_KNN_SCREEN", screen) if screen == "auto" else screen
    if screen not in ("auto", "bfloat16", "float32"):
        raise ValueError(f"screen must be 'auto', 'bfloat16' or 'float32'; got {screen!r}")
    if screen != "auto":
        return screen == "bfloat16"
    return device.type == "cpu" and dim >= MIN_DIM and num_pairs >= MIN_PAIRS and native_bfloat16()


@dataclass
class Side:
    """One set prepared for the screened GEMM (module docstring).

    Attributes
    ----------
    matrix : torch.Tensor
        (N, D + 6) bfloat16: ``[h, pieces(s - m/2), 1, 1, 1]`` (left) or ``[-2 h, 1, 1, 1, pieces]``.
    h_norm, l_norm, norm, shifted, split_error, sq32 : torch.Tensor
        (N,) float64 |h|, |l|, |x|, |s - m/2|, e; and (N,) float32 |x|^2 as the float32 path has it.
    """

    matrix: torch.Tensor
    h_norm: torch.Tensor
    l_norm: torch.Tensor
    norm: torch.Tensor
    shifted: torch.Tensor
    split_error: torch.Tensor
    sq32: torch.Tensor


def prepare(
    source: torch.Tensor,
    half_m: float,
    left: bool,
    centre: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> Side:
    """Split centred float32 rows into the bfloat16 matrix and bound terms of one side.

    ``centre`` maps a chunk of ``source`` rows to centred float32 (None: already centred), so
    no whole centred copy is needed. Norms are float32 sums rounded up to sure upper bounds.
    """
    n, dim = source.shape
    dev = source.device
    matrix = torch.empty(n, dim + 6, dtype=torch.bfloat16, device=dev)
    vectors = torch.empty(5, n, dtype=torch.float64, device=dev)
    sq32 = torch.empty(n, dtype=torch.float32, device=dev)
    ones = slice(dim + 3, dim + 6) if left else slice(dim, dim + 3)
    pieces = slice(dim, dim + 3) if left else slice(dim + 3, dim + 6)
    matrix[:, ones] = 1
    # A float32 norm is within gamma_(D+1) of the exact sum of squares, plus u for the sqrt.
    up = 1 + 2 * _gamma(dim + 2)
    for start in range(0, n, _ROWS):
        rows = slice(start, min(start + _ROWS, n))
        x = source[rows] if centre is None else centre(source[rows])
        h = x.to(torch.bfloat16)
        squares = x.square()
        sq32[rows] = squares.sum(dim=1)
        # Each square rounded once (u), then summed in float64: s is within u |x|^2 (+ tiny).
        s = squares.sum(dim=1, dtype=torch.float64)
        del squares
        h32 = h.float()
        vectors[0, rows] = h32.norm(dim=1).double() * up
        vectors[1, rows] = x.sub(h32).norm(dim=1).double() * up  # x - h is exact in float32
        vectors[2, rows] = s.sqrt() * (1 + UNIT_ROUNDOFF)
        remainder = s - half_m
        vectors[3, rows] = remainder.abs()
        for p in range(3):  # three bfloat16 pieces carry s - m/2 to about 2^-24
            piece = remainder.to(torch.bfloat16)
            matrix[rows, pieces.start + p] = piece
            remainder = remainder - piece.double()
        vectors[4, rows] = remainder.abs() + (UNIT_ROUNDOFF + 2 * dim * 2.0**-53) * (s + abs(half_m))
        matrix[rows, :dim] = h if left else h * -2  # exact: a power-of-two scale
    return Side(matrix, *vectors, sq32)


def mirror(left: Side) -> Side:
    """The right side of the same set: ``[-2 h, 1, 1, 1, pieces]`` from ``[h, pieces, 1, 1, 1]``."""
    dim = left.matrix.shape[1] - 6
    matrix = torch.empty_like(left.matrix)
    torch.mul(left.matrix[:, :dim], -2, out=matrix[:, :dim])
    matrix[:, dim : dim + 3] = 1
    matrix[:, dim + 3 :] = left.matrix[:, dim : dim + 3]
    return Side(matrix, left.h_norm, left.l_norm, left.norm, left.shifted, left.split_error, left.sq32)


def residual_bounds(
    rows: Side, cols: Side, r: slice, c: slice, dim: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-row and per-column float64 bounds on R_ij over block (r, c) (module docstring)."""
    # The pieces of s - m/2 add up to at most (1 + 2^-7) |s - m/2|; a's own error is
    # gamma_D + 2u for the products and two additions (plus slack); 2^-30 covers float64 here.
    g_acc, g_ref = _gamma(2 * (dim + 6)) * (1 + 2**-7), _gamma(dim) + 4 * UNIT_ROUNDOFF

    def one_side(a: Side, ai: slice, b: Side, bi: slice) -> torch.Tensor:
        hb, lb, nb = b.h_norm[bi].max(), b.l_norm[bi].max(), b.norm[bi].max()
        sb, eb = b.shifted[bi].max(), b.split_error[bi].max()
        ha, la = a.h_norm[ai], a.l_norm[ai]
        return (
            a.split_error[ai]
            + eb
            + 2 * (ha * lb + la * hb + la * lb)
            + g_acc * (a.shifted[ai] + sb + 2 * ha * hb)
            + g_ref * (a.norm[ai] + nb).square()
        ) * (1 + 2**-30) + TINY

    return one_side(rows, r, cols, c), one_side(cols, c, rows, r)


def _floor_bf16(t: torch.Tensor) -> torch.Tensor:
    """Largest bfloat16 <= t (float64): ``out <= t`` iff ``out <= _floor_bf16(t)`` for bfloat16 out."""
    b = t.to(torch.bfloat16)
    return torch.where(b.double() > t, torch.nextafter(b, torch.full_like(b, -math.inf)), b)


def _out_upper(v: torch.Tensor) -> torch.Tensor:
    """Largest ``out`` with ``out - 2^-8 |out| <= v`` (inverse of the lower bound's map)."""
    out = torch.where(v >= 0, v / (1 - BF16_UNIT), v / (1 + BF16_UNIT))
    return out + 2**-40 * out.abs() + TINY  # rounded up: the division was in float64


def _out_lower(v: torch.Tensor) -> torch.Tensor:
    """Largest ``out`` with ``out + 2^-8 |out| <= v`` (inverse of the upper bound's map)."""
    out = torch.where(v >= 0, v / (1 + BF16_UNIT), v / (1 - BF16_UNIT))
    return out - 2**-40 * out.abs() - TINY  # rounded down


def decision_limits(
    thresholds: torch.Tensor, residual: torch.Tensor, m: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """bfloat16 limits (sure, maybe) for ``a <= t``: ``out <= sure`` proves it, ``out > maybe`` refutes it.

    ``thresholds`` (float32 squared thresholds t) and ``residual`` (float64 R bounds) are
    matching per-row or per-column vectors; in between, the pair is refined.
    """
    t = thresholds.double() - m
    return _floor_bf16(_out_lower(t - residual)), _floor_bf16(_out_upper(t + residual))


def upper_bounds(out_values: torch.Tensor, residual: torch.Tensor, m: float) -> torch.Tensor:
    """float64 upper bounds on a for screened values ``out_values`` (rows of a top-k), residual per row."""
    v = out_values.double()
    return m + v + BF16_UNIT * v.abs() + residual[:, None]


def candidate_limits(tau: torch.Tensor, residual: torch.Tensor, m: float) -> torch.Tensor:
    """bfloat16 per-row limits: ``out <= limit`` for every pair whose lower bound on a is <= tau."""
    return _floor_bf16(_out_upper(tau - m + residual))


def lower_bounds(out_values: torch.Tensor, residual: torch.Tensor, m: float) -> torch.Tensor:
    """float64 lower bounds on a for screened values, ``residual`` matching them elementwise."""
    v = out_values.double()
    return m + v - BF16_UNIT * v.abs() - residual


def refine(
    left: Callable[[torch.Tensor], torch.Tensor],
    right: Callable[[torch.Tensor], torch.Tensor],
    left_sq: torch.Tensor,
    right_sq: torch.Tensor,
    i: torch.Tensor,
    j: torch.Tensor,
    pairs_per_chunk: int = 4096,
) -> torch.Tensor:
    """float32 ``max(0, |x_i|^2 + |y_j|^2 - 2 x_i . y_j)`` for index pairs: the float32 path's value.

    ``left``/``right`` return centred float32 rows for an index tensor (gathered on the fly).
    """
    out = torch.empty(len(i), dtype=torch.float32, device=left_sq.device)
    for start in range(0, len(i), pairs_per_chunk):
        s = slice(start, start + pairs_per_chunk)
        dots = torch.einsum("pd,pd->p", left(i[s]), right(j[s]))
        out[s] = _expansion(left_sq[i[s]], dots, right_sq[j[s]])
    return out


def _expansion(left_sq: torch.Tensor, dots: torch.Tensor, right_sq: torch.Tensor) -> torch.Tensor:
    # The float32 path's order: addmm(|x|^2, x, y^T, alpha=-2), then + |y|^2, clamped.
    return left_sq.sub(dots, alpha=2.0).add_(right_sq).clamp_min_(0.0)


def refine_by_row(
    rows_of: Callable[[torch.Tensor], torch.Tensor],
    sq: torch.Tensor,
    i: torch.Tensor,
    j: torch.Tensor,
    rows_per_chunk: int = 256,
    pairs_per_chunk: int = 4096,
) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`refine` within one set (``rows_of(idx)``: its centred float32 rows), grouped by row.

    Returns (row index, value) per pair.

    Rows are sorted by their number of pairs and taken a chunk at a time, each chunk padded to
    its longest row, so x_i is read once per row and one batched matrix-vector product does the
    chunk (about half the memory traffic of gathering both sides of every pair). A chunk holds
    at most ``pairs_per_chunk`` padded pairs (32 MB of gathered rows at 2048-d).
    """
    order = torch.argsort(i, stable=True)
    i, j = i[order], j[order]
    counts = torch.bincount(i, minlength=len(sq))
    starts = torch.cumsum(counts, 0) - counts
    rows = torch.argsort(counts, stable=True)
    rows = rows[counts[rows] > 0]
    # A row with very many candidates (an outlier, nearly equidistant from everything) would
    # make a chunk as wide as the set: its pairs go through the pairwise refine() instead.
    wide = counts > rows_per_chunk
    rows = rows[~wide[rows]]
    pairwise = wide[i]
    out_rows = [i[pairwise]]
    out_values = [refine(rows_of, rows_of, sq, sq, i[pairwise], j[pairwise], pairs_per_chunk)]
    start = 0
    while start < len(rows):
        # counts rise along ``rows``: a chunk's last row is its widest
        stop = min(start + rows_per_chunk, len(rows))
        stop = min(stop, start + max(1, pairs_per_chunk // int(counts[rows[stop - 1]])))
        chunk, start = rows[start:stop], stop
        width = int(counts[chunk].max())
        slot = torch.arange(width, device=sq.device)
        valid = slot[None, :] < counts[chunk][:, None]
        # Padding points at the row's first pair: computed, then dropped.
        index = starts[chunk][:, None] + torch.where(valid, slot[None, :], 0)
        cols = j[index]
        gathered = rows_of(cols.flatten()).view(*cols.shape, -1)
        dots = torch.bmm(gathered, rows_of(chunk)[:, :, None]).squeeze(2)
        values = _expansion(sq[chunk][:, None], dots, sq[cols])
        out_rows.append(chunk[:, None].expand_as(cols)[valid])
        out_values.append(values[valid])
    return torch.cat(out_rows), torch.cat(out_values)
