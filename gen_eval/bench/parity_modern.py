"""The ``reports/parity.md`` section for issue 25's metrics: SWD, CMMD, realism, rarity, AuthPct, C_T.

Only the sliced Wasserstein distance has a peer that is an installable library (POT). The others'
reference code is research code, not a package (CMMD: google-research's JAX ``cmmd/distance.py``;
realism: NVlabs' TensorFlow precision/recall code; rarity: Han et al.'s repository; AuthPct and C_T:
Alaa et al.'s and Meehan et al.'s scripts), so each is compared here with a float64 NumPy brute
force of the formula as that code computes it, written separately from gen-eval's implementation.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

# Float64 paths are held to 1e-9; realism and rarity compare float32 distance blocks with float64.
BOUNDS = {"realism": 1e-4, "rarity": 1e-4}
DEFAULT_BOUND = 1e-9


def _sets(seed: int = 25) -> dict[str, np.ndarray]:
    """Reference, generated, training and test sets: 16-d Gaussians, the generated one shifted and wider."""
    rng = np.random.default_rng(seed)
    return {
        "reference": rng.normal(size=(250, 16)),
        "generated": 0.3 + 1.2 * rng.normal(size=(300, 16)),
        "train": rng.normal(size=(400, 16)),
        "test": rng.normal(size=(200, 16)),
    }


def _distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.sqrt(((a[:, None, :] - b[None, :, :]) ** 2).sum(-1))


def _cmmd_numpy(x: np.ndarray, y: np.ndarray, unbiased: bool) -> float:
    x = x / np.linalg.norm(x, axis=1, keepdims=True)
    y = y / np.linalg.norm(y, axis=1, keepdims=True)
    k = {
        key: np.exp(-(_distances(a, b) ** 2) / 200)
        for key, (a, b) in {"xx": (x, x), "yy": (y, y), "xy": (x, y)}.items()
    }
    n, m = len(x), len(y)
    if unbiased:
        xx = (k["xx"].sum() - n) / (n * (n - 1))
        yy = (k["yy"].sum() - m) / (m * (m - 1))
    else:
        xx, yy = k["xx"].mean(), k["yy"].mean()
    return float(1000 * (xx + yy - 2 * k["xy"].mean()))


def _realism_numpy(x: np.ndarray, y: np.ndarray, k: int = 3) -> tuple[float, float]:
    radii = np.sort(_distances(y, y), axis=1)[:, k]
    kept = radii <= np.percentile(radii, 50)
    d = _distances(x, y)
    realism = (radii[kept][None, :] / d[:, kept]).max(1)
    holding = np.where(d <= radii[None, :], radii[None, :], np.inf).min(1)
    return float(np.median(realism)), float(holding[np.isfinite(holding)].mean())


def _authpct_numpy(x: np.ndarray, train: np.ndarray) -> float:
    own = _distances(train, train)
    np.fill_diagonal(own, np.inf)
    d = _distances(x, train)
    nearest = d.argmin(1)
    return float(100 * np.mean(own.min(1)[nearest] < d[np.arange(len(x)), nearest]))


def _ct_reference(sets: dict[str, np.ndarray], cells: int, seed: int) -> tuple[float, float]:
    """C_T as Meehan et al.'s code computes it (k-means cells of T, scipy's Mann-Whitney U per cell), and gen-eval's."""
    from scipy.stats import mannwhitneyu
    from sklearn.cluster import KMeans
    from threadpoolctl import threadpool_limits

    from gen_eval.metrics.authenticity import c_t
    from gen_eval.metrics.base import MetricContext

    train, test, gen = sets["train"], sets["test"], sets["generated"]
    with threadpool_limits(1):  # see gen_eval/metrics/authenticity.py
        model = KMeans(n_clusters=cells, random_state=seed, n_init=10).fit(train)
        t_cells, p_cells, q_cells = model.labels_, model.predict(test), model.predict(gen)
    z, weights = [], []
    for cell in range(cells):
        p, q, t = test[p_cells == cell], gen[q_cells == cell], train[t_cells == cell]
        if len(q) / len(gen) <= 20 / len(gen) or len(p) == 0:
            continue
        u = mannwhitneyu(_distances(q, t).min(1), _distances(p, t).min(1), alternative="less").statistic
        n, m = len(p), len(q)
        z.append((u - (n * m / 2 - 0.5)) / math.sqrt(n * m * (n + m + 1) / 12))
        weights.append(n / len(test))
    context = MetricContext(
        num_resamples=0,
        random_state=seed,
        options={"ct_cells": cells},
        train_features={"features": torch.from_numpy(train)},
    )
    ours = c_t({"features": torch.from_numpy(gen)}, {"features": torch.from_numpy(test)}, context)[
        "c_t"
    ].value
    return ours, float(np.dot(weights, z) / np.sum(weights))


def modern_rows() -> list[dict[str, Any]]:
    """One row per metric: gen-eval's value and the reference's on the same 16-d sets."""
    import ot

    from gen_eval.metrics.authenticity import authpct
    from gen_eval.metrics.base import MetricContext
    from gen_eval.metrics.cmmd import cmmd
    from gen_eval.metrics.realism import realism_rarity
    from gen_eval.metrics.sliced_wasserstein import random_directions, sliced_wasserstein

    sets = _sets()
    # Far from the origin (1,000 along every axis): a common translation changes none of these.
    far = {key: value + 1000.0 for key, value in sets.items()}
    gen, ref = ({"features": torch.from_numpy(far[k])} for k in ("generated", "reference"))
    rows = []
    for p in (1, 2):
        context = MetricContext(num_resamples=0, random_state=5, options={"swd_projections": 128, "swd_p": p})
        ours = sliced_wasserstein(gen, ref, context)["swd"].value
        theirs = ot.sliced_wasserstein_distance(
            far["generated"], far["reference"], projections=random_directions(16, 128, 5).numpy(), p=p
        )
        rows.append(
            {"metric": f"swd (p={p}, 128 directions)", "ours": ours, "theirs": float(theirs), "tool": "POT"}
        )
    plain = (
        {"features": torch.from_numpy(sets["generated"])},
        {"features": torch.from_numpy(sets["reference"])},
    )
    for estimator in ("biased", "unbiased"):
        context = MetricContext(num_resamples=0, options={"cmmd_estimator": estimator})
        rows.append(
            {
                "metric": f"cmmd ({estimator})",
                "ours": cmmd(*plain, context)["cmmd"].value,
                "theirs": _cmmd_numpy(sets["generated"], sets["reference"], estimator == "unbiased"),
                "tool": "NumPy, the reference code's arithmetic"
                + (" (V-statistic)" if estimator == "biased" else " without the diagonal"),
            }
        )
    both = realism_rarity(gen, ref, MetricContext(num_resamples=0))
    realism, rarity = _realism_numpy(sets["generated"], sets["reference"])
    rows.append(
        {
            "metric": "realism",
            "ours": both["realism"].value,
            "theirs": realism,
            "tool": "NumPy brute force (Eq. 3, median)",
        }
    )
    rows.append(
        {
            "metric": "rarity",
            "ours": both["rarity"].value,
            "theirs": rarity,
            "tool": "NumPy brute force (Han et al., mean)",
        }
    )
    context = MetricContext(num_resamples=0, train_features={"features": torch.from_numpy(far["train"])})
    rows.append(
        {
            "metric": "authpct",
            "ours": authpct(gen, ref, context)["authpct"].value,
            "theirs": _authpct_numpy(sets["generated"], sets["train"]),
            "tool": "NumPy brute force (Alaa et al.'s rule)",
        }
    )
    ours, theirs = _ct_reference(sets, cells=4, seed=0)
    rows.append(
        {"metric": "c_t (4 cells)", "ours": ours, "theirs": theirs, "tool": "Meehan et al.'s steps, scipy U"}
    )
    return rows


def modern_section() -> tuple[list[str], list[dict[str, Any]]]:
    """Markdown lines of the section and its rows (each with ``relative_difference`` and ``bound``)."""
    from gen_eval.bench.common import markdown_table, relative_difference

    rows = modern_rows()
    for row in rows:
        row["relative_difference"] = relative_difference(row["ours"], row["theirs"])
        row["bound"] = BOUNDS.get(row["metric"], DEFAULT_BOUND)
    table = markdown_table(
        ["metric", "gen-eval", "reference", "reference tool", "relative difference", "bound", "within"],
        [
            [
                r["metric"],
                f"{r['ours']:.10g}",
                f"{r['theirs']:.10g}",
                r["tool"],
                f"{r['relative_difference']:.1e}",
                f"{r['bound']:g}",
                "yes" if r["relative_difference"] <= r["bound"] else "**no**",
            ]
            for r in rows
        ],
    )
    lines = [
        "## CMMD, sliced Wasserstein, realism, rarity, AuthPct and C_T",
        "",
        "Inputs: 16-d Gaussians (reference 250, generated 300 shifted by 0.3 and 1.2x wider, training set 400,",
        "test set 200); SWD, realism, rarity and AuthPct on the sets moved 1,000 along every axis (they are",
        "translation-invariant; CMMD normalises each embedding, so it reads the sets unmoved). Only SWD has a",
        "library peer (POT, on the same directions). The other metrics' reference code is research code, not",
        "a package, so each row compares with a NumPy brute force of that code's formula (see",
        "`gen_eval/bench/parity_modern.py`). CMMD's default is the biased estimator, as the paper's code;",
        "realism is the paper's ratio of distances (NVlabs' code reports its square: same ranking).",
        "",
        table,
        "",
    ]
    return lines, rows
