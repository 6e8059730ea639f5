"""``compare``: is run B really better than run A, on what, and by how much?

Runs are comparable only when they share the reference set (fingerprint and count) and the
feature extractor (name, weights hash, preprocessing): an FID from different features or
against a different reference measures something else. ``force=True`` shows them anyway, every
row marked as not comparable.

For every metric both runs computed, the difference B - A gets a 95% interval:

- **bootstrap** (metrics computed from features: FID, KID, IS, precision, recall, density,
  coverage, FD-infinity): each run's cached generated features are resampled with replacement,
  independently (a seed per run), the reference fixed, and the metric is recomputed on every
  replicate (:mod:`gen_eval.comparison.bootstrap`). The interval is the percentile interval of
  the replicate differences, shifted by their bias (mean difference - observed difference), the
  rule the metrics use for their own intervals: a resample holds only ~63% distinct samples,
  which moves FID up and recall or coverage down, by amounts that differ between a good and a
  collapsed model, so the unshifted interval could exclude the observed difference.
- **bootstrap on strings** (text runs: n-gram JSDs, length distance, train copies, reference
  overlap, mass coverage, TV to the truth): each run's kept strings are resampled the same way,
  the reference, training set and truth fixed (:mod:`gen_eval.comparison.text`).
- **normal** (MS-SSIM, bits/dim and anything else that needs images or a model): a normal
  approximation from the two stored intervals, (B - A) +- 1.96 sqrt(se_A^2 + se_B^2) with
  se = interval width / 3.92; no interval when a run stored none.

A verdict follows each metric's direction: "better" or "worse" (B relative to A) when the interval
excludes 0, else "no significant difference". With three or more runs a ranking on one metric
(FID by default) gives every run's value and interval and its difference to the best.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gen_eval.comparison.bootstrap import producer
from gen_eval.comparison.result import Comparison, RankEntry, Row, RunSummary
from gen_eval.errors import GenEvalError

if TYPE_CHECKING:
    import torch

    from gen_eval.runs.run import Run

Z95 = 1.959963984540054
# Option prefixes per registry metric: differing options make values differ in meaning.
_OPTION_PREFIX = {"precision_recall": "pr_", "density_coverage": "dc_", "fd_inf": "fd_inf_"}
# Results that describe the reference, not the generated set: listed per run, never compared.
_REFERENCE_ONLY = {"ms_ssim_reference"}
_SIZE_BIASED = {"fid", "kid", "fd_inf", "recall", "coverage", "is"}


@dataclass
class _RunData:
    run: Run
    label: str
    seed: int  # this run's bootstrap stream
    points: dict[str, float] = field(default_factory=dict)  # recomputed from the features
    replicates: dict[str, torch.Tensor] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)  # result -> why it could not be recomputed


def compare(
    run_paths: list[str | Path],
    *,
    force: bool = False,
    num_resamples: int = 200,
    random_state: int = 0,
    cache_dir: str | Path | None = None,
    metric: str | None = None,
    device: str = "auto",
    show_progress: bool = False,
) -> Comparison:
    """Compare two or more runs metric by metric, with intervals for the differences.

    Parameters
    ----------
    run_paths : list of str or Path
        Run directories written by ``evaluate``; the first is the baseline A.
    force : bool
        Compare runs with different references or features anyway (rows marked not comparable).
    num_resamples : int
        Bootstrap resamples per run (0: only normal approximations from stored intervals).
    random_state : int
        Seed of the resamples; each run draws its own stream from it and its path.
    cache_dir : str or Path, optional
        Feature cache holding the reference features (default ``$GEN_EVAL_CACHE`` or
        ``~/.cache/gen-eval``); a missing reference is re-extracted and cached there.
    metric : str, optional
        Result to rank the runs by (default ``fid`` when every run has it); two runs are ranked
        only when it is given.
    device : {"auto", "cpu", "cuda"}
        Where the metrics are recomputed (``auto``: CUDA when present).
    show_progress : bool
        Progress bar on stderr.

    Returns
    -------
    Comparison
        Rows (each later run against the first, per shared metric), warnings, notes, the runs,
        and with three or more runs a ranking.

    Raises
    ------
    GenEvalError
        Fewer than two runs, a missing or corrupt run, incomparable runs without ``force``, or a
        reference whose features are neither cached nor re-extractable.
    """
    from gen_eval.comparison.bootstrap import reference_features, run_replicates
    from gen_eval.comparison.text import text_replicates
    from gen_eval.evaluation import resolve_device
    from gen_eval.features.cache import FeatureCache, default_cache_dir
    from gen_eval.progress import progress_task
    from gen_eval.runs.run import load_run

    if len(run_paths) < 2:
        raise GenEvalError("compare needs at least two run directories: gen-eval compare RUN_A RUN_B")
    if num_resamples < 0:
        raise GenEvalError(f"--num-resamples must be >= 0, got {num_resamples}")
    device = resolve_device(device)
    runs = [load_run(path) for path in run_paths]
    data = [_RunData(run, label, _seed(random_state, runs, i)) for i, (run, label) in enumerate(_label(runs))]
    reasons = [f"{d.label}: {r}" for d in data[1:] for r in incomparable(data[0].run, d.run)]
    if reasons and not force:
        raise GenEvalError(
            f"{runs[0].path} is not comparable with {'; '.join(reasons)}: an FID from different features or "
            "against a different reference measures something else; pass --force to show them anyway"
        )
    comparison = Comparison([], [], comparable=not reasons, num_resamples=num_resamples)
    comparison.random_state = random_state
    comparison.warnings += [f"not comparable with {data[0].label}: {r}" for r in reasons]
    cache = FeatureCache(Path(cache_dir) if cache_dir is not None else default_cache_dir())
    references: dict[str, dict[str, torch.Tensor]] = {}
    text_memo: dict = {}  # reference and training strings, read once
    # Results each run is compared on: those it shares with the baseline (the ranking's are among them).
    wanted = {d.label: set(d.run.metrics) & set(data[0].run.metrics) for d in data[1:]}
    wanted[data[0].label] = set().union(*wanted.values())
    with progress_task("bootstrap", len(data), show_progress and num_resamples > 0) as bar:
        for d in data:
            if num_resamples > 0:
                # Loaded only when a metric needs it: the stored intervals of MS-SSIM or bits/dim do not.
                reference = partial(reference_features, d.run, d.label, cache, references, comparison.notes)
                d.points, d.replicates, d.failed = run_replicates(
                    d.run, reference, wanted[d.label], num_resamples, d.seed, cache, device
                )
                # Text results read strings, not features: replicates from the strings the run kept.
                found = text_replicates(d.run, wanted[d.label], num_resamples, d.seed, text_memo)
                for into, part in zip((d.points, d.replicates, d.failed), found, strict=True):
                    into.update(part)
            bar.advance(1)
    for d in data:
        for name, why in d.failed.items():
            comparison.warnings.append(f"{d.label}: {name} not recomputed from features ({why})")
    for d in data[1:]:
        why = incomparable(data[0].run, d.run)
        for name in (n for n in data[0].run.metrics if n in d.run.metrics and n not in _REFERENCE_ONLY):
            comparison.rows.append(_row(name, data[0], d, why))
    comparison.runs = [_summary(d) for d in data]
    comparison.human = _human(data, comparison.warnings)
    if len(data) > 2 or metric is not None:
        _rank(comparison, data, metric)
    return comparison


def _human(data: list[_RunData], warnings: list[str]) -> list[dict[str, Any]]:
    """Each later run's human error rate against the baseline's, where a study judged both."""
    from gen_eval.human import human_comparison

    found = []
    for d in data[1:]:
        try:
            versus = human_comparison(data[0].run.path, d.run.path)
        except GenEvalError as exc:  # a damaged study database costs the human rows, not the comparison
            warnings.append(f"human judgements not read: {exc}")
            return found
        if versus is not None:
            found.append({"label_a": data[0].label, "label_b": d.label, **versus})
    return found


def incomparable(a: Run, b: Run) -> list[str]:
    """Why runs ``a`` and ``b`` cannot be compared (empty when they can)."""
    reasons = []
    ra, rb = a.manifest["reference"], b.manifest["reference"]
    fa, fb = ra.get("fingerprint"), rb.get("fingerprint")
    # The content hash decides (one folder under two paths is one reference); the spec only without it.
    same_data = fa == fb if fa or fb else ra.get("spec") == rb.get("spec")
    if not same_data or ra.get("count") != rb.get("count"):
        reasons.append(
            f"different reference ({ra.get('spec')}, n={ra.get('count')} vs {rb.get('spec')}, n={rb.get('count')})"
        )
    ea, eb = a.manifest["extractor"], b.manifest["extractor"]
    if ea.get("name") != eb.get("name"):
        reasons.append(f"different features ({ea.get('name')} vs {eb.get('name')})")
    elif ea.get("weights_sha256") != eb.get("weights_sha256"):
        short = [str(e.get("weights_sha256"))[:12] for e in (ea, eb)]
        reasons.append(f"different {ea.get('name')} weights ({short[0]} vs {short[1]})")
    elif ea.get("preprocessing") != eb.get("preprocessing"):
        reasons.append(f"different {ea.get('name')} preprocessing")
    return reasons


def _label(runs: list[Run]) -> list[tuple[Run, str]]:
    names = [run.path.name or str(run.path) for run in runs]
    labelled = []
    for i, (run, name) in enumerate(zip(runs, names, strict=True)):
        clash = names.count(name) > 1
        labelled.append((run, f"{name} ({i + 1})" if clash else name))
    return labelled


def _seed(random_state: int, runs: list[Run], position: int) -> int:
    # From the run's path, not its position, so that swapping A and B mirrors the interval exactly;
    # a run given twice gets a second, independent stream.
    path = runs[position].path.resolve()
    repeat = sum(run.path.resolve() == path for run in runs[:position])
    text = f"{random_state}:{path}:{repeat}"
    return int(hashlib.sha256(text.encode()).hexdigest()[:8], 16) & 0x7FFFFFFF


def difference(a: _RunData, b: _RunData, name: str) -> tuple[float, tuple[float, float] | None, str]:
    """B - A of result ``name`` (stored values), its 95% interval and the method behind it."""
    from gen_eval.metrics.bootstrap import percentile_interval

    ra, rb = a.run.metrics[name], b.run.metrics[name]
    diff = rb.value - ra.value
    if name in a.replicates and name in b.replicates:
        replicates = b.replicates[name] - a.replicates[name]
        low, high = percentile_interval(replicates)
        bias = float(replicates[replicates.isfinite()].mean()) - (b.points[name] - a.points[name])
        return diff, (low - bias, high - bias), "bootstrap"
    if ra.interval is None or rb.interval is None:
        return diff, None, "none"
    se = math.hypot(*((r.interval[1] - r.interval[0]) / (2 * Z95) for r in (ra, rb)))
    return diff, (diff - Z95 * se, diff + Z95 * se), "normal"


def verdict(interval: tuple[float, float] | None, direction: str) -> str:
    """The verdict on B - A: better or worse (given which way is better) when ``interval`` excludes 0."""
    if interval is None or not all(math.isfinite(v) for v in interval):
        return "not tested"
    if interval[0] > 0:
        return "better" if direction == "higher" else "worse"
    if interval[1] < 0:
        return "worse" if direction == "higher" else "better"
    return "no significant difference"


def _row(name: str, a: _RunData, b: _RunData, incomparable: list[str]) -> Row:
    ra, rb = a.run.metrics[name], b.run.metrics[name]
    diff, interval, method = difference(a, b, name)
    warnings = [f"not comparable: {'; '.join(incomparable)}"] if incomparable else []
    if ra.num_generated != rb.num_generated:
        why = (
            f"{name} depends on N (FID is biased upward at small N)" if name in _SIZE_BIASED else "N differs"
        )
        warnings.append(
            f"sample sizes differ ({ra.num_generated:,} vs {rb.num_generated:,}): {why}; compare runs of equal size"
        )
    if ra.kind != rb.kind:
        warnings.append(f"{a.label} is {ra.kind!r}, {b.label} {rb.kind!r}")
    warnings += _option_differences(producer(name), a.run, b.run)
    for d in (a, b):
        if name in d.points and not math.isclose(
            d.points[name], d.run.metrics[name].value, rel_tol=1e-6, abs_tol=1e-9
        ):
            warnings.append(
                f"{d.label}: recomputed {d.points[name]:.6g}, stored {d.run.metrics[name].value:.6g} (other gen-eval version?)"
            )
    if method == "none":
        warnings.append("no interval stored by a run; re-evaluate with --num-resamples > 0")
    return Row(
        metric=name,
        run_a=a.label,
        run_b=b.label,
        a=ra.value,
        b=rb.value,
        difference=diff,
        interval=interval,
        direction=ra.direction,
        method=method,
        verdict=verdict(interval, ra.direction),
        comparable=not incomparable,
        num_generated=(ra.num_generated, rb.num_generated),
        warnings=warnings,
    )


def _option_differences(metric: str | None, a: Run, b: Run) -> list[str]:
    if metric is None:
        return []
    prefix = _OPTION_PREFIX.get(metric, f"{metric}_")
    oa, ob = (r.manifest.get("options", {}).get("metric_options") or {} for r in (a, b))
    keys = sorted(k for k in set(oa) | set(ob) if k.startswith(prefix) and oa.get(k) != ob.get(k))
    return [f"options differ: {k} = {oa.get(k, 'default')} vs {ob.get(k, 'default')}" for k in keys]


def _own_interval(d: _RunData, name: str) -> tuple[float, float] | None:
    """The run's interval: the stored one, else from its replicates (shifted by their bias)."""
    from gen_eval.metrics.bootstrap import recentred_interval

    stored = d.run.metrics[name]
    if stored.interval is not None or name not in d.replicates:
        return stored.interval
    replicates = d.replicates[name]
    lower = 0.0 if d.points[name] >= 0 and bool((replicates >= 0).all()) else -math.inf
    return recentred_interval(replicates, d.points[name], 0.95, lower=lower, upper=math.inf)


def _summary(d: _RunData) -> RunSummary:
    manifest, collapse = d.run.manifest, d.run.collapse or {}
    classes = (collapse.get("detectors") or {}).get("classes") or {}
    counts = None
    if "generated_counts" in classes:
        counts = {"generated": classes["generated_counts"], "reference": classes.get("reference_counts")}
    metrics = {
        name: {
            "value": result.value,
            "interval": _own_interval(d, name),
            "interval_source": "stored"
            if result.interval is not None
            else ("bootstrap" if name in d.replicates else None),
            "direction": result.direction,
            "num_generated": result.num_generated,
            "interval_covers": result.interval_covers,  # None for runs written before it existed
        }
        for name, result in d.run.metrics.items()
    }
    return RunSummary(
        d.label,
        str(d.run.path),
        manifest["generated"].get("spec", "?"),
        manifest["generated"].get("count"),
        manifest["reference"].get("spec", "?"),
        manifest["extractor"].get("name", "?"),
        collapse.get("verdict"),
        collapse.get("status"),
        metrics,
        counts,
    )


def _rank(comparison: Comparison, data: list[_RunData], metric: str | None) -> None:
    shared = [n for n in data[0].run.metrics if all(n in d.run.metrics for d in data)]
    if metric is None:
        metric = "fid" if "fid" in shared else (shared[0] if shared else None)
        if metric is None:
            comparison.warnings.append("no metric shared by every run: no ranking")
            return
    elif metric not in shared:
        raise GenEvalError(
            f"--metric {metric}: not computed by every run; choose from {', '.join(shared) or 'none'}"
        )
    direction = data[0].run.metrics[metric].direction
    ordered = sorted(data, key=lambda d: d.run.metrics[metric].value * (1 if direction == "lower" else -1))
    best = ordered[0]
    comparison.ranking_metric, comparison.ranking = metric, []
    for position, d in enumerate(ordered, start=1):
        diff, interval, _ = difference(best, d, metric) if d is not best else (0.0, None, "")
        comparison.ranking.append(
            RankEntry(
                position,
                d.label,
                d.run.metrics[metric].value,
                _own_interval(d, metric),
                diff,
                interval,
                "best" if d is best else verdict(interval, direction),
                comparison.comparable,
            )
        )
