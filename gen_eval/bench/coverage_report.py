"""The markdown report of ``gen-eval bench coverage`` (reports/coverage.md).

The report's reading of each metric (:data:`READINGS`) says what its interval covers and what
it does not; the measured coverages are printed beside it, so a reading the numbers contradict
shows at once.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from gen_eval.bench.coverage import Sizes

# metric -> (what the interval covers, what it does not)
READINGS: dict[str, tuple[str, str]] = {
    "fid": (
        "FID **at this sample size**: the mean FID over independent draws of N generated and M "
        "reference samples. Valid for comparing runs of equal N (and M).",
        "The large-sample (population) FID. FID is biased upward by O(1/N) and resampling the "
        "generated set cannot remove that bias: with equal distributions (true FID 0) the interval "
        "lies above 0. Use `fd_inf` for the large-sample value.",
    ),
    "fd_inf": (
        "The large-sample FID **against this reference set**: FID on generated subsets of several "
        "sizes, extrapolated to 1/N = 0, so the generated set's O(1/N) bias is gone (the column "
        "'given the reference').",
        "The population FID when the reference set is small: the reference's own O(1/M) bias "
        "stays (FD-inf extrapolates only the generated set): with M = N, about half of FID's bias "
        "(the two sets contribute alike). Extrapolation adds variance (a wider interval) and costs more "
        "per call (below).",
    ),
    "kid": (
        "KID is unbiased, so its expected value at any N is the large-sample MMD^2 (the closed "
        "form and the Monte Carlo mean agree, see the checks): the interval is for both.",
        "It resamples the generated set only, the reference fixed, so it leaves out the "
        "reference's sampling noise and covers somewhat less than 95%.",
    ),
    "is": (
        "IS **at this sample size and number of splits** (N/10 samples per split by default).",
        "The large-sample IS: each split estimates the marginal p(y) from N/10 samples, which "
        "biases IS downward (by a lot when splits are small and classes many).",
    ),
    "precision": (
        "Precision at this N, M and k: the expected value over draws of both sets.",
        "An N-free value (the k-NN radii shrink as N grows, so the value drifts with N), and the "
        "reference's variability (its balls are held fixed): coverage falls short of 95%. "
        "Compare runs at equal N, M and k.",
    ),
    "recall": (
        "Recall at this N, M and k: the expected value over draws of both sets.",
        "An N-free value; the reference set and its radii are held fixed, so coverage falls "
        "short of 95%. Compare runs at equal N, M and k.",
    ),
    "density": (
        "Density at this N, M and k (with equal distributions exactly 1 at every N).",
        "The variability of the reference balls: every generated sample is counted against the "
        "same fixed balls, so the interval is too narrow. Read density differences well inside "
        "its interval as noise.",
    ),
    "coverage": (
        "Coverage at this N, M and k: the expected value over draws of both sets.",
        "An N-free value (coverage rises with M / N and falls with k); the reference balls are "
        "held fixed. Compare runs at equal N, M and k.",
    ),
    "ms_ssim": (
        "The mean MS-SSIM of two independent generated images (a mean over disjoint pairs is "
        "unbiased at any number of pairs), at this image size and these MS-SSIM settings.",
        "Anything about the reference set: read it against `ms_ssim_reference`, computed the same way.",
    ),
    "bits_per_dim": (
        "The model's expected bits/dim on the test distribution (a mean over test examples "
        "under a fixed model is unbiased).",
        "Other test sets, or the variability of training the model again.",
    ),
}


def _number(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.4g}" if abs(value) >= 1e-3 or value == 0 else f"{value:.2e}"


def _coverage(p: float, se: float) -> str:
    cell = f"{p:.2f} ± {se:.2f}"
    return f"**{cell}**" if p + 2 * se < 0.95 else cell  # short of 95% beyond 2 standard errors


def summary_table(rows: list[dict[str, Any]]) -> str:
    """The coverage table: one row per metric and case."""
    from gen_eval.bench.common import markdown_table

    header = [
        "metric",
        "case",
        "R",
        "large-sample value",
        "expected at N",
        "covers large-sample",
        "covers expected at N",
        "covers large-sample given the reference",
        "mean width",
        "s per call (fastest)",
    ]
    body = [
        [
            f"`{row['metric']}`",
            row["case"],
            row["repeats"],
            _number(row["large_sample"]),
            _number(row["expected_at_n"])
            + (f" ± {_number(row['expected_se'])}" if row["expected_se"] else ""),
            _coverage(row["coverage_large_sample"], row["coverage_large_sample_se"]),
            _coverage(row["coverage_expected"], row["coverage_expected_se"]),
            "-"
            if row.get("coverage_conditional") is None
            else _coverage(row["coverage_conditional"], row["coverage_conditional_se"]),
            _number(row["mean_width"]),
            f"{row['fastest_call']:.3f}",
        ]
        for row in rows
    ]
    return markdown_table(header, body)


def checks_table(rows: list[dict[str, Any]]) -> tuple[str, list[float]]:
    """Closed-form expected values against their Monte Carlo means; the table and the z-scores."""
    from gen_eval.bench.common import markdown_table

    body, scores = [], []
    for row in rows:
        if row.get("closed_form") is None or not row["expected_se"]:
            continue
        z = (row["expected_at_n"] - row["closed_form"]) / row["expected_se"]
        scores.append(z)
        body.append(
            [
                f"`{row['metric']}`",
                row["case"],
                _number(row["closed_form"]),
                f"{_number(row['expected_at_n'])} ± {_number(row['expected_se'])}",
                f"{z:+.1f}",
            ]
        )
    header = ["metric", "case", "closed form", "Monte Carlo mean at N", "difference / s.e."]
    return markdown_table(header, body), scores


def _cost(metric: str, rows: list[dict[str, Any]]) -> list[str]:
    """FD-inf's cost relative to FID's, per case, from the fastest calls (least disturbed by load)."""
    if metric != "fd_inf":
        return []
    fastest = {(row["metric"], row["case"]): row["fastest_call"] for row in rows}
    ratios = [
        f"{fastest[('fd_inf', case)] / fastest[('fid', case)]:.1f}x ({case})"
        for (name, case) in fastest
        if name == "fd_inf" and ("fid", case) in fastest and fastest[("fid", case)] > 0
    ]
    return (
        [f"- Cost: FID's time per call times {', '.join(ratios)}, both with their intervals."]
        if ratios
        else []
    )


def _readings(rows: list[dict[str, Any]]) -> list[str]:
    lines = []
    for metric in dict.fromkeys(row["metric"] for row in rows):
        covers, does_not = READINGS.get(metric, ("(no reading)", "(no reading)"))
        mine = [row for row in rows if row["metric"] == metric]
        expected = ", ".join(f"{row['coverage_expected']:.2f} ({row['case']})" for row in mine)
        large = ", ".join(f"{row['coverage_large_sample']:.2f} ({row['case']})" for row in mine)
        measured = (
            f"- Measured coverage: of the expected value at N {expected}; of the large-sample value {large}"
        )
        if mine[0].get("coverage_conditional") is not None:
            given = ", ".join(f"{row['coverage_conditional']:.2f} ({row['case']})" for row in mine)
            measured += f"; of the large-sample value given the reference {given}"
        sentence = mine[0].get("interval_covers") or "(none set)"
        lines += [f"### `{metric}`", "", f"- **Covers**: {covers}", f"- **Does not cover**: {does_not}"]
        lines += [measured + ".", *_cost(metric, rows), f"- `Result.interval_covers`: _{sentence}_", ""]
    return lines


def report_text(rows: list[dict[str, Any]], sizes: Sizes, seconds: float) -> str:
    """The whole report as markdown.

    Parameters
    ----------
    rows : list of dict
        :func:`gen_eval.bench.coverage.measure`'s rows.
    sizes : Sizes
        The sizes they were measured at.
    seconds : float
        Wall time of the whole measurement.

    Returns
    -------
    str
    """
    from gen_eval.bench.common import environment_lines

    checks, scores = checks_table(rows)
    notes = {row["metric"]: row for row in rows}
    sources = sorted({f"`{m}`: {r['large_sample_note']}" for m, r in notes.items()})
    lines = [
        "# What each 95% interval covers: coverage experiments",
        "",
        "Regenerate with `gen-eval bench coverage` (this file is written by it; `--quick` for a toy run).",
        "",
        *environment_lines(),
        f"- N = M = {sizes.num_samples:,} samples per set, Gaussian features in {sizes.dim}-d, "
        f"{sizes.num_resamples} bootstrap resamples per interval (gen-eval's default), Monte Carlo "
        f"expected values from {sizes.mc_draws:,} independent draws (FD-inf: half the repeats, a third "
        "of the draws); "
        f"MS-SSIM: {sizes.msssim_pairs} disjoint pairs of 32x32 images per value",
        f"- {seconds / 60:.1f} min in all on a shared machine (other jobs were running): seconds per call "
        "are the fastest of the R calls, still upper bounds",
        "",
        "Each of R repeats draws both sets afresh from known distributions, computes the metric with its "
        "95% interval (the generated set resampled, the reference fixed, as `gen-eval evaluate` does) and "
        "checks whether the interval holds (a) the **large-sample value** (the limit as N grows) and (b) "
        "the **expected value at this N** (the mean over many draws at the same sizes); for FID and FD-inf "
        "also (c) the **large-sample value given the reference**: FID of the generated population against "
        "the Gaussian of the reference set as drawn (FD-inf extrapolates the generated set only). Coverage is the "
        "fraction of repeats whose interval held it, ± its Monte Carlo standard error sqrt(p(1-p)/R); "
        "**bold**: short of 95% by more than two standard errors. Cases: Gaussian features, `equal` "
        "(both N(0, I)) and `different` (mean shift 0.25 and scale 1.2 per coordinate); IS on "
        "synthetic classifier logits; MS-SSIM on random blob images; bits/dim of a factorised model on "
        "test images of independent pixels.",
        "",
        "Large-sample values: " + "; ".join(sources) + ". The k-NN metrics (precision, recall, density, "
        "coverage) have no limit free of N (their balls shrink as N grows): their column shows the value "
        "at ten times the sample size, to show how far the value moves with N.",
        "",
        summary_table(rows),
        "",
        "## What each interval covers",
        "",
        *_readings(rows),
        "## Checks against closed forms",
        "",
        "Where the expected value at N is known exactly, the Monte Carlo mean must agree with it within "
        "a few standard errors (KID: unbiased, so the closed-form MMD^2 of the two Gaussians; density "
        "and coverage with equal distributions: 1 and 1 - prod_{j<k} (N-1-j)/(N-1+M-j); bits/dim: the "
        "cross-entropy).",
        "",
        checks,
        "",
        f"Largest |difference / s.e.|: {max((abs(z) for z in scores), default=0.0):.1f}.",
        "",
    ]
    return "\n".join(lines)
