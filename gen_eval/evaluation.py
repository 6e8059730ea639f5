"""``evaluate``: one sample set against a reference, end to end (what ``gen-eval evaluate`` runs)."""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gen_eval.collapse.check import CollapseReport
from gen_eval.errors import GenEvalError
from gen_eval.evaluation_setup import (
    COLLAPSE_METRICS,
    default_run_dir,
    is_code,
    plan_features_and_metrics,
    resolve_device,
)
from gen_eval.features import choose_extractor as choose_features
from gen_eval.kinds import get_kind
from gen_eval.manifest import set_entries
from gen_eval.metrics.base import MetricContext
from gen_eval.metrics.result import Result
from gen_eval.progress import progress_stage, progress_task
from gen_eval.sources import Source, open_source, shortfall

# Part of this module's API (callers and tests import them from here), though defined elsewhere.
__all__ = ["Evaluation", "choose_features", "default_run_dir", "evaluate", "resolve_device"]


def _labels(features: Any) -> Any:
    """The features' labels as int64 numpy (one per row), or None."""
    labels = getattr(features, "labels", None)
    return None if labels is None else labels.cpu().numpy().astype("int64", copy=False)


@dataclass
class Evaluation:
    """What an evaluation produced: the metrics, the manifest, and where the run was written."""

    metrics: dict[str, Result]
    manifest: dict[str, Any]
    run_dir: Path | None = None
    notes: list[str] = field(default_factory=list)
    # The feature tensors of both sets ({"generated": {...}, "reference": {...}}), for analyses
    # that follow (class histograms, collapse checks); not part of the printed or JSON output.
    features: dict[str, dict[str, Any]] = field(default_factory=dict, repr=False)
    # The mode-collapse verdict and its detectors (None when the check was turned off).
    collapse: CollapseReport | None = None
    # () -> (figures by name, evidence image grids): computed on first use, it reads sample images.
    collapse_evidence: Callable[[], tuple[dict[str, Any], dict[str, Any]]] | None = field(
        default=None, repr=False
    )
    # About the run as a whole (fewer samples than asked for); also in the manifest.
    warnings: list[str] = field(default_factory=list)

    def collapse_figures(self) -> dict[str, Any]:
        """Plotly figures of the collapse verdict (data plots and evidence image grids)."""
        return self.collapse_evidence()[0] if self.collapse_evidence is not None else {}

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_dir": str(self.run_dir) if self.run_dir else None,
            "metrics": {name: result.to_dict() for name, result in self.metrics.items()},
            "collapse": self.collapse.to_dict() if self.collapse is not None else None,
            "notes": self.notes,
            "warnings": self.warnings,
            "manifest": self.manifest,
        }


def evaluate(
    source: str | Path | Source,
    reference: str | Path | Source = "digits:test",
    *,
    features: str = "auto",
    metrics: str | tuple[str, ...] | list[str] = "auto",
    num_samples: int | None = None,
    num_reference: int | None = None,
    batch_size: int | None = None,
    device: str = "auto",
    seed: int = 0,
    num_resamples: int = 100,
    metric_options: dict[str, Any] | None = None,
    out: str | Path | None = None,
    overwrite: bool = False,
    cache_dir: str | Path | bool | None = True,
    trust_code: bool = False,
    sandbox: bool = True,
    unsafe_no_isolation: bool = False,
    inception_weights: str | Path | None = None,
    weights: str | Path | None = None,
    channels_last: bool | None = None,
    resize: int | None = None,
    resize_method: str = "bicubic",
    resize_mode: str | None = None,
    key: str | None = None,
    value_range: str = "auto",
    resample_points: int | None = None,
    collapse: bool = True,
    train: str | Path | Source | None = "auto",
    show_progress: bool = False,
    reference_features: str | None = None,
) -> Evaluation:
    """Evaluate a sample set against a reference and optionally write a run directory.

    Parameters
    ----------
    source : str, Path or Source
        The samples to score: a folder, ``.npz``/``.npy``, ``file.py:factory`` (with
        ``trust_code``), or an embedded dataset such as ``digits:train``.
    reference : str, Path or Source
        What they are compared with (same spec forms); its features are cached. A statistics file
        (pytorch-fid/clean-fid/ADM ``.npz``, EDM2 ``.pkl``, ``gen-eval stats``) gives FID and FD-inf
        only; the metrics that need reference samples and the collapse check are left out, with a
        warning each (:mod:`gen_eval.sources.statistics`).
    features : str
        Extractor name (``gen-eval features``) or ``"auto"`` (identity for 2-D/vector data,
        ``digits`` against the embedded digits, ``inception`` otherwise).
    metrics : "auto", "collapse" or sequence of str
        Metric names (``gen-eval metrics``); ``"auto"`` computes every default metric whose
        needs are met (IS only with class logits, bits/dim only for models with ``log_prob``);
        ``"collapse"`` only what the collapse verdict reads (coverage, and MS-SSIM for images).
    num_samples : int, optional
        Generated samples to use (the first N; the number drawn from a generator, which
        defaults to the reference's size).
    num_reference : int, optional
        Reference samples to use (the first N).
    batch_size : int, optional
        Samples per forward pass; chosen per extractor and device when omitted.
    device : {"auto", "cpu", "cuda"}
        ``auto`` uses CUDA when present.
    seed : int
        Seed for sampling from generators and for every random choice in the metrics.
    num_resamples : int
        Bootstrap resamples for the 95% intervals (0: no intervals).
    metric_options : dict, optional
        Per-metric overrides such as ``{"kid_subset_size": 500, "is_splits": 10}`` (values may be
        text, ``"500"``, as from ``-o``). Each key must be an option of a metric or detector that
        runs (``gen-eval metrics``), and each value of its type; otherwise a GenEvalError is
        raised before any work is done.
    out : str or Path, optional
        Run directory to write; nothing is written when None.
    overwrite : bool
        Replace an existing run directory at ``out``.
    cache_dir : str, Path, True or None
        Feature cache location; True for the default (``$GEN_EVAL_CACHE`` or
        ``~/.cache/gen-eval``), None/False to disable.
    trust_code : bool
        Allow running a Python generator file.
    sandbox : bool
        Run that file in a separate process with time and memory limits that serves ``sample``
        and ``log_prob`` (default); False imports it here (``encode``/``decode`` become usable).
    unsafe_no_isolation : bool
        Run that process even where the kernel lacks Landlock or seccomp filters (refused by
        default, naming what is missing); the code then runs with your permissions.
    inception_weights : str or Path, optional
        Local Inception weights file (else ``$GEN_EVAL_INCEPTION_WEIGHTS``, else torch hub cache).
    weights : str or Path, optional
        The weights file of another extractor that reads one (``dinov2-*``, ``clip-*``); else its
        environment variable, else the torch hub cache (``gen-eval features`` names both).
    channels_last : bool, optional
        Run Inception in channels-last memory layout. None (default): on for the CPU, where it is
        about 1.6x faster on 2 cores with features within 2e-6 relative of the default layout
        (measured; torch-fidelity runs the default layout); off on CUDA.
    resize, key, value_range, resample_points
        Source options (see :func:`gen_eval.sources.open_source`; ``resample_points`` brings
        point clouds of different sizes to one count).
    resize_method : {"bicubic", "bilinear", "area", "nearest", "refuse"}
        How images whose size differs from what the extractor reads (its input size, else the
        reference's size) are resized, or ``"refuse"`` to make that an error; also the method of
        ``resize``. Every resize is stated in ``warnings`` and in the manifest (``resized``).
        See :mod:`gen_eval.sources.resize`.
    resize_mode : str, optional
        How images reach the extractor's input size (None: its default). Inception:
        ``legacy-tf`` (torch-fidelity's), ``clean`` (clean-fid's) or ``legacy-pytorch``
        (pytorch-fid's), :mod:`gen_eval.features.inception_input`; the DINOv2/CLIP encoders:
        ``bicubic`` (EDM2's) or ``legacy-tf`` (torch-fidelity's), :mod:`gen_eval.features.encoders`.
        Recorded in the extractor's preprocessing (manifest and feature cache key); another
        extractor refuses it.
    collapse : bool
        Run the mode-collapse detectors (:mod:`gen_eval.collapse`) and give a verdict; their
        options go in ``metric_options`` (``ndb_bins``, ``birthday_batch_sizes``...).
    train : str, Path, Source, "auto" or None
        Training set for the memorisation check; ``"auto"`` takes the train split of an embedded
        reference dataset (``digits:test`` -> ``digits:train``); None skips the check.
    show_progress : bool
        Progress bars on stderr.
    reference_features : str, optional
        ``NAME[@SHA256]``: the extractor a statistics file that does not record it was made with
        (pytorch-fid, clean-fid, ADM); the manifest says it was stated by the user.

    Returns
    -------
    Evaluation
    """
    from gen_eval.features import check_resize_mode_name
    from gen_eval.features.cache import FeatureCache, default_cache_dir
    from gen_eval.features.extract import extract_features
    from gen_eval.features.statistics import statistics_features
    from gen_eval.metrics import (
        get_metric,
        metric_requirement,
        resolve_metric_name,
    )
    from gen_eval.options import coerce_options
    from gen_eval.sources.resize import check_method, resize_warning, target_size
    from gen_eval.sources.statistics_source import (
        is_statistics_reference,
    )

    # "collapse": only what the collapse verdict reads (coverage; MS-SSIM for images).
    requested = None if metrics in ("auto", "collapse") else [resolve_metric_name(m) for m in metrics]
    # Options are checked before anything is opened or computed: a typo must not cost a run.
    expected = COLLAPSE_METRICS if metrics == "collapse" else requested
    metric_options = coerce_options(metric_options, expected, collapse)
    if num_resamples < 0:
        raise GenEvalError(f"--num-resamples must be >= 0, got {num_resamples}")
    device = resolve_device(device)
    check_method(resize_method)
    check_resize_mode_name(resize_mode)
    source_options: dict[str, Any] = {
        "trust_code": trust_code,
        "sandbox": sandbox,
        "unsafe_no_isolation": unsafe_no_isolation,
        "resize": resize,
        "resize_method": resize_method,
        "value_range": value_range,
        "resample_points": resample_points,
    }
    ref = open_source(reference, num_samples=num_reference, seed=seed, **source_options)
    if is_code(source) and num_samples is None:
        num_samples = len(ref)
    gen = open_source(source, num_samples=num_samples, seed=seed, key=key, **source_options)
    # A mean and covariance (FID and FD-inf only): the flags that go with it are checked here.
    from_statistics = is_statistics_reference(
        ref, gen, reference_features, metrics == "collapse", num_reference
    )
    asked = ((gen, num_samples, "samples"), (ref, num_reference, "reference samples"))
    run_warnings = [w for s, n, what in asked if (w := shortfall(s, n, what)) is not None]
    if gen.data_kind != ref.data_kind:
        raise GenEvalError(
            f"{gen.spec} holds {gen.data_kind}s but the reference {ref.spec} holds {ref.data_kind}s; "
            "compare like with like"
        )

    plan = plan_features_and_metrics(
        gen,
        ref,
        features=features,
        from_statistics=from_statistics,
        reference_features=reference_features,
        device=device,
        channels_last=channels_last,
        resize_mode=resize_mode,
        requested=requested,
        collapse_only=metrics == "collapse",
        inception_weights=inception_weights,
        weights=weights,
        batch_size=batch_size,
        metric_options=metric_options,
        train=train,
        collapse=collapse,
    )
    name, extractor, provenance, size = plan.name, plan.extractor, plan.provenance, plan.batch_size
    resize_mode = getattr(extractor, "resize_mode", None)  # the convention used, recorded in the manifest
    channels_last, train_spec, chosen, collapse = (
        plan.channels_last,
        plan.train_spec,
        plan.chosen,
        plan.collapse,
    )
    run_warnings += plan.warnings
    cache_root = default_cache_dir() if cache_dir is True else (cache_dir or None)
    cache = FeatureCache(cache_root)

    started = time.perf_counter()
    # One size for every set (reference, generated, training set): see gen_eval.sources.resize.
    fit_size = target_size(extractor, ref if ref.sample_shape else gen)
    fit_reason = None if extractor.input_size else f"to match the reference {ref.spec}"

    def extract(source: Source, label: str) -> Any:
        features = extract_features(
            source,
            extractor,
            batch_size=size,
            cache=cache,
            show_progress=show_progress,
            label=label,
            size=fit_size,
            resize_method=resize_method,
            reason=fit_reason,
        )
        if features.resized is not None:
            resizes[label] = features.resized
            run_warnings.append(resize_warning(source.spec, features.resized))
        return features

    resizes: dict[str, dict[str, Any]] = {}

    ref_features = statistics_features(ref) if from_statistics else extract(ref, "reference")
    ref_seconds = time.perf_counter() - started
    gen_features = extract(gen, "generated")
    gen_seconds = time.perf_counter() - started - ref_seconds
    train_source, train_features = None, None
    if any(metric_requirement(m) == "train" for m in chosen):
        train_source = train_spec if isinstance(train_spec, Source) else open_source(train_spec, seed=seed)
        train_features = extract(train_source, "training set")

    context = MetricContext(
        device=device,
        random_state=seed,
        num_resamples=num_resamples,
        options=dict(metric_options or {}),
        generated_source=gen,
        reference_source=ref,
        cache=cache,
        reference_key=ref_features.cache_key,
        extractor=name,
        train_features=None if train_features is None else train_features.tensors,
        generated_labels=_labels(gen_features),
        reference_labels=_labels(ref_features),
    )
    results: dict[str, Result] = {}
    with progress_task("metrics", len(chosen), show_progress) as bar:
        for metric in chosen:
            results.update(get_metric(metric)(gen_features.tensors, ref_features.tensors, context))
            bar.advance(1)
    if name == "inception" and not getattr(extractor, "is_official_weights", True):
        for result in results.values():
            result.warnings.append(
                "Inception weights are not the official ones: not comparable with published numbers"
            )
    metrics = chosen
    report = None

    def extract_once(source: Source, label: str) -> Any:  # the metrics' training set is not read again
        if source is train_source and train_features is not None:
            return train_features
        return extract(source, label)

    collapse_started = time.perf_counter()
    if collapse:
        from gen_eval.collapse.from_sources import check_sources

        training = train if train_source is None else train_source
        with progress_stage("collapse check", show_progress):
            report, train_source = check_sources(
                gen, ref, gen_features, ref_features, results, context, training, extract_once
            )

    run_warnings += cache.warnings  # a read-only or full cache: features computed, not cached
    notes = [f"{gen.spec}: {note}" for note in gen.notes] + [f"{ref.spec}: {note}" for note in ref.notes]
    sets = set_entries(gen, ref, gen_features, ref_features, train_source, resizes)
    manifest = {
        **{key: sets[key] for key in ("created", "versions", "generated", "reference")},
        **({"reference_statistics": provenance} if provenance else {}),
        "extractor": extractor.describe(),
        "options": {
            "metrics": list(metrics),
            "num_resamples": num_resamples,
            "metric_options": dict(metric_options or {}),
            "num_samples": num_samples,
            "num_reference": num_reference,
            "batch_size": size,
            "channels_last": channels_last,
            "device": device,
            "seed": seed,
            "resize": resize,
            "resize_method": resize_method,
            "resize_mode": resize_mode,
            # How submitted code ran: in the kernel sandbox, without its isolation, or in-process.
            "trust_code": trust_code,
            "sandbox": sandbox,
            "unsafe_no_isolation": unsafe_no_isolation,
            "key": key,
            "value_range": value_range,
            "resample_points": resample_points,
        },
        "timings_s": {
            "reference_features": round(ref_seconds, 3),
            "generated_features": round(gen_seconds, 3),
            "collapse_check": round(time.perf_counter() - collapse_started, 3) if collapse else None,
        },
        "training_set": sets["training_set"],
        "warnings": run_warnings,
    }
    features_by_role = {"generated": gen_features.tensors, "reference": ref_features.tensors}
    evaluation = Evaluation(results, manifest, None, notes, features_by_role, report, warnings=run_warnings)
    from gen_eval import distributed

    extra: dict[str, bytes] = {}
    if report is not None:
        from gen_eval.collapse.from_sources import evidence
        from gen_eval.collapse.outputs import collapse_files

        evaluation.collapse_evidence = functools.cache(
            lambda: evidence(report, gen, ref, train_source, gen_features, size)
        )
        if out is not None and distributed.is_main():
            with progress_stage("collapse evidence", show_progress):
                extra = collapse_files(*evaluation.collapse_evidence())
    if out is not None and distributed.is_main() and "realism" in results:
        from gen_eval.runs.realism_grids import realism_files

        kept = gen_features.samples  # a generator's samples kept with its features: no resampling
        take = (lambda index: kept[index].numpy()) if kept is not None else (lambda i: gen.take(i, size))
        extra.update(realism_files(results["realism"], take, get_kind(gen.data_kind).provides))
    if out is not None and distributed.is_main():  # under torchrun, rank 0 alone writes the run
        from gen_eval.runs.write import write_evaluation

        with progress_stage("writing the run", show_progress):
            collapse_dict = evaluation.collapse.to_dict() if evaluation.collapse is not None else None
            evaluation.run_dir = write_evaluation(
                Path(out), manifest, results, collapse_dict, gen, ref, gen_features, overwrite, extra
            )
    return evaluation
