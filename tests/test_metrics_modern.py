"""CMMD, sliced Wasserstein, realism/rarity, AuthPct and C_T against by-hand references and planted faults."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.stats import mannwhitneyu

from gen_eval.errors import GenEvalError
from gen_eval.metrics.authenticity import authpct, c_t, ct_statistic
from gen_eval.metrics.base import MetricContext
from gen_eval.metrics.cmmd import cmmd
from gen_eval.metrics.realism import realism_rarity
from gen_eval.metrics.sliced_wasserstein import random_directions, sliced_wasserstein


def _sets(n: int, m: int, dim: int, seed: int = 0, shift: float = 0.0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, dim, generator=g, dtype=torch.float64) * 3 + shift
    y = torch.randn(m, dim, generator=g, dtype=torch.float64) * 3
    return x, y


def _cmmd_by_hand(x: np.ndarray, y: np.ndarray, unbiased: bool, sigma: float = 10.0) -> float:
    """The paper's formula as double loops: RBF kernel, sigma 10, times 1000."""

    def k(a: np.ndarray, b: np.ndarray) -> float:
        return math.exp(-float(np.sum((a - b) ** 2)) / (2 * sigma**2))

    n, m = len(x), len(y)
    if unbiased:
        xx = sum(k(x[i], x[j]) for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
        yy = sum(k(y[i], y[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    else:
        xx = sum(k(a, b) for a in x for b in x) / n**2
        yy = sum(k(a, b) for a in y for b in y) / m**2
    xy = sum(k(a, b) for a in x for b in y) / (n * m)
    return 1000 * (xx + yy - 2 * xy)


@pytest.mark.parametrize("estimator", ["biased", "unbiased"])
@pytest.mark.parametrize("normalise", [True, False])
def test_cmmd_equals_the_formula_by_hand(estimator, normalise):
    x, y = _sets(7, 9, 5, shift=1.0)
    context = MetricContext(
        num_resamples=30, options={"cmmd_estimator": estimator, "cmmd_normalise": normalise}
    )
    result = cmmd({"features": x}, {"features": y}, context)["cmmd"]
    xs, ys = x.numpy(), y.numpy()
    if normalise:
        xs, ys = (
            xs / np.linalg.norm(xs, axis=1, keepdims=True),
            ys / np.linalg.norm(ys, axis=1, keepdims=True),
        )
    assert result.value == pytest.approx(_cmmd_by_hand(xs, ys, estimator == "unbiased"), rel=1e-10, abs=1e-12)
    assert result.details["estimator"] == estimator
    low, high = result.interval
    assert low <= result.value <= high


def test_cmmd_names_its_features_and_separates_distributions():
    x, y = _sets(40, 40, 6)
    far, _ = _sets(40, 40, 6, seed=1, shift=2.0)
    clip = MetricContext(num_resamples=0, extractor="clip-vit-l14-336")
    same = cmmd({"features": x}, {"features": y}, clip)["cmmd"]
    other = cmmd({"features": far}, {"features": y}, MetricContext(num_resamples=0, extractor="inception"))[
        "cmmd"
    ]
    assert same.warnings == [] and same.details["extractor"] == "clip-vit-l14-336"
    assert "inception features, not CLIP ViT-L/14@336" in other.warnings[0]
    assert other.value > 5 * same.value


def test_cmmd_unbiased_interval_ignores_pairs_of_copies():
    """A resample's copies must not count as within-set pairs: replicates centre on the point."""
    x, y = _sets(60, 60, 4)
    context = MetricContext(
        num_resamples=200, options={"cmmd_estimator": "unbiased", "cmmd_normalise": False}
    )
    result = cmmd({"features": x}, {"features": y}, context)["cmmd"]
    low, high = result.interval
    centre = (low + high) / 2
    assert abs(centre - result.value) < 0.25 * (high - low)


def test_swd_equals_pot_on_the_same_directions():
    ot = pytest.importorskip("ot")
    x, y = _sets(13, 21, 6, shift=0.5)
    for p in (1, 2):
        context = MetricContext(num_resamples=0, random_state=3, options={"swd_projections": 40, "swd_p": p})
        ours = sliced_wasserstein({"features": x}, {"features": y}, context)["swd"].value
        directions = random_directions(6, 40, 3).numpy()
        theirs = ot.sliced_wasserstein_distance(x.numpy(), y.numpy(), projections=directions, p=p)
        assert ours == pytest.approx(float(theirs), rel=1e-12)


def test_swd_closed_forms():
    # A translation by v: along direction theta the 1-D distance is |theta . v| exactly.
    x, _ = _sets(50, 1, 4)
    v = torch.tensor([3.0, -1.0, 0.5, 2.0], dtype=torch.float64)
    context = MetricContext(num_resamples=0, random_state=7, options={"swd_projections": 64})
    shifted = sliced_wasserstein({"features": x + v}, {"features": x}, context)["swd"].value
    directions = random_directions(4, 64, 7)
    assert shifted == pytest.approx(float((v @ directions).square().mean().sqrt()), rel=1e-12)
    # One dimension: W_2 of equal-size sets is the RMS gap of the sorted values.
    a, b = torch.randn(30, 1, dtype=torch.float64), torch.randn(30, 1, dtype=torch.float64) + 1
    one = sliced_wasserstein({"features": a}, {"features": b}, context)["swd"].value
    gaps = a.flatten().sort().values - b.flatten().sort().values
    assert one == pytest.approx(float(gaps.square().mean().sqrt()), rel=1e-12)


def _realism_by_hand(x: np.ndarray, y: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Kynkäänniemi et al.'s realism (half the balls, largest radii, dropped) and Han et al.'s rarity."""
    ref = np.linalg.norm(y[:, None] - y[None], axis=2)
    radii = np.sort(ref, axis=1)[:, k]  # index 0 is the point itself
    kept = radii <= np.percentile(radii, 50)
    realism, rarity = np.zeros(len(x)), np.full(len(x), np.nan)
    for i, g in enumerate(x):
        d = np.linalg.norm(y - g, axis=1)
        realism[i] = max(radii[j] / d[j] for j in range(len(y)) if kept[j])
        inside = [radii[j] for j in range(len(y)) if d[j] <= radii[j]]
        rarity[i] = min(inside) if inside else np.nan
    return realism, rarity


def test_realism_and_rarity_equal_the_papers_formulas():
    x, y = _sets(40, 31, 3, seed=4)
    x[0] += 30  # planted: far from every real sample
    context = MetricContext(num_resamples=20)
    results = realism_rarity({"features": x}, {"features": y}, context)
    realism, rarity = _realism_by_hand(x.numpy(), y.numpy(), 3)
    ours = np.array(results["realism"].details["per_sample"])
    np.testing.assert_allclose(ours, realism, rtol=1e-5)
    ours_rarity = np.array([np.nan if v is None else v for v in results["rarity"].details["per_sample"]])
    np.testing.assert_allclose(ours_rarity, rarity, rtol=1e-5)
    assert results["realism"].value == pytest.approx(np.median(realism), rel=1e-5)
    assert results["rarity"].value == pytest.approx(np.nanmean(rarity), rel=1e-5)
    assert results["realism"].details["least_realistic"][0] == 0
    assert results["realism"].details["most_realistic"][0] == int(np.argmax(realism))
    assert rarity[0] != rarity[0]  # the planted outlier lies in no ball: not scored
    assert results["rarity"].details["num_scored"] == int(np.isfinite(rarity).sum())


def test_realism_is_translation_safe():
    x, y = _sets(30, 30, 3, seed=5)
    plain = realism_rarity({"features": x}, {"features": y}, MetricContext(num_resamples=0))
    far = realism_rarity({"features": x + 1e4}, {"features": y + 1e4}, MetricContext(num_resamples=0))
    np.testing.assert_allclose(
        far["realism"].details["per_sample"], plain["realism"].details["per_sample"], rtol=1e-3
    )


def _planted(seed: int = 0) -> dict[str, torch.Tensor]:
    """Train, held-out test, fresh samples, and near-copies of training samples (8-d Gaussians)."""
    g = torch.Generator().manual_seed(seed)
    train = torch.randn(600, 8, generator=g, dtype=torch.float64)
    test = torch.randn(300, 8, generator=g, dtype=torch.float64)
    fresh = torch.randn(300, 8, generator=g, dtype=torch.float64)
    copies = train[:300] + 0.01 * torch.randn(300, 8, generator=g, dtype=torch.float64)
    return {"train": train, "test": test, "fresh": fresh, "copies": copies}


def _authentic_by_hand(gen: np.ndarray, train: np.ndarray) -> np.ndarray:
    d_train = np.linalg.norm(train[:, None] - train[None], axis=2)
    np.fill_diagonal(d_train, np.inf)
    radius = d_train.min(1)
    d = np.linalg.norm(gen[:, None] - train[None], axis=2)
    nearest = d.argmin(1)
    return radius[nearest] < d[np.arange(len(gen)), nearest]


def test_authpct_equals_the_definition_and_flags_planted_copies():
    sets = _planted()
    context = MetricContext(num_resamples=50, train_features={"features": sets["train"]})
    mixed = torch.cat([sets["fresh"][:200], sets["copies"][:100]])
    results = {
        name: authpct({"features": gen}, {"features": sets["test"]}, context)["authpct"]
        for name, gen in (("fresh", sets["fresh"]), ("mixed", mixed))
    }
    for name, gen in (("fresh", sets["fresh"]), ("mixed", mixed)):
        expected = 100 * _authentic_by_hand(gen.numpy(), sets["train"].numpy()).mean()
        assert results[name].value == pytest.approx(expected)
    held_out = 100 * _authentic_by_hand(sets["test"].numpy(), sets["train"].numpy()).mean()
    assert results["fresh"].details["held_out_authpct"] == pytest.approx(held_out)
    assert not results["fresh"].details["likely_copying"]  # held-out-like data passes
    assert results["mixed"].details["likely_copying"]  # a third copies is flagged
    low, high = results["mixed"].interval
    assert low <= results["mixed"].value <= high < held_out


def _ct_by_hand(test, test_cells, gen, gen_cells, train, train_cells, tau):
    """Meehan et al.'s C_T as their reference code computes it, with scipy's Mann-Whitney U."""
    z, weights = [], []
    for cell in np.unique(train_cells):
        p, q, t = test[test_cells == cell], gen[gen_cells == cell], train[train_cells == cell]
        if len(q) / len(gen) <= tau or len(p) == 0:
            continue
        lq = np.linalg.norm(q[:, None] - t[None], axis=2).min(1)
        lp = np.linalg.norm(p[:, None] - t[None], axis=2).min(1)
        u = mannwhitneyu(lq, lp, alternative="less").statistic
        n, m = len(p), len(q)
        z.append((u - (n * m / 2 - 0.5)) / math.sqrt(n * m * (n + m + 1) / 12))
        weights.append(len(p) / len(test))
    return float(np.dot(weights, z) / np.sum(weights))


def test_ct_statistic_equals_the_reference_computation():
    from sklearn.cluster import KMeans

    sets = _planted(1)
    train, test, gen = (sets[k].numpy() for k in ("train", "test", "fresh"))
    model = KMeans(n_clusters=4, random_state=0, n_init=10).fit(train)
    cells = [model.labels_, model.predict(test), model.predict(gen)]

    def in_cell(samples, labels):
        out = np.empty(len(samples))
        for c in range(4):
            t = train[cells[0] == c]
            out[labels == c] = np.linalg.norm(samples[labels == c][:, None] - t[None], axis=2).min(1)
        return out

    tau = 20 / len(gen)
    values, _ = ct_statistic(in_cell(test, cells[1]), cells[1], in_cell(gen, cells[2]), cells[2], 4, tau)
    expected = _ct_by_hand(test, cells[1], gen, cells[2], train, cells[0], tau)
    assert float(values[0]) == pytest.approx(expected, rel=1e-12)


def test_ct_flags_planted_copies_and_passes_held_out_data():
    sets = _planted(2)
    context = MetricContext(
        num_resamples=50, train_features={"features": sets["train"]}, options={"ct_cells": 5}
    )
    fresh = c_t({"features": sets["fresh"]}, {"features": sets["test"]}, context)["c_t"]
    copies = c_t({"features": sets["copies"]}, {"features": sets["test"]}, context)["c_t"]
    assert abs(fresh.value) < 3 and not fresh.details["likely_copying"]
    assert copies.value < -3 and copies.details["likely_copying"]
    low, high = copies.interval
    assert low <= copies.value <= high


def test_memorisation_metrics_need_a_training_set():
    sets = _planted()
    with pytest.raises(GenEvalError, match="--train"):
        authpct({"features": sets["fresh"]}, {"features": sets["test"]}, MetricContext(num_resamples=0))


def test_evaluate_reads_the_training_set_for_authpct_and_c_t(tmp_path):
    """Through evaluate: the training set scored as the model's samples is a model that copies."""
    import gen_eval

    options = {"features": "digits", "num_resamples": 0, "cache_dir": None, "show_progress": False}
    run = gen_eval.evaluate(
        "digits:train", "digits:test", metrics=["authpct", "c_t"], collapse=False, **options
    )
    assert run.metrics["authpct"].value == 0 and run.metrics["authpct"].details["likely_copying"]
    assert run.metrics["c_t"].details["likely_copying"]
    with pytest.raises(GenEvalError, match="training set: give --train"):
        gen_eval.evaluate("digits:test", "digits:train", metrics=["authpct"], train=None, **options)


def test_run_report_shows_the_most_and_least_realistic_images(tmp_path):
    import gen_eval
    from gen_eval.report.run_report import write_report

    out = tmp_path / "run"
    run = gen_eval.evaluate(
        "digits:test",
        "digits:train",
        features="digits",
        metrics=["realism"],
        num_resamples=0,
        cache_dir=None,
        collapse=False,
        show_progress=False,
        out=out,
    )
    details = run.metrics["realism"].details
    assert len(details["most_realistic"]) == 16 and len(details["per_sample"]) == 360
    assert (out / "realism" / "most_realistic.png").is_file()
    assert (out / "realism" / "least_realistic.png").is_file()
    page = write_report(out).read_text(encoding="utf-8")
    assert "The 16 least realistic samples" in page and "id='realism'" in page
    assert f"#{details['least_realistic'][0]}:" in page


def test_dashboard_run_page_shows_realism_grids_or_indices(tmp_path, monkeypatch):
    """Images: the two grids; vectors (ring8): two tables of sample indices and scores."""
    import sys

    from streamlit.testing.v1 import AppTest

    import dashboards
    import gen_eval
    from dashboards import RUNS_ENV

    common = {"metrics": ["realism"], "num_resamples": 0, "cache_dir": None, "collapse": False}
    gen_eval.evaluate(
        "digits:test",
        "digits:train",
        features="digits",
        out=tmp_path / "a_digits",
        show_progress=False,
        **common,
    )
    gen_eval.evaluate("ring8:test", "ring8:train", out=tmp_path / "b_ring8", show_progress=False, **common)
    monkeypatch.setenv(RUNS_ENV, str(tmp_path))
    monkeypatch.setattr(sys, "argv", ["app"])
    monkeypatch.setitem(sys.modules, "__main__", sys.modules["__main__"])
    page = str(next(iter(dashboards.__path__)) + "/views/run.py")
    for run, images, tables in (("a_digits", 3, 1), ("b_ring8", 1, 3)):
        app = AppTest.from_file(page, default_timeout=120).run()
        app.selectbox[0].set_value(run).run()
        assert not app.exception, [e.message for e in app.exception]
        assert "Most and least realistic samples" in [s.value for s in app.subheader]
        assert len(app.get("image")) == images and len(app.dataframe) == tables


def test_parity_section_rows_are_within_their_bounds():
    from gen_eval.bench.parity_modern import modern_section

    lines, rows = modern_section()
    assert {r["tool"] for r in rows if r["metric"].startswith("swd")} == {"POT"}
    assert len(rows) == 8 and all(r["relative_difference"] <= r["bound"] for r in rows)
    assert lines[0].startswith("## CMMD")
