"""The paired metrics' registry entries (issue 23): outputs against their targets, inputs and siblings.

Needs (``gen_eval.evaluation_setup.available_inputs``): ``"pairs"`` when the generated source
holds outputs with targets, ``"pairs_task"`` when their task is known too (consistency),
``"pairs_multi"`` when it holds several outputs per input (diversity).
"""

from __future__ import annotations

from gen_eval.metrics.entry import MetricEntry

PAIRED_METRICS: dict[str, MetricEntry] = {
    "psnr": MetricEntry(
        "gen_eval.metrics.paired:psnr",
        "pairs",
        True,
        "PSNR (dB) of each output against its target (scikit-image); identical pairs capped at 100 dB, marked",
        kinds=("image",),
    ),
    "ssim": MetricEntry(
        "gen_eval.metrics.paired:ssim",
        "pairs",
        True,
        "SSIM of each output against its target (scikit-image, Gaussian 11x11 window, sigma 1.5)",
        kinds=("image",),
    ),
    "lpips": MetricEntry(
        "gen_eval.perceptual.pairs:lpips",
        "pairs",
        True,
        "LPIPS-VGG of each output against its target when its weights are on disk, else feature_distance",
        kinds=("image",),
    ),
    "feature_distance": MetricEntry(
        "gen_eval.perceptual.pairs:feature_distance",
        "pairs",
        False,
        "Euclidean distance between output and target features (the mnist network, else the run's)",
        kinds=("image",),
    ),
    "consistency": MetricEntry(
        "gen_eval.metrics.paired:consistency",
        "pairs_task",
        True,
        "RMSE (grey levels) between the task's degradation of each output and its input (0: consistent)",
        kinds=("image",),
    ),
    "output_diversity": MetricEntry(
        "gen_eval.metrics.paired:output_diversity",
        "pairs_multi",
        True,
        "mean pairwise RMSE (grey levels) between the several outputs of one input",
        kinds=("image",),
    ),
}
