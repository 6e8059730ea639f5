"""What ``evaluate`` settles before any work: the device, batch size, run directory and metric needs.

Split out of :mod:`gen_eval.evaluation` so the pipeline there reads top to bottom; ``gen-eval stats``
and ``gen-eval compare`` make the same choices through these functions.
"""

from __future__ import annotations

import re
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
    """What metrics may need that this evaluation offers: features, what the kind provides, logits, log_prob.

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
    model = getattr(gen, "model", None)
    if callable(getattr(model, "log_prob", None)):
        available.add("log_prob")
    elif (metric_options or {}).get("bpd_method") == "ais":
        # Imported here: AIS pulls in the likelihood package, which most runs never need.
        from gen_eval.likelihood.metric import can_use_ais

        if can_use_ais(model):
            available.add("log_prob")
    return available
