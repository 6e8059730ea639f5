"""The demo's paired sections: each image-to-image task's bundled models against its targets.

For each task on ``mnist`` (``sr4``: 4x super-resolution, ``inpaint``: the centre 14x14, ``edges``:
edges -> digit) the baselines (nearest/bicubic, mean fill, dilated edges), the L1 U-Net (the
SRResNet analogue) and the U-Net with a PatchGAN discriminator (the pix2pix/SRGAN analogue) turn
the test inputs into outputs, scored against ``task:NAME`` (the test targets): PSNR and SSIM
(scikit-image), LPIPS where its weights are on disk (else the mnist network's feature distance,
named as such), consistency with the input, and FID/KID of the outputs against the targets: the
table super-resolution papers print, and the distortion-realism trade-off (Blau & Michaeli 2018)
as :func:`plane_points` measures it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from gen_eval.demo.sections import Section

if TYPE_CHECKING:
    from gen_eval.demo.leaderboard import ModelScore

TASKS = {"sr4": "4x super-resolution", "inpaint": "centre inpainting", "edges": "edges -> digit"}


def _section(task: str) -> Section:
    return Section(
        key=task,
        title=f"{task} ({TASKS[task]}): paired models vs task:{task} (mnist features)",
        reference=f"task:{task}",
        belongs=lambda entry: entry.config.get("task") == task,
        metrics=("psnr", "ssim", "lpips", "feature_distance", "consistency", "fid", "kid"),
        columns=(
            ("PSNR dB", "psnr", ".2f"),
            ("SSIM", "ssim", ".4f"),
            ("LPIPS", "lpips", ".4f"),
            ("feature dist.", "feature_distance", ".3g"),
            ("consistency", "consistency", ".3g"),
            ("FID", "fid", ".3g"),
            ("KID", "kid", ".3g"),
        ),
        features="mnist",
        train=None,
    )


SECTIONS = {task: _section(task) for task in TASKS}


def plane_points(scores: list[ModelScore]) -> list[dict[str, Any]]:
    """(model, task, PSNR, SSIM, FID) of every paired score that has both PSNR and FID."""
    from reference_models import MODELS

    points = []
    for score in scores:
        psnr, fid = score.value("psnr"), score.value("fid")
        if psnr is None or fid is None:
            continue
        entry = MODELS.get(score.name)
        points.append(
            {
                "name": score.name,
                "task": entry.config.get("task") if entry is not None else None,
                "family": score.family,
                "psnr": psnr,
                "ssim": score.value("ssim"),
                "fid": fid,
            }
        )
    return points
