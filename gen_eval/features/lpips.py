"""LPIPS-VGG (Zhang et al. 2018), the distance perceptual path length is defined with.

LPIPS needs two files that cannot be downloaded here: torchvision's ImageNet VGG-16 weights and
the LPIPS v0.1 linear-layer weights. Each is looked for, in order, in a path given explicitly,
an environment variable, and the torch hub cache (the lin weights also in an installed
``lpips`` package, which ships them). The distance: inputs in [-1, 1] shifted and scaled per
channel, the five VGG-16 relu outputs (relu1_2 ... relu5_3) unit-normalised along channels, squared
differences weighted per channel by the non-negative lin weights, averaged over space, summed
over layers. Grey images are repeated to three channels, and images smaller than 64 x 64 are
upsampled (bilinear) to 64 x 64 so the deepest layer still has spatial extent.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from gen_eval.errors import GenEvalError

VGG_WEIGHTS_FILENAME = "vgg16-397923af.pth"
VGG_WEIGHTS_URL = "https://download.pytorch.org/models/vgg16-397923af.pth"
LIN_WEIGHTS_FILENAME = "lpips-vgg-v0.1.pth"
LIN_WEIGHTS_URL = "https://github.com/richzhang/PerceptualSimilarity/raw/master/lpips/weights/v0.1/vgg.pth"
VGG_WEIGHTS_ENV = "GEN_EVAL_VGG16_WEIGHTS"
LIN_WEIGHTS_ENV = "GEN_EVAL_LPIPS_WEIGHTS"
MIN_SIZE = 64
# relu1_2, relu2_2, relu3_3, relu4_3, relu5_3 end these slices of torchvision's vgg16().features.
_SLICE_ENDS = (4, 9, 16, 23, 30)
_CHANNELS = (64, 128, 256, 512, 512)
_SHIFT = (-0.030, -0.088, -0.188)
_SCALE = (0.458, 0.448, 0.450)


def _hub_file(name: str) -> Path:
    return Path(torch.hub.get_dir()) / "checkpoints" / name


def _installed_lpips_lin() -> Path | None:
    try:
        import lpips
    except ImportError:
        return None
    path = Path(lpips.__file__).parent / "weights" / "v0.1" / "vgg.pth"
    return path if path.is_file() else None


def resolve_lpips_weights(
    vgg_path: str | os.PathLike[str] | None = None, lin_path: str | os.PathLike[str] | None = None
) -> tuple[Path, Path]:
    """Local VGG-16 and LPIPS lin weight files, or a :class:`GenEvalError` saying how to get them.

    Parameters
    ----------
    vgg_path, lin_path : path, optional
        Explicit files; otherwise ``$GEN_EVAL_VGG16_WEIGHTS`` / ``$GEN_EVAL_LPIPS_WEIGHTS``, then
        ``<torch hub>/checkpoints/vgg16-397923af.pth`` / ``lpips-vgg-v0.1.pth``, then (lin only)
        the weights inside an installed ``lpips`` package.

    Returns
    -------
    tuple of Path
        (vgg, lin).
    """
    found = []
    for explicit, env, filename, url, flag in (
        (vgg_path, VGG_WEIGHTS_ENV, VGG_WEIGHTS_FILENAME, VGG_WEIGHTS_URL, "vgg"),
        (lin_path, LIN_WEIGHTS_ENV, LIN_WEIGHTS_FILENAME, LIN_WEIGHTS_URL, "lin"),
    ):
        candidates = [explicit, os.environ.get(env, "").strip() or None, _hub_file(filename)]
        if flag == "lin":
            candidates.append(_installed_lpips_lin())
        chosen = next((Path(c) for c in candidates if c is not None and Path(c).is_file()), None)
        if chosen is None:
            where = f"{explicit} does not exist; " if explicit is not None else ""
            raise GenEvalError(
                f"LPIPS needs {filename} ({where}none found): download {url} on a connected machine, "
                f"then set {env}=PATH or copy it to {_hub_file(filename)}"
            )
        found.append(chosen)
    return found[0], found[1]


class LPIPS(nn.Module):
    """LPIPS-VGG distance; see the module docstring for the exact computation."""

    def __init__(self, vgg_state: dict[str, torch.Tensor], lin_state: dict[str, torch.Tensor]) -> None:
        super().__init__()
        from torchvision.models import vgg16

        features = vgg16(weights=None).features
        features.load_state_dict(
            {k.removeprefix("features."): v for k, v in vgg_state.items() if "features" in k}
        )
        starts = (0, *_SLICE_ENDS[:-1])
        self.slices = nn.ModuleList(
            nn.Sequential(*features[a:b]) for a, b in zip(starts, _SLICE_ENDS, strict=True)
        )
        self.lins = nn.ModuleList(nn.Conv2d(c, 1, 1, bias=False) for c in _CHANNELS)
        for index, lin in enumerate(self.lins):
            lin.weight.data.copy_(lin_state[f"lin{index}.model.1.weight"])
        self.register_buffer("shift", torch.tensor(_SHIFT).view(1, 3, 1, 1))
        self.register_buffer("scale", torch.tensor(_SCALE).view(1, 3, 1, 1))
        self.eval().requires_grad_(False)

    @classmethod
    def from_files(cls, vgg_path: str | Path, lin_path: str | Path) -> LPIPS:
        """Load both weight files as tensors only (``weights_only=True``)."""
        try:
            vgg = torch.load(vgg_path, map_location="cpu", weights_only=True)
            lin = torch.load(lin_path, map_location="cpu", weights_only=True)
            return cls(vgg, lin)
        except (RuntimeError, KeyError, OSError) as exc:
            raise GenEvalError(
                f"LPIPS weights {vgg_path}, {lin_path}: unusable ({exc}); check the files"
            ) from exc

    def _layers(self, x: torch.Tensor) -> list[torch.Tensor]:
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        if min(x.shape[-2:]) < MIN_SIZE:
            x = F.interpolate(x, size=(MIN_SIZE, MIN_SIZE), mode="bilinear", align_corners=False)
        h = (x * 2 - 1 - self.shift) / self.scale
        out = []
        for block in self.slices:
            h = block(h)
            out.append(h / (h.square().sum(dim=1, keepdim=True).sqrt() + 1e-10))
        return out

    def forward(self, x0: torch.Tensor, x1: torch.Tensor) -> torch.Tensor:
        """(N,) distances between float images in [0, 1], (N, 1 or 3, H, W)."""
        total = torch.zeros(len(x0), device=x0.device)
        for lin, f0, f1 in zip(self.lins, self._layers(x0), self._layers(x1), strict=True):
            total = total + lin((f0 - f1).square()).mean(dim=(1, 2, 3))
        return total
