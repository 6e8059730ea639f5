"""Parity rows for MS-SSIM: each of gen-eval's two conventions against the library that defines it.

gen-eval's ``ms_ssim`` metric (``ms_ssim_convention="torchmetrics"``, the default, and
``"pytorch_msssim"``) is run on PNG folders; the peer library is called with its own defaults
(5 scales, 11-px window, sigma 1.5, Wang's betas: what gen-eval uses at 256 px) on the same
pairs of the same images. Two sets: grey sprites on a blank background (where the conventions
differ most) and RGB textures (where the per-channel order of operations matters).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import torch

SIZE = 256  # the smallest size at which both libraries take their standard five scales
PAIRS = 30


def _image_sets(count: int) -> dict[str, torch.Tensor]:
    from gen_eval.bench.inception_weights import varied_images
    from gen_eval.datasets.shapes import shapes_batch

    sprites = torch.from_numpy(shapes_batch("test", 0, count)[0])
    scale = SIZE // sprites.shape[-1]  # 64-px sprites, blown up with sharp edges kept
    return {
        "grey sprites": sprites.repeat_interleave(scale, 2).repeat_interleave(scale, 3),
        "RGB textures": varied_images(count, SIZE, seed=1),
    }


def _peer(convention: str, first: torch.Tensor, second: torch.Tensor) -> float:
    a, b = first.float() / 255, second.float() / 255
    if convention == "pytorch_msssim":
        from pytorch_msssim import ms_ssim

        return float(ms_ssim(a, b, data_range=1.0, size_average=False).double().mean())
    from torchmetrics.functional.image import multiscale_structural_similarity_index_measure

    return float(
        multiscale_structural_similarity_index_measure(a, b, data_range=1.0, reduction="none").double().mean()
    )


def msssim_rows(root: Path, seed: int = 2020, pairs: int = PAIRS) -> tuple[list[dict[str, Any]], list[str]]:
    """Rows (metric, ours, theirs, tool) for both MS-SSIM conventions, and notes for the report.

    Parameters
    ----------
    root : Path
        Folder to write the PNG images into.
    seed : int
        gen-eval's ``random_state`` (which pairs are drawn); the libraries get the same pairs.
    pairs : int
        Disjoint pairs per image set (2 x pairs images are written).

    Returns
    -------
    rows : list of dict
        One row per image set and convention whose library is installed.
    notes : list of str
        Markdown lines: inputs, the gap between the conventions, rows skipped for a missing library.
    """
    from gen_eval.bench.common import write_png_folder
    from gen_eval.metrics import get_metric
    from gen_eval.metrics.base import MetricContext
    from gen_eval.metrics.ms_ssim import draw_pairs
    from gen_eval.sources import open_source

    conventions = ["torchmetrics"]
    notes = [
        f"MS-SSIM rows: {pairs} disjoint random pairs of {SIZE}x{SIZE} images per set, read from PNG folders "
        "(grey: 64-px sprites on a blank background, blown up 4x; RGB: procedural textures); gen-eval's "
        "metric against each library's own multi-scale function with its defaults, on the same pairs. "
        "The torchmetrics convention calls torchmetrics' function, so its row checks gen-eval's settings "
        "and plumbing; the pytorch-msssim convention is gen-eval's own code, so its row is independent.",
    ]
    if importlib.util.find_spec("pytorch_msssim") is None:
        notes.append("pytorch-msssim is not installed: its rows are skipped (`pip install pytorch-msssim`).")
    else:
        conventions.append("pytorch_msssim")
    rows, values = [], {}
    for name, images in _image_sets(2 * pairs).items():
        folder = write_png_folder(images.numpy(), root / f"msssim-{name.replace(' ', '-')}")
        source = open_source(folder)
        read = source.head(len(source)).data  # what the metric reads, decoded from the PNGs
        first, second, _ = draw_pairs(len(read), pairs, seed)
        for convention in conventions:
            context = MetricContext(
                random_state=seed,
                num_resamples=0,
                generated_source=source,
                reference_source=source,
                options={"ms_ssim_pairs": pairs, "ms_ssim_convention": convention},
            )
            ours = get_metric("ms_ssim")({}, {}, context)["ms_ssim"].value
            values[name, convention] = ours
            tool = "torchmetrics" if convention == "torchmetrics" else "pytorch-msssim"
            rows.append(
                {
                    "metric": f"ms_ssim ({name}, {convention})",
                    "ours": ours,
                    "theirs": _peer(convention, read[first], read[second]),
                    "tool": tool,
                }
            )
    if len(conventions) == 2:
        gaps = ", ".join(
            f"{name} {values[name, 'torchmetrics']:.4f} vs {values[name, 'pytorch_msssim']:.4f} "
            f"({values[name, 'pytorch_msssim'] / values[name, 'torchmetrics'] - 1:+.1%})"
            for name in ("grey sprites", "RGB textures")
        )
        notes.append(
            f"The two conventions on these pairs (torchmetrics vs pytorch-msssim): {gaps}. pytorch-msssim filters "
            "without padding at every scale and takes the product across scales per channel; torchmetrics "
            "averages the coarsest scale's SSIM over the reflection-padded map and averages channels first "
            "(see gen_eval/metrics/ms_ssim.py). Compare MS-SSIM values only under one convention."
        )
    return rows, notes
