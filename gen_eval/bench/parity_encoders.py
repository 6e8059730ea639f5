"""Parity rows for the modern encoders' Fréchet distances (issue 25): FD_DINOv2 and FD on CLIP.

``fd_dinov2`` is the Fréchet distance of DINOv2 ViT-L/14 features (EDM2's FD_DINOv2); torch-fidelity
0.4 computes the same distance with its ``dinov2-vit-*`` and ``clip-vit-*`` extractors. On the same
random but official-layout weights and the same images, with torch-fidelity's resize convention
(``--resize-mode legacy-tf``), both tools must give the same number. The DINOv2 row uses ViT-S/14:
the code path is the one ViT-L/14 takes (same module, same preprocessing, same Fréchet distance;
``fd_dinov2`` is :func:`gen_eval.metrics.fid.fid` on those features, checked in
``tests/test_features_encoders.py``), and a random ViT-L/14 (1.2 GB of weights, about 60 GFLOP an
image) would make the report take many minutes on 2 CPU cores for no other code.

With N <= feature dimension the covariances are rank-deficient: torch-fidelity's ``eigvals`` adds
square roots of rounding-noise eigenvalues, so its raw value differs by about 1e-4 relative (the
FID note of ``reports/parity.md``); the rows hold the difference to 1e-3, as the Inception FID row.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any
from unittest import mock

import torch

BOUND = 1e-3


class ImageDataset(torch.utils.data.Dataset):
    """uint8 CHW images, as torch-fidelity reads a dataset."""

    def __init__(self, images: torch.Tensor) -> None:
        self.images = images

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> torch.Tensor:
        return self.images[index]


def _their_fd(extractor: str, images: tuple[torch.Tensor, torch.Tensor], **kwargs: Any) -> float:
    import torch_fidelity

    raw = torch_fidelity.calculate_metrics(
        input1=ImageDataset(images[0]),
        input2=ImageDataset(images[1]),
        cuda=False,
        fid=True,
        feature_extractor=extractor,
        cache=False,
        verbose=False,
        save_cpu_ram=True,
        **kwargs,
    )
    return float(raw["frechet_inception_distance"])


def _our_fd(name: str, weights: Path, images: tuple[torch.Tensor, torch.Tensor]) -> float:
    from gen_eval.features import create_extractor
    from gen_eval.metrics.fid import fid

    extractor = create_extractor(name, weights_path=weights, resize_mode="legacy-tf")
    with torch.no_grad():
        features = [{"features": extractor(batch)["features"].double()} for batch in images]
    return float(fid(features[0], features[1])["fid"].value)


def encoder_rows(workdir: Path, num_images: int = 24) -> list[dict[str, Any]]:
    """FD on DINOv2 ViT-S/14 and CLIP ViT-B/32 features: gen-eval vs torch-fidelity, same weights and images."""
    from gen_eval.bench.encoders_bench import make_random_clip_archive, make_random_dinov2_weights
    from gen_eval.bench.inception_weights import varied_images
    from gen_eval.features.dinov2 import build_network

    images = (varied_images(num_images, 64, seed=1), varied_images(num_images, 64, seed=2))
    dino = make_random_dinov2_weights(workdir / "dinov2_vits14_pretrain.pth")
    state = torch.load(dino, weights_only=True)
    # torch-fidelity builds DINOv2 through torch.hub (a download): answered with the same network.
    with mock.patch.object(torch.hub, "load", lambda *a, **k: build_network("dinov2-vit-s14", state).eval()):
        theirs_dino = _their_fd("dinov2-vit-s-14", images)
    clip = make_random_clip_archive(workdir / "ViT-B-32.pt")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # torch-fidelity loads the TorchScript archive
        theirs_clip = _their_fd("clip-vit-b-32", images, feature_extractor_weights_path=str(clip))
    rows = [
        {
            "metric": f"FD_DINOv2 pipeline (ViT-S/14, legacy-tf, N={num_images})",
            "ours": _our_fd("dinov2-vit-s14", dino, images),
            "theirs": theirs_dino,
            "tool": "torch-fidelity 0.4 (dinov2-vit-s-14)",
            "bound": BOUND,
        },
        {
            "metric": f"FD on CLIP ViT-B/32 (legacy-tf, N={num_images})",
            "ours": _our_fd("clip-vit-b32", clip, images),
            "theirs": theirs_clip,
            "tool": "torch-fidelity 0.4 (clip-vit-b-32)",
            "bound": BOUND,
        },
    ]
    return rows
