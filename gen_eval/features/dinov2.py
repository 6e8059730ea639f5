"""DINOv2 ViT-S/14, B/14, L/14 and g/14 image embeddings (the CLS token after the final norm).

The network is timm's DINOv2 ViT (``vit_*_patch14_dinov2``), which holds the official
checkpoints' parameters under the same names and computes the same maths as the official code
that torch-fidelity, dgm-eval and EDM2 load through torch hub (checked against it:
``tests/test_features_encoders.py`` runs that comparison where the hub code is in the cache).
The official models read any size by interpolating their 37x37 position grid for each input
(bicubic, no antialias, scale ``(16 + 0.1) / 37`` for 224x224); every input here is 224x224,
so that interpolation is done once, by :func:`position_grid_for`, exactly as the official
``interpolate_pos_encoding`` does it.

The official weights are plain state dicts (``dinov2_vits14_pretrain.pth`` ...), loaded with
``weights_only=True``. ``fd_dinov2`` (EDM2's FD_DINOv2) is FID on ``dinov2-vit-l14`` features.
"""

from __future__ import annotations

import math
from functools import cache
from pathlib import Path

import torch
import torch.nn.functional as F

from gen_eval.errors import GenEvalError
from gen_eval.features.encoders import (
    EncoderExtractor,
    WeightsFile,
    check_state_dict,
    load_tensor_file,
)
from gen_eval.features.vit_fast import BlockWeights, FastBlocks

_BASE_URL = "https://dl.fbaipublicfiles.com/dinov2"
#: gen-eval name -> (timm architecture, official model name, embedding width).
VARIANTS: dict[str, tuple[str, str, int]] = {
    "dinov2-vit-s14": ("vit_small_patch14_dinov2", "dinov2_vits14", 384),
    "dinov2-vit-b14": ("vit_base_patch14_dinov2", "dinov2_vitb14", 768),
    "dinov2-vit-l14": ("vit_large_patch14_dinov2", "dinov2_vitl14", 1024),
    "dinov2-vit-g14": ("vit_giant_patch14_dinov2", "dinov2_vitg14", 1536),
}
WEIGHTS: dict[str, WeightsFile] = {
    name: WeightsFile(
        f"{official}_pretrain.pth",
        f"{_BASE_URL}/{official}/{official}_pretrain.pth",
        f"GEN_EVAL_{name.upper().replace('-', '_')}_WEIGHTS",
    )
    for name, (_, official, _) in VARIANTS.items()
}
IMAGE_SIZE = 224
PATCH_SIZE = 14
INTERPOLATE_OFFSET = 0.1  # the official hub models' "historical kludge" (dinov2 interpolate_offset)


def position_grid_for(pos_embed: torch.Tensor, image_size: int = IMAGE_SIZE) -> torch.Tensor:
    """The official DINOv2 position embeddings for square ``image_size`` inputs.

    What ``DinoVisionTransformer.interpolate_pos_encoding`` computes on every forward of the
    hub models (``interpolate_offset=0.1``, ``interpolate_antialias=False``), done once.

    Parameters
    ----------
    pos_embed : Tensor
        (1, 1 + M*M, D), the checkpoint's (M = 37 for the 518x518 training grid).
    image_size : int
        Input height and width.

    Returns
    -------
    Tensor
        (1, 1 + (image_size // 14) ** 2, D).
    """
    grid = image_size // PATCH_SIZE
    count = pos_embed.shape[1] - 1
    side = int(math.sqrt(count))
    if side == grid:
        return pos_embed
    dim = pos_embed.shape[-1]
    previous = pos_embed.dtype
    pos_embed = pos_embed.float()
    scale = float(grid + INTERPOLATE_OFFSET) / side
    patch = F.interpolate(
        pos_embed[:, 1:].reshape(1, side, side, dim).permute(0, 3, 1, 2),
        mode="bicubic",
        antialias=False,
        scale_factor=(scale, scale),
    )
    patch = patch.permute(0, 2, 3, 1).reshape(1, -1, dim)
    return torch.cat((pos_embed[:, :1], patch), dim=1).to(previous)


def build_network(name: str, state_dict: dict[str, torch.Tensor] | None = None) -> torch.nn.Module:
    """timm's DINOv2 ViT for 224x224 inputs, from an official-format state dict (or on meta).

    Parameters
    ----------
    name : str
        A key of :data:`VARIANTS`.
    state_dict : dict, optional
        The official checkpoint's tensors; None builds the network on the meta device (shapes only).
    """
    import timm
    from timm.models.vision_transformer import checkpoint_filter_fn

    arch = VARIANTS[name][0]
    # Meta first: materialising random weights for ViT-g (1.1 billion) would take minutes.
    with torch.device("meta"):
        model = timm.create_model(arch, pretrained=False, img_size=IMAGE_SIZE, num_classes=0)
    if state_dict is None:
        return model
    converted = dict(state_dict)
    if "pos_embed" in converted:
        converted["pos_embed"] = position_grid_for(converted["pos_embed"])
    # timm's own converter: drops the unused mask_token, renames ViT-g's SwiGLU (w12, w3 -> fc1, fc2).
    converted = checkpoint_filter_fn(converted, model)
    model.load_state_dict(converted, strict=True, assign=True)
    return model.eval().requires_grad_(False)


@cache
def official_shapes(name: str) -> dict[str, tuple[int, ...]]:
    """Keys and shapes of the official checkpoint of variant ``name`` (518x518 grid, mask token)."""
    model = build_network(name)
    shapes = {key: tuple(value.shape) for key, value in model.state_dict().items()}
    width = VARIANTS[name][2]
    shapes["pos_embed"] = (1, 1 + 37 * 37, width)
    shapes["mask_token"] = (1, width)
    if name == "dinov2-vit-g14":  # the official names of the SwiGLU layers
        for key in [k for k in shapes if ".mlp.fc" in k]:
            shapes[key.replace(".mlp.fc1.", ".mlp.w12.").replace(".mlp.fc2.", ".mlp.w3.")] = shapes.pop(key)
    return shapes


def block_weights(model: torch.nn.Module) -> list[BlockWeights]:
    """Each timm block's parameters, for :class:`~gen_eval.features.vit_fast.FastBlocks`."""
    swiglu = type(model.blocks[0].mlp).__name__ != "Mlp"
    return [
        BlockWeights(
            norm1=(b.norm1.weight, b.norm1.bias, b.norm1.eps),
            qkv=(b.attn.qkv.weight, b.attn.qkv.bias),
            proj=(b.attn.proj.weight, b.attn.proj.bias),
            norm2=(b.norm2.weight, b.norm2.bias, b.norm2.eps),
            fc1=(b.mlp.fc1.weight, b.mlp.fc1.bias),
            fc2=(b.mlp.fc2.weight, b.mlp.fc2.bias),
            num_heads=b.attn.num_heads,
            mlp="swiglu" if swiglu else "gelu",
            ls1=b.ls1.gamma,
            ls2=b.ls2.gamma,
        )
        for b in model.blocks
    ]


class DinoV2Extractor(EncoderExtractor):
    """DINOv2 ViT-S/14 (subclasses: B/14, L/14, g/14): the normalised CLS token.

    See :class:`~gen_eval.features.encoders.EncoderExtractor` for the parameters.
    """

    name = "dinov2-vit-s14"
    what = "DINOv2 ViT-S/14"
    weights_files = WEIGHTS
    image_size = IMAGE_SIZE
    mean = (0.485, 0.456, 0.406)  # ImageNet's, as DINOv2's own transforms, torch-fidelity and EDM2
    std = (0.229, 0.224, 0.225)
    description = "DINOv2 ViT-S/14 (Meta, LVD-142M): 384-d CLS token after the final norm"

    def _build(self, path: Path) -> None:
        spec = self.weights_file()
        state_dict = load_tensor_file(path, self.what, spec.url)
        check_state_dict(state_dict, official_shapes(self.name), path, self.what, spec.url)
        try:
            model = build_network(self.name, state_dict)
        except (RuntimeError, ValueError) as exc:
            raise GenEvalError(
                f"{self.what} weights {path}: could not be loaded ({exc}); {spec.url}"
            ) from exc
        self.model = model.to(self.device)
        self.width = VARIANTS[self.name][2]
        self.blocks = FastBlocks(block_weights(self.model), self.device) if self.fast else None

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.blocks is None:
            return self.model(x)
        model = self.model
        tokens = F.conv2d(x, model.patch_embed.proj.weight, model.patch_embed.proj.bias, stride=PATCH_SIZE)
        tokens = tokens.flatten(2).transpose(1, 2)
        cls_token = model.cls_token.expand(tokens.shape[0], -1, -1)
        tokens = torch.cat((cls_token, tokens), dim=1) + model.pos_embed
        cls = self.blocks(tokens)  # the class token only: the final norm is per token, the others unread
        return F.layer_norm(cls, (self.width,), model.norm.weight, model.norm.bias, model.norm.eps)


class DinoV2BaseExtractor(DinoV2Extractor):
    """DINOv2 ViT-B/14."""

    name = "dinov2-vit-b14"
    what = "DINOv2 ViT-B/14"
    description = "DINOv2 ViT-B/14 (Meta, LVD-142M): 768-d CLS token after the final norm"


class DinoV2LargeExtractor(DinoV2Extractor):
    """DINOv2 ViT-L/14: the network of FD_DINOv2 (dgm-eval, EDM2)."""

    name = "dinov2-vit-l14"
    what = "DINOv2 ViT-L/14"
    description = "DINOv2 ViT-L/14 (Meta, LVD-142M): 1024-d CLS token; FD_DINOv2's network (EDM2)"
    provides = ("dinov2-vit-l14",)


class DinoV2GiantExtractor(DinoV2Extractor):
    """DINOv2 ViT-g/14."""

    name = "dinov2-vit-g14"
    what = "DINOv2 ViT-g/14"
    description = "DINOv2 ViT-g/14 (Meta, LVD-142M): 1536-d CLS token after the final norm"
