"""What ``evaluate`` settles before any work: the device, batch size, run directory and metric needs.

Split out of :mod:`gen_eval.evaluation` so the pipeline there reads top to bottom; ``gen-eval stats``
and ``gen-eval compare`` make the same choices through these functions.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from gen_eval.errors import GenEvalError
from gen_eval.kinds import get_kind
from gen_eval.sources import Source

# Samples per forward pass by extractor and device. Inception on CPU is fastest at small
# batches in channels_last layout: 9.9 img/s at batch 8 against 6.0 in the default layout and
# 4.7 at batch 48 (32x32 inputs, 2 cores).
_BATCH_SIZES = {("inception", "cpu"): 8, ("inception", "cuda"): 128, ("digits", "cpu"): 512}
_DEFAULT_BATCH = 1024
# The ViT encoders (issue 25): torch-fidelity's batch of 64; on the CPU, 64 was faster than 16 for
# the fused forward (reports/encoders.md); activations of 64 images of ViT-g/14 are about 0.6 GB.
for _encoder in (
    "dinov2-vit-s14",
    "dinov2-vit-b14",
    "dinov2-vit-l14",
    "dinov2-vit-g14",
    "clip-vit-b32",
    "clip-vit-b16",
    "clip-vit-l14",
    "clip-vit-l14-336",
):
    _BATCH_SIZES[(_encoder, "cpu")] = 64
    _BATCH_SIZES[(_encoder, "cuda")] = 64

# What the collapse verdict reads (MS-SSIM: images only): ``metrics="collapse"`` runs just these.
COLLAPSE_METRICS = ["density_coverage", "ms_ssim"]


def resolve_device(device: str) -> str:
    """Turn a ``--device`` value into the device to use.

    Parameters
    ----------
    device : str
        ``auto``, ``cpu``, ``cuda`` or ``cuda:N``.

    Returns
    -------
    str
        ``auto`` becomes ``cuda`` when available, else ``cpu``; others are returned as given.

    Raises
    ------
    GenEvalError
        ``cuda`` without a GPU, or a value that is none of these.
    """
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise GenEvalError("--device cuda: no CUDA device is available here; use --device auto or cpu")
    if device != "cpu" and not device.startswith("cuda"):
        raise GenEvalError(f"--device {device!r}: choose auto, cpu or cuda")
    return device


def batch_size_for(extractor: str, device: str, batch_size: int | None = None) -> int:
    """Samples per forward pass: ``batch_size`` when given, else the measured default.

    Parameters
    ----------
    extractor : str
        Feature extractor name (``inception``, ``digits``...).
    device : str
        A resolved device (``cpu``, ``cuda`` or ``cuda:N``).
    batch_size : int, optional
        What the user asked for; None or 0 means choose.

    Returns
    -------
    int
        The batch size (not checked: callers state the option a bad value came from).
    """
    return batch_size or _BATCH_SIZES.get((extractor, device.split(":")[0]), _DEFAULT_BATCH)


def is_code(spec: object) -> bool:
    """Whether a source spec names a generator (``file.py[:factory]`` or ``ref:NAME``), not samples."""
    text = str(spec)
    return text.endswith(".py") or ".py:" in text or text.startswith("ref:")


def default_run_dir(generated: str, root: Path = Path("runs")) -> Path:
    """``runs/<UTC time>-<slug of the source spec>``."""
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", Path(generated).name or generated).strip("-") or "run"
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    return root / f"{stamp}-{slug[:60]}"


def available_inputs(
    gen: Source, feature_names: tuple[str, ...], metric_options: dict[str, Any] | None = None
) -> set[str]:
    """What metrics may need that this evaluation offers: features, what the kind provides, logits, labels, log_prob.

    A model without ``log_prob`` offers a likelihood only when AIS is asked for (``bpd_method=ais``):
    it takes minutes, so it never runs unasked.

    Parameters
    ----------
    gen : Source
        The generated source (its data kind, and its model when it has one).
    feature_names : tuple of str
        What the extractor returns (``features``, ``logits``...).
    metric_options : dict, optional
        The checked ``-o`` options (only ``bpd_method`` is read).

    Returns
    -------
    set of str
        Names matching the metrics' declared needs (``gen-eval metrics``).
    """
    available = {"features", *get_kind(gen.data_kind).provides}
    if "logits" in feature_names:
        available.add("logits")
    if "spatial" in feature_names:  # Inception asked for its spatial features (sFID)
        available.add("spatial")
    if getattr(gen, "num_classes", None):  # labelled submissions and conditional generators
        available.add("labels")
        if "logits" in feature_names:  # a classifier to read the requested classes with
            available.add("labelled logits")
    if getattr(gen, "paired", False):  # outputs with targets (issue 23): the paired metrics
        available.add("pairs")
        available |= {"pairs_task"} if getattr(gen, "task_name", None) else set()
        available |= {"pairs_multi"} if getattr(gen, "outputs_per_input", 1) > 1 else set()
    model = getattr(gen, "model", None)
    if callable(getattr(model, "translate_back", None)):  # unpaired translators (issue 23)
        available.add("translation")
    if callable(getattr(model, "log_prob", None)):
        available.add("log_prob")
    elif (metric_options or {}).get("bpd_method") == "ais":
        # Imported here: AIS pulls in the likelihood package, which most runs never need.
        from gen_eval.likelihood.metric import can_use_ais

        if can_use_ais(model):
            available.add("log_prob")
    return available


@dataclass
class FeaturePlan:
    """What ``evaluate`` settles once both sources are open: the extractor and the metrics to run.

    ``warnings`` holds what a statistics reference left out; ``collapse`` is False when the
    reference is statistics (the check compares samples).
    """

    name: str
    extractor: Any
    provenance: dict[str, Any] | None
    batch_size: int
    channels_last: bool
    train_spec: Any
    chosen: list[str]
    collapse: bool
    warnings: list[str] = field(default_factory=list)


def plan_features_and_metrics(
    gen: Source,
    ref: Source,
    *,
    features: str,
    from_statistics: bool,
    reference_features: str | None,
    device: str,
    channels_last: bool | None,
    resize_mode: str | None,
    requested: list[str] | None,
    collapse_only: bool,
    inception_weights: Any,
    weights: Any,
    batch_size: int | None,
    metric_options: dict[str, Any] | None,
    train: Any,
    collapse: bool,
) -> FeaturePlan:
    """The extractor (built), its batch size, and the metrics that apply, as ``evaluate`` uses them.

    Parameters are ``evaluate``'s (``collapse_only``: ``metrics="collapse"``); see its docstring.
    """
    from gen_eval.features import choose_extractor as choose_features
    from gen_eval.features import create_extractor, resize_mode_options
    from gen_eval.metrics import METRICS, applicable, choose_metrics, split_for_statistics
    from gen_eval.options import check_applicable
    from gen_eval.sources.labels import check_class_range
    from gen_eval.sources.statistics_source import check_extractor, reference_extractor

    check_class_range(gen, ref)  # labels the reference has no class for: refused before any work
    run_warnings: list[str] = []
    name = features
    if features == "auto":  # statistics name their extractor (or the user states it)
        name = (
            str(reference_extractor(ref, reference_features)[0])
            if from_statistics
            else choose_features(gen, ref)
        )
    if channels_last is None:
        channels_last = device == "cpu"
    # Inception's spatial features cost a hook and 2023 floats a sample: taken only when a metric asks.
    spatial = any(METRICS.get(m).requires == "spatial" for m in requested or ())
    options = resize_mode_options(name, resize_mode)
    if name == "inception":
        options |= {"weights_path": inception_weights, "channels_last": channels_last, "spatial": spatial}
    if weights is not None and name != "inception":
        options["weights_path"] = weights
    extractor = create_extractor(name, device=device, **options)
    provenance = check_extractor(ref, reference_features, extractor.describe()) if from_statistics else None
    size = batch_size_for(name, device, batch_size)
    if size < 1:
        raise GenEvalError(f"--batch-size must be at least 1, got {size}")
    # An extractor's own needs too: fd_dinov2 runs on dinov2-vit-l14 features only.
    available = available_inputs(gen, extractor.feature_names, metric_options) | set(extractor.provides)
    # AuthPct and C_T read the model's training set (--train, or the reference dataset's train split).
    train_spec = train
    if isinstance(train, str) and train == "auto":
        from gen_eval.sources.dataset import default_train_spec

        train_spec = None if from_statistics else default_train_spec(ref)
    if train_spec is not None:
        available.add("train")
    chosen = choose_metrics(requested, available, gen.data_kind)
    if collapse_only:
        chosen = applicable(COLLAPSE_METRICS, available, gen.data_kind)
    if from_statistics:
        chosen, left_out = split_for_statistics(chosen, requested)
        run_warnings += left_out + (["collapse check: not run: it compares samples"] if collapse else [])
        collapse = False
    check_applicable(metric_options, chosen, collapse, "collapse" if collapse_only else "list")
    return FeaturePlan(
        name,
        extractor,
        provenance,
        size,
        bool(channels_last),
        train_spec,
        chosen,
        collapse,
        run_warnings,
    )
