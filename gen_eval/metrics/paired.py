"""Paired metrics (issue 23): each output against its own target, input or sibling outputs.

They read the pairs from the generated source (:class:`gen_eval.sources.paired.PairedSource`),
not the features: ``psnr`` and ``ssim`` (scikit-image, not hand-written), ``lpips`` (LPIPS-VGG
when its weights are on disk, otherwise ``feature_distance``, named as such), ``consistency``
(the task's degradation of each output against its input) and ``output_diversity`` (K outputs
per input). FID/KID of the outputs against the targets are the ordinary metrics with the task
(``task:sr4``) as the reference.

Every value is a mean over inputs (with K outputs per input, each input's K values are averaged
first), and its interval is a percentile bootstrap over inputs: it covers the mean the model
would score on another set of inputs drawn like these, not the model's score on other data.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch

from gen_eval.errors import GenEvalError
from gen_eval.metrics.bootstrap import mean_interval
from gen_eval.metrics.result import Result

if TYPE_CHECKING:
    from gen_eval.metrics.base import MetricContext
    from gen_eval.sources.paired import Pairs

# An output identical to its target has infinite PSNR; it is counted as this many dB and marked.
PSNR_CAP = 100.0
# Wang et al. (2004)'s SSIM: an 11x11 Gaussian window of sigma 1.5 and population statistics
# (scikit-image's documented way to match the paper; its own defaults use a 7x7 uniform window).
SSIM_SETTINGS = {"gaussian_weights": True, "sigma": 1.5, "use_sample_covariance": False, "data_range": 255}
COVERS = "the mean over inputs drawn like these ({n:,}; bootstrap over inputs), not the model's score on other data"
CHUNK = 512


def pairs_of(context: MetricContext, metric: str) -> Pairs:
    """The generated source's pairs, or a one-line error when it is not paired."""
    source = context.generated_source
    if source is None or not callable(getattr(source, "pairs", None)):
        raise GenEvalError(
            f"{metric} compares outputs with their targets: evaluate a paired source (see gen-eval datasets)"
        )
    pairs = source.pairs()
    if pairs.targets is None:
        raise GenEvalError(f"{source.spec}: {metric} needs targets beside the outputs")
    return pairs


def per_input(values: np.ndarray, k: int) -> np.ndarray:
    """Row values (N*K,) averaged over each input's K outputs -> (N,)."""
    return values.reshape(-1, k).mean(axis=1)


def mean_result(
    name: str, values: np.ndarray, direction: str, pairs: Pairs, context: MetricContext, **extra: object
) -> Result:
    """The mean of per-input ``values`` with its bootstrap interval over inputs."""
    values = np.asarray(values, dtype=np.float64)
    interval = None
    if context.num_resamples > 0 and len(values) > 1:
        interval = mean_interval(
            torch.from_numpy(values), context.num_resamples, context.random_state, context.confidence
        )
    return Result(
        name=name,
        value=float(values.mean()),
        direction=direction,  # type: ignore[arg-type]
        num_generated=len(pairs.outputs),
        num_reference=pairs.num_inputs,
        interval=interval,
        interval_covers=COVERS.format(n=len(values)) if interval is not None else None,
        warnings=list(extra.pop("warnings", [])),  # type: ignore[arg-type]
        details={"outputs_per_input": pairs.outputs_per_input, "task": pairs.task, **extra},
    )


def psnr_values(outputs: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """Per-pair PSNR in dB (scikit-image, data range 255); identical pairs give ``inf``."""
    from skimage.metrics import peak_signal_noise_ratio

    values = np.empty(len(outputs))
    for index, (output, target) in enumerate(zip(outputs, targets, strict=True)):
        if np.array_equal(output, target):
            values[index] = np.inf  # skimage would divide by zero (and warn) to the same inf
        else:
            values[index] = peak_signal_noise_ratio(target, output, data_range=255)
    return values


def ssim_values(outputs: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """Per-pair SSIM (scikit-image, :data:`SSIM_SETTINGS`) of uint8 NCHW images, channels averaged."""
    from skimage.metrics import structural_similarity

    height, width = outputs.shape[2:]
    if min(height, width) < 11:
        raise GenEvalError(f"ssim's 11x11 window needs images of at least 11x11, not {height}x{width}")
    values = np.empty(len(outputs))
    for index, (output, target) in enumerate(zip(outputs, targets, strict=True)):
        if output.shape[0] == 1:
            values[index] = structural_similarity(target[0], output[0], **SSIM_SETTINGS)
        else:
            values[index] = structural_similarity(target, output, channel_axis=0, **SSIM_SETTINGS)
    return values


def psnr(generated: dict, reference: dict, context: MetricContext) -> dict[str, Result]:
    """Mean PSNR (dB) of each output against its target; identical pairs capped at :data:`PSNR_CAP`."""
    pairs = pairs_of(context, "psnr")
    values = psnr_values(pairs.outputs, pairs.targets)
    identical = int(np.isinf(values).sum())
    warnings = []
    if identical:
        warnings.append(
            f"capped: identical: {identical:,} of {len(values):,} outputs equal their targets (infinite PSNR), "
            f"each counted as {PSNR_CAP:g} dB"
        )
    capped = np.minimum(values, PSNR_CAP)
    result = mean_result(
        "psnr",
        per_input(capped, pairs.outputs_per_input),
        "higher",
        pairs,
        context,
        warnings=warnings,
        identical_pairs=identical,
        cap_db=PSNR_CAP,
        capped=identical > 0,
        library="scikit-image peak_signal_noise_ratio, data_range 255, mean of per-image PSNR",
    )
    return {"psnr": result}


def ssim(generated: dict, reference: dict, context: MetricContext) -> dict[str, Result]:
    """Mean SSIM of each output against its target (scikit-image, Wang et al.'s settings)."""
    pairs = pairs_of(context, "ssim")
    values = ssim_values(pairs.outputs, pairs.targets)
    settings = ", ".join(f"{key}={value}" for key, value in SSIM_SETTINGS.items())
    result = mean_result(
        "ssim",
        per_input(values, pairs.outputs_per_input),
        "higher",
        pairs,
        context,
        library=f"scikit-image structural_similarity ({settings}), channels averaged",
    )
    return {"ssim": result}


def consistency(generated: dict, reference: dict, context: MetricContext) -> dict[str, Result]:
    """Mean RMSE (grey levels) between the task's degradation of each output and its input."""
    from gen_eval.datasets.tasks import get_task

    pairs = pairs_of(context, "consistency")
    if pairs.task is None or pairs.inputs is None:
        raise GenEvalError(
            f"{context.generated_source.spec}: consistency needs the task the inputs came from; name it (task='sr4')"
        )
    task = get_task(pairs.task)
    values = np.concatenate(
        [
            task.consistency(
                torch.from_numpy(pairs.outputs[start : start + CHUNK].copy()),
                torch.from_numpy(pairs.inputs[start : start + CHUNK].copy()),
            )
            for start in range(0, len(pairs.outputs), CHUNK)
        ]
    )
    exact = int((values == 0).sum())
    result = mean_result(
        "consistency",
        per_input(values, pairs.outputs_per_input),
        "lower",
        pairs,
        context,
        exactly_consistent=exact,
        measure=f"RMSE (grey levels) of degrade(output) vs input over the known pixels; {task.description}",
    )
    return {"consistency": result}


def output_diversity(generated: dict, reference: dict, context: MetricContext) -> dict[str, Result]:
    """Mean pairwise RMSE (grey levels) between the K outputs of each input (K > 1)."""
    pairs = pairs_of(context, "output_diversity")
    k = pairs.outputs_per_input
    if k < 2:
        raise GenEvalError(
            "output_diversity needs several outputs per input: save outputs as (N, K, C, H, W)"
        )
    grouped = pairs.outputs.reshape(pairs.num_inputs, k, -1).astype(np.float64)
    first, second = np.triu_indices(k, 1)
    # (N, pairs) RMSE between outputs a and b of every input; K is small (a handful of draws).
    distances = np.sqrt(((grouped[:, first] - grouped[:, second]) ** 2).mean(axis=2))
    result = mean_result(
        "output_diversity",
        distances.mean(axis=1),
        "higher",
        pairs,
        context,
        measure="mean pairwise RMSE (grey levels) between the outputs of one input",
    )
    return {"output_diversity": result}
