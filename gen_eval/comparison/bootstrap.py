"""What ``compare`` recomputes from a run's cached features: reference features and bootstrap replicates.

Each run's generated set is resampled with replacement (its own seeded stream), the reference
fixed, and every feature-based metric is recomputed per replicate with the run's seed and metric
options. Most metrics are simply called again on the resampled features (``num_resamples=0``).
Three use their modules' weighted-resample machinery instead, so that the replicates are those the
metric's own interval is built from: precision/recall and density/coverage keep the k-NN radii of
the original sets (a resample's duplicates would shrink its own radii to zero, biasing recall
down), and KID skips pairs of copies in its within-set sums and computes its kernels once. They are
also ~100x cheaper than a recomputation per replicate.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import TYPE_CHECKING

from gen_eval.errors import GenEvalError

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    import torch

    from gen_eval.features.cache import FeatureCache
    from gen_eval.metrics.base import MetricContext
    from gen_eval.runs.run import Run

# Result name -> registry metric, where they differ; the rest resolve through the registry.
_PRODUCED_BY = {
    "precision": "precision_recall",
    "recall": "precision_recall",
    "density": "density_coverage",
    "coverage": "density_coverage",
    "ms_ssim_reference": "ms_ssim",
    "bits_per_dim": "bpd",
}
_NOT_FEATURES = ("labels", "samples")


def reference_features(
    run: Run, label: str, cache: FeatureCache, memo: dict[str, dict[str, torch.Tensor]], notes: list[str]
) -> dict[str, torch.Tensor]:
    """The run's reference features: from the cache, else re-extracted (and cached) from its spec.

    Parameters
    ----------
    run : Run
        A loaded run; ``manifest["reference"]`` names the reference and its cache key.
    label : str
        The run's name in notes.
    cache : FeatureCache
        Where the reference's features are looked up, and stored when re-extracted.
    memo : dict
        Reference features already loaded, by cache key (runs sharing a reference load it once).
    notes : list of str
        Receives a note when the reference had to be re-extracted.

    Returns
    -------
    dict of str to torch.Tensor
        The reference feature tensors (no labels).

    Raises
    ------
    GenEvalError
        When the features are not cached and the reference cannot be re-extracted as it was.
    """
    info = run.manifest["reference"]
    if info.get("kind") == "statistics":  # a mean and covariance: read again from the file, checked
        return _statistics(run, memo)
    key = info.get("cache_key")
    if key is None:  # a source without a content fingerprint (a Python generator) is never cached
        raise GenEvalError(
            f"{run.path}: its reference {info.get('spec')} has no content fingerprint, so its features were "
            "never cached and cannot be checked; compare runs scored against a dataset, folder or array file"
        )
    if key in memo:
        return memo[key]
    tensors = cache.load(key)
    if tensors is None:
        tensors = _reextract(run, cache)
        notes.append(
            f"{label}: reference features of {info['spec']} were not in the cache {cache.root}; re-extracted and cached"
        )
    memo[key] = {name: t for name, t in tensors.items() if name not in _NOT_FEATURES}
    return memo[key]


def _statistics(run: Run, memo: dict[str, dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """A statistics reference's mean, covariance and count, from its file if it is unchanged."""
    from gen_eval.features.statistics import statistics_features
    from gen_eval.sources import open_source

    info = run.manifest["reference"]
    fingerprint = info.get("fingerprint")
    if fingerprint not in memo:
        try:
            source = open_source(info["spec"])
        except GenEvalError as exc:
            raise GenEvalError(f"{run.path}: its reference statistics cannot be read again ({exc})") from exc
        if source.kind != "statistics" or source.fingerprint != fingerprint:
            raise GenEvalError(
                f"{run.path}: its reference statistics {info['spec']} changed since the run (SHA-256 differs); "
                "re-run evaluate against the file as it is now"
            )
        memo[fingerprint] = statistics_features(source).tensors  # type: ignore[arg-type]
    return memo[fingerprint]


def _reextract(run: Run, cache: FeatureCache) -> dict[str, torch.Tensor]:
    from gen_eval.features import create_extractor
    from gen_eval.features.extract import extract_features
    from gen_eval.sources import open_source

    manifest = run.manifest
    info, options, extractor_info = manifest["reference"], manifest.get("options", {}), manifest["extractor"]
    spec = info["spec"]
    code = spec.startswith("ref:") or spec.endswith(".py") or ".py:" in spec
    try:
        source = open_source(
            spec,
            num_samples=options.get("num_reference") or (info.get("count") if code else None),
            seed=options.get("seed", 0),
            resize=options.get("resize"),
            resize_method=options.get("resize_method", "bicubic"),
            value_range=options.get("value_range", "auto"),
        )
        name = extractor_info["name"]
        extras = {}
        if name == "inception":  # every option that changes Inception's features (or adds sFID's)
            extras = {
                "channels_last": bool(options.get("channels_last")),
                "resize_mode": options.get("resize_mode", "legacy-tf"),
                "spatial": "spatial" in extractor_info.get("feature_names", []),
            }
        extractor = create_extractor(name, device="cpu", **extras)
        if extractor.describe()["weights_sha256"] != extractor_info.get("weights_sha256"):
            raise GenEvalError(f"the {name} weights here differ from the run's")
        batch = int(options.get("batch_size") or 256)
        resized = info.get("resized")  # the run's size rule, replayed (runs before it have none)
        features = extract_features(
            source,
            extractor,
            batch_size=batch,
            cache=cache,
            show_progress=False,
            size=tuple(resized["to"]) if resized else None,
            resize_method=resized["method"] if resized else "bicubic",
            reason=resized["reason"] if resized else None,
        )
    except GenEvalError as exc:
        raise GenEvalError(
            f"{run.path}: the reference features ({spec}) are not in the feature cache {cache.root} and "
            f"re-extracting them failed ({exc}); pass --cache-dir with the cache the run used, or re-run evaluate"
        ) from exc
    if source.fingerprint != info.get("fingerprint") or features.cache_key != info["cache_key"]:
        raise GenEvalError(
            f"{run.path}: the reference {spec} is not in the feature cache {cache.root} and its data changed "
            "since the run (fingerprint differs); pass --cache-dir with the cache the run used, or re-run evaluate"
        )
    return features.tensors


@contextmanager
def threads_for(n: int, dim: int) -> Iterator[None]:
    """One torch thread for small feature sets, where thread hand-offs cost more than the maths.

    Measured on 2 busy cores: one FID of 1,000 x 64 digits features takes 5 ms on one thread and
    150 ms on two. Larger sets keep every thread (they can use them on an idle machine).
    """
    import torch

    previous = torch.get_num_threads()
    if n <= 4096 and dim <= 256:
        torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def producer(result_name: str) -> str | None:
    """The registry metric computing result ``result_name`` (None when unknown)."""
    from gen_eval.metrics import resolve_metric_name

    try:
        return _PRODUCED_BY.get(result_name) or resolve_metric_name(result_name)
    except GenEvalError:
        return None


def run_replicates(
    run: Run,
    reference: Callable[[], dict[str, torch.Tensor]],
    wanted: set[str],
    num_resamples: int,
    seed: int,
    cache: FeatureCache,
    device: str = "cpu",
) -> tuple[dict[str, float], dict[str, torch.Tensor], dict[str, str]]:
    """Point values and bootstrap replicates of the feature-based results of ``run`` named in ``wanted``.

    Parameters
    ----------
    run : Run
        The run; its generated features, seed and metric options are used.
    reference : callable
        Returns its reference features (called only when a metric is recomputed).
    wanted : set of str
        Result names to recompute (others are skipped).
    num_resamples : int
        Replicates per result.
    seed : int
        Seed of this run's resamples.
    cache : FeatureCache
        Lets FID reuse the reference's cached covariance factor.
    device : str
        Where the metrics run (``"cpu"``, ``"cuda"``); the replicates come back on the CPU.

    Returns
    -------
    points, replicates, failed : dict, dict, dict
        Result name -> recomputed value; -> (num_resamples,) float64 replicates; -> why it could
        not be recomputed (those rows fall back on the stored intervals).
    """
    import torch

    from gen_eval.metrics import metric_requirement
    from gen_eval.metrics.base import MetricContext

    points: dict[str, float] = {}
    found_replicates: dict[str, torch.Tensor] = {}
    failed: dict[str, str] = {}
    options = run.manifest.get("options", {})
    groups: dict[str, list[str]] = {}
    for name in run.metrics:
        metric = producer(name)
        if (
            name in wanted
            and metric is not None
            and metric_requirement(metric) in ("features", "logits", "spatial")
        ):
            groups.setdefault(metric, []).append(name)
    if not groups:
        return points, found_replicates, failed
    generated = {k: v for k, v in run.features().items() if k not in _NOT_FEATURES}
    reference_tensors = reference()
    context = MetricContext(
        device=device,
        random_state=int(options.get("seed", 0)),
        num_resamples=0,
        options=dict(options.get("metric_options") or {}),
        cache=cache,
        reference_key=run.manifest["reference"].get("cache_key"),
    )
    with threads_for(*generated["features"].shape):
        for metric, names in groups.items():
            try:
                found = replicates(metric, generated, reference_tensors, context, num_resamples, seed)
            except (GenEvalError, KeyError, ValueError, RuntimeError) as exc:
                failed.update({name: str(exc) or type(exc).__name__ for name in names})
                continue
            for name in names:
                if name in found:
                    points[name] = found[name][0]
                    found_replicates[name] = found[name][1].detach().to("cpu", torch.float64)
    return points, found_replicates, failed


def replicates(
    metric: str,
    generated: dict[str, torch.Tensor],
    reference: dict[str, torch.Tensor] | None,
    context: MetricContext,
    num_resamples: int,
    seed: int,
) -> dict[str, tuple[float, torch.Tensor]]:
    """Point value and ``num_resamples`` bootstrap replicates of each result of registry ``metric``.

    The generated set is resampled with replacement (seeded by ``seed``), the reference fixed.

    Parameters
    ----------
    metric : str
        Registry name (``fid``, ``precision_recall``...).
    generated, reference : dict of str to torch.Tensor
        Feature dicts (the run's generated set, its reference).
    context : MetricContext
        The run's seed and metric options, ``num_resamples=0``.
    num_resamples : int
        Replicates to draw.
    seed : int
        Seed of the resamples.

    Returns
    -------
    dict
        Result name -> (point value, (num_resamples,) float64 replicates).
    """
    import torch

    from gen_eval.metrics import get_metric
    from gen_eval.metrics.bootstrap import resample_counts, resample_indices

    reference = reference or {}
    if metric in ("precision_recall", "density_coverage"):
        counts = resample_counts(len(generated["features"]), num_resamples, seed)
        return _knn_replicates(metric, generated["features"], reference["features"], context, counts)
    if metric == "kid":
        return _kid_replicates(generated["features"], reference["features"], context, num_resamples, seed)
    function = get_metric(metric)
    points = {name: r.value for name, r in function(generated, reference, context).items()}
    values: dict[str, list[float]] = {name: [] for name in points}
    for indices in resample_indices(len(generated["features"]), num_resamples, seed):
        for name, result in function(
            {k: v[indices] for k, v in generated.items()}, reference, context
        ).items():
            values[name].append(result.value)
    return {name: (points[name], torch.tensor(values[name], dtype=torch.float64)) for name in points}


def _knn_replicates(
    metric: str, x: torch.Tensor, y: torch.Tensor, context: MetricContext, counts: torch.Tensor
) -> dict[str, tuple[float, torch.Tensor]]:
    """Precision/recall or density/coverage as their modules bootstrap them: radii of the original
    sets, resample counts as weights (a resample's duplicates would shrink its own k-NN radii)."""
    from gen_eval.metrics.knn import Balls, ball_scans, knn_radii
    from gen_eval.metrics.precision_recall import check_knn_inputs, knn_options, open_balls

    n = len(x)
    if metric == "precision_recall":
        k, options = int(context.option("pr_k", 3)), knn_options(context, "pr")
        check_knn_inputs(x, y, k, "precision/recall")
        strict = open_balls(context, "pr")
        balls = [
            Balls(knn_radii(y, k, **options), "rows", strict),
            Balls(knn_radii(x, k, **options), "cols", strict, replicates=True),
        ]
        inside, reached = ball_scans(y, x, balls, counts, **options)
        hits = inside.col_any.to(counts.device, counts.dtype)
        return {
            "precision": (float(hits.mean()), counts @ hits / n),
            "recall": (float(reached.row_any.double().mean()), reached.row_replicates),
        }
    k, options = int(context.option("dc_k", 5)), knn_options(context, "dc")
    check_knn_inputs(x, y, k, "density/coverage")
    scan = ball_scans(
        y,
        x,
        [Balls(knn_radii(y, k, **options), "rows", open_balls(context, "dc"), replicates=True)],
        counts,
        **options,
    )[0]
    per_sample = scan.col_count.to(counts.device, counts.dtype) / k
    return {
        "density": (float(per_sample.mean()), counts @ per_sample / n),
        "coverage": (float(scan.row_any.double().mean()), scan.row_replicates),
    }


def _kid_replicates(
    x: torch.Tensor, y: torch.Tensor, context: MetricContext, num_resamples: int, seed: int
) -> dict[str, tuple[float, torch.Tensor]]:
    """KID's own bootstrap (kernel matrices once, subsets of each resample, pairs of copies skipped)."""
    import numpy as np
    import torch

    from gen_eval.metrics.bootstrap import resample_indices
    from gen_eval.metrics.kid import KID_MIN_INTERVAL_SAMPLES, _draw_subsets, _SubsetMMD, kid

    if len(x) < KID_MIN_INTERVAL_SAMPLES:  # as kid() itself: too few distinct resamples to mean anything
        raise GenEvalError(
            f"KID has no bootstrap below {KID_MIN_INTERVAL_SAMPLES} generated samples; this run has {len(x)}"
        )
    point = kid({"features": x}, {"features": y}, context)["kid"]
    x, y = x.to(context.device, torch.float64), y.to(context.device, torch.float64)
    d = point.details
    evaluate = _SubsetMMD(
        x, y, d["gamma"], d["coef0"], d["degree"], int(context.option("kid_max_kernel_elements", 3 * 8192**2))
    )
    subsets = int(context.option("kid_bootstrap_subsets", 10))
    positions, ref = _draw_subsets(
        np.random.RandomState(seed), len(x), len(y), d["subset_size"], num_resamples * subsets
    )
    gen = resample_indices(len(x), num_resamples, seed).repeat_interleave(subsets, dim=0).gather(1, positions)
    return {"kid": (point.value, evaluate(gen, ref).view(num_resamples, subsets).mean(1))}
