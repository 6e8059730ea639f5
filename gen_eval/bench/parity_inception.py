"""Inception's input conventions (``--resize-mode``) and spatial features (sFID) against the peers' own code.

Each peer runs its own preprocessing on the same uint8 images, and a network loaded from the same
weights file (pytorch-fid's and clean-fid's downloads are replaced by that file's state dict):

- ``legacy-tf``: torch-fidelity's ``FeatureExtractorInceptionV3`` forward, resize included;
- ``clean``: clean-fid's ``build_resizer("clean")`` and its loader's ``ToTensor``, then
  ``(x - 128) / 128`` as its ``InceptionV3W(resize_inside=False)``, through pytorch-fid's network
  (clean-fid's own network is a TorchScript file of other weights);
- ``legacy-pytorch``: pytorch-fid's ``InceptionV3`` (``x / 255``, its resize and scaling), and
  clean-fid's ``legacy_pytorch`` mode (its resizer, then its ``pytorch_inception`` extractor);
- spatial features: a forward hook on ``Mixed_6d.branch1x1`` of pytorch-fid's network (ADM's
  ``mixed_6/conv``; the ADM evaluator itself needs TensorFlow), first 7 channels, NHWC order.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from gen_eval.features.inception_input import RESIZE_MODES

# Peers per mode, in the rows' order.
PEERS = {
    "legacy-tf": ("torch-fidelity",),
    "clean": ("clean-fid",),
    "legacy-pytorch": ("pytorch-fid", "clean-fid"),
}


def _state_dict(weights: Path) -> dict[str, torch.Tensor]:
    return torch.load(weights, map_location="cpu", weights_only=True)


def pytorch_fid_network(weights: Path, resize_input: bool, normalize_input: bool) -> torch.nn.Module:
    """pytorch-fid's ``InceptionV3`` (pool features) with ``weights`` instead of its download."""
    import pytorch_fid.inception as module

    state = _state_dict(weights)
    original = module.load_state_dict_from_url
    module.load_state_dict_from_url = lambda *args, **kwargs: state
    try:
        network = module.InceptionV3(
            [module.InceptionV3.BLOCK_INDEX_BY_DIM[2048]],
            resize_input=resize_input,
            normalize_input=normalize_input,
        )
    finally:
        module.load_state_dict_from_url = original
    return network.eval()


def _clean_fid_legacy_pytorch(weights: Path) -> Any:
    """clean-fid's ``legacy_pytorch`` feature function (its bundled pytorch-fid network), our weights."""
    import cleanfid.features as features
    import cleanfid.inception_pytorch as module

    state = _state_dict(weights)
    original = module.load_state_dict_from_url
    module.load_state_dict_from_url = lambda *args, **kwargs: state
    try:
        return features.build_feature_extractor("legacy_pytorch", torch.device("cpu"), use_dataparallel=False)
    finally:
        module.load_state_dict_from_url = original


def _rows_of(images: torch.Tensor) -> list[np.ndarray]:
    return [image.permute(1, 2, 0).numpy() for image in images]  # HWC uint8, as the peers' loaders give


def peer_features(images: torch.Tensor, mode: str, peer: str, weights: Path) -> dict[str, np.ndarray]:
    """Pool features (and for legacy-tf, spatial) of uint8 RGB ``images`` by ``peer``'s own pipeline.

    Parameters
    ----------
    images : torch.Tensor
        uint8 (N, 3, H, W).
    mode : str
        One of :data:`~gen_eval.features.inception_input.RESIZE_MODES`.
    peer : str
        One of :data:`PEERS` ``[mode]``.
    weights : Path
        The Inception state dict both sides load.

    Returns
    -------
    dict
        ``{"features": (N, 2048)}``, plus ``"spatial"`` (N, 2023) in legacy-tf mode.
    """
    import torchvision.transforms

    with torch.inference_mode():
        if mode == "legacy-tf":
            from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3
            from torch_fidelity.interpolate_compat_tensorflow import interpolate_bilinear_2d_like_tensorflow1x

            state = _state_dict(weights)
            import io

            buffer = io.BytesIO()
            torch.save(state, buffer)
            buffer.seek(0)
            fidelity = FeatureExtractorInceptionV3("inception-v3-compat", ["2048"], buffer)
            (pool,) = fidelity(images)
            # ADM's mixed_6/conv from pytorch-fid's network, fed torch-fidelity's resized input.
            network = pytorch_fid_network(weights, resize_input=False, normalize_input=False)
            captured: list[torch.Tensor] = []
            network.blocks[2][6].branch1x1.register_forward_hook(lambda m, i, out: captured.append(out))
            x = interpolate_bilinear_2d_like_tensorflow1x(
                images.float(), size=(299, 299), align_corners=False
            )
            network((x - 128) / 128)
            spatial = captured[0][:, :7].permute(0, 2, 3, 1).reshape(len(images), -1)
            return {"features": pool.double().numpy(), "spatial": spatial.double().numpy()}
        if mode == "clean":
            from cleanfid.resize import build_resizer

            resize, to_tensor = build_resizer("clean"), torchvision.transforms.ToTensor()
            x = torch.stack([to_tensor(resize(image)) for image in _rows_of(images)])
            network = pytorch_fid_network(weights, resize_input=False, normalize_input=False)
            return {"features": network((x - 128) / 128)[0].flatten(1).double().numpy()}
        if peer == "pytorch-fid":
            to_tensor = torchvision.transforms.ToTensor()
            x = torch.stack([to_tensor(image) for image in _rows_of(images)])
            network = pytorch_fid_network(weights, resize_input=True, normalize_input=True)
            return {"features": network(x)[0].flatten(1).double().numpy()}
        from cleanfid.resize import build_resizer

        resize, to_tensor = build_resizer("legacy_pytorch"), torchvision.transforms.ToTensor()
        x = torch.stack([to_tensor(resize(image).astype(np.float32)) for image in _rows_of(images)])
        return {"features": _clean_fid_legacy_pytorch(weights)(x).double().numpy()}


def ours(images: torch.Tensor, mode: str, weights: Path, extractor: Any = None) -> dict[str, np.ndarray]:
    """gen-eval's Inception features (pool and spatial) of ``images`` in ``mode`` (or by ``extractor``)."""
    from gen_eval.features.inception import InceptionExtractor

    extractor = extractor or InceptionExtractor(weights_path=weights, resize_mode=mode, spatial=True)
    return {name: value.double().numpy() for name, value in extractor(images).items()}


def resize_mode_rows(weights: Path, generated: torch.Tensor, reference: torch.Tensor) -> list[dict[str, Any]]:
    """One FID row per resize mode and peer, and one sFID row: gen-eval's FID vs the peer's features'.

    Both FIDs are computed from each side's own features with the rank-limited eigenvalue formula
    (:func:`gen_eval.bench.fid_reference.fid_eigvals_rank_limited`), so a row differs only if the features do;
    ``feature_difference`` is the largest absolute feature difference over the largest feature.
    """
    from gen_eval.bench.fid_reference import fid_eigvals_rank_limited
    from gen_eval.metrics.fid import fid

    rows = []
    for mode in RESIZE_MODES:
        mine = {
            role: ours(images, mode, weights) for role, images in (("gen", generated), ("ref", reference))
        }
        value = fid(
            {"features": torch.from_numpy(mine["gen"]["features"])},
            {"features": torch.from_numpy(mine["ref"]["features"])},
        )["fid"].value
        for peer in PEERS[mode]:
            theirs = {
                role: peer_features(images, mode, peer, weights)
                for role, images in (("gen", generated), ("ref", reference))
            }
            rows.append(
                _row(
                    f"fid (resize mode {mode})",
                    value,
                    theirs,
                    mine,
                    "features",
                    peer,
                    fid_eigvals_rank_limited,
                )
            )
            if "spatial" in theirs["gen"]:
                spatial_value = fid(
                    {"features": torch.from_numpy(mine["gen"]["spatial"])},
                    {"features": torch.from_numpy(mine["ref"]["spatial"])},
                )["fid"].value
                rows.append(
                    _row(
                        f"sfid (resize mode {mode})",
                        spatial_value,
                        theirs,
                        mine,
                        "spatial",
                        "hook on pytorch-fid's Mixed_6d.branch1x1 (ADM's mixed_6/conv)",
                        fid_eigvals_rank_limited,
                    )
                )
    return rows


def _row(
    metric: str, value: float, theirs: dict, mine: dict, key: str, tool: str, formula: Any
) -> dict[str, Any]:
    peer_value = formula(theirs["gen"][key], theirs["ref"][key])
    scale = max(np.abs(theirs[role][key]).max() for role in ("gen", "ref"))
    difference = max(np.abs(mine[role][key] - theirs[role][key]).max() for role in ("gen", "ref"))
    return {
        "metric": metric,
        "ours": value,
        "theirs": peer_value,
        "tool": tool,
        "feature_difference": float(difference / scale),
    }


MODE_NOTES = [
    "Note on the resize modes (`--resize-mode`). Each `fid (resize mode ...)` and `sfid` row computes gen-eval's",
    "value from its own features and the peer's from the peer's own preprocessing code and network run on the same",
    "uint8 images and weights file (`gen_eval/bench/parity_inception.py`): torch-fidelity's forward (legacy-tf),",
    "clean-fid's `build_resizer('clean')` and loader, then its `(x - 128) / 128`, through pytorch-fid's network",
    "(clean: clean-fid's own network is a TorchScript file of other weights), pytorch-fid's `InceptionV3` on",
    "`x / 255` and clean-fid's `legacy_pytorch` extractor (legacy-pytorch). The peer's FID is the rank-limited",
    "eigenvalue formula above on the peer's features. sFID's peer is a forward hook on `Mixed_6d.branch1x1` of",
    "pytorch-fid's network (ADM's `mixed_6/conv`, first 7 channels, NHWC order; ADM's own evaluator needs",
    "TensorFlow). The largest feature difference over the largest feature, per row:",
]


def inception_mode_rows(
    root: Path, num_images: int = 24, size: int = 32
) -> tuple[list[dict[str, Any]], list[str]]:
    """The resize-mode and sFID parity rows on two image sets, and the note that explains them.

    Parameters
    ----------
    root : Path
        Where the weights file is written (about 91 MB).
    num_images : int
        Images per set.
    size : int
        Image height and width.
    """
    from gen_eval.bench.inception_weights import make_informative_inception_weights, varied_images

    weights = make_informative_inception_weights(root / "inception-modes.pth", seed=0)
    rows = resize_mode_rows(
        weights, varied_images(num_images, size, seed=1), varied_images(num_images, size, seed=2)
    )
    differences = [f"- {row['metric']} vs {row['tool']}: {row['feature_difference']:.1e}" for row in rows]
    intro = f"Inputs of these rows: two sets of {num_images} of the images above ({size}x{size})."
    return rows, [*MODE_NOTES, "", *differences, "", intro]
