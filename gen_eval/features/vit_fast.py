"""An inference-only forward for the pre-norm transformer blocks of DINOv2 and CLIP's ViTs.

The networks themselves come from their libraries (timm's DINOv2 ViT, torch-fidelity's CLIP
ViT); this module reads their parameters once and runs the same maths with fewer passes over
memory. Measured on 2 CPU cores (``reports/encoders.md``), the reference forwards spend about a
third of their time outside the matrix products (LayerScale multiplies, residual adds, the GELU,
copies around the attention) and run the products through MKL, which is slower than oneDNN on
the AMD CPUs measured. Here, on the CPU:

- every linear layer runs through oneDNN with its weight packed once
  (``torch.ops.mkldnn._linear_pointwise``, the kernel ``torch.compile`` uses on the CPU);
- the activation is fused into the first MLP product (GELU; CLIP's QuickGELU as a swish of the
  product scaled by 1.702, the 1/1.702 folded into the second product's weight);
- LayerScale's gamma is folded into the weights before it, and the residual add is fused into
  the product that feeds it;
- attention is ``scaled_dot_product_attention`` on views of the packed q, k, v;
- only the class token is read, so the last block computes its query, attention output and
  MLP for that token alone (keys and values still from every token).

Each rewrite is exact in real arithmetic; in float32 the features agree with the reference
forwards to about 1e-6 relative (tested to 1e-5). Where oneDNN's packed op is missing (a build
without MKLDNN) or the device is not the CPU, plain ``F.linear`` runs instead, with the same
folding; on CUDA that is cuBLAS with the same fusions unavailable, which is still correct.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

QUICK_GELU_SCALE = 1.702  # CLIP's QuickGELU: y * sigmoid(1.702 y)


def onednn_available(device: torch.device) -> bool:
    """Whether the packed oneDNN linear kernels can run on ``device``."""
    return (
        device.type == "cpu"
        and torch.backends.mkldnn.is_available()
        and hasattr(torch.ops.mkldnn, "_linear_pointwise")
        and hasattr(torch.ops.mkldnn, "_reorder_linear_weight")
    )


class Linear:
    """A linear layer ``x @ W.T + b`` with an optional fused activation or residual add.

    Parameters
    ----------
    weight, bias : Tensor
        (out, in) and (out,) float32, already scaled by whatever was folded into them.
    activation : {"none", "gelu", "swish"}
        Applied to the product (fused on oneDNN).
    packed : bool
        Use oneDNN's packed kernel (CPU only).
    """

    def __init__(
        self, weight: torch.Tensor, bias: torch.Tensor | None, activation: str = "none", packed: bool = False
    ) -> None:
        self.weight = weight.detach().contiguous()
        self.bias = None if bias is None else bias.detach().contiguous()
        self.activation = activation
        self.packed = packed
        if packed:
            # The batch size given to the reorder is only a hint for the blocking it picks.
            self.packed_weight = torch.ops.mkldnn._reorder_linear_weight(self.weight, 4096)

    def __call__(self, x: torch.Tensor, residual: torch.Tensor | None = None) -> torch.Tensor:
        """``act(x @ W.T + b)``, plus ``residual`` when given (no activation then)."""
        if self.packed:
            if residual is not None:
                return torch.ops.mkldnn._linear_pointwise.binary(
                    x, residual, self.packed_weight, self.bias, "add"
                )
            algorithm = "none" if self.activation == "gelu" else ""
            return torch.ops.mkldnn._linear_pointwise(
                x, self.packed_weight, self.bias, self.activation, [], algorithm
            )
        y = F.linear(x, self.weight, self.bias)
        if self.activation == "gelu":
            y = F.gelu(y)
        elif self.activation == "swish":
            y = F.silu(y)
        return y if residual is None else y.add_(residual)


@dataclass
class BlockWeights:
    """One pre-norm block's parameters, as the reference modules hold them.

    ``ls1``/``ls2`` are DINOv2's LayerScale gammas (None for CLIP); ``mlp`` is ``"gelu"``
    (DINOv2 S/B/L), ``"quick_gelu"`` (CLIP) or ``"swiglu"`` (DINOv2 g: ``fc1`` holds both halves,
    SiLU on the first).
    """

    norm1: tuple[torch.Tensor, torch.Tensor, float]
    qkv: tuple[torch.Tensor, torch.Tensor | None]
    proj: tuple[torch.Tensor, torch.Tensor | None]
    norm2: tuple[torch.Tensor, torch.Tensor, float]
    fc1: tuple[torch.Tensor, torch.Tensor | None]
    fc2: tuple[torch.Tensor, torch.Tensor | None]
    num_heads: int
    mlp: str = "gelu"
    ls1: torch.Tensor | None = None
    ls2: torch.Tensor | None = None


def _scaled(
    linear: tuple[torch.Tensor, torch.Tensor | None],
    scale: torch.Tensor | float | None,
    input_scale: float = 1.0,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Fold factors into a linear layer: ``scale * ((input_scale x) W^T + b)``.

    ``scale`` is per output (LayerScale's gamma) or a scalar and multiplies the bias too;
    ``input_scale`` multiplies only the weight.
    """
    weight, bias = linear
    weight, bias = weight.detach().float(), None if bias is None else bias.detach().float()
    if input_scale != 1.0:
        weight = weight * input_scale
    if scale is None:
        return weight, bias
    column = scale.detach().float()[:, None] if isinstance(scale, torch.Tensor) else scale
    row = scale.detach().float() if isinstance(scale, torch.Tensor) else scale
    return weight * column, None if bias is None else bias * row


class FastBlock:
    """One transformer block, ``x + attn(norm1(x))`` then ``x + mlp(norm2(x))``, on (B, N, C)."""

    def __init__(self, weights: BlockWeights, packed: bool) -> None:
        self.norm1 = tuple(t.detach().float() if isinstance(t, torch.Tensor) else t for t in weights.norm1)
        self.norm2 = tuple(t.detach().float() if isinstance(t, torch.Tensor) else t for t in weights.norm2)
        self.num_heads = weights.num_heads
        self.qkv = Linear(*_scaled(weights.qkv, None), packed=packed)
        self.proj = Linear(*_scaled(weights.proj, weights.ls1), packed=packed)
        self.swiglu = weights.mlp == "swiglu"
        if weights.mlp == "quick_gelu":
            # y * sigmoid(1.702 y) = swish(1.702 y) / 1.702: scale fc1 up, fold 1/1.702 into fc2.
            self.fc1 = Linear(*_scaled(weights.fc1, QUICK_GELU_SCALE), "swish", packed=packed)
            self.fc2 = Linear(*_scaled(weights.fc2, weights.ls2, 1 / QUICK_GELU_SCALE), packed=packed)
        else:
            self.fc1 = Linear(
                *_scaled(weights.fc1, None), "gelu" if weights.mlp == "gelu" else "none", packed
            )
            self.fc2 = Linear(*_scaled(weights.fc2, weights.ls2), packed=packed)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """The block applied to tokens ``x`` (B, N, C)."""
        batch, tokens, width = x.shape
        h = F.layer_norm(x, (width,), *self.norm1)
        qkv = self.qkv(h).view(batch, tokens, 3, self.num_heads, width // self.num_heads)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)
        attended = F.scaled_dot_product_attention(q, k, v)
        attended = attended.transpose(1, 2).reshape(batch, tokens, width)
        x = self.proj(attended, residual=x)
        h = F.layer_norm(x, (width,), *self.norm2)
        hidden = self.fc1(h)
        if self.swiglu:
            gate, value = hidden.chunk(2, dim=-1)
            hidden = F.silu(gate) * value
        return self.fc2(hidden, residual=x)

    def prepare_class_token(self) -> None:
        """Split the q, k, v projection for :meth:`class_token` (once, before any thread calls it)."""
        weight, bias = self.qkv.weight, self.qkv.bias
        width = weight.shape[1]
        split = (weight[:width], None if bias is None else bias[:width])
        self.query = Linear(*split, packed=self.qkv.packed)
        self.key_value = Linear(
            weight[width:], None if bias is None else bias[width:], packed=self.qkv.packed
        )

    def class_token(self, x: torch.Tensor) -> torch.Tensor:
        """The block's output for token 0 only (B, 1, C): what the last block must give.

        Keys and values still come from every token, but the query, the attention output, the
        projection and the MLP are computed for the class token alone: exact, and ~1/depth
        of the forward saved.
        """
        batch, tokens, width = x.shape
        heads, head_dim = self.num_heads, width // self.num_heads
        h = F.layer_norm(x, (width,), *self.norm1)
        k, v = self.key_value(h).view(batch, tokens, 2, heads, head_dim).permute(2, 0, 3, 1, 4).unbind(0)
        q = self.query(h[:, :1].contiguous()).view(batch, 1, heads, head_dim).transpose(1, 2)
        attended = F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(batch, 1, width)
        first = self.proj(attended, residual=x[:, :1].contiguous())
        hidden = self.fc1(F.layer_norm(first, (width,), *self.norm2))
        if self.swiglu:
            gate, value = hidden.chunk(2, dim=-1)
            hidden = F.silu(gate) * value
        return self.fc2(hidden, residual=first)


class FastBlocks:
    """A stack of :class:`FastBlock`, built once from the reference module's parameters."""

    def __init__(self, blocks: list[BlockWeights], device: torch.device) -> None:
        packed = onednn_available(device)
        self.uses_onednn = packed
        self.blocks = [FastBlock(weights, packed) for weights in blocks]
        self.blocks[-1].prepare_class_token()

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """All blocks applied in order to tokens ``x`` (B, N, C); the class token's output (B, C)."""
        for block in self.blocks[:-1]:
            x = block(x)
        return self.blocks[-1].class_token(x)[:, 0]
