"""``gen-eval bench coverage``: what each metric's 95% interval covers, by repeated experiments.

Each experiment draws fresh generated and reference sets from distributions whose values are
known (:mod:`gen_eval.bench.coverage_cases`), computes a metric with its bootstrap interval, and
records whether the interval holds two targets:

- the **large-sample value**: the metric's limit as the sample sizes grow (closed forms for FID
  and KID, millions of draws for IS and MS-SSIM). The k-NN metrics (precision, recall, density,
  coverage) have no limit free of N (their balls shrink as N grows), so for them this column is
  the value at ten times the sample size: it shows how far the value moves with N;
- the **expected value at this N**: the mean of the metric over many independent draws of both
  sets at the same sizes (Monte Carlo, without intervals), or its exact value where known.

Coverage over R repeats has Monte Carlo standard error sqrt(p (1 - p) / R). The report is
written by :mod:`gen_eval.bench.coverage_report`.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import numpy as np

from gen_eval.bench.coverage_cases import (
    Blobs,
    Draw,
    Experiment,
    Gaussians,
    ImageSet,
    Logits,
    Pixels,
    Sizes,
    expected_density_coverage,
    large_n_values,
)
from gen_eval.metrics import MetricContext, get_metric


def _gaussian_draw(case: Gaussians, n: int, options: dict[str, Any]) -> Draw:
    def draw(seed: int) -> tuple[dict, dict, dict[str, Any]]:
        generated, reference = case.sample(n, n, seed)
        return generated, reference, {"options": options}

    return draw


def experiments(sizes: Sizes, metrics: tuple[str, ...] | None = None) -> list[Experiment]:
    """The experiments of the report, in its order; ``metrics`` keeps only those registry names.

    Parameters
    ----------
    sizes : Sizes
    metrics : tuple of str, optional
        Registry names to keep (``("fid", "kid")``); all when None.

    Returns
    -------
    list of Experiment
    """
    n, dim, out = sizes.num_samples, sizes.dim, []
    gaussian_cases = {
        "equal": (Gaussians(dim), f"both N(0, I), {dim}-d"),
        "different": (Gaussians(dim, 0.25, 1.2), f"N(0.25, 1.2^2 I) vs N(0, I), {dim}-d"),
    }
    keep = (lambda name: True) if metrics is None else (lambda name: name in metrics)
    for case_name, (case, description) in gaussian_cases.items():
        fid_value = (case.population_fid(), "closed form")
        # FID and FD-inf share their third target: the large-sample FID given the reference as drawn.
        given_reference = lambda generated, reference, case=case: case.fid_given_reference(reference)  # noqa: E731
        if keep("fid"):
            out.append(
                Experiment(
                    "fid",
                    ("fid",),
                    case_name,
                    description,
                    _gaussian_draw(case, n, {}),
                    {"fid": fid_value},
                    conditional=given_reference,
                )
            )
        if keep("fd_inf"):
            out.append(
                Experiment(
                    "fd_inf",
                    ("fd_inf",),
                    case_name,
                    description,
                    _gaussian_draw(case, n, {}),
                    {"fd_inf": fid_value},
                    conditional=given_reference,
                    repeats=max(2, sizes.repeats // 2),
                    mc_draws=max(2, sizes.mc_draws // 3),
                )
            )
        if keep("kid"):
            kid_options = {"kid_subset_size": n, "kid_subsets": 1}
            out.append(
                Experiment(
                    "kid",
                    ("kid",),
                    case_name,
                    description,
                    _gaussian_draw(case, n, kid_options),
                    {"kid": (case.population_kid(), "closed form (cubic kernel, Gaussian moments)")},
                    closed_form={"kid": case.population_kid()},  # unbiased: the same at every N
                )
            )
        for metric, names in (
            ("precision_recall", ("precision", "recall")),
            ("density_coverage", ("density", "coverage")),
        ):
            if not keep(metric):
                continue
            exact = dict(zip(names, expected_density_coverage(n, n, 5), strict=True))
            large = {
                name: (value, f"mean of 4 draws at N = M = {10 * n:,}")
                for name, value in large_n_values(metric, case, 10 * n).items()
            }
            if metric == "density_coverage" and case_name == "equal":  # exact at N = M = 10 n
                large = {
                    name: (value, f"exact at N = M = {10 * n:,}")
                    for name, value in zip(names, expected_density_coverage(10 * n, 10 * n, 5), strict=True)
                }
            out.append(
                Experiment(
                    metric,
                    names,
                    case_name,
                    description,
                    _gaussian_draw(case, n, {}),
                    large,
                    closed_form=exact if metric == "density_coverage" and case_name == "equal" else {},
                )
            )
    if keep("is"):
        for case_name, logits in (
            ("confident", Logits(10, 4.0, 0.0)),
            ("imbalanced", Logits(10, 2.0, 0.3)),
        ):
            description = (
                f"{logits.classes} classes, sharpness {logits.sharpness:g}, imbalance {logits.imbalance:g}"
            )

            def draw(seed: int, logits: Logits = logits) -> tuple[dict, dict, dict[str, Any]]:
                return {"logits": logits.sample(n, seed)}, {}, {}

            large = (logits.population_is(), "2,000,000 draws")
            out.append(Experiment("is", ("is",), case_name, description, draw, {"is": large}))
    if keep("ms_ssim"):
        pairs = sizes.msssim_pairs
        for case_name, blobs in (("varied", Blobs(32, 3, 0.8)), ("alike", Blobs(32, 1, 0.3))):
            description = f"32x32 images, {blobs.blobs} blob(s), spread {blobs.spread:g}"

            def draw(seed: int, blobs: Blobs = blobs) -> tuple[dict, dict, dict[str, Any]]:
                kwargs = {
                    "options": {"ms_ssim_pairs": pairs},
                    "generated_source": ImageSet(blobs.sample(2 * pairs, seed)),
                    "reference_source": ImageSet(blobs.sample(4, seed + 10**7)),
                }
                return {}, {}, kwargs

            population = blobs.population_msssim(max(50 * pairs, 2_000))
            out.append(
                Experiment(
                    "ms_ssim",
                    ("ms_ssim",),
                    case_name,
                    description,
                    draw,
                    {"ms_ssim": (population, f"{max(50 * pairs, 2_000):,} pairs")},
                    {"ms_ssim": (population, "the large-sample value (a mean of independent pairs)")},
                )
            )
    if keep("bpd"):
        for case_name, pixels in (("true model", Pixels(4, 4, 0.0)), ("worse model", Pixels(4, 4, 0.3))):
            description = (
                f"{pixels.side}x{pixels.side} pixels, {pixels.levels} levels, mismatch {pixels.mismatch:g}"
            )

            def draw(seed: int, pixels: Pixels = pixels) -> tuple[dict, dict, dict[str, Any]]:
                kwargs = {
                    "options": {"bpd_levels": pixels.levels},
                    "generated_source": ImageSet(pixels.sample(1, 0), "model", pixels.model()),
                    "reference_source": ImageSet(pixels.sample(n, seed), "test"),
                }
                return {}, {}, kwargs

            out.append(
                Experiment(
                    "bpd",
                    ("bits_per_dim",),
                    case_name,
                    description,
                    draw,
                    {"bits_per_dim": (pixels.population_bpd(), "closed form (cross-entropy)")},
                    closed_form={"bits_per_dim": pixels.population_bpd()},  # a mean: unbiased
                )
            )
    for experiment in out:
        experiment.repeats = experiment.repeats or sizes.repeats
        experiment.mc_draws = experiment.mc_draws or sizes.mc_draws
    return out


def _call(experiment: Experiment, seed: int, num_resamples: int) -> tuple[dict, float, float | None]:
    """The metric's results on draw ``seed``, the seconds it took, and the conditional target."""
    generated, reference, kwargs = experiment.draw(seed)
    context = MetricContext(num_resamples=num_resamples, random_state=seed, **kwargs)
    started = time.perf_counter()
    results = get_metric(experiment.metric)(generated, reference, context)
    elapsed = time.perf_counter() - started
    target = None if experiment.conditional is None else experiment.conditional(generated, reference)
    return results, elapsed, target


def run_experiment(experiment: Experiment, num_resamples: int, bar: Any) -> list[dict[str, Any]]:
    """Repeat one experiment; one summary row per result name.

    Parameters
    ----------
    experiment : Experiment
    num_resamples : int
        Bootstrap resamples per interval.
    bar : Progress
        Advanced once per metric call.

    Returns
    -------
    list of dict
        Per result: metric, case, repeats, large-sample value and its source, expected value at N
        (and its standard error, 0 when exact), coverage of each with its standard error, mean
        interval width, seconds per call with the interval (mean and fastest), the interval's
        ``interval_covers``; with a conditional target, its coverage too (else None).
    """
    names = experiment.results
    values: dict[str, list[float]] = {name: [] for name in names}
    intervals: dict[str, list[tuple[float, float]]] = {name: [] for name in names}
    seconds, covers, targets = [], {}, []
    for repeat in range(experiment.repeats):
        results, elapsed, target = _call(experiment, repeat, num_resamples)
        seconds.append(elapsed)
        targets.append(math.nan if target is None else target)
        for name in names:
            interval = results[name].interval or (math.nan, math.nan)
            intervals[name].append((float(interval[0]), float(interval[1])))
            covers[name] = results[name].interval_covers
        bar.advance(1)
    for draw in range(experiment.mc_draws if set(names) - set(experiment.exact_expected) else 0):
        results, _, _ = _call(experiment, 10**6 + draw, 0)
        for name in names:
            values[name].append(results[name].value)
        bar.advance(1)
    rows = []
    for name in names:
        lows, highs = np.array(intervals[name]).T
        large, large_note = experiment.large_sample[name]
        if name in experiment.exact_expected:
            expected, expected_note = experiment.exact_expected[name]
            expected_se = 0.0
        else:
            draws = np.array(values[name])
            expected, expected_se = float(draws.mean()), float(draws.std(ddof=1) / math.sqrt(len(draws)))
            expected_note = f"mean of {len(draws):,} draws"
        repeats = experiment.repeats
        row = {
            "metric": name,
            "case": experiment.case,
            "description": experiment.description,
            "repeats": repeats,
            "large_sample": large,
            "large_sample_note": large_note,
            "expected_at_n": expected,
            "expected_se": expected_se,
            "expected_note": expected_note,
            "mean_width": float(np.nanmean(highs - lows)),
            "seconds_per_call": float(np.mean(seconds)),
            "fastest_call": float(np.min(seconds)),
            "interval_covers": covers.get(name),
            "closed_form": experiment.closed_form.get(name),
        }
        for key, target in (("large_sample", large), ("expected", expected)):
            p = float(np.mean((lows <= target) & (target <= highs)))
            row[f"coverage_{key}"], row[f"coverage_{key}_se"] = p, math.sqrt(p * (1 - p) / repeats)
        row["coverage_conditional"] = row["coverage_conditional_se"] = None
        if experiment.conditional is not None:
            conditional = np.array(targets)
            p = float(np.mean((lows <= conditional) & (conditional <= highs)))
            row["coverage_conditional"], row["coverage_conditional_se"] = p, math.sqrt(p * (1 - p) / repeats)
        rows.append(row)
    return rows


def measure(
    sizes: Sizes | None = None, metrics: tuple[str, ...] | None = None, progress: bool = True
) -> list[dict[str, Any]]:
    """Run every experiment; the summary rows of :func:`run_experiment`, in report order.

    Parameters
    ----------
    sizes : Sizes, optional
        Defaults: N = M = 500, 16-d, 200 repeats, 500 Monte Carlo draws, 100 resamples.
    metrics : tuple of str, optional
        Registry names to run (all when None).
    progress : bool
        Show a progress bar on stderr.

    Returns
    -------
    list of dict
    """
    from gen_eval.progress import progress_task

    sizes = sizes or Sizes()
    chosen = experiments(sizes, metrics)
    total = sum(e.repeats + (e.mc_draws if set(e.results) - set(e.exact_expected) else 0) for e in chosen)
    rows = []
    with progress_task("coverage experiments", total, enabled=progress) as bar:
        for experiment in chosen:
            rows += run_experiment(experiment, sizes.num_resamples, bar)
    return rows


def run_coverage_benchmark(
    out: str | Path = "reports/coverage.md",
    sizes: Sizes | None = None,
    metrics: tuple[str, ...] | None = None,
    progress: bool = True,
) -> tuple[str, list[dict[str, Any]]]:
    """Measure, write the markdown report to ``out``; returns its text and the summary rows.

    Parameters
    ----------
    out : str or Path
        Report to write (folders are created).
    sizes : Sizes, optional
        Experiment sizes (:meth:`Sizes.quick` for a toy run).
    metrics : tuple of str, optional
        Registry names to run (all when None).
    progress : bool
        Show a progress bar.

    Returns
    -------
    (str, list of dict)
    """
    from gen_eval.bench.coverage_report import report_text

    sizes = sizes or Sizes()
    started = time.perf_counter()
    rows = measure(sizes, metrics, progress)
    text = report_text(rows, sizes, time.perf_counter() - started)
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    Path(out).write_text(text, encoding="utf-8")
    return text, rows
