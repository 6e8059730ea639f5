"""CLIP ViT image embeddings (B/32, B/16, L/14, L/14@336px): torch-fidelity 0.4's network.

The network is torch-fidelity's own CLIP visual tower (``feature_extractor_clip.build_model``:
OpenAI's code, which also rounds the linear and convolution weights through float16 as the
official checkpoints store them), built from the weights file; the embedding is the projected
CLS token, not L2-normalised (as torch-fidelity; CMMD normalises it itself).

The official files are TorchScript archives (``ViT-B-32.pt``...), which torch-fidelity loads
with ``torch.jit.load``. Here they are read as data (:mod:`gen_eval.features.torchscript_weights`,
torch's weights-only unpickler); a plain state dict (``.pth``, ``.safetensors``) of the same
tensors is accepted too. The hub cache file is the one torch-fidelity's own download writes.
"""

from __future__ import annotations

import pickle
import zipfile
from pathlib import Path

import torch
import torch.nn.functional as F

from gen_eval.errors import GenEvalError
from gen_eval.features.encoders import EncoderExtractor, WeightsFile, load_tensor_file
from gen_eval.features.torchscript_weights import is_torchscript_archive, read_torchscript_tensors
from gen_eval.features.vit_fast import BlockWeights, FastBlocks

#: gen-eval name -> (torch-fidelity name, input resolution, patch, width, layers, embedding).
VARIANTS: dict[str, tuple[str, int, int, int, int, int]] = {
    "clip-vit-b32": ("clip-vit-b-32", 224, 32, 768, 12, 512),
    "clip-vit-b16": ("clip-vit-b-16", 224, 16, 768, 12, 512),
    "clip-vit-l14": ("clip-vit-l-14", 224, 14, 1024, 24, 768),
    "clip-vit-l14-336": ("clip-vit-l-14-336px", 336, 14, 1024, 24, 768),
}


def _weights_files() -> dict[str, WeightsFile]:
    from torch_fidelity.feature_extractor_clip import MODEL_METADATA, MODEL_URLS

    return {
        name: WeightsFile(
            # The name torch-fidelity's load_state_dict_from_url gives the file in the hub cache.
            f"{fidelity}-{MODEL_METADATA[fidelity]['hash']}.pt",
            MODEL_URLS[fidelity],
            f"GEN_EVAL_{name.upper().replace('-', '_')}_WEIGHTS",
        )
        for name, (fidelity, *_) in VARIANTS.items()
    }


WEIGHTS = _weights_files()
MEAN = (0.48145466, 0.4578275, 0.40821073)  # OpenAI CLIP's preprocessing (and torch-fidelity's)
STD = (0.26862954, 0.26130258, 0.27577711)


def load_clip_tensors(path: Path, what: str, url: str) -> dict[str, torch.Tensor]:
    """The tensors of an official TorchScript archive or of a plain state dict, as data."""
    if is_torchscript_archive(path):
        try:
            return read_torchscript_tensors(path)
        except (pickle.UnpicklingError, zipfile.BadZipFile, KeyError, StopIteration, RuntimeError) as exc:
            reason = str(exc).splitlines()[0][:160] if str(exc) else type(exc).__name__
            raise GenEvalError(
                f"{what} weights {path}: TorchScript archive refused ({type(exc).__name__}: {reason}); "
                f"download it again from {url}"
            ) from exc
    return load_tensor_file(path, what, url)


def check_variant(name: str, tensors: dict[str, torch.Tensor], path: Path, what: str, url: str) -> None:
    """Refuse a file that is not CLIP variant ``name`` (another variant, a ResNet CLIP, text only)."""
    _, resolution, patch, width, layers, embed = VARIANTS[name]
    grid = resolution // patch
    expected = {
        "visual.conv1.weight": (width, 3, patch, patch),
        "visual.positional_embedding": (grid * grid + 1, width),
        "visual.proj": (width, embed),
        "text_projection": None,
    }
    found_layers = len([k for k in tensors if k.startswith("visual.") and k.endswith(".attn.in_proj_weight")])
    problems = [key for key, shape in expected.items() if key not in tensors]
    problems += [
        f"{key} {tuple(tensors[key].shape)} (expected {shape})"
        for key, shape in expected.items()
        if key in tensors and shape is not None and tuple(tensors[key].shape) != shape
    ]
    if found_layers != layers:
        problems.append(f"{found_layers} visual layers (expected {layers})")
    if problems:
        raise GenEvalError(
            f"{what} weights {path}: not this variant's weights ({'; '.join(problems[:3])}); "
            f"download the right file from {url}"
        )


def block_weights(visual: torch.nn.Module) -> list[BlockWeights]:
    """Each residual attention block's parameters (torch-fidelity's OpenAI layout)."""
    return [
        BlockWeights(
            norm1=(b.ln_1.weight, b.ln_1.bias, b.ln_1.eps),
            qkv=(b.attn.in_proj_weight, b.attn.in_proj_bias),
            proj=(b.attn.out_proj.weight, b.attn.out_proj.bias),
            norm2=(b.ln_2.weight, b.ln_2.bias, b.ln_2.eps),
            fc1=(b.mlp.c_fc.weight, b.mlp.c_fc.bias),
            fc2=(b.mlp.c_proj.weight, b.mlp.c_proj.bias),
            num_heads=b.attn.num_heads,
            mlp="quick_gelu",
        )
        for b in visual.transformer.resblocks
    ]


class ClipExtractor(EncoderExtractor):
    """CLIP ViT-B/32 (subclasses: B/16, L/14, L/14@336px): the projected CLS token.

    See :class:`~gen_eval.features.encoders.EncoderExtractor` for the parameters.
    """

    name = "clip-vit-b32"
    what = "CLIP ViT-B/32"
    weights_files = WEIGHTS
    image_size = 224
    mean = MEAN
    std = STD
    description = "CLIP ViT-B/32 (OpenAI): 512-d image embedding (torch-fidelity's network)"

    def _build(self, path: Path) -> None:
        from torch_fidelity.feature_extractor_clip import build_model

        spec = self.weights_file()
        tensors = load_clip_tensors(path, self.what, spec.url)
        check_variant(self.name, tensors, path, self.what, spec.url)
        try:
            model = build_model(tensors, torch.float32)
        except (RuntimeError, ValueError, KeyError) as exc:
            reason = str(exc).splitlines()[0][:160]
            raise GenEvalError(
                f"{self.what} weights {path}: could not be loaded ({reason}); {spec.url}"
            ) from exc
        self.visual = model.visual.to(self.device)
        self.blocks = FastBlocks(block_weights(self.visual), self.device) if self.fast else None

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        visual = self.visual
        if self.blocks is None:
            return visual(x)
        tokens = F.conv2d(x, visual.conv1.weight, stride=visual.conv1.stride)
        tokens = tokens.flatten(2).transpose(1, 2)
        cls_token = visual.class_embedding.to(tokens.dtype).expand(tokens.shape[0], 1, -1)
        tokens = torch.cat((cls_token, tokens), dim=1) + visual.positional_embedding
        width = tokens.shape[-1]
        tokens = F.layer_norm(tokens, (width,), visual.ln_pre.weight, visual.ln_pre.bias, visual.ln_pre.eps)
        cls = self.blocks(tokens)  # the class token's output only
        cls = F.layer_norm(cls, (width,), visual.ln_post.weight, visual.ln_post.bias, visual.ln_post.eps)
        return cls @ visual.proj


class ClipB16Extractor(ClipExtractor):
    """CLIP ViT-B/16."""

    name = "clip-vit-b16"
    what = "CLIP ViT-B/16"
    description = "CLIP ViT-B/16 (OpenAI): 512-d image embedding (torch-fidelity's network)"


class ClipL14Extractor(ClipExtractor):
    """CLIP ViT-L/14."""

    name = "clip-vit-l14"
    what = "CLIP ViT-L/14"
    description = "CLIP ViT-L/14 (OpenAI): 768-d image embedding (torch-fidelity's network)"


class ClipL14At336Extractor(ClipExtractor):
    """CLIP ViT-L/14 at 336x336: the encoder of CMMD (Jayasumana et al. 2024)."""

    name = "clip-vit-l14-336"
    what = "CLIP ViT-L/14@336px"
    image_size = 336
    description = "CLIP ViT-L/14@336px (OpenAI): 768-d image embedding; CMMD's encoder"
